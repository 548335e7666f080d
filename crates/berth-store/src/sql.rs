//! SQL text and value decoding shared by both backends. The statements are plain SQL that
//! SQLite and PostgreSQL both accept (`$n` placeholders, `ON CONFLICT`, `RETURNING`); only the
//! encoding of UUIDs and timestamps differs, and `crate::db` binds those per backend.

use std::fmt::Write as _;
use std::net::IpAddr;

use berth_types::Username;
use serde_json::Value;
use time::OffsetDateTime;

use berth_types::WorkspaceId;

use crate::{StateUpdate, StoreError, WorkspaceFilter, WorkspaceState, timestamp};

macro_rules! workspace_columns {
    () => {
        "id, owner, template, state, container_id, persistent, network, created_at, started_at, \
         last_activity, expires_at, state_reason"
    };
}

macro_rules! client_columns {
    () => {
        "client_id, username, hostname, version, first_seen, last_seen, last_ip, local_workspaces"
    };
}

pub(crate) const INSERT_WORKSPACE: &str = concat!(
    "INSERT INTO workspaces (",
    workspace_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
);

pub(crate) const GET_WORKSPACE: &str = concat!(
    "SELECT ",
    workspace_columns!(),
    " FROM workspaces WHERE id = $1"
);

/// `$7` is the compare-and-set guard: the update applies only if it is null or the state.
pub(crate) const UPDATE_WORKSPACE_STATE: &str = concat!(
    "UPDATE workspaces SET state = $2, state_reason = $3, \
     container_id = COALESCE($4, container_id), started_at = COALESCE($5, started_at), \
     expires_at = COALESCE($6, expires_at) \
     WHERE id = $1 AND ($7 IS NULL OR state = $7) RETURNING ",
    workspace_columns!()
);

pub(crate) const WORKSPACE_STATE: &str = "SELECT state FROM workspaces WHERE id = $1";

pub(crate) const TOUCH_WORKSPACE: &str =
    "UPDATE workspaces SET last_activity = $2 WHERE id = $1 AND last_activity < $2";

pub(crate) const DELETE_WORKSPACE: &str = "DELETE FROM workspaces WHERE id = $1";

/// Older pings never overwrite newer ones, whatever order the batches arrive in.
pub(crate) const UPSERT_PING: &str = concat!(
    "INSERT INTO clients (",
    client_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $5, $6, $7) \
     ON CONFLICT (client_id) DO UPDATE SET username = excluded.username, \
     hostname = excluded.hostname, version = excluded.version, last_seen = excluded.last_seen, \
     last_ip = excluded.last_ip, local_workspaces = excluded.local_workspaces \
     WHERE clients.last_seen <= excluded.last_seen"
);

pub(crate) const LIST_CLIENTS: &str = concat!(
    "SELECT ",
    client_columns!(),
    " FROM clients WHERE ($1 IS NULL OR username = $1) ORDER BY last_seen DESC, client_id"
);

pub(crate) const INSERT_LOGIN_ATTEMPT: &str =
    "INSERT INTO login_attempts (username, ip, success, at) VALUES ($1, $2, $3, $4)";

/// What the attempts for one name say, as five columns: the failures from one address at or
/// after $3 that no later success from that address cleared; the failures from every address
/// at or after $3; how many addresses those came from; the latest of them; and the successes
/// from the address at or after $4.
pub(crate) const LOGIN_PRESSURE: &str = "SELECT \
     (SELECT COUNT(*) FROM login_attempts f \
      WHERE f.username = $1 AND f.ip = $2 AND f.success = FALSE AND f.at >= $3 \
      AND NOT EXISTS (SELECT 1 FROM login_attempts s WHERE s.username = $1 AND s.ip = $2 \
                      AND s.success = TRUE AND s.at >= f.at)), \
     (SELECT COUNT(*) FROM login_attempts \
      WHERE username = $1 AND success = FALSE AND at >= $3), \
     (SELECT COUNT(DISTINCT ip) FROM login_attempts \
      WHERE username = $1 AND success = FALSE AND at >= $3), \
     (SELECT MAX(at) FROM login_attempts \
      WHERE username = $1 AND success = FALSE AND at >= $3), \
     (SELECT COUNT(*) FROM login_attempts \
      WHERE username = $1 AND ip = $2 AND success = TRUE AND at >= $4)";

