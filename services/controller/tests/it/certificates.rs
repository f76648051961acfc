use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use controller::DrainPolicy;
use store::NewCertificate;
use tokio::sync::mpsc;
use vocabulary::DomainName;

use crate::World;

/// Only a hang takes this long.
const PATIENCE: Duration = Duration::from_secs(60);

fn policy() -> DrainPolicy {
    DrainPolicy {
        min_wait: Duration::ZERO,
        grace: Duration::from_secs(3600),
        recheck: Duration::from_millis(250),
    }
}

fn certificate(w: &World, host: &str, tag: &str, not_after: chrono::DateTime<Utc>) -> NewCertificate {
    NewCertificate {
        app: w.app,
        hosts: vec![host.to_owned()],
        cert_pem: format!("{tag} cert"),
        key_pem: format!("{tag} SECRET-KEY"),
        not_after,
    }
}

async fn add_domain(w: &World, name: &str) {
    w.store
        .add_domain(w.app, &DomainName::new(name).unwrap())
        .await
        .unwrap();
}

fn served(w: &World) -> Vec<String> {
    let table = w.routes.borrow();
    table.certificates.iter().map(|c| c.cert_pem.clone()).collect()
}

/// Collects what the controller logs, for checking what a warning names.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

// Current-thread runtime: the reconcile passes run on this thread, under the capturing subscriber.
#[tokio::test(flavor = "current_thread")]
async fn an_expired_certificate_inserted_past_the_api_is_left_out_and_named_once_in_a_warning() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    let w = World::new(policy()).await;
    add_domain(&w, "shop.example.com").await;
    add_domain(&w, "www.shop.example.com").await;
    let now = Utc::now();
    // The store takes what the API would refuse.
    w.store
        .add_certificate(certificate(
            &w,
            "shop.example.com",
            "expired",
            now - TimeDelta::days(1),
        ))
        .await
        .unwrap();
    w.store
        .add_certificate(certificate(
            &w,
            "www.shop.example.com",
            "valid",
            now + TimeDelta::days(30),
        ))
        .await
        .unwrap();
    w.controller.reconcile().await.unwrap();
    assert_eq!(served(&w), ["valid cert"]);
    let table = w.routes.borrow().clone();
    assert_eq!(table.certificate_for("shop.example.com"), None);
    assert!(table.certificate_for("www.shop.example.com").is_some());

    let text = log.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("certificate expired"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(
        warnings[0].contains("WARN") && warnings[0].contains("shop.example.com"),
        "{text}"
    );
    assert!(!text.contains("SECRET-KEY"), "a key was logged:\n{text}");

    // Later passes do not repeat the warning.
    w.controller.reconcile().await.unwrap();
    assert_eq!(log.text().matches("certificate expired").count(), 1);
}

#[tokio::test]
async fn the_table_is_republished_when_a_certificate_expires() {
    // The tick is an hour: only the timer at the certificate's expiry can take it out of the table.
    let World {
        store,
        controller,
        mut routes,
        app,
        _dir,
        ..
    } = World::new(policy()).await;
    store
        .add_domain(app, &DomainName::new("shop.example.com").unwrap())
        .await
        .unwrap();
    store
        .add_certificate(NewCertificate {
            app,
            hosts: vec!["shop.example.com".into()],
            cert_pem: "short-lived cert".into(),
            key_pem: "short-lived key".into(),
            // Long enough for the first pass to publish it on a busy machine.
            not_after: Utc::now() + TimeDelta::seconds(3),
        })
        .await
        .unwrap();
    let (_events_tx, events) = mpsc::unbounded_channel();
    let (_reports_tx, reports) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(controller.run(events, reports, async {
        let _ = stop_rx.await;
    }));

    let has_it = |table: &route_table::RouteTable| table.certificate_for("shop.example.com").is_some();
    let published = tokio::time::timeout(PATIENCE, routes.wait_for(|t| has_it(t)))
        .await
        .is_ok();
    assert!(published, "the certificate was never published");
    let removed = tokio::time::timeout(PATIENCE, routes.wait_for(|t| !has_it(t)))
        .await
        .is_ok();
    assert!(
        removed,
        "the expired certificate was never taken out of the table"
    );

    let _ = stop_tx.send(());
    running.await.unwrap();
}
