//! The release phase against a real store, with a node whose one-offs print a line and exit with the code the
//! test sets: a failing `release` command leaves no release and records why; a passing one lets the
//! release be made; the one-off is the release-to-be's (its config, its version, its command).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_contract::{ExitReason, InstanceSpec, OneOffExit, OneOffOutput, OneOffRequest, OneOffSession};
use controller::{DeployConfig, DrainPolicy, Lifecycle, NodeLink, OneOffLimits, OneOffStart, OneOffs};
use store::{EventKind, NewRelease};
use tokio::sync::{mpsc, watch};
use vocabulary::{NodeId, ProcessType, ReleaseVersion};

/// Runs every one-off as "prints `migrating`, exits with `code`", and keeps the requests.
struct ScriptedNode {
    code: Mutex<i32>,
    requests: Mutex<Vec<OneOffRequest>>,
}

impl NodeLink for ScriptedNode {
    fn set_desired(&self, _: Vec<InstanceSpec>) {}

    fn run_one_off(&self, request: OneOffRequest) -> OneOffStart<'_> {
        let code = *self.code.lock().unwrap();
        self.requests.lock().unwrap().push(request);
        Box::pin(async move {
            let (input, _input_rx) = mpsc::channel(1);
            let (tx, output) = mpsc::channel(4);
            tx.send(OneOffOutput::Stdout(b"migrating\n".to_vec()))
                .await
                .unwrap();
            tx.send(OneOffOutput::Exited(OneOffExit::of(ExitReason::Exited { code })))
                .await
                .unwrap();
            Ok(OneOffSession { input, output })
        })
    }
}

#[tokio::test]
async fn a_failing_release_command_makes_no_release() {
    // The world's shop is at v1 (web only); v2 asks for a release phase.
    let world = crate::World::new(DrainPolicy::default()).await;
    let store = world.store.clone();
    let app = store.app(world.app).await.unwrap().unwrap();
    let owner = store.account(app.owner).await.unwrap().unwrap();
    let mut v2 = store.latest_release(app.id).await.unwrap().unwrap();
    v2.processes
        .insert(ProcessType::new("release").unwrap(), "./migrate".to_owned());
    store
        .create_release(NewRelease {
            app: app.id,
            image_digest: v2.image_digest,
            processes: v2.processes,
            config: BTreeMap::new(),
            description: "Deploy".to_owned(),
            created_by: owner.id,
        })
        .await
        .unwrap();
    // Scaled to zero: a made release is done at once (no instances to wait for).
    store
        .set_formation(app.id, &ProcessType::web(), 0, 64 << 20)
        .await
        .unwrap();
    let node = Arc::new(ScriptedNode {
        code: Mutex::new(7),
        requests: Mutex::default(),
    });
    let links = std::collections::HashMap::from([(NodeId::new(), node.clone() as Arc<dyn NodeLink>)]);
    let config = crate::config(DrainPolicy::default());
    let one_offs = OneOffs::new(config, OneOffLimits::default(), store.clone(), &links);
    let (events, _events_rx) = mpsc::unbounded_channel();
    let (_passes_tx, passes) = watch::channel(0);
    let lifecycle = Lifecycle::new(
        DeployConfig {
            domain: "apps.test".into(),
            router_port: 80,
            default_memory_bytes: 64 << 20,
            rollout_timeout: Duration::from_secs(5),
            app_logs: None,
        },
        store.clone(),
        controller::ControllerHandle::new(events),
        passes,
    )
    .with_one_offs(one_offs);
    let set = |value: &str| BTreeMap::from([("FLAVOUR".to_owned(), Some(value.to_owned()))]);

    // Exit 7: no v3, and the reason is the push's last line and an event.
    let changed = lifecycle
        .change_config(&app, owner.id, &set("salty"))
        .await
        .unwrap();
    let rolled = changed.rolled_out.unwrap();
    assert_eq!(rolled.release, None);
    assert_eq!(
        rolled.outcome,
        Err("Release command failed (exit 7); v3 not deployed, v2 keeps serving".to_owned())
    );
    assert_eq!(
        store.latest_release(app.id).await.unwrap().unwrap().version,
        ReleaseVersion(2)
    );
    let events = store.events(app.id, 10).await.unwrap();
    assert!(
        events.iter().any(|e| e.kind == EventKind::DeployFailed
            && e.description.starts_with("Release command failed (exit 7)")),
        "{events:?}"
    );
    // The one-off was the release-to-be's: its command, its config, the version it would have had.
    let request = node.requests.lock().unwrap().last().cloned().unwrap();
    assert_eq!(request.spec.process_type.as_str(), "release");
    assert_eq!(request.spec.command, "./migrate");
    assert_eq!(request.spec.release_version, ReleaseVersion(3));
    assert_eq!(request.spec.env.get("FLAVOUR").map(String::as_str), Some("salty"));
    assert_eq!(
        request.spec.env.get("DYNO").map(String::as_str),
        Some("release.1")
    );
    assert_eq!(request.terminal, None);

    // Exit 0: the release is made (v3: the failed one took no number).
    *node.code.lock().unwrap() = 0;
    let changed = lifecycle
        .change_config(&app, owner.id, &set("sweet"))
        .await
        .unwrap();
    let rolled = changed.rolled_out.unwrap();
    assert_eq!(rolled.release, Some(ReleaseVersion(3)), "{:?}", rolled.outcome);
    assert!(rolled.outcome.is_ok(), "{:?}", rolled.outcome);
    assert_eq!(node.requests.lock().unwrap().len(), 2);
}
