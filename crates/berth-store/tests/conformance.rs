//! One conformance suite, run against every backend: each story below runs once on a fresh
//! SQLite file (`sqlite::*`) and once on a fresh PostgreSQL database (`postgres::*`). The
//! PostgreSQL half needs `BERTH_TEST_POSTGRES_URL` (see `scripts/postgres.sh`) and fails
//! without it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use berth_store::{
    AuditOutcome, ClientPing, Member, MemberRole, NewAuditEntry, StateUpdate, Store, StoreError,
    TableQuery, Workspace, WorkspaceFilter, WorkspaceState, normalize_time,
};
use berth_types::{ClientId, Username, WorkspaceId};
use serde_json::{Value, json};
use support::TestDb;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

macro_rules! stories {
    ($($story:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let db = super::support::TestDb::sqlite().await;
                    super::$story(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let db = super::support::TestDb::postgres().await;
                    super::$story(&db).await;
                }
            )*
        }
    };
}

stories!(
    workspaces_round_trip,
    workspaces_list_and_count,
    state_changes_compare_and_set,
    concurrent_compare_and_set_has_one_winner,
    activity_only_moves_forward,
    pings_upsert_latest_wins,
    login_failures_lock_and_reset,
    audit_is_append_only,
    table_queries_filter_sort_and_scope,
    table_pages_are_stable_while_rows_arrive,
    hostile_input_is_refused,
);

const T0: OffsetDateTime = datetime!(2024-05-01 12:00 UTC);

fn at(seconds: i64) -> OffsetDateTime {
    T0 + Duration::seconds(seconds)
}

fn user(name: &str) -> Username {
    Username::new(name).unwrap()
}

fn workspace(owner: &str, template: &str, created: i64) -> Workspace {
    Workspace {
        id: WorkspaceId::random(),
        owner: user(owner),
        template: template.to_owned(),
        state: WorkspaceState::Pending,
        container_id: None,
        persistent: false,
        network: "none".to_owned(),
        created_at: at(created),
        started_at: None,
        last_activity: at(created),
        expires_at: None,
        state_reason: "requested by the owner".to_owned(),
    }
}

fn query(value: Value) -> TableQuery {
    serde_json::from_value(value).unwrap()
}

