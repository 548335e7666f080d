//! `Store::snapshot_to` and `SqliteStore::open_read_only`: a consistent copy of a database that
//! another connection goes on writing, private from its first byte, and refused where it
//! cannot be made (an existing target, PostgreSQL); a read-only store that changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use berth_store::{
    SqliteStore, Store, StoreError, Workspace, WorkspaceFilter, WorkspaceState, WorkspaceStore,
};
use berth_types::{Username, WorkspaceId};
use time::macros::datetime;

fn workspace() -> Workspace {
    Workspace {
        id: WorkspaceId::random(),
        owner: Username::new("alice").unwrap(),
        template: "python".into(),
        state: WorkspaceState::Running,
        container_id: None,
        persistent: false,
        network: "none".into(),
        created_at: datetime!(2024-05-01 12:00 UTC),
        started_at: None,
        last_activity: datetime!(2024-05-01 12:00 UTC),
        expires_at: None,
        state_reason: String::new(),
    }
}

/// The newest migration the crate ships, from the file names of `migrations/sqlite`.
fn newest_migration() -> i64 {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            name.split('_').next()?.parse().ok()
        })
        .max()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_a_database_being_written_is_whole_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.db");
    let writer = Arc::new(SqliteStore::open_path(&path).await.unwrap());
    for _ in 0..20 {
        writer.insert_workspace(&workspace()).await.unwrap();
    }
    // Another connection writes all along, as a running server does while `berth backup`
    // reads.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(20));
    let load = tokio::spawn({
        let (writer, stop, written) = (writer.clone(), stop.clone(), written.clone());
        async move {
            while !stop.load(Ordering::SeqCst) {
                writer.insert_workspace(&workspace()).await.unwrap();
                written.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    while written.load(Ordering::SeqCst) < 40 {
        tokio::task::yield_now().await;
    }

    let reader = SqliteStore::open_read_only(&path).await.unwrap();
    let before = written.load(Ordering::SeqCst);
    let target = dir.path().join("copy.db");
    let snapshot = reader.snapshot_to(&target).await.unwrap();
    let after = written.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();

    let meta = std::fs::metadata(&target).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(snapshot.bytes, meta.len());
    assert_eq!(snapshot.schema_version, newest_migration());
    // The copy opens as a Berth database and holds every row committed before it began (some
    // of them only in the -wal still), and none that was never committed.
    let copy = berth_store::open(target.to_str().unwrap()).await.unwrap();
    let rows = copy
        .list_workspaces(&WorkspaceFilter::default())
        .await
        .unwrap()
        .len();
    assert!(
        (before..=after + 1).contains(&rows),
        "{rows} rows in the copy; {before} committed before it, {after} after"
    );
    copy.close().await;
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}",
        target.display()
    ))
    .await
    .unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(check, "ok");
}

#[tokio::test]
async fn a_snapshot_never_replaces_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_path(&dir.path().join("berth.db"))
        .await
        .unwrap();
    let target = dir.path().join("taken");
    std::fs::write(&target, "keep me").unwrap();
    match store.snapshot_to(&target).await {
        Err(StoreError::Io { path, source }) => {
            assert_eq!(path, target);
            assert_eq!(source.kind(), std::io::ErrorKind::AlreadyExists);
        }
        other => panic!("expected an Io error, got {other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    // A target in a directory that does not exist: an error, and no file.
    let nowhere = dir.path().join("no/such/dir/copy.db");
    assert!(matches!(
        store.snapshot_to(&nowhere).await,
        Err(StoreError::Io { .. })
    ));
}

#[tokio::test]
async fn a_read_only_store_changes_nothing_and_refuses_what_is_not_berths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.db");
    let missing = SqliteStore::open_read_only(&path).await.unwrap_err();
    assert!(
        matches!(missing, StoreError::InvalidLocation { ref reason, .. } if reason == "no such file"),
        "{missing}"
    );
    assert!(!path.exists(), "a read-only open creates no file");

    let other = dir.path().join("other.db");
    {
        let url = format!("sqlite://{}?mode=rwc", other.display());
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE notes (text TEXT)")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let refused = SqliteStore::open_read_only(&other).await.unwrap_err();
    assert!(
        refused.to_string().contains("not a Berth database"),
        "{refused}"
    );
    std::fs::write(dir.path().join("text.db"), "not SQLite at all, just text").unwrap();
    let refused = SqliteStore::open_read_only(&dir.path().join("text.db"))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("cannot read it"), "{refused}");

    let store = SqliteStore::open_path(&path).await.unwrap();
    let w = workspace();
    store.insert_workspace(&w).await.unwrap();
    let reader = SqliteStore::open_read_only(&path).await.unwrap();
    assert_eq!(reader.get_workspace(w.id).await.unwrap(), w);
    assert!(reader.insert_workspace(&workspace()).await.is_err());
    assert_eq!(
        store
            .list_workspaces(&WorkspaceFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn postgres_has_no_snapshot() {
    let db = support::TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("copy.db");
    match db.store.snapshot_to(&target).await {
        Err(StoreError::Unsupported(why)) => assert!(why.contains("pg_dump"), "{why}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert!(!target.exists());
}
