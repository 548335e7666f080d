//! What an account has, across every kind of resource: when a user is renamed or deleted, one
//! service walks each kind through the [`AccountResources`] trait it implements (workspaces,
//! memberships and recordings today; machine access, operations and clusters as they come),
//! and ends the user's open terminals. The server's handlers only change the configuration and
//! call [`Accounts`] around it.

use std::sync::Arc;

use async_trait::async_trait;
use berth_store::Store;
use berth_types::Username;
use serde_json::{Map, Value, json};

use crate::bridge::{Revocation, close};
use crate::{Recordings, Terminals, WorkspaceError, Workspaces};

/// Why an account change is refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The account holds something that stops the change (a rename while it owns workspaces).
    #[error("{0}")]
    InUse(String),
    /// A resource could not be moved or removed; the account is left as it was.
    #[error("{kind}: {message}")]
    Failed {
        /// The kind of resource.
        kind: &'static str,
        /// What went wrong.
        message: String,
        /// The workspace error, when it was one (the API shows engine errors to admins).
        #[source]
        workspace: Option<WorkspaceError>,
    },
}

impl AccountError {
    fn failed(kind: &'static str, err: impl std::fmt::Display) -> Self {
        Self::Failed {
            kind,
            message: err.to_string(),
            workspace: None,
        }
    }
}

/// One kind of resource an account owns.
#[async_trait]
pub trait AccountResources: Send + Sync + std::fmt::Debug {
    /// Its name, for logs and errors: `workspaces`, `memberships`, `recordings`.
    fn kind(&self) -> &'static str;

    /// Refuses a rename of `from` that this kind cannot follow.
    async fn check_rename(&self, _from: &Username) -> Result<(), AccountError> {
        Ok(())
    }

    /// `from` is now `to`: what was `from`'s is `to`'s. The audit details of what moved.
    async fn rename(
        &self,
        from: &Username,
        to: &Username,
    ) -> Result<Map<String, Value>, AccountError>;

    /// `owner`'s account goes: their resources of this kind are removed (a name given to
    /// someone new must find nothing of the old account). The audit details of what went.
    async fn remove(
        &self,
        owner: &Username,
        reason: &str,
    ) -> Result<Map<String, Value>, AccountError>;
}

fn details(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Workspaces are named after their owner (containers, volumes): a rename is refused while the
/// account owns any; a deletion deletes them and every named volume of theirs, persistent
/// ones included, and ends their memberships in others' workspaces.
#[derive(Debug, Clone)]
pub struct WorkspaceResources(pub Workspaces);

#[async_trait]
impl AccountResources for WorkspaceResources {
    fn kind(&self) -> &'static str {
        "workspaces"
    }

    async fn check_rename(&self, from: &Username) -> Result<(), AccountError> {
        let owned = self
            .0
            .list(&berth_store::WorkspaceFilter {
                owner: Some(from.clone()),
                ..berth_store::WorkspaceFilter::default()
            })
            .await
            .map_err(|err| AccountError::failed(self.kind(), err))?;
        if owned.is_empty() {
            return Ok(());
        }
        Err(AccountError::InUse(format!(
            "{from} owns {} workspace(s): delete them before renaming the account",
            owned.len()
        )))
    }

    async fn rename(&self, _: &Username, _: &Username) -> Result<Map<String, Value>, AccountError> {
        // Refused above while there are any: nothing to move.
        Ok(Map::new())
    }

    async fn remove(
        &self,
        owner: &Username,
        reason: &str,
    ) -> Result<Map<String, Value>, AccountError> {
        let removal =
            self.0
                .remove_owner(owner, reason)
                .await
                .map_err(|err| AccountError::Failed {
                    kind: "workspaces",
                    message: err.to_string(),
                    workspace: Some(err),
                })?;
        Ok(details(json!({
            "workspaces_deleted": removal.workspaces,
            "volumes_removed": removal.volumes,
        })))
    }
}

/// Memberships in other people's shared workspaces follow a rename and end with the account.
#[derive(Debug, Clone)]
pub struct MembershipResources(pub Arc<dyn Store>);

#[async_trait]
impl AccountResources for MembershipResources {
    fn kind(&self) -> &'static str {
        "memberships"
    }

    async fn rename(
        &self,
        from: &Username,
        to: &Username,
    ) -> Result<Map<String, Value>, AccountError> {
        let moved = self
            .0
            .rename_member(from, to)
            .await
            .map_err(|err| AccountError::failed(self.kind(), err))?;
        Ok(details(json!({ "memberships_moved": moved })))
    }

    async fn remove(&self, owner: &Username, _: &str) -> Result<Map<String, Value>, AccountError> {
        let ended = self
            .0
            .remove_memberships(owner)
            .await
            .map_err(|err| AccountError::failed(self.kind(), err))?;
        Ok(details(json!({ "memberships_ended": ended })))
    }
}

/// Recordings of the account's targets (and the sessions they attached to) follow a rename;
/// a deletion deletes the recordings of their targets, files and rows.
#[derive(Debug, Clone)]
pub struct RecordingResources(pub Recordings);

#[async_trait]
impl AccountResources for RecordingResources {
    fn kind(&self) -> &'static str {
        "recordings"
    }

    async fn rename(
        &self,
        from: &Username,
        to: &Username,
    ) -> Result<Map<String, Value>, AccountError> {
        let moved = self
            .0
            .rename_owner(from, to)
            .await
            .map_err(|err| AccountError::failed(self.kind(), err))?;
        Ok(details(json!({ "recordings_moved": moved })))
    }

    async fn remove(&self, owner: &Username, _: &str) -> Result<Map<String, Value>, AccountError> {
        let removed = self
            .0
            .remove_owner(owner)
            .await
            .map_err(|err| AccountError::failed(self.kind(), err))?;
        Ok(details(
            json!({ "recordings_deleted": removed.recordings.len() }),
        ))
    }
}