fn ids(rows: &[serde_json::Map<String, Value>]) -> Vec<String> {
    rows.iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn workspaces_round_trip(db: &TestDb) {
    let store = &db.store;
    let mut w = workspace("alice", "python", 0);
    // Precision finer than microseconds and non-UTC offsets come back normalized.
    w.created_at = datetime!(2024-05-01 14:00:00.123456789 +02:00);
    w.expires_at = Some(at(3600));
    w.container_id = Some("c0ffee".into());
    w.persistent = true;
    store.insert_workspace(&w).await.unwrap();

    let got = store.get_workspace(w.id).await.unwrap();
    assert_eq!(got.created_at, datetime!(2024-05-01 12:00:00.123456 UTC));
    assert_eq!(got.created_at.offset(), time::UtcOffset::UTC);
    let expected = Workspace {
        created_at: normalize_time(w.created_at),
        ..w.clone()
    };
    assert_eq!(got, expected);

    assert!(matches!(
        store.insert_workspace(&w).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.get_workspace(WorkspaceId::random()).await,
        Err(StoreError::NotFound)
    ));
    store.delete_workspace(w.id).await.unwrap();
    assert!(matches!(
        store.get_workspace(w.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_workspace(w.id).await,
        Err(StoreError::NotFound)
    ));
}

async fn workspaces_list_and_count(db: &TestDb) {
    let store = &db.store;
    let mut all = Vec::new();
    for (i, (owner, state)) in [
        ("alice", WorkspaceState::Running),
        ("bob", WorkspaceState::Running),
        ("alice", WorkspaceState::Stopped),
        ("alice", WorkspaceState::Starting),
        ("bob", WorkspaceState::Failed),
    ]
    .into_iter()
    .enumerate()
    {
        // Inserted newest first, so "oldest first" is not insertion order.
        let mut w = workspace(owner, "python", 100 - i as i64);
        w.state = state;
        store.insert_workspace(&w).await.unwrap();
        all.push(w);
    }
    let listed = store
        .list_workspaces(&WorkspaceFilter::default())
        .await
        .unwrap();
    let mut expected = all.clone();
    expected.sort_by_key(|w| w.created_at);
    assert_eq!(listed, expected);

    let alice = store
        .list_workspaces(&WorkspaceFilter {
            owner: Some(user("alice")),
            states: vec![],
            ..WorkspaceFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(alice.len(), 3);
    assert!(alice.iter().all(|w| w.owner.as_str() == "alice"));

    let running = store
        .list_workspaces(&WorkspaceFilter {
            owner: None,
            states: vec![WorkspaceState::Running, WorkspaceState::Failed],
            ..WorkspaceFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(running.len(), 3);

    // Shared with bob: the workspaces he is a member of, whoever owns them.
    let bobs = |w: &&Workspace| w.owner.as_str() != "bob";
    let shared_with_bob: Vec<Workspace> = all.iter().filter(bobs).take(2).cloned().collect();
    for w in &shared_with_bob {
        store
            .put_member(&Member {
                workspace: w.id,
                username: user("bob"),
                role: MemberRole::Viewer,
                added_by: w.owner.clone(),
                added_at: w.created_at,
            })
            .await
            .unwrap();
    }
    let mut shared = store
        .list_workspaces(&WorkspaceFilter {
            member: Some(user("bob")),
            ..WorkspaceFilter::default()
        })
        .await
        .unwrap();
    shared.sort_by_key(|w| w.id);
    let mut expected: Vec<_> = shared_with_bob.iter().map(|w| w.id).collect();
    expected.sort();
    assert_eq!(shared.iter().map(|w| w.id).collect::<Vec<_>>(), expected);
    let none = store
        .list_workspaces(&WorkspaceFilter {
            member: Some(user("carol")),
            ..WorkspaceFilter::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());

    assert_eq!(
        store
            .count_workspaces(&user("alice"), &WorkspaceState::LIVE)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .count_workspaces(&user("bob"), &[WorkspaceState::Running])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_workspaces(&user("carol"), &WorkspaceState::ALL)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.count_workspaces(&user("alice"), &[]).await.unwrap(),
        0
    );
}

async fn state_changes_compare_and_set(db: &TestDb) {
    let store = &db.store;
    let w = workspace("alice", "python", 0);
    store.insert_workspace(&w).await.unwrap();

    let starting = store
        .update_workspace_state(
            w.id,
            &StateUpdate::to(WorkspaceState::Starting, "creating the container")
                .expecting(WorkspaceState::Pending)
                .with_container("abc123"),
        )
        .await
        .unwrap();
    assert_eq!(starting.state, WorkspaceState::Starting);
    assert_eq!(starting.container_id.as_deref(), Some("abc123"));
    assert_eq!(starting.state_reason, "creating the container");

    // The guard no longer holds: someone else moved it.
    let stale = store
        .update_workspace_state(
            w.id,
            &StateUpdate::to(WorkspaceState::Failed, "x").expecting(WorkspaceState::Pending),
        )
        .await;
    match stale {
        Err(StoreError::Conflict(message)) => assert!(message.contains("starting"), "{message}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        store.get_workspace(w.id).await.unwrap().state,
        WorkspaceState::Starting
    );

    let running = store
        .update_workspace_state(
            w.id,
            &StateUpdate::to(WorkspaceState::Running, "started")
                .expecting(WorkspaceState::Starting)
                .started(at(5))
                .expiring(at(3605)),
        )
        .await
        .unwrap();
    assert_eq!(running.container_id.as_deref(), Some("abc123"), "kept");
    assert_eq!(running.started_at, Some(at(5)));
    assert_eq!(running.expires_at, Some(at(3605)));
    assert_eq!(running, store.get_workspace(w.id).await.unwrap());

    // Unguarded updates always apply.
    let stopped = store
        .update_workspace_state(
            w.id,
            &StateUpdate::to(WorkspaceState::Stopped, "stopped by alice"),
        )
        .await
        .unwrap();
    assert_eq!(stopped.state_reason, "stopped by alice");
    assert_eq!(stopped.started_at, Some(at(5)));

    assert!(matches!(
        store
            .update_workspace_state(
                WorkspaceId::random(),
                &StateUpdate::to(WorkspaceState::Running, "x")
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .update_workspace_state(
                WorkspaceId::random(),
                &StateUpdate::to(WorkspaceState::Running, "x").expecting(WorkspaceState::Pending)
            )
            .await,
        Err(StoreError::NotFound)
    ));
}

async fn concurrent_compare_and_set_has_one_winner(db: &TestDb) {
    let w = workspace("alice", "python", 0);
    db.store.insert_workspace(&w).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store: Arc<dyn Store> = Arc::clone(&db.store);
            tokio::spawn(async move {
                store
                    .update_workspace_state(
                        w.id,
                        &StateUpdate::to(WorkspaceState::Starting, format!("claimed by {i}"))
                            .expecting(WorkspaceState::Pending),
                    )
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(w) => winners.push(w.state_reason),
            Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        db.store.get_workspace(w.id).await.unwrap().state_reason,
        winners[0]
    );
}

async fn activity_only_moves_forward(db: &TestDb) {
    let store = &db.store;
    let a = workspace("alice", "python", 0);
    let b = workspace("bob", "python", 0);
    store.insert_workspace(&a).await.unwrap();
    store.insert_workspace(&b).await.unwrap();
    let changed = store
        .touch_workspaces(&[
            (a.id, at(60)),
            (b.id, at(30)),
            (WorkspaceId::random(), at(90)),
        ])
        .await
        .unwrap();
    assert_eq!(changed, 2, "the unknown id is skipped");
    // An older touch (a late batch) does not move it back.
    assert_eq!(store.touch_workspaces(&[(a.id, at(10))]).await.unwrap(), 0);
    assert_eq!(
        store.get_workspace(a.id).await.unwrap().last_activity,
        at(60)
    );
    assert_eq!(
        store.get_workspace(b.id).await.unwrap().last_activity,
        at(30)
    );
    assert_eq!(store.touch_workspaces(&[]).await.unwrap(), 0);
}

fn ping(client: ClientId, owner: &str, seconds: i64, version: &str) -> ClientPing {
    ClientPing {
        client_id: client,
        username: user(owner),
        hostname: "laptop".into(),
        version: version.into(),
        at: at(seconds),
        ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
        local_workspaces: json!([{"template": "python", "state": "running"}]),
    }
}

async fn pings_upsert_latest_wins(db: &TestDb) {
    let store = &db.store;
    let laptop = ClientId::random();
    let desktop = ClientId::random();
    store.record_pings(&[]).await.unwrap();
    // Newest first inside one batch: the newer ping still wins.
    let mut newest = ping(laptop, "alice", 20, "0.2.0");
    newest.ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
    store
        .record_pings(&[
            newest.clone(),
            ping(laptop, "alice", 10, "0.1.0"),
            ping(desktop, "bob", 15, "0.1.0"),
        ])
        .await
        .unwrap();
    // A late batch with an older ping does not regress it.
    store
        .record_pings(&[ping(laptop, "alice", 5, "0.0.1")])
        .await
        .unwrap();

    let clients = store.list_clients(None).await.unwrap();
    assert_eq!(clients.len(), 2);
    let first = &clients[0];
    assert_eq!(first.client_id, laptop, "most recently seen first");
    assert_eq!(first.version, "0.2.0");
    assert_eq!(first.last_seen, at(20));
    assert_eq!(first.first_seen, at(20));
    assert_eq!(first.last_ip, IpAddr::V6(Ipv6Addr::LOCALHOST));
    assert_eq!(first.local_workspaces, newest.local_workspaces);

    store
        .record_pings(&[ping(laptop, "alice", 40, "0.3.0")])
        .await
        .unwrap();
    let alice = store.list_clients(Some(&user("alice"))).await.unwrap();
    assert_eq!(alice.len(), 1);
    assert_eq!((alice[0].first_seen, alice[0].last_seen), (at(20), at(40)));
    assert!(
        store
            .list_clients(Some(&user("carol")))
            .await
            .unwrap()
            .is_empty()
    );

    // Clients are a table too.
    let page = store
        .query_table(&query(json!({"table": "clients", "columns": ["client_id", "local_workspaces", "last_seen"]})), Some(&user("bob")))
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.rows[0]["client_id"], json!(desktop.to_string()));
    assert_eq!(
        page.rows[0]["local_workspaces"][0]["template"],
        json!("python")
    );
    assert_eq!(
        page.rows[0]["last_seen"],
        json!("2024-05-01T12:00:15.000000Z")
    );
}

async fn login_failures_lock_and_reset(db: &TestDb) {
    let store = &db.store;
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
    // One old failure, outside the window.
    store
        .record_login_attempt("alice", ip, false, at(-600))
        .await
        .unwrap();
    for i in 0..5 {
        store
            .record_login_attempt("alice", ip, false, at(i * 10))
            .await
            .unwrap();
    }
    store
        .record_login_attempt("bob", ip, false, at(5))
        .await
        .unwrap();
    // Names that are no user are recorded too: attackers type anything.
    store
        .record_login_attempt("Admin'--", ip, false, at(5))
        .await
        .unwrap();
    let window = at(60) - Duration::minutes(5);
    assert_eq!(store.recent_failures("alice", window).await.unwrap(), 5);
    assert_eq!(store.recent_failures("bob", window).await.unwrap(), 1);
    assert_eq!(store.recent_failures("Admin'--", window).await.unwrap(), 1);
    assert_eq!(store.recent_failures("carol", window).await.unwrap(), 0);

    // A successful login clears the failures before it, not those after.
    store
        .record_login_attempt("alice", ip, true, at(45))
        .await
        .unwrap();
    assert_eq!(store.recent_failures("alice", window).await.unwrap(), 0);
    store
        .record_login_attempt("alice", ip, false, at(50))
        .await
        .unwrap();
    assert_eq!(store.recent_failures("alice", window).await.unwrap(), 1);

    assert_eq!(store.prune_login_attempts(at(0)).await.unwrap(), 1);
    assert_eq!(store.prune_login_attempts(at(0)).await.unwrap(), 0);

    assert!(matches!(
        store
            .record_login_attempt(&"a".repeat(257), ip, false, at(0))
            .await,
        Err(StoreError::InvalidInput(_))
    ));
}

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
        .query_table(&query(json!({"table": "audit"})), Some(&user("alice")))
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

async fn table_queries_filter_sort_and_scope(db: &TestDb) {
    let store = &db.store;
    let mut rows = Vec::new();
    for (i, (owner, template, state, container)) in [
        ("alice", "python", WorkspaceState::Running, Some("c1")),
        ("alice", "rust", WorkspaceState::Stopped, None),
        ("bob", "python", WorkspaceState::Running, Some("c3")),
        ("bob", "go", WorkspaceState::Failed, None),
        ("carol", "python", WorkspaceState::Pending, None),
    ]
    .into_iter()
    .enumerate()
    {
        let mut w = workspace(owner, template, i as i64 * 10);
        w.state = state;
        w.container_id = container.map(str::to_owned);
        w.persistent = i % 2 == 0;
        store.insert_workspace(&w).await.unwrap();
        rows.push(w);
    }

    let page = store
        .query_table(
            &query(json!({
                "table": "workspaces",
                "columns": ["owner", "template"],
                "filters": [
                    {"column": "state", "op": "in", "value": ["running", "pending"]},
                    {"column": "created_at", "op": "gte", "value": "2024-05-01T14:00:10+02:00"}
                ],
                "sort": [{"column": "template"}, {"column": "owner", "desc": true}]
            })),
            None,
        )
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.next_cursor, None);
    assert_eq!(
        page.rows,
        vec![
            json!({"owner": "carol", "template": "python"})
                .as_object()
                .unwrap()
                .clone(),
            json!({"owner": "bob", "template": "python"})
                .as_object()
                .unwrap()
                .clone(),
        ]
    );

    // null finds empty columns; "in" may include null.
    let empty = store
        .query_table(&query(json!({"table": "workspaces", "filters": [{"column": "container_id", "op": "eq", "value": null}]})), None)
        .await
        .unwrap();
    assert_eq!(empty.total, 3);
    let some = store
        .query_table(&query(json!({"table": "workspaces", "filters": [{"column": "container_id", "op": "in", "value": ["c1", null]}]})), None)
        .await
        .unwrap();
    assert_eq!(some.total, 4);
    let persistent = store
        .query_table(&query(json!({"table": "workspaces", "filters": [{"column": "persistent", "op": "eq", "value": true}]})), None)
        .await
        .unwrap();
    assert_eq!(persistent.total, 3);
    assert!(
        persistent
            .rows
            .iter()
            .all(|r| r["persistent"] == json!(true))
    );
    let by_id = store
        .query_table(&query(json!({"table": "workspaces", "filters": [{"column": "id", "op": "eq", "value": rows[3].id.to_string()}]})), None)
        .await
        .unwrap();
    assert_eq!(ids(&by_id.rows), vec![rows[3].id.to_string()]);

    // A user's scope hides everyone else's rows, whatever the filters say.
    let bobs = store
        .query_table(
            &query(json!({"table": "workspaces", "filters": [{"column": "owner", "op": "eq", "value": "alice"}]})),
            Some(&user("bob")),
        )
        .await
        .unwrap();
    assert_eq!((bobs.total, bobs.rows.len()), (0, 0));
    let bobs = store
        .query_table(&query(json!({"table": "workspaces"})), Some(&user("bob")))
        .await
        .unwrap();
    assert_eq!(bobs.total, 2);
    // Default order: newest first.
    assert_eq!(
        ids(&bobs.rows),
        vec![rows[3].id.to_string(), rows[2].id.to_string()]
    );
    // All columns by default, typed.
    let row = &bobs.rows[1];
    assert_eq!(row["state"], json!("running"));
    assert_eq!(row["persistent"], json!(true));
    assert_eq!(row["started_at"], Value::Null);
    assert_eq!(row["created_at"], json!("2024-05-01T12:00:20.000000Z"));
    assert_eq!(row.len(), 12);
}

async fn table_pages_are_stable_while_rows_arrive(db: &TestDb) {
    let store = &db.store;
    let mut existing = Vec::new();
    for i in 0..10 {
        // Five distinct creation times: ties are broken by id.
        let w = workspace("alice", "python", i / 2);
        store.insert_workspace(&w).await.unwrap();
        existing.push(w.id.to_string());
    }
    let mut request = query(
        json!({"table": "workspaces", "columns": ["id", "created_at"], "sort": [{"column": "created_at"}], "limit": 3}),
    );
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.query_table(&request, None).await.unwrap();
        pages += 1;
        seen.extend(ids(&page.rows));
        assert!(
            page.rows.iter().all(|r| r.len() == 2),
            "only the asked columns"
        );
        // Rows arrive between pages: some sort before the cursor, some after.
        let early = workspace("alice", "python", -100 - pages);
        let late = workspace("alice", "python", 100 + pages);
        store.insert_workspace(&early).await.unwrap();
        store.insert_workspace(&late).await.unwrap();
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no row twice");
    for id in &existing {
        assert!(seen.contains(id), "every row present throughout is seen");
    }
    assert!(pages >= 4);
}

async fn hostile_input_is_refused(db: &TestDb) {
    let store = &db.store;
    for bad in [
        json!({"table": "login_attempts"}),
        json!({"table": "workspaces", "columns": ["id", "owner FROM workspaces; --"]}),
        json!({"table": "workspaces", "filters": [{"column": "created_at", "op": "gt", "value": "not a time"}]}),
        json!({"table": "workspaces", "cursor": "bm90IGEgY3Vyc29y"}),
        json!({"table": "workspaces", "limit": 100000}),
    ] {
        match store.query_table(&query(bad.clone()), None).await {
            Err(StoreError::InvalidQuery(_)) => {}
            other => panic!("{bad}: expected InvalidQuery, got {other:?}"),
        }
    }
    // Text values are data, never SQL.
    let w = workspace("alice", "x' OR '1'='1", 0);
    store.insert_workspace(&w).await.unwrap();
    let page = store
        .query_table(&query(json!({"table": "workspaces", "filters": [{"column": "template", "op": "eq", "value": "x' OR '1'='1"}]})), None)
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    let none = store
        .query_table(&query(json!({"table": "workspaces", "filters": [{"column": "owner", "op": "eq", "value": "' OR 1=1 --"}]})), None)
        .await
        .unwrap();
    assert_eq!(none.total, 0);

    let mut ancient = workspace("alice", "python", 0);
    ancient.created_at = datetime!(-0001-01-01 0:00 UTC);
    assert!(matches!(
        store.insert_workspace(&ancient).await,
        Err(StoreError::InvalidInput(_))
    ));
}
