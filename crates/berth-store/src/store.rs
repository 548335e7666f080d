//! The [`Store`] trait: everything Berth keeps at run time, behind one object-safe interface
//! so services hold an `Arc<dyn Store>` and never know which database is underneath.

use std::fmt;
use std::net::IpAddr;

use async_trait::async_trait;
use berth_types::{Username, WorkspaceId};
use time::OffsetDateTime;

use crate::{
    Client, ClientPing, Member, MemberRole, NewAuditEntry, Recording, RecordingId, StateUpdate,
    StoreError, TableQuery, TableResult, WebSession, Workspace, WorkspaceFilter, WorkspaceState,
};

/// Berth's runtime state. Implemented by [`crate::SqliteStore`] and [`crate::PostgresStore`];
/// both pass the same conformance suite (`tests/conformance.rs`).
///
/// Timestamps are kept in UTC with microsecond precision; values come back normalized (see
/// [`crate::normalize_time`]). Years outside 1 to 9999 are refused with
/// [`StoreError::InvalidInput`].
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// `"sqlite"` or `"postgres"`, for logs and metrics.
    fn backend(&self) -> &'static str;

    /// Records a new workspace. [`StoreError::Conflict`] if the id is taken.
    async fn insert_workspace(&self, workspace: &Workspace) -> Result<(), StoreError>;

    /// One workspace. [`StoreError::NotFound`] if there is none with this id.
    async fn get_workspace(&self, id: WorkspaceId) -> Result<Workspace, StoreError>;

    /// The workspaces `filter` selects, oldest first.
    async fn list_workspaces(&self, filter: &WorkspaceFilter)
    -> Result<Vec<Workspace>, StoreError>;

    /// Moves a workspace to a new state and returns it as stored afterwards.
    /// [`StoreError::NotFound`] if it does not exist; [`StoreError::Conflict`] if
    /// `update.expect` is set and the workspace is in another state (someone else moved it).
    async fn update_workspace_state(
        &self,
        id: WorkspaceId,
        update: &StateUpdate,
    ) -> Result<Workspace, StoreError>;

    /// Records activity for many workspaces in one transaction. `last_activity` only moves
    /// forward; ids that no longer exist are skipped. Returns how many rows changed.
    async fn touch_workspaces(
        &self,
        touches: &[(WorkspaceId, OffsetDateTime)],
    ) -> Result<u64, StoreError>;

    /// Forgets a workspace. [`StoreError::NotFound`] if it does not exist.
    async fn delete_workspace(&self, id: WorkspaceId) -> Result<(), StoreError>;

    /// How many of `owner`'s workspaces are in one of `states` (quotas count
    /// [`WorkspaceState::LIVE`]).
    async fn count_workspaces(
        &self,
        owner: &Username,
        states: &[WorkspaceState],
    ) -> Result<u32, StoreError>;

    /// Upserts a batch of pings in one transaction. For a client pinging more than once in the
    /// batch (or arriving out of order across batches), the latest ping wins.
    async fn record_pings(&self, pings: &[ClientPing]) -> Result<(), StoreError>;

    /// Known clients, most recently seen first; only `username`'s when given.
    async fn list_clients(&self, username: Option<&Username>) -> Result<Vec<Client>, StoreError>;

    /// Records a login attempt. `username` is what was typed (it may name no user); at most
    /// 256 bytes.
    async fn record_login_attempt(
        &self,
        username: &str,
        ip: IpAddr,
        success: bool,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Failed attempts for `username` at or after `since` that no later successful login
    /// cleared. The server locks the account when this reaches its limit (5 in 5 minutes).
    async fn recent_failures(
        &self,
        username: &str,
        since: OffsetDateTime,
    ) -> Result<u32, StoreError>;

    /// Deletes login attempts older than `before`; returns how many.
    async fn prune_login_attempts(&self, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// Appends an audit entry and returns its id.
    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<i64, StoreError>;

    /// Runs a table query (see [`crate::tables`]). `scope` restricts the rows to those owned
    /// by that user (`owner` of workspaces, `username` of clients, `actor` of audit entries).
    async fn query_table(
        &self,
        query: &TableQuery,
        scope: Option<&Username>,
    ) -> Result<TableResult, StoreError>;

    /// Adds a member to a workspace, or changes the role (and `added_by`, `added_at`) of one
    /// already there. [`StoreError::NotFound`] if the workspace does not exist. Members go
    /// with their workspace when it is deleted.
    async fn put_member(&self, member: &Member) -> Result<(), StoreError>;

    /// Removes a member. [`StoreError::NotFound`] if they were not one.
    async fn remove_member(
        &self,
        workspace: WorkspaceId,
        username: &Username,
    ) -> Result<(), StoreError>;

    /// Removes `username` from every workspace they are a member of (their account is gone);
    /// how many memberships they had.
    async fn remove_memberships(&self, username: &Username) -> Result<u64, StoreError>;

    /// Gives `from`'s memberships to `to` (the account was renamed); how many there were.
    async fn rename_member(&self, from: &Username, to: &Username) -> Result<u64, StoreError>;

    /// A workspace's members by username (empty for an unknown workspace).
    async fn list_members(&self, workspace: WorkspaceId) -> Result<Vec<Member>, StoreError>;

    /// `username`'s role in a workspace, `None` if they are not a member.
    async fn member_role(
        &self,
        workspace: WorkspaceId,
        username: &Username,
    ) -> Result<Option<MemberRole>, StoreError>;

    /// Records a recording that starts now. [`StoreError::Conflict`] if the id or the path is
    /// taken; [`StoreError::InvalidInput`] if the path is not a plain relative path.
    async fn insert_recording(&self, recording: &Recording) -> Result<(), StoreError>;

    /// Records the end of a recording and its final size. [`StoreError::NotFound`] if there is
    /// no such recording.
    async fn finish_recording(
        &self,
        id: RecordingId,
        ended_at: OffsetDateTime,
        bytes: u64,
    ) -> Result<(), StoreError>;

    /// One recording. [`StoreError::NotFound`] if there is none with this id.
    async fn get_recording(&self, id: RecordingId) -> Result<Recording, StoreError>;

    /// A workspace's recordings, newest first (also after the workspace was deleted).
    async fn list_recordings(&self, workspace: WorkspaceId) -> Result<Vec<Recording>, StoreError>;

    /// Every recording, oldest first, for retention.
    async fn list_all_recordings(&self) -> Result<Vec<Recording>, StoreError>;

    /// Forgets a recording (its file is the caller's to remove). [`StoreError::NotFound`] if
    /// there is none with this id.
    async fn delete_recording(&self, id: RecordingId) -> Result<(), StoreError>;

    /// A renamed user keeps their recordings: `from` becomes `to` as owner and as who
    /// attached, in one transaction. Returns the rows changed.
    async fn rename_recordings(&self, from: &Username, to: &Username) -> Result<u64, StoreError>;

    /// Saves web sessions in one transaction: new ones whole, known ones only their
    /// `last_seen`.
    async fn save_sessions(&self, sessions: &[WebSession]) -> Result<(), StoreError>;

    /// Forgets web sessions by the SHA-256 of their ids; unknown ones are ignored.
    async fn delete_sessions(&self, id_hashes: &[String]) -> Result<(), StoreError>;

    /// Every stored web session, oldest first (expired ones too: expiry is the server's call).
    /// Rows that cannot be read are skipped (and logged).
    async fn list_sessions(&self) -> Result<Vec<WebSession>, StoreError>;

    /// Closes the connections; later calls fail.
    async fn close(&self);
}

/// The longest login username kept; longer attempts are refused before they reach the table.
pub(crate) const MAX_LOGIN_USERNAME: usize = 256;

pub(crate) fn check_login_username(username: &str) -> Result<(), StoreError> {
    if username.len() > MAX_LOGIN_USERNAME {
        return Err(StoreError::InvalidInput(format!(
            "login username of {} bytes, at most {MAX_LOGIN_USERNAME} are kept",
            username.len()
        )));
    }
    Ok(())
}
