//! Consistent copies of a live database, for `berth backup`: [`Store::snapshot_to`].
//!
//! SQLite's `VACUUM INTO` reads the database in one read transaction and writes a new,
//! compacted database file from it. With WAL, readers never block the writer, so the server
//! goes on committing while the copy is made, and the copy holds exactly the transactions
//! committed when it began: never a torn page, never half a transaction (copying the file's
//! bytes with `cp` gives neither guarantee, and misses what is still in `-wal`).
//!
//! PostgreSQL has its own tools for this (`pg_dump`); its snapshot is refused with
//! [`StoreError::Unsupported`].
//!
//! [`Store::snapshot_to`]: crate::Store::snapshot_to

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::StoreError;
use crate::db::SqlStore;

/// What [`crate::Store::snapshot_to`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// The size of the copy, in bytes.
    pub bytes: u64,
    /// The newest schema migration applied in the database (the number that starts its file
    /// name in `migrations/sqlite`), so a restore can tell which Berth made it.
    pub schema_version: i64,
}

impl SqlStore {
    pub(crate) async fn snapshot(&self, target: &Path) -> Result<Snapshot, StoreError> {
        let Some(pool) = self.sqlite_pool() else {
            return Err(StoreError::Unsupported(
                "a PostgreSQL database is backed up with pg_dump, not by Berth".to_owned(),
            ));
        };
        // sqlx opens SQLite with URI file names on: a relative `file:…` name would be taken
        // for a URI, an absolute path never is.
        let target = std::path::absolute(target).map_err(|source| io_error(target, source))?;
        let Some(name) = target.to_str() else {
            return Err(StoreError::InvalidInput(format!(
                "snapshot target {} is not valid UTF-8",
                target.display()
            )));
        };
        // Made here, empty, so that the copy is private from its first byte (SQLite would
        // create it 0644 less the umask); VACUUM INTO accepts an empty file.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&target)
            .map_err(|source| io_error(&target, source))?;
        let written = async {
            let schema_version: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
            )
            .fetch_one(pool)
            .await?;
            sqlx::query("VACUUM INTO $1")
                .bind(name)
                .execute(pool)
                .await?;
            // VACUUM INTO does not fsync what it wrote.
            let file = std::fs::File::open(&target).map_err(|source| io_error(&target, source))?;
            file.sync_all()
                .map_err(|source| io_error(&target, source))?;
            let bytes = file
                .metadata()
                .map_err(|source| io_error(&target, source))?
                .len();
            Ok(Snapshot {
                bytes,
                schema_version,
            })
        }
        .await;
        if written.is_err() {
            let _ = std::fs::remove_file(&target);
        }
        written
    }
}

fn io_error(path: &Path, source: io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_owned(),
        source,
    }
}
