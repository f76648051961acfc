use store::testing::TestDatabase;
use store::NewAuditEntry;

fn entry(account: &str, action: &str, status: u16) -> NewAuditEntry {
    NewAuditEntry {
        account: account.to_owned(),
        token_scope: "full".to_owned(),
        action: action.to_owned(),
        target: Some("app shop".to_owned()),
        status,
    }
}

async fn entries_come_back_newest_first_filtered_and_limited(store: TestDatabase) {
    store
        .record_audit(&entry("alice", "POST /v1/apps", 201))
        .await
        .unwrap();
    store.record_audit(&entry("bob", "git push", 200)).await.unwrap();
    let mut last = entry("alice", "DELETE /v1/apps/{name}", 204);
    last.target = None;
    store.record_audit(&last).await.unwrap();

    let all = store.audit_log(None, 10).await.unwrap();
    let actions: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["DELETE /v1/apps/{name}", "git push", "POST /v1/apps"]);
    assert_eq!(all[0].target, None);
    assert_eq!(all[2].status, 201);
    assert!(all[0].at >= all[1].at);

    let alice = store.audit_log(Some("alice"), 10).await.unwrap();
    assert_eq!(alice.len(), 2);
    assert!(alice.iter().all(|e| e.account == "alice"));
    assert_eq!(store.audit_log(None, 1).await.unwrap().len(), 1);
    assert!(store.audit_log(Some("nobody"), 10).await.unwrap().is_empty());
}

on_both_backends!(entries_come_back_newest_first_filtered_and_limited,);
