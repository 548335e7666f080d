//! Members of a workspace: users other than its owner who may join its terminal (shared
//! templates), each as a `peer` (types) or a `viewer` (watches). The owner is never a member:
//! ownership lives on the workspace row. [`MemberStore`] owns them.

use std::fmt;

use async_trait::async_trait;
pub use berth_types::MemberRole;
use berth_types::{Username, WorkspaceId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::db::{Bind, Row, SqlStore};
use crate::{StoreError, sql};

/// One member of one workspace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The member.
    pub username: Username,
    /// What they may do.
    pub role: MemberRole,
    /// Who added them (or last changed their role).
    pub added_by: Username,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub added_at: OffsetDateTime,
}

macro_rules! member_columns {
    () => {
        "workspace_id, username, role, added_by, added_at"
    };
}

/// Adding a member twice changes their role (and who added them, and when).
const PUT_MEMBER: &str = concat!(
    "INSERT INTO workspace_members (",
    member_columns!(),
    ") VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (workspace_id, username) DO UPDATE SET role = excluded.role, \
     added_by = excluded.added_by, added_at = excluded.added_at"
);

const REMOVE_MEMBER: &str =
    "DELETE FROM workspace_members WHERE workspace_id = $1 AND username = $2";

const REMOVE_MEMBERSHIPS: &str = "DELETE FROM workspace_members WHERE username = $1";

const RENAME_MEMBER: &str = "UPDATE workspace_members SET username = $2 WHERE username = $1";

const LIST_MEMBERS: &str = concat!(
    "SELECT ",
    member_columns!(),
    " FROM workspace_members WHERE workspace_id = $1 ORDER BY username"
);

const MEMBER_ROLE: &str =
    "SELECT role FROM workspace_members WHERE workspace_id = $1 AND username = $2";

/// A member of a workspace that does not exist is a missing workspace, not a database failure.
fn put_error(error: StoreError) -> StoreError {
    match error {
        StoreError::Database(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
            StoreError::NotFound
        }
        other => other,
    }
}

fn role(text: &str) -> Result<MemberRole, StoreError> {
    text.parse().map_err(StoreError::Corrupt)
}

fn member_row(row: &Row) -> Result<Member, StoreError> {
    Ok(Member {
        workspace: WorkspaceId::from(row.get_uuid("workspace_id")?),
        username: sql::username(row.get_str("username")?)?,
        role: role(&row.get_str("role")?)?,
        added_by: sql::username(row.get_str("added_by")?)?,
        added_at: row.get_time("added_at")?,
    })
}

/// The members of workspaces (`workspace_members`): who besides the owner may join a
/// workspace's terminal, and as what. A membership goes with its workspace.
#[async_trait]
pub trait MemberStore: Send + Sync + fmt::Debug {
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
}

#[async_trait]
impl MemberStore for SqlStore {
    async fn put_member(&self, member: &Member) -> Result<(), StoreError> {
        self.execute(
            PUT_MEMBER,
            &[
                Bind::Uuid(member.workspace.as_uuid()),
                Bind::text(member.username.as_str()),
                Bind::text(member.role.as_str()),
                Bind::text(member.added_by.as_str()),
                Bind::Time(member.added_at),
            ],
        )
        .await
        .map_err(put_error)?;
        Ok(())
    }

    async fn remove_member(
        &self,
        workspace: WorkspaceId,
        username: &Username,
    ) -> Result<(), StoreError> {
        let removed = self
            .execute(
                REMOVE_MEMBER,
                &[
                    Bind::Uuid(workspace.as_uuid()),
                    Bind::text(username.as_str()),
                ],
            )
            .await?;
        if removed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn remove_memberships(&self, username: &Username) -> Result<u64, StoreError> {
        self.execute(REMOVE_MEMBERSHIPS, &[Bind::text(username.as_str())])
            .await
    }

    async fn rename_member(&self, from: &Username, to: &Username) -> Result<u64, StoreError> {
        self.execute(
            RENAME_MEMBER,
            &[Bind::text(from.as_str()), Bind::text(to.as_str())],
        )
        .await
    }

    async fn list_members(&self, workspace: WorkspaceId) -> Result<Vec<Member>, StoreError> {
        self.fetch_all(LIST_MEMBERS, &[Bind::Uuid(workspace.as_uuid())])
            .await?
            .iter()
            .map(member_row)
            .collect()
    }

    async fn member_role(
        &self,
        workspace: WorkspaceId,
        username: &Username,
    ) -> Result<Option<MemberRole>, StoreError> {
        let row = self
            .fetch_optional(
                MEMBER_ROLE,
                &[
                    Bind::Uuid(workspace.as_uuid()),
                    Bind::text(username.as_str()),
                ],
            )
            .await?;
        row.map(|row| role(&row.get_str("role")?)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_names() {
        for role in [MemberRole::Peer, MemberRole::Viewer] {
            assert_eq!(role.as_str().parse::<MemberRole>().unwrap(), role);
            assert_eq!(serde_json::to_string(&role).unwrap(), format!("\"{role}\""));
        }
        assert!("owner".parse::<MemberRole>().is_err());
        assert!(serde_json::from_str::<MemberRole>("\"Peer\"").is_err());
    }
}
