//! Berth's runtime state in SQL: workspaces and their members, client pings, login attempts,
//! the audit log, the index of terminal recordings, the fleet (machines, inventory syncs
//! and operations: script runs on machines, with their output and events), ephemeral
//! Kubernetes clusters and the invites of self-service sign-up.
//! (The configuration, users and templates, lives in YAML files and is not here.)
//!
//! Each aggregate has its own small object-safe trait: [`WorkspaceStore`], [`MemberStore`],
//! [`RecordingStore`], [`ClientStore`], [`LoginStore`], [`WebSessionStore`], [`AuditStore`],
//! [`MachineStore`], [`FleetSyncStore`], [`OperationStore`], [`ClusterStore`], [`InviteStore`]
//! and [`TableStore`]. [`Store`] is all of them plus what concerns the database as a whole
//! (`backend`, `close`, and `snapshot_to`: a consistent copy of a live SQLite database, for
//! backups), so services hold an `Arc<dyn Store>` and hand out the parts
//! (`Arc<dyn WorkspaceStore>`, ...) by upcasting.
//!
//! One type implements them all, [`SqlStore`], over either of two backends that pass the same
//! conformance stories:
//!
//! - SQLite ([`SqliteStore::open`]), the default: one file in `$BERTH_HOME`, WAL, fsync on
//!   every commit; [`SqliteStore::open_read_only`] reads a live one from another process
//!   without migrating it (`berth backup`);
//! - PostgreSQL ([`PostgresStore::connect`]), for larger deployments.
//!
//! Each method is written once over the same query text; the execution layer (`db.rs`) is
//! the only place that knows how each backend binds and reads UUIDs and timestamps and how a
//! write transaction begins.
//!
//! [`open`] picks one from a location string and applies the embedded migrations
//! (`migrations/sqlite`, `migrations/postgres`). Queries are checked at run time
//! (`sqlx::query`), so building needs no database. Table queries ([`tables`]) give the API a
//! whitelisted, parameterized, keyset-paginated way to list rows. `docs/store.md` has the
//! details.
#![forbid(unsafe_code)]

mod audit;
mod clients;
mod clusters;
mod db;
mod error;
mod fleet_syncs;
mod invites;
mod logins;
mod machines;
mod members;
mod operations;
mod postgres;
mod recordings;
mod sessions;
mod snapshot;
mod sql;
mod sqlite;
mod store;
pub mod tables;
mod timestamp;
mod workspaces;

use std::sync::Arc;

pub use audit::{AuditOutcome, AuditStore, NewAuditEntry};
pub use clients::{Client, ClientPing, ClientStore};
pub use clusters::{
    ClusterFilter, ClusterRecord, ClusterStore, ClusterTransition, MAX_KUBECONFIG_BYTES,
};
pub use db::SqlStore;
pub use error::{StoreError, redact_location};
pub use fleet_syncs::{FleetSyncStore, SYNC_HISTORY, SyncOutcome, SyncRecord};
pub use invites::{InviteRecord, InviteStore, InviteUse};
pub use logins::{LoginPressure, LoginStore};
pub use machines::{
    EnrollmentUpdate, HealthUpdate, MachineRecord, MachineSpec, MachineStore, ProbeRecord,
};
pub use members::{Member, MemberRole, MemberStore};
pub use operations::{
    INTERRUPTED_MESSAGE, KeptOutput, MachineRunRecord, MachineRunUpdate, NewOperation,
    OPERATION_HISTORY, OperationEventKind, OperationEventRecord, OperationRecord, OperationStore,
    OperationSummary,
};
pub use postgres::PostgresStore;
pub use recordings::{Recording, RecordingId, RecordingStore};
pub use sessions::{WebSession, WebSessionStore};
pub use snapshot::Snapshot;
pub use sqlite::SqliteStore;
pub use store::Store;
pub use tables::{FilterOp, SortKey, TableFilter, TableQuery, TableResult, TableScope, TableStore};
pub use timestamp::normalize_time;
pub use workspaces::{
    StateUpdate, UnknownState, Workspace, WorkspaceFilter, WorkspaceState, WorkspaceStore,
};

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
