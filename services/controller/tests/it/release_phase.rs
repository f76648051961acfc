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

/// Runs every one-off as "prints `migrating`, exits with `code`", and keeps the requests. With a gate set, the
/// next one-off waits for it before exiting.
struct ScriptedNode {
    code: Mutex<i32>,
    requests: Mutex<Vec<OneOffRequest>>,
    gate: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

impl NodeLink for ScriptedNode {
    fn set_desired(&self, _: Vec<InstanceSpec>) {}

    fn run_one_off(&self, request: OneOffRequest) -> OneOffStart<'_> {
        let code = *self.code.lock().unwrap();
        let gate = self.gate.lock().unwrap().take();
        self.requests.lock().unwrap().push(request);
        Box::pin(async move {
            let (input, input_rx) = mpsc::channel(1);
            let (tx, output) = mpsc::channel(4);
            tokio::spawn(async move {
                let _input = input_rx;
                let _ = tx.send(OneOffOutput::Stdout(b"migrating\n".to_vec())).await;
                if let Some(gate) = gate {
                    let _ = gate.await;
                }
                let exit = OneOffExit::of(ExitReason::Exited { code });
                let _ = tx.send(OneOffOutput::Exited(exit)).await;
            });
            Ok(OneOffSession { input, output })
        })
    }
}

/// A release of `app` with `processes`, its web scaled to zero: a made release is done at once (no instances
/// to wait for).
async fn release_scaled_to_zero(
    store: &store::Store,
    app: &store::App,
    processes: BTreeMap<ProcessType, String>,
) {
    let latest = store.latest_release(app.id).await.unwrap();
    store
        .create_release(NewRelease {
            app: app.id,
            image_digest: format!("sha256:{}", "ab".repeat(32)),
            processes,
            config: latest.map(|r| r.config).unwrap_or_default(),
            description: "Deploy".to_owned(),
            created_by: app.owner,
        })
        .await
        .unwrap();
    store
        .set_formation(app.id, &ProcessType::web(), 0, 64 << 20)
        .await
        .unwrap();
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
    release_scaled_to_zero(&store, &app, v2.processes).await;
    let node = Arc::new(ScriptedNode {
        code: Mutex::new(7),
        requests: Mutex::default(),
        gate: Mutex::default(),
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

    // A release command that runs long holds up no one: meanwhile another app's change and this app's next
    // change are made; when it ends, its release is not made over them.
    let other = store
        .create_app(owner.id, &vocabulary::AppName::new("other").unwrap())
        .await
        .unwrap();
    let web = BTreeMap::from([(ProcessType::web(), "web".to_owned())]);
    release_scaled_to_zero(&store, &other, web).await;
    let (open, gate) = tokio::sync::oneshot::channel();
    *node.gate.lock().unwrap() = Some(gate);
    let slow = {
        let (lifecycle, app) = (lifecycle.clone(), app.clone());
        tokio::spawn(async move { lifecycle.change_config(&app, owner.id, &set("slow")).await })
    };
    while node.requests.lock().unwrap().len() < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // (A lock held by the slow command would hang here: the guard turns that into a failure.)
    let changed = tokio::time::timeout(
        Duration::from_secs(60),
        lifecycle.change_config(&other, owner.id, &set("x")),
    )
    .await
    .expect("another app's change is not held up by a release command")
    .unwrap();
    assert_eq!(changed.rolled_out.unwrap().release, Some(ReleaseVersion(2)));
    let changed = lifecycle
        .change_config(&app, owner.id, &set("fast"))
        .await
        .unwrap();
    assert_eq!(changed.rolled_out.unwrap().release, Some(ReleaseVersion(4)));
    open.send(()).unwrap();
    let rolled = slow.await.unwrap().unwrap().rolled_out.unwrap();
    assert_eq!(rolled.release, None);
    let reason = rolled.outcome.unwrap_err();
    assert!(
        reason.starts_with("The app changed while its release command ran"),
        "{reason}"
    );
    let latest = store.latest_release(app.id).await.unwrap().unwrap();
    assert_eq!(
        (latest.version, latest.config.get("FLAVOUR").map(String::as_str)),
        (ReleaseVersion(4), Some("fast"))
    );
}
