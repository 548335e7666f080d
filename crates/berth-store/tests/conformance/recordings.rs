//! [`berth_store::RecordingStore`]: the index of terminal recordings, per workspace, outliving
//! it; the `recordings` table.

use berth_store::{Recording, RecordingId, StoreError, normalize_time};
use berth_types::WorkspaceId;
use time::macros::datetime;

use crate::support::TestDb;
use crate::{at, running_workspace, user};

stories!(
    recordings_are_indexed_per_workspace_and_outlive_it,
    hostile_recording_paths_are_refused,
    recordings_are_a_table_scoped_to_their_owner,
);

fn recording(workspace: WorkspaceId, username: &str, seconds: i64) -> Recording {
    let id = RecordingId::random();
    Recording {
        id,
        path: format!("{workspace}/{id}.cast"),
        workspace,
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

    let listed = store.list_recordings(ws).await.unwrap();
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
    assert_eq!(store.list_recordings(ws).await.unwrap().len(), 2);
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
    assert!(store.list_recordings(ws).await.unwrap().is_empty());
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
    assert_eq!(first["workspace_id"], ws.to_string());
    assert!(first["ended_at"].is_string());
    assert!(all.rows[0]["ended_at"].is_null());
    assert!(
        !first.contains_key("path"),
        "where the file is stays on the server"
    );

    // A user sees the recordings of their workspaces, whoever attached: not another's.
    let alices = store
        .query_table(&query, Some(&user("alice")))
        .await
        .unwrap();
    assert_eq!(alices.total, 2);
    assert!(alices.rows.iter().all(|r| r["owner"] == "alice"));
    let bobs = store.query_table(&query, Some(&user("bob"))).await.unwrap();
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
