//! [`berth_store::AuditStore`]: appended entries, read back as the `audit` table; the database
//! itself refuses to rewrite them.

use std::net::{IpAddr, Ipv4Addr};

use berth_store::{AuditOutcome, NewAuditEntry};
use serde_json::{Value, json};

use crate::support::TestDb;
use crate::{at, query, scope};

stories!(audit_is_append_only,);

fn audit(actor: &str, action: &str, seconds: i64) -> NewAuditEntry {
    NewAuditEntry {
        at: at(seconds),
        actor: actor.into(),
        action: action.into(),
        target: "python".into(),
        ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        details: json!({"before": null, "after": {"image": "debian:12"}}),
        outcome: AuditOutcome::Success,
    }
}

async fn audit_is_append_only(db: &TestDb) {
    let store = &db.store;
    let first = store
        .append_audit(&audit("alice", "workspace.start", 0))
        .await
        .unwrap();
    let mut system = audit("system", "workspace.stop", 1);
    system.ip = None;
    system.outcome = AuditOutcome::Failure;
    let second = store.append_audit(&system).await.unwrap();
    assert!(second > first);

    let page = store
        .query_table(&query(json!({"table": "audit"})), None)
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    // Newest first by default.
    assert_eq!(page.rows[0]["id"], json!(second));
    assert_eq!(page.rows[0]["ip"], Value::Null);
    assert_eq!(page.rows[0]["outcome"], json!("failure"));
    assert_eq!(page.rows[1]["ip"], json!("127.0.0.1"));
    assert_eq!(
        page.rows[1]["details"]["after"]["image"],
        json!("debian:12")
    );
    assert_eq!(page.rows[1]["at"], json!("2024-05-01T12:00:00.000000Z"));

    // Users see their own entries only (scope is the actor).
    let mine = store
        .query_table(&query(json!({"table": "audit"})), Some(&scope("alice")))
        .await
        .unwrap();
    assert_eq!(mine.total, 1);
    assert_eq!(mine.rows[0]["action"], json!("workspace.start"));

    // The database itself refuses to rewrite history.
    assert!(
        db.execute_raw("UPDATE audit_log SET actor = 'mallory'")
            .await
            .is_err()
    );
    assert!(db.execute_raw("DELETE FROM audit_log").await.is_err());
    assert_eq!(
        store.query_table(&query(json!({"table": "audit", "filters": [{"column": "actor", "op": "eq", "value": "alice"}]})), None).await.unwrap().total,
        1
    );
}