pub(crate) const PRUNE_LOGIN_ATTEMPTS: &str = "DELETE FROM login_attempts \
     WHERE (success = FALSE AND at < $1) OR (success = TRUE AND at < $2)";

pub(crate) const APPEND_AUDIT: &str = "INSERT INTO audit_log \
     (at, actor, action, target, ip, details, outcome) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";

/// `SELECT ... FROM workspaces` for a filter, with its text values to bind in order.
pub(crate) fn list_workspaces(filter: &WorkspaceFilter) -> (String, Vec<String>) {
    let mut sql = concat!(
        "SELECT ",
        workspace_columns!(),
        " FROM workspaces WHERE 1 = 1"
    )
    .to_owned();
    let mut binds = Vec::new();
    if let Some(owner) = &filter.owner {
        binds.push(owner.as_str().to_owned());
        let _ = write!(sql, " AND owner = ${}", binds.len());
    }
    if let Some(member) = &filter.member {
        binds.push(member.as_str().to_owned());
        let _ = write!(
            sql,
            " AND id IN (SELECT workspace_id FROM workspace_members WHERE username = ${})",
            binds.len()
        );
    }
    push_states(&mut sql, &mut binds, &filter.states);
    sql.push_str(" ORDER BY created_at, id");
    (sql, binds)
}

/// `SELECT COUNT(*)` of one owner's workspaces in some states, with its values to bind.
pub(crate) fn count_workspaces(
    owner: &Username,
    states: &[WorkspaceState],
) -> (String, Vec<String>) {
    let mut sql = "SELECT COUNT(*) FROM workspaces WHERE owner = $1".to_owned();
    let mut binds = vec![owner.as_str().to_owned()];
    push_states(&mut sql, &mut binds, states);
    (sql, binds)
}

fn push_states(sql: &mut String, binds: &mut Vec<String>, states: &[WorkspaceState]) {
    if states.is_empty() {
        return;
    }
    sql.push_str(" AND state IN (");
    for (i, state) in states.iter().enumerate() {
        binds.push(state.as_str().to_owned());
        let _ = write!(sql, "{}${}", if i > 0 { ", " } else { "" }, binds.len());
    }
    sql.push(')');
}

pub(crate) fn username(text: String) -> Result<Username, StoreError> {
    Username::new(text).map_err(|e| StoreError::Corrupt(format!("stored username: {e}")))
}

pub(crate) fn state(text: &str) -> Result<WorkspaceState, StoreError> {
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("{e}")))
}

pub(crate) fn ip(text: &str) -> Result<IpAddr, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("stored IP address {text:?}")))
}

pub(crate) fn json(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("stored JSON document: {e}")))
}

/// A stored tag list (`,a,b,`, or empty text for none: see `tables::filters::tags_text`).
pub(crate) fn tags(text: &str) -> Result<Vec<String>, StoreError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let inner = text
        .strip_prefix(',')
        .and_then(|t| t.strip_suffix(','))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| StoreError::Corrupt(format!("stored tag list {text:?}")))?;
    inner
        .split(',')
        .map(|tag| {
            if berth_types::fleet::is_label(tag) {
                Ok(tag.to_owned())
            } else {
                Err(StoreError::Corrupt(format!("stored tag {tag:?}")))
            }
        })
        .collect()
}

/// A timestamp as table queries return it.
pub(crate) fn time_json(at: OffsetDateTime) -> Result<Value, StoreError> {
    timestamp::to_text(at)
        .map(Value::String)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The error for a compare-and-set that found the workspace in state `now`.
pub(crate) fn cas_conflict(workspace: WorkspaceId, now: &str, update: &StateUpdate) -> StoreError {
    StoreError::Conflict(format!(
        "workspace {workspace} is {now}, not {}",
        update.expect.map_or("-", WorkspaceState::as_str)
    ))
}
