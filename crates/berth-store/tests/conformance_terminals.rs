//! The conformance suite, continued (`conformance.rs` has the first part): workspace members,
//! recordings and web sessions, each story once on a fresh SQLite file and once on a fresh PostgreSQL
//! database. The PostgreSQL half needs `BERTH_TEST_POSTGRES_URL` (see `scripts/postgres.sh`)
//! and fails without it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use berth_store::{
    Member, MemberRole, Recording, RecordingId, StoreError, WebSession, Workspace, WorkspaceState,
    normalize_time,
};
use berth_types::{UserId, Username, WorkspaceId};
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
    members_are_added_changed_listed_and_removed,
    members_go_with_their_workspace,
    recordings_are_indexed_per_workspace_and_outlive_it,
    hostile_recording_paths_are_refused,
    web_sessions_are_saved_touched_listed_and_deleted,
    recordings_are_a_table_scoped_to_their_owner,
);

const T0: OffsetDateTime = datetime!(2024-05-01 12:00 UTC);

fn at(seconds: i64) -> OffsetDateTime {
    T0 + Duration::seconds(seconds)
}

fn user(name: &str) -> Username {
    Username::new(name).unwrap()
}

async fn workspace(db: &TestDb, owner: &str) -> WorkspaceId {
    let w = Workspace {
        id: WorkspaceId::random(),
        owner: user(owner),
        template: "shared".into(),
        state: WorkspaceState::Running,
        container_id: None,
        persistent: false,
        network: "none".into(),
        created_at: T0,
        started_at: Some(T0),
        last_activity: T0,
        expires_at: None,
        state_reason: "running".into(),
    };
    db.store.insert_workspace(&w).await.unwrap();
    w.id
}

fn member(workspace: WorkspaceId, name: &str, role: MemberRole, seconds: i64) -> Member {
    Member {
        workspace,
        username: user(name),
        role,
        added_by: user("alice"),
        added_at: at(seconds),
    }
}

