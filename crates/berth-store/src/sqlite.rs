//! The SQLite backend: one file next to the config, the default for a single server.
//!
//! Connections use WAL (readers never block the writer), a 5 s busy timeout (writers queue
//! instead of failing), foreign keys on, and `synchronous=FULL` for every connection: each
//! commit is fsynced, so an audit entry or a login failure that was acknowledged survives a
//! power cut. Berth writes a few transactions per second at most (pings and activity are
//! batched), so the cost is small; `docs/store.md` has the measurement.
//!
//! UUIDs are stored as lowercase hyphenated text and timestamps as fixed-width UTC text (see
//! [`crate::timestamp`]; the encoding is in `crate::db`), so text order matches the order PostgreSQL gives the native types.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::StoreError;
use crate::db::SqlStore;
use crate::error::redact_location;

/// Opens SQLite databases: the constructors of the SQLite flavour of [`SqlStore`].
#[derive(Debug)]
pub struct SqliteStore {
    _constructors_only: (),
}

impl SqliteStore {
    /// Opens (creating it if missing) the database at `location`: a path, or an `sqlite:` URL
    /// (`sqlite:///var/lib/berth/berth.db`, `sqlite::memory:`). Applies pending migrations.
    pub async fn open(location: &str) -> Result<SqlStore, StoreError> {
        if !location.starts_with("sqlite:") {
            if location.trim().is_empty() {
                return Err(refuse(location, "empty location"));
            }
            return Self::open_path(Path::new(location)).await;
        }
        let options = SqliteConnectOptions::from_str(location)
            .map_err(|e| refuse(location, &e.to_string()))?;
        let in_memory = location.contains(":memory:") || location.contains("mode=memory");
        if !in_memory {
            check_file(options.get_filename(), location)?;
            make_private(options.get_filename(), location)?;
        }
        Self::connect(options, in_memory).await
    }

    /// Opens (creating it if missing) the database file at `path`; its directory must exist.
    /// The file, its `-wal` and its `-shm` are private to the user running Berth (mode 0600,
    /// whatever the umask; a database readable by others is restricted).
    pub async fn open_path(path: &Path) -> Result<SqlStore, StoreError> {
        let location = path.to_string_lossy();
        check_file(path, &location)?;
        make_private(path, &location)?;
        Self::connect(SqliteConnectOptions::new().filename(path), false).await
    }

    /// Opens the existing database file at `path` read-only and without applying migrations,
    /// to read a database another process (a running server) writes, whichever Berth made
    /// it: `berth backup` takes its [`crate::Store::snapshot_to`] this way. Writes through this
    /// store fail. A missing file, or one without Berth's migrations table, is refused with
    /// [`StoreError::InvalidLocation`].
    pub async fn open_read_only(path: &Path) -> Result<SqlStore, StoreError> {
        let location = path.to_string_lossy();
        if !path.is_file() {
            return Err(refuse(&location, "no such file"));
        }
        // No journal_mode: setting it needs a write; a WAL database stays WAL and is read
        // through its -wal and -shm like by any other reader.
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let migrated: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&pool)
        .await
        .map_err(|e| refuse(&location, &format!("cannot read it as SQLite: {e}")))?;
        if migrated == 0 {
            pool.close().await;
            return Err(refuse(
                &location,
                "not a Berth database (no migrations table)",
            ));
        }
        Ok(SqlStore::sqlite(pool))
    }

    async fn connect(
        options: SqliteConnectOptions,
        in_memory: bool,
    ) -> Result<SqlStore, StoreError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        // An in-memory database lives as long as one of its connections: keep exactly one.
        let pool = if in_memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(4)
        }
        .connect_with(options)
        .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqlStore::sqlite(pool))
    }
}
fn refuse(location: &str, reason: &str) -> StoreError {
    StoreError::InvalidLocation {
        location: redact_location(location),
        reason: reason.to_owned(),
    }
}

/// Creates the database file with mode 0600 before SQLite does (SQLite's own default is 0644
/// less the umask), and restricts an existing one and its `-wal` and `-shm` (SQLite gives those
/// the mode of the database file, so new ones follow). A file Berth may not chmod is left as
/// it is, with a warning.
fn make_private(path: &Path, location: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(refuse(location, &format!("cannot create it: {e}"))),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = Path::new(&name);
        let Ok(meta) = std::fs::metadata(file) else {
            continue;
        };
        if meta.permissions().mode() & 0o077 != 0 {
            match std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => tracing::warn!(
                    file = %file.display(),
                    "the database was readable by others; restricted it to mode 0600"
                ),
                Err(e) => tracing::warn!(
                    file = %file.display(),
                    error = %e,
                    "the database is readable by others and cannot be restricted"
                ),
            }
        }
    }
    Ok(())
}

/// SQLite creates the file but not its directory; say so rather than "unable to open".
fn check_file(path: &Path, location: &str) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return Err(refuse(
            location,
            &format!("directory {} does not exist", dir.display()),
        ));
    }
    if path.is_dir() {
        return Err(refuse(location, "is a directory"));
    }
    Ok(())
}
