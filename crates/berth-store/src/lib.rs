//! Berth's runtime state in SQL: workspaces and their members, client pings, login attempts,
//! the audit log and the index of terminal recordings.
//! (The configuration, users and templates, lives in YAML files and is not here.)
//!
//! Everything goes through the object-safe [`Store`] trait, so services hold an
//! `Arc<dyn Store>`. Two backends implement it and pass one conformance suite:
//!
//! - [`SqliteStore`], the default: one file in `$BERTH_HOME`, WAL, fsync on every commit;
//! - [`PostgresStore`], for larger deployments.
//!
//! Both are one implementation (`backend::sql_store!`) over the same query text; each backend
//! only says how it binds and reads UUIDs and timestamps and how a write transaction begins.
//!
//! [`open`] picks one from a location string and applies the embedded migrations
//! (`migrations/sqlite`, `migrations/postgres`). Queries are checked at run time
//! (`sqlx::query`), so building needs no database. Table queries ([`tables`]) give the API a
//! whitelisted, parameterized, keyset-paginated way to list rows. `docs/store.md` has the
//! details.
#![forbid(unsafe_code)]

mod audit;
mod backend;
mod clients;
mod error;
mod members;
mod postgres;
mod recordings;
mod sessions;
mod sql;
mod sqlite;
mod store;
pub mod tables;
mod timestamp;
mod workspaces;

use std::sync::Arc;

pub use audit::{AuditOutcome, NewAuditEntry};
pub use clients::{Client, ClientPing};
pub use error::{StoreError, redact_location};
pub use members::{Member, MemberRole};
pub use postgres::PostgresStore;
pub use recordings::{Recording, RecordingId};
pub use sessions::WebSession;
pub use sqlite::SqliteStore;
pub use store::Store;
pub use tables::{FilterOp, SortKey, TableFilter, TableQuery, TableResult};
pub use timestamp::normalize_time;
pub use workspaces::{StateUpdate, UnknownState, Workspace, WorkspaceFilter, WorkspaceState};

/// Opens the store at `location` and applies pending migrations:
///
/// - `postgres://...` or `postgresql://...`: PostgreSQL;
/// - `sqlite://path`, `sqlite:path` or `sqlite::memory:`: SQLite;
/// - anything else without a `scheme://`: a path to an SQLite file, created if missing (its
///   directory must exist).
pub async fn open(location: &str) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> =
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            Arc::new(PostgresStore::connect(location).await?)
        } else {
            open_sqlite(location).await?
        };
    tracing::info!(
        backend = store.backend(),
        location = %error::redact_location(location),
        "store opened, migrations applied"
    );
    Ok(store)
}

async fn open_sqlite(location: &str) -> Result<Arc<dyn Store>, StoreError> {
    if let Some((scheme, _)) = location.split_once("://")
        && scheme != "sqlite"
    {
        return Err(StoreError::InvalidLocation {
            location: error::redact_location(location),
            reason: format!(
                "unsupported scheme {scheme:?}: use postgres://, sqlite:// or a file path"
            ),
        });
    }
    Ok(Arc::new(SqliteStore::open(location).await?))
}
