//! Members of a workspace: users other than its owner who may join its terminal (shared
//! templates), each as a `peer` (types) or a `viewer` (watches). The owner is never a member:
//! ownership lives on the workspace row.

pub use berth_types::MemberRole;
use berth_types::{Username, WorkspaceId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

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
pub(crate) const PUT_MEMBER: &str = concat!(
    "INSERT INTO workspace_members (",
    member_columns!(),
    ") VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (workspace_id, username) DO UPDATE SET role = excluded.role, \
     added_by = excluded.added_by, added_at = excluded.added_at"
);

pub(crate) const REMOVE_MEMBER: &str =
    "DELETE FROM workspace_members WHERE workspace_id = $1 AND username = $2";

pub(crate) const REMOVE_MEMBERSHIPS: &str = "DELETE FROM workspace_members WHERE username = $1";

pub(crate) const RENAME_MEMBER: &str =
    "UPDATE workspace_members SET username = $2 WHERE username = $1";

pub(crate) const LIST_MEMBERS: &str = concat!(
    "SELECT ",
    member_columns!(),
    " FROM workspace_members WHERE workspace_id = $1 ORDER BY username"
);

pub(crate) const MEMBER_ROLE: &str =
    "SELECT role FROM workspace_members WHERE workspace_id = $1 AND username = $2";

/// A member of a workspace that does not exist is a missing workspace, not a database failure.
pub(crate) fn put_error(error: sqlx::Error) -> crate::StoreError {
    match error {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => crate::StoreError::NotFound,
        other => other.into(),
    }
}

pub(crate) fn role(text: &str) -> Result<MemberRole, crate::StoreError> {
    text.parse().map_err(crate::StoreError::Corrupt)
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
