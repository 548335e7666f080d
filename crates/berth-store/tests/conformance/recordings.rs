//! [`berth_store::RecordingStore`]: the index of terminal recordings, per target (a workspace or
//! a machine), outliving its workspace; the `recordings` table; the migration that gave
//! recordings their target kind.

use berth_store::{Recording, RecordingId, StoreError, normalize_time};
use berth_types::{MachineId, TerminalTarget, WorkspaceId};
use time::macros::datetime;

use crate::support::{Backend, Database, TestDb};
use crate::{at, running_workspace, scope, user};

stories!(
    recordings_are_indexed_per_workspace_and_outlive_it,
    hostile_recording_paths_are_refused,
    recordings_are_a_table_scoped_to_their_owner,
    machine_recordings_are_kept_apart_from_workspace_ones,
);

fn recording(target: impl Into<TerminalTarget>, username: &str, seconds: i64) -> Recording {
    let id = RecordingId::random();
    let target = target.into();
    Recording {
        id,
        path: format!("{}/{id}.cast", target.id_string()),
        target,
        owner: user("alice"),
        username: user(username),
        started_at: at(seconds),
        ended_at: None,
        bytes: 0,
        width: 80,
        height: 24,
    }
}

async fn recordings_are_indexed_per_workspace_and_outlive_it(db: &TestDb) {
    let store = &db.store;
    let ws = running_workspace(db, "alice").await;
    let first = recording(ws, "alice", 0);
    let mut second = recording(ws, "bob", 60);
    second.started_at = datetime!(2024-05-01 14:01:00.5555555 +02:00);
    second.width = 1000;
    second.height = 1000;
    let elsewhere = recording(WorkspaceId::random(), "alice", 30);
    for r in [&first, &second, &elsewhere] {
        store.insert_recording(r).await.unwrap();
    }
    assert!(matches!(
        store.insert_recording(&first).await,
        Err(StoreError::Conflict(_))
    ));
    let mut same_path = recording(ws, "bob", 5);
    same_path.path.clone_from(&first.path);
    assert!(matches!(
        store.insert_recording(&same_path).await,
        Err(StoreError::Conflict(_))
    ));

    let listed = store
        .list_recordings(&TerminalTarget::Workspace(ws))
        .await
        .unwrap();
    let expected_second = Recording {
        started_at: normalize_time(second.started_at),
        ..second.clone()
    };
    assert_eq!(
        listed,
        vec![expected_second.clone(), first.clone()],
        "newest first"
    );

    let ended = datetime!(2024-05-01 12:05:00.123456789 UTC);
    let big = u64::try_from(i64::MAX).unwrap();
    store.finish_recording(first.id, ended, big).await.unwrap();
    let got = store.get_recording(first.id).await.unwrap();
    assert_eq!(got.ended_at, Some(normalize_time(ended)));
    assert_eq!(got.bytes, big);
    assert!(matches!(
        store.finish_recording(first.id, ended, u64::MAX).await,
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        store
            .finish_recording(RecordingId::random(), ended, 1)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.get_recording(RecordingId::random()).await,
        Err(StoreError::NotFound)
    ));

    // Evidence stays when the workspace goes.
    store.delete_workspace(ws).await.unwrap();
    assert_eq!(
        store
            .list_recordings(&TerminalTarget::Workspace(ws))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store.get_recording(second.id).await.unwrap(),
        expected_second
    );

    // Retention sees every recording, oldest first, and deletes them one by one.
    let all: Vec<RecordingId> = store
        .list_all_recordings()
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(all, [first.id, elsewhere.id, second.id]);
    // A renamed user keeps theirs, as owner and as who attached.
    assert_eq!(
        store
            .rename_recordings(&user("bob"), &user("robert"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .get_recording(second.id)
            .await
            .unwrap()
            .username
            .as_str(),
        "robert"
    );
    // Three rows as owner, two of them as who attached.
    assert_eq!(
        store
            .rename_recordings(&user("alice"), &user("ali"))
            .await
            .unwrap(),
        5
    );
    let renamed = store.get_recording(first.id).await.unwrap();
    assert_eq!(
        (renamed.owner.as_str(), renamed.username.as_str()),
        ("ali", "ali")
    );
    assert_eq!(
        store
            .rename_recordings(&user("nobody"), &user("x"))
            .await
            .unwrap(),
        0
    );
    store.delete_recording(elsewhere.id).await.unwrap();
    assert!(matches!(
        store.delete_recording(elsewhere.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.list_all_recordings().await.unwrap().len(), 2);
    assert!(matches!(
        store.get_recording(elsewhere.id).await,
        Err(StoreError::NotFound)
    ));
}

async fn hostile_recording_paths_are_refused(db: &TestDb) {
    let store = &db.store;
    let ws = WorkspaceId::random();
    for bad in ["/etc/shadow", "../../etc/shadow", "a/../../b", "", "a\0b"] {
        let mut r = recording(ws, "alice", 0);
        r.path = bad.to_owned();
        assert!(
            matches!(
                store.insert_recording(&r).await,
                Err(StoreError::InvalidInput(_))
            ),
            "{bad:?}"
        );
    }
    let mut huge = recording(ws, "alice", 0);
    huge.bytes = u64::MAX;
    assert!(matches!(
        store.insert_recording(&huge).await,
        Err(StoreError::InvalidInput(_))
    ));
    assert!(
        store
            .list_recordings(&TerminalTarget::Workspace(ws))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn recordings_are_a_table_scoped_to_their_owner(db: &TestDb) {
    let store = &db.store;
    let ws = WorkspaceId::random();
    let mut made = Vec::new();
    for (i, (owner, who)) in [("alice", "alice"), ("alice", "bob"), ("carol", "carol")]
        .into_iter()
        .enumerate()
    {
        let mut r = recording(ws, who, i as i64 * 10);
        r.owner = user(owner);
        store.insert_recording(&r).await.unwrap();
        made.push(r);
    }
    store
        .finish_recording(made[0].id, at(5), 4096)
        .await
        .unwrap();
    let query: berth_store::TableQuery =
        serde_json::from_value(serde_json::json!({"table": "recordings"})).unwrap();
    let all = store.query_table(&query, None).await.unwrap();
    assert_eq!(all.total, 3);
    let ids: Vec<&str> = all.rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let expected: Vec<String> = made.iter().rev().map(|r| r.id.to_string()).collect();
    assert_eq!(ids, expected, "newest first by default");
    let first = &all.rows[2];
    assert_eq!(first["owner"], "alice");
    assert_eq!(first["bytes"], 4096);
    assert_eq!(first["target_kind"], "workspace");
    assert_eq!(first["target_id"], ws.to_string());
    // The name table queries used before recordings had targets, kept (a generated column).
    assert_eq!(first["workspace_id"], ws.to_string());
    assert!(first["ended_at"].is_string());
    assert!(all.rows[0]["ended_at"].is_null());
    assert!(
        !first.contains_key("path"),
        "where the file is stays on the server"
    );

    // A user sees the recordings of their workspaces, whoever attached: not another's.
    let alices = store
        .query_table(&query, Some(&scope("alice")))
        .await
        .unwrap();
    assert_eq!(alices.total, 2);
    assert!(alices.rows.iter().all(|r| r["owner"] == "alice"));
    let bobs = store
        .query_table(&query, Some(&scope("bob")))
        .await
        .unwrap();
    assert_eq!(
        bobs.total, 0,
        "bob attached to alice's workspace; the recording is hers"
    );

    // Filters and sorting as for any table; the path is not a column.
    let filtered: berth_store::TableQuery = serde_json::from_value(serde_json::json!({
        "table": "recordings",
        "filters": [{"column": "username", "op": "eq", "value": "bob"}],
        "sort": [{"column": "bytes", "desc": false}],
    }))
    .unwrap();
    let found = store.query_table(&filtered, None).await.unwrap();
    assert_eq!(found.total, 1);
    assert_eq!(found.rows[0]["id"], made[1].id.to_string());
    let path: berth_store::TableQuery =
        serde_json::from_value(serde_json::json!({"table": "recordings", "columns": ["path"]}))
            .unwrap();
    assert!(matches!(
        store.query_table(&path, None).await,
        Err(StoreError::InvalidQuery(_))
    ));
}

async fn machine_recordings_are_kept_apart_from_workspace_ones(db: &TestDb) {
    let store = &db.store;
    let web = TerminalTarget::Machine(MachineId::new("web-1").unwrap());
    let db_host = TerminalTarget::Machine(MachineId::new("db-1").unwrap());
    let ws = running_workspace(db, "alice").await;
    let on_web = recording(web.clone(), "alice", 0);
    let on_web_later = recording(web.clone(), "bob", 10);
    let on_db = recording(db_host.clone(), "alice", 5);
    let on_ws = recording(ws, "alice", 20);
    for r in [&on_web, &on_web_later, &on_db, &on_ws] {
        store.insert_recording(r).await.unwrap();
    }

    assert_eq!(store.get_recording(on_web.id).await.unwrap(), on_web);
    assert_eq!(
        store.list_recordings(&web).await.unwrap(),
        [on_web_later.clone(), on_web.clone()],
        "a machine's recordings, newest first"
    );
    assert_eq!(store.list_recordings(&db_host).await.unwrap(), [on_db]);
    assert_eq!(
        store
            .list_recordings(&TerminalTarget::Workspace(ws))
            .await
            .unwrap(),
        std::slice::from_ref(&on_ws)
    );
    let unknown = TerminalTarget::Machine(MachineId::new("nowhere").unwrap());
    assert!(store.list_recordings(&unknown).await.unwrap().is_empty());

    // The same id text under another kind is another target.
    let lookalike = TerminalTarget::Machine(MachineId::new(ws.to_string()).unwrap());
    assert!(store.list_recordings(&lookalike).await.unwrap().is_empty());

    // The table shows the kind and filters on it.
    let machines = store
        .query_table(
            &crate::query(serde_json::json!({
                "table": "recordings",
                "columns": ["id", "target_kind", "target_id"],
                "filters": [{"column": "target_kind", "op": "eq", "value": "machine"}],
                "sort": [{"column": "started_at"}],
            })),
            None,
        )
        .await
        .unwrap();
    assert_eq!(machines.total, 3);
    assert_eq!(
        machines.rows[0],
        serde_json::json!({"id": on_web.id.to_string(), "target_kind": "machine", "target_id": "web-1"})
            .as_object()
            .unwrap()
            .clone()
    );
    let refused = store
        .query_table(
            &crate::query(serde_json::json!({
                "table": "recordings",
                "filters": [{"column": "target_kind", "op": "eq", "value": "cluster"}],
            })),
            None,
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::InvalidQuery(_))),
        "{refused:?}"
    );

    // The database itself refuses kinds it does not know.
    let raw = db
        .execute_raw(&format!(
            "INSERT INTO recordings (id, target_kind, target_id, owner, username, started_at, \
             path, bytes, width, height) VALUES ('{}', 'cluster', 'x', 'alice', 'alice', \
             '2024-05-01T12:00:00.000000Z', 'x/y.cast', 0, 80, 24)",
            RecordingId::random()
        ))
        .await;
    assert!(raw.is_err(), "kind 'cluster' must be refused: {raw:?}");
}

/// The last migration before recordings had a target kind.
const BEFORE_TARGETS: i64 = 20250101000003;

/// A recording written by a Berth from before target kinds (`workspace_id`, no kind) reads back
/// as a workspace recording once the store has migrated the database.
async fn old_recordings_become_workspace_recordings(backend: Backend) {
    let database = Database::create(backend).await;
    database.migrate_to(BEFORE_TARGETS).await;
    let (workspace, id) = (WorkspaceId::random(), RecordingId::random());
    database
        .execute_raw(&format!(
            "INSERT INTO recordings (id, workspace_id, owner, username, started_at, ended_at, \
             path, bytes, width, height) VALUES ('{id}', '{workspace}', 'alice', 'bob', \
             '2024-05-01T12:00:00.000000Z', '2024-05-01T12:05:00.000000Z', \
             '{workspace}/{id}.cast', 4096, 80, 24)"
        ))
        .await
        .unwrap();

    let db = database.open().await;
    let expected = Recording {
        id,
        target: TerminalTarget::Workspace(workspace),
        owner: user("alice"),
        username: user("bob"),
        started_at: at(0),
        ended_at: Some(at(300)),
        path: format!("{workspace}/{id}.cast"),
        bytes: 4096,
        width: 80,
        height: 24,
    };
    assert_eq!(db.store.get_recording(id).await.unwrap(), expected);
    assert_eq!(
        db.store
            .list_recordings(&TerminalTarget::Workspace(workspace))
            .await
            .unwrap(),
        std::slice::from_ref(&expected)
    );
    assert_eq!(db.store.list_all_recordings().await.unwrap(), [expected]);
    // New rows of either kind go in next to it.
    let machine = recording(MachineId::new("web-1").unwrap(), "alice", 10);
    db.store.insert_recording(&machine).await.unwrap();
    assert_eq!(db.store.list_all_recordings().await.unwrap().len(), 2);
}

mod migration {
    use crate::support::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_old_recordings_become_workspace_recordings() {
        super::old_recordings_become_workspace_recordings(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_old_recordings_become_workspace_recordings() {
        super::old_recordings_become_workspace_recordings(Backend::Postgres).await;
    }
}
