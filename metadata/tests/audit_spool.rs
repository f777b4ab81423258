//! The on-disk audit spool: what an earlier run spooled is counted at start and replayed into the
//! index once, a replay interrupted after its inserts writes nothing twice, a torn last line (a
//! crash mid-append) is dropped, and with the index answering nothing is spooled.

mod common;

use artstore_metadata::{AuditEvent, AuditQuery, SpoolStats};

fn event(i: usize) -> AuditEvent {
    AuditEvent {
        id: format!("0190000-spooled-{i}"),
        at_ms: 1_700_000_000_000 + i as i64,
        action: "token.issue".into(),
        outcome: "failure".into(),
        detail: Some(format!("HTTP 503 unavailable #{i}")),
        ..AuditEvent::default()
    }
}

fn lines(events: &[AuditEvent]) -> String {
    events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect()
}

async fn stored_ids(store: &artstore_metadata::Store) -> Vec<String> {
    let mut ids: Vec<String> = store
        .list_audit(&AuditQuery {
            action: Some("token.issue".into()),
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    ids.sort();
    ids
}

async fn replays_once(kind: &str) {
    let Some(db) = common::open(kind).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spooled: Vec<AuditEvent> = (0..3).map(event).collect();
    let torn = "{\"id\":\"0190000-torn\",\"at_ms\":17";
    std::fs::write(dir.path().join("audit-spool.jsonl"), lines(&spooled) + torn).unwrap();

    let store = db.store.clone().with_audit_spool(dir.path()).await.unwrap();
    assert_eq!(store.audit_spool_stats().unwrap().pending, 4);
    assert_eq!(store.replay_audit_spool().await.unwrap(), 3);
    assert_eq!(
        store.audit_spool_stats(),
        Some(SpoolStats {
            spooled: 0,
            replayed: 3,
            pending: 0
        })
    );
    let want: Vec<String> = spooled.iter().map(|e| e.id.clone()).collect();
    assert_eq!(stored_ids(&store).await, want);
    assert!(!dir.path().join("audit-spool.jsonl").exists());

    // A crash after the inserts but before the replayed file was removed: the next start
    // replays it again and adds nothing.
    std::fs::write(
        dir.path().join("audit-spool.replaying.jsonl"),
        lines(&spooled),
    )
    .unwrap();
    let store = db.store.clone().with_audit_spool(dir.path()).await.unwrap();
    assert_eq!(store.audit_spool_stats().unwrap().pending, 3);
    assert_eq!(store.replay_audit_spool().await.unwrap(), 0);
    assert_eq!(store.audit_spool_stats().unwrap().pending, 0);
    assert_eq!(stored_ids(&store).await, want);

    // The index answers: events go straight in, nothing is spooled.
    store.record_audit(&event(3)).await.unwrap();
    assert_eq!(store.audit_spool_stats().unwrap().spooled, 0);
    assert_eq!(stored_ids(&store).await.len(), 4);
    assert!(!dir.path().join("audit-spool.jsonl").exists());
}

#[tokio::test]
async fn spool_replays_once_sqlite() {
    replays_once("sqlite").await;
}

#[tokio::test]
async fn spool_replays_once_postgres() {
    replays_once("postgres").await;
}