async fn members_are_added_changed_listed_and_removed(db: &TestDb) {
    let store = &db.store;
    let ws = workspace(db, "alice").await;
    let other = workspace(db, "alice").await;
    store
        .put_member(&member(ws, "carol", MemberRole::Viewer, 1))
        .await
        .unwrap();
    store
        .put_member(&member(ws, "bob", MemberRole::Peer, 2))
        .await
        .unwrap();
    store
        .put_member(&member(other, "bob", MemberRole::Viewer, 3))
        .await
        .unwrap();

    let listed = store.list_members(ws).await.unwrap();
    assert_eq!(
        listed,
        vec![
            member(ws, "bob", MemberRole::Peer, 2),
            member(ws, "carol", MemberRole::Viewer, 1),
        ],
        "by username, each workspace its own"
    );
    assert_eq!(
        store.member_role(ws, &user("bob")).await.unwrap(),
        Some(MemberRole::Peer)
    );
    assert_eq!(
        store.member_role(other, &user("bob")).await.unwrap(),
        Some(MemberRole::Viewer)
    );
    assert_eq!(store.member_role(ws, &user("dave")).await.unwrap(), None);

    // Adding again changes the role, who added them and when; it never duplicates.
    let mut changed = member(ws, "carol", MemberRole::Peer, 10);
    changed.added_by = user("admin");
    changed.added_at = datetime!(2024-05-01 14:00:10.123456789 +02:00);
    store.put_member(&changed).await.unwrap();
    let listed = store.list_members(ws).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[1],
        Member {
            added_at: normalize_time(changed.added_at),
            ..changed
        }
    );

    store.remove_member(ws, &user("bob")).await.unwrap();
    assert_eq!(store.member_role(ws, &user("bob")).await.unwrap(), None);
    assert!(matches!(
        store.remove_member(ws, &user("bob")).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.member_role(other, &user("bob")).await.unwrap(),
        Some(MemberRole::Viewer),
        "removal is per workspace"
    );
    assert!(
        store
            .list_members(WorkspaceId::random())
            .await
            .unwrap()
            .is_empty()
    );

    // An account renamed keeps its memberships under the new name.
    assert_eq!(
        store
            .rename_member(&user("bob"), &user("robert"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.member_role(other, &user("robert")).await.unwrap(),
        Some(MemberRole::Viewer)
    );
    assert_eq!(
        store
            .rename_member(&user("robert"), &user("bob"))
            .await
            .unwrap(),
        1
    );

    // An account deleted: out of every workspace at once, nobody else touched.
    store
        .put_member(&member(ws, "bob", MemberRole::Peer, 20))
        .await
        .unwrap();
    assert_eq!(store.remove_memberships(&user("bob")).await.unwrap(), 2);
    assert_eq!(store.member_role(ws, &user("bob")).await.unwrap(), None);
    assert_eq!(store.member_role(other, &user("bob")).await.unwrap(), None);
    assert_eq!(
        store.member_role(ws, &user("carol")).await.unwrap(),
        Some(MemberRole::Peer)
    );
    assert_eq!(store.remove_memberships(&user("bob")).await.unwrap(), 0);
}

async fn members_go_with_their_workspace(db: &TestDb) {
    let store = &db.store;
    assert!(
        matches!(
            store
                .put_member(&member(WorkspaceId::random(), "bob", MemberRole::Peer, 0))
                .await,
            Err(StoreError::NotFound)
        ),
        "no members of a workspace that does not exist"
    );
    let ws = workspace(db, "alice").await;
    store
        .put_member(&member(ws, "bob", MemberRole::Peer, 0))
        .await
        .unwrap();
    store.delete_workspace(ws).await.unwrap();
    assert!(store.list_members(ws).await.unwrap().is_empty());
    assert_eq!(store.member_role(ws, &user("bob")).await.unwrap(), None);
    // The database itself refuses roles other than peer and viewer (the owner is no member).
    let ws = workspace(db, "alice").await;
    let raw = db
        .execute_raw(&format!(
            "INSERT INTO workspace_members (workspace_id, username, role, added_by, added_at) \
             VALUES ('{ws}', 'eve', 'owner', 'eve', '2024-05-01T12:00:00.000000Z')"
        ))
        .await;
    assert!(raw.is_err(), "role 'owner' must be refused: {raw:?}");
}

fn recording(workspace: WorkspaceId, username: &str, seconds: i64) -> Recording {
    let id = RecordingId::random();
    Recording {
        id,
        workspace,
        owner: user("alice"),
        username: user(username),
        started_at: at(seconds),
        ended_at: None,
        path: format!("{workspace}/{id}.cast"),
        bytes: 0,
        width: 80,
        height: 24,
    }
}

async fn recordings_are_indexed_per_workspace_and_outlive_it(db: &TestDb) {
    let store = &db.store;
    let ws = workspace(db, "alice").await;
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

fn web_session(hash_digit: char, name: &str, user_id: Option<UserId>, seconds: i64) -> WebSession {
    WebSession {
        id_hash: hash_digit.to_string().repeat(64),
        username: user(name),
        user_id,
        password_fingerprint: format!("fp-{name}"),
        csrf: format!("csrf-{name}-é"),
        created_at: at(seconds),
        last_seen: at(seconds),
    }
}

async fn web_sessions_are_saved_touched_listed_and_deleted(db: &TestDb) {
    let store = &db.store;
    assert!(store.list_sessions().await.unwrap().is_empty());
    let bob_id = UserId::random();
    let admin = web_session('a', "admin", None, 5);
    let bob = web_session('b', "bob", Some(bob_id), 1);
    store
        .save_sessions(&[admin.clone(), bob.clone()])
        .await
        .unwrap();
    store.save_sessions(&[]).await.unwrap();
    assert_eq!(
        store.list_sessions().await.unwrap(),
        [bob.clone(), admin.clone()],
        "oldest first"
    );

    // Saving again moves the last use only: what the login fixed stays.
    let touched = WebSession {
        last_seen: at(90),
        csrf: "changed".into(),
        password_fingerprint: "changed".into(),
        created_at: at(80),
        ..bob.clone()
    };
    store.save_sessions(&[touched]).await.unwrap();
    let listed = store.list_sessions().await.unwrap();
    assert_eq!(
        listed[0],
        WebSession {
            last_seen: at(90),
            ..bob.clone()
        }
    );
    assert_eq!(listed[0].user_id, Some(bob_id));
    assert_eq!(listed[1].user_id, None);

    // Unknown hashes are ignored; known ones go.
    store
        .delete_sessions(&[bob.id_hash.clone(), "c".repeat(64)])
        .await
        .unwrap();
    store.delete_sessions(&[]).await.unwrap();
    assert_eq!(
        store.list_sessions().await.unwrap(),
        std::slice::from_ref(&admin)
    );

    // A row that no longer reads is skipped, not the end of every session.
    db.execute_raw(&format!(
        "INSERT INTO web_sessions (id_hash, username, user_id, password_fingerprint, csrf, \
         created_at, last_seen) SELECT '{}', 'Not A Name', user_id, password_fingerprint, csrf, \
         created_at, last_seen FROM web_sessions WHERE id_hash = '{}'",
        "d".repeat(64),
        admin.id_hash
    ))
    .await
    .unwrap();
    assert_eq!(
        store.list_sessions().await.unwrap(),
        std::slice::from_ref(&admin)
    );
    store.delete_sessions(&["d".repeat(64)]).await.unwrap();

    // Something that is not a hash is refused and nothing of the batch is written.
    let bad = WebSession {
        id_hash: "not-a-hash".into(),
        ..web_session('d', "dave", None, 9)
    };
    let upper = WebSession {
        id_hash: "A".repeat(64),
        ..web_session('e', "eve", None, 9)
    };
    for hostile in [bad, upper] {
        let fresh = web_session('f', "fred", None, 9);
        let err = store.save_sessions(&[fresh, hostile]).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
        assert_eq!(
            store.list_sessions().await.unwrap(),
            std::slice::from_ref(&admin)
        );
    }
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
