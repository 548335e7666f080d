//! Who may use a workspace's terminal, and how: its owner, the members the owner (or an admin)
//! added as peers or viewers, and admins.
//!
//! Members only make sense for shared templates, where every terminal joins one tmux session:
//! adding one to a workspace of another template is refused. The owner is never a member.
//! Admins are not members either; they may attach to any workspace as a peer (they can stop or
//! delete it anyway, so typing is no escalation) and every attach is audited.

use berth_store::{Member, MemberRole, StoreError, Workspace};
use berth_types::{Role, SessionRole, Username, WorkspaceId};

use crate::plan::{Persistence, Plan};
use crate::{WorkspaceError, Workspaces};

impl Workspaces {
    /// Adds `username` to a workspace of a shared template as `role`, or changes their role;
    /// `by` is who did it. Refuses the owner and workspaces of other templates
    /// ([`WorkspaceError::InvalidOption`]). The caller checks that `username` names a user and
    /// that `by` may manage the workspace (its owner or an admin).
    pub async fn add_member(
        &self,
        workspace: WorkspaceId,
        username: &Username,
        role: MemberRole,
        by: &Username,
    ) -> Result<Member, WorkspaceError> {
        let ws = self.get(workspace).await?;
        if ws.owner == *username {
            return Err(WorkspaceError::InvalidOption(format!(
                "{username} owns this workspace and cannot also be a member"
            )));
        }
        match self.plan_of(&ws) {
            Some(plan) if plan.shared => {}
            Some(_) => {
                return Err(WorkspaceError::InvalidOption(format!(
                    "template {:?} is not shared: only shared templates have members",
                    ws.template
                )));
            }
            None => {
                return Err(WorkspaceError::Conflict(format!(
                    "template {:?} no longer exists",
                    ws.template
                )));
            }
        }
        let member = Member {
            workspace,
            username: username.clone(),
            role,
            added_by: by.clone(),
            added_at: self.now(),
        };
        match self.inner.store.put_member(&member).await {
            Ok(()) => Ok(member),
            // Deleted between the read and the write.
            Err(StoreError::NotFound) => Err(WorkspaceError::NotFound),
            Err(err) => Err(err.into()),
        }
    }

    /// Removes a member; `false` if `username` was not one. Their open terminals stay until
    /// the caller ends them with [`Terminals::revoke`](crate::Terminals::revoke) (the API does).
    pub async fn remove_member(
        &self,
        workspace: WorkspaceId,
        username: &Username,
    ) -> Result<bool, WorkspaceError> {
        self.get(workspace).await?;
        match self.inner.store.remove_member(workspace, username).await {
            Ok(()) => Ok(true),
            Err(StoreError::NotFound) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// A workspace's members, by username (the owner is not among them).
    pub async fn members(&self, workspace: WorkspaceId) -> Result<Vec<Member>, WorkspaceError> {
        self.get(workspace).await?;
        Ok(self.inner.store.list_members(workspace).await?)
    }

    /// The most `username` (whose account role is `account`) may do in the workspace's
    /// terminal: `Owner` for its owner, `Peer` for admins, the member role for members, `None`
    /// for everyone else (the API answers 404, as for a workspace that does not exist).
    pub async fn role_of(
        &self,
        workspace: WorkspaceId,
        username: &Username,
        account: Role,
    ) -> Result<Option<SessionRole>, WorkspaceError> {
        let ws = self.get(workspace).await?;
        self.role_in(&ws, username, account).await
    }

    /// [`Workspaces::role_of`] for a workspace already read.
    pub async fn role_in(
        &self,
        ws: &Workspace,
        username: &Username,
        account: Role,
    ) -> Result<Option<SessionRole>, WorkspaceError> {
        if ws.owner == *username {
            return Ok(Some(SessionRole::Owner));
        }
        let member = self
            .inner
            .store
            .member_role(ws.id, username)
            .await?
            .map(SessionRole::from);
        let admin = (account == Role::Admin).then_some(SessionRole::Peer);
        Ok(member.max(admin))
    }

    /// The plan of an existing workspace, `None` when its template is gone.
    pub(crate) fn plan_of(&self, ws: &Workspace) -> Option<Plan> {
        let persistence = if ws.persistent {
            Persistence::Persistent
        } else {
            Persistence::Ephemeral
        };
        self.inner
            .policy
            .plan_existing(&ws.owner, &ws.template, persistence, &ws.network)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_named() {
        assert!(SessionRole::Viewer < SessionRole::Peer && SessionRole::Peer < SessionRole::Owner);
        assert!(!SessionRole::Viewer.may_type());
        assert!(SessionRole::Peer.may_type() && SessionRole::Owner.may_type());
        assert_eq!(
            serde_json::to_string(&SessionRole::Owner).unwrap(),
            "\"owner\""
        );
        assert_eq!(SessionRole::from(MemberRole::Viewer), SessionRole::Viewer);
        // A member who is also an admin gets the higher of the two.
        assert_eq!(
            Some(SessionRole::Viewer).max(Some(SessionRole::Peer)),
            Some(SessionRole::Peer)
        );
        assert_eq!(
            None.max(Some(SessionRole::Viewer)),
            Some(SessionRole::Viewer)
        );
    }
}
