//! The PostgreSQL backend, for deployments that outgrow one SQLite file or want the database
//! managed apart from the server.
//!
//! UUIDs and timestamps use the native `uuid` and `timestamptz` types; text columns are
//! declared `COLLATE "C"` so sorting and keyset comparisons are byte order, exactly as in
//! SQLite, whatever the database's locale. sqlx is built without TLS: connect over loopback or
//! a unix socket (`docs/store.md`).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::StoreError;
use crate::db::SqlStore;
use crate::error::redact_location;

/// Connects to PostgreSQL: the constructor of the PostgreSQL flavour of [`SqlStore`].
#[derive(Debug)]
pub struct PostgresStore {
    _constructors_only: (),
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`, or
    /// `postgres:///database?host=/run/postgresql` for a unix socket) and applies pending
    /// migrations. Several servers may start at once: migrations take an advisory lock.
    pub async fn connect(url: &str) -> Result<SqlStore, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidLocation {
                location: redact_location(url),
                reason: e.to_string(),
            })?
            .application_name("berth");
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(SqlStore::postgres(pool))
    }
}