/// Clusters follow a rename (their rows; the provider's labels keep the old name, which
/// nothing reads back); a deletion removes them from the provider and deletes their rows.
#[derive(Debug, Clone)]
pub struct ClusterResources(pub crate::Clusters);

#[async_trait]
impl AccountResources for ClusterResources {
    fn kind(&self) -> &'static str {
        "clusters"
    }

    async fn rename(
        &self,
        from: &Username,
        to: &Username,
    ) -> Result<Map<String, Value>, AccountError> {
        let moved = self
            .0
            .rename_owner(from, to)
            .await
            .map_err(|err| AccountError::failed(self.kind(), err))?;
        Ok(details(json!({ "clusters_moved": moved })))
    }

    async fn remove(&self, owner: &Username, _: &str) -> Result<Map<String, Value>, AccountError> {
        let removed = self
            .0
            .remove_owner(owner)
            .await
            .map_err(|err| AccountError::failed(self.kind(), err))?;
        Ok(details(json!({ "clusters_deleted": removed.len() })))
    }
}

/// Invites an account made, or was made by, name it: they follow a rename and stay (as
/// history) when the account goes.
#[derive(Debug, Clone)]
pub struct InviteResources(pub Arc<dyn Store>);

#[async_trait]
impl AccountResources for InviteResources {
    fn kind(&self) -> &'static str {
        "invites"
    }

    async fn rename(
        &self,
        from: &Username,
        to: &Username,
    ) -> Result<Map<String, Value>, AccountError> {
        let moved = self
            .0
            .rename_invites(from, to)
            .await
            .map_err(|err| AccountError::failed(self.kind(), err))?;
        Ok(details(json!({ "invites_moved": moved })))
    }

    async fn remove(&self, _: &Username, _: &str) -> Result<Map<String, Value>, AccountError> {
        Ok(Map::new())
    }
}

/// The account service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Accounts {
    resources: Arc<Vec<Arc<dyn AccountResources>>>,
    terminals: Terminals,
}

impl Accounts {
    /// The service over `resources`, walked in order (put first what may refuse or fail, so
    /// a failure leaves the rest untouched), ending sessions through `terminals`.
    #[must_use]
    pub fn new(resources: Vec<Arc<dyn AccountResources>>, terminals: Terminals) -> Self {
        Self {
            resources: Arc::new(resources),
            terminals,
        }
    }

    /// The resources Berth has today: workspaces (with their volumes), memberships,
    /// recordings, invites, and clusters when the installation runs them.
    #[must_use]
    pub fn standard(
        workspaces: &Workspaces,
        terminals: &Terminals,
        clusters: Option<&crate::Clusters>,
    ) -> Self {
        let mut resources: Vec<Arc<dyn AccountResources>> = vec![
            Arc::new(WorkspaceResources(workspaces.clone())),
            Arc::new(MembershipResources(Arc::clone(workspaces.store()))),
            Arc::new(RecordingResources(terminals.recordings().clone())),
            Arc::new(InviteResources(Arc::clone(workspaces.store()))),
        ];
        if let Some(clusters) = clusters {
            // Before the account's other resources: the provider is what may fail.
            resources.insert(1, Arc::new(ClusterResources(clusters.clone())));
        }
        Self::new(resources, terminals.clone())
    }

    /// Refuses a rename of `from` that a kind of resource cannot follow.
    pub async fn check_rename(&self, from: &Username) -> Result<(), AccountError> {
        for resource in self.resources.iter() {
            resource.check_rename(from).await?;
        }
        Ok(())
    }

    /// After the configuration renamed `from` to `to`: moves every kind's resources and
    /// reconnects `from`'s open terminals (1012) as who they are now. A kind that fails is
    /// logged and the others still move; the audit details of what moved.
    pub async fn renamed(&self, from: &Username, to: &Username) -> Map<String, Value> {
        let mut moved = Map::new();
        for resource in self.resources.iter() {
            match resource.rename(from, to).await {
                Ok(done) => moved.extend(done),
                Err(err) => {
                    tracing::error!(error = %err, %from, %to, kind = resource.kind(), "cannot move the resources of a renamed account");
                }
            }
        }
        moved
    }

    /// Before the configuration forgets `owner`: removes every kind's resources, in order,
    /// stopping at the first failure (the account stays, so an admin can try again). The
    /// audit details of what went.
    pub async fn remove(
        &self,
        owner: &Username,
        reason: &str,
    ) -> Result<Map<String, Value>, AccountError> {
        let mut removed = Map::new();
        for resource in self.resources.iter() {
            removed.extend(resource.remove(owner, reason).await?);
        }
        Ok(removed)
    }

    /// Ends every open terminal of `username` with `code` and `message`: an account change
    /// takes effect on sessions already attached, not only on the next login. How many.
    pub fn end_sessions(&self, username: &Username, code: u16, message: &str) -> usize {
        let revocation = Revocation {
            code,
            message: message.to_owned(),
        };
        let ended = self.terminals.revoke(None, username, &revocation);
        if ended > 0 {
            tracing::info!(user = %username, ended, "ended the open terminals of a changed account");
        }
        ended
    }

    /// The account is gone or disabled: its terminals close with 4401.
    pub fn account_closed(&self, username: &Username, message: &str) -> usize {
        self.end_sessions(username, close::UNAUTHENTICATED, message)
    }

    /// The account was renamed or its role changed: its terminals reconnect (1012).
    pub fn account_changed(&self, username: &Username) -> usize {
        self.end_sessions(
            username,
            close::ROLE_CHANGED,
            "Your account changed; reconnecting.",
        )
    }
}
