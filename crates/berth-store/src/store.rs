//! [`Store`]: everything Berth keeps at run time, as one object-safe trait made of one small
//! trait per aggregate, so services hold an `Arc<dyn Store>` (or only the part they need, an
//! `Arc<dyn WorkspaceStore>`, ...) and never know which database is underneath.
//!
//! A new kind of state adds its own trait (with its migration on both backends and its
//! conformance story) and one more supertrait here, never more methods on an existing one.

use std::path::Path;

use async_trait::async_trait;

use crate::db::SqlStore;
use crate::{
    AuditStore, ClientStore, ClusterStore, FleetSyncStore, InviteStore, LoginStore, MachineStore,
    MemberStore, OperationStore, RecordingStore, Snapshot, StoreError, TableStore, WebSessionStore,
    WorkspaceStore,
};

/// Berth's runtime state: every per-aggregate store, plus what concerns the database as a
/// whole. Implemented once, by [`SqlStore`], for SQLite and PostgreSQL; both pass the same
/// conformance stories (`tests/conformance/`).
///
/// An `Arc<dyn Store>` upcasts to any of its parts: `let w: Arc<dyn WorkspaceStore> = store;`.
///
/// Timestamps are kept in UTC with microsecond precision; values come back normalized (see
/// [`crate::normalize_time`]). Years outside 1 to 9999 are refused with
/// [`crate::StoreError::InvalidInput`].
#[async_trait]
pub trait Store:
    WorkspaceStore
    + MemberStore
    + RecordingStore
    + ClientStore
    + LoginStore
    + WebSessionStore
    + AuditStore
    + MachineStore
    + FleetSyncStore
    + OperationStore
    + ClusterStore
    + InviteStore
    + TableStore
{
    /// `"sqlite"` or `"postgres"`, for logs and metrics.
    fn backend(&self) -> &'static str;

    /// Closes the connections; later calls fail.
    async fn close(&self);

    /// Writes a consistent copy of the whole database to `target`, a new file (mode 0600; an
    /// existing one is an error), while other connections, of this process or another, go on
    /// writing: the copy holds exactly the transactions committed when it began. SQLite only
    /// (`VACUUM INTO`); PostgreSQL answers [`StoreError::Unsupported`] (use `pg_dump`). A
    /// failed snapshot leaves no file behind.
    async fn snapshot_to(&self, target: &Path) -> Result<Snapshot, StoreError>;
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        self.backend_name()
    }

    async fn close(&self) {
        self.close_pool().await;
    }

    async fn snapshot_to(&self, target: &Path) -> Result<Snapshot, StoreError> {
        self.snapshot(target).await
    }
}
