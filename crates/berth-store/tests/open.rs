//! `berth_store::open`: picking the backend from the location, creating SQLite files, applying
//! migrations once, and refusing locations it cannot use with a clear error.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use berth_store::{StoreError, Workspace, WorkspaceState};
use berth_types::{Username, WorkspaceId};
use sqlx::Connection as _;
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

fn refused(result: Result<std::sync::Arc<dyn berth_store::Store>, StoreError>) -> String {
    match result {
        Err(e @ StoreError::InvalidLocation { .. }) => e.to_string(),
        Err(other) => panic!("expected InvalidLocation, got {other:?}"),
        Ok(store) => panic!("expected InvalidLocation, opened {store:?}"),
    }
}

#[tokio::test]
async fn a_path_creates_a_wal_database_that_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.db");
    let w = workspace();
    {
        let store = berth_store::open(path.to_str().unwrap()).await.unwrap();
        assert_eq!(store.backend(), "sqlite");
        store.insert_workspace(&w).await.unwrap();
        store.close().await;
    }
    assert!(path.is_file());
    // Reopening (through the URL form) applies no migration twice and keeps the data.
    let url = format!("sqlite://{}", path.display());
    let store = berth_store::open(&url).await.unwrap();
    assert_eq!(store.get_workspace(w.id).await.unwrap(), w);
    store.close().await;

    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let migrations: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    // Every migration of the folder, each once.
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert_eq!(migrations, files as i64);
}

#[tokio::test]
async fn an_in_memory_database_lives_as_long_as_the_store() {
    let store = berth_store::open("sqlite::memory:").await.unwrap();
    let w = workspace();
    store.insert_workspace(&w).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(store.get_workspace(w.id).await.unwrap(), w);
}

#[tokio::test]
async fn unusable_locations_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    assert!(refused(berth_store::open("").await).contains("empty location"));
    assert!(
        refused(berth_store::open("mysql://root:hunter2@db/berth").await)
            .contains("unsupported scheme \"mysql\"")
    );
    assert!(!refused(berth_store::open("mysql://root:hunter2@db/berth").await).contains("hunter2"));
    let missing = dir.path().join("no/such/dir/berth.db");
    assert!(refused(berth_store::open(missing.to_str().unwrap()).await).contains("does not exist"));
    assert!(refused(berth_store::open(dir.path().to_str().unwrap()).await).contains("directory"));
    assert!(
        !refused(berth_store::open("postgres://berth:hunter2@[not-a-host/berth").await)
            .contains("hunter2")
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.db");
    std::fs::write(
        &path,
        b"this is not an SQLite database, but it is long enough to be read",
    )
    .unwrap();
    let error = berth_store::open(path.to_str().unwrap()).await.unwrap_err();
    assert!(matches!(error, StoreError::Database(_)), "{error:?}");
}

#[tokio::test]
async fn postgresql_scheme_and_concurrent_migrations() {
    let db = support::TestDb::postgres().await;
    let alias = db.location.replacen("postgres://", "postgresql://", 1);
    // Several servers starting at once: migrations run once, under PostgreSQL's advisory lock.
    let (a, b) = tokio::join!(berth_store::open(&alias), berth_store::open(&db.location));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.backend(), b.backend()), ("postgres", "postgres"));
    let w = workspace();
    a.insert_workspace(&w).await.unwrap();
    assert_eq!(b.get_workspace(w.id).await.unwrap(), w);
    a.close().await;
    b.close().await;

    // No TLS stack is built in: asking for TLS is an error, not a silent plain connection.
    let error = berth_store::open(&format!("{}?sslmode=require", db.location))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Database(_)), "{error:?}");
}

#[tokio::test]
async fn an_unreachable_postgres_is_a_database_error_without_the_password() {
    // Port 1 on loopback: nothing listens there.
    let error = berth_store::open("postgres://berth:hunter2@127.0.0.1:1/berth")
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Database(_)), "{error:?}");
    assert!(
        !format!("{error} {error:?}").contains("hunter2"),
        "{error:?}"
    );
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The database holds private state (audit log, sessions, clients, logins):
/// its file, `-wal` and `-shm` are 0600 whatever the umask, and an old database readable by
/// others is restricted when it is opened.
#[tokio::test]
async fn the_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.db");
    let store = berth_store::open(path.to_str().unwrap()).await.unwrap();
    store.insert_workspace(&workspace()).await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("berth.db{suffix}"));
        assert!(file.exists(), "{} while the store is open", file.display());
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    store.close().await;

    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("berth.db{suffix}"));
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let url = format!("sqlite://{}", path.display());
    let store = berth_store::open(&url).await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("berth.db{suffix}"));
        if file.exists() {
            assert_eq!(mode(&file), 0o600, "{} after reopening", file.display());
        }
    }
    store.close().await;
}
