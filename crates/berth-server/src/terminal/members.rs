//! `/api/v1/workspaces/{id}/members`: who may join a shared workspace's terminal, and as what.
//! Only the owner and admins manage members; anyone else gets 404, as for a workspace that
//! does not exist.

use axum::extract::State;
use axum::http::StatusCode;
use berth_core::SessionRole;
use berth_core::bridge::{Revocation, close};
use berth_core::{Member, Workspace};
use berth_types::api::{AddMember, ConnectedView, MemberList, MemberView};
use berth_types::{TerminalTarget, Username, WorkspaceId};
use serde_json::json;

use crate::auth::{AuthUser, Caller, ClientIp};
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::state::AppState;
use berth_core::{AuditAction, AuditEvent};

fn view(member: Member) -> MemberView {
    MemberView {
        username: member.username,
        role: member.role,
        added_by: member.added_by,
        added_at: member.added_at,
    }
}

/// The workspace if `caller` manages it (its owner or an admin); 404 otherwise.
pub(crate) async fn managed(
    state: &AppState,
    caller: &Caller,
    id: WorkspaceId,
) -> Result<Workspace, ApiError> {
    let ws = state
        .workspaces
        .get(id)
        .await
        .map_err(|e| ApiError::workspace(e, caller.is_admin()))?;
    if ws.owner == caller.username || caller.is_admin() {
        Ok(ws)
    } else {
        Err(ApiError::not_found("no such workspace"))
    }
}

pub(crate) async fn add(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<WorkspaceId>,
    Json(body): Json<AddMember>,
) -> Result<(StatusCode, Json<MemberView>), ApiError> {
    managed(&state, &caller, id).await?;
    let username = Username::new(body.username.as_str())
        .map_err(|e| ApiError::invalid(format!("username: {e}")))?;
    let config = state.config.current();
    if config.user(username.as_str()).is_none() && username != config.main.admin.username {
        return Err(ApiError::invalid(format!("there is no user {username}")));
    }
    drop(config);
    let role = body.role;
    let member = state
        .workspaces
        .add_member(id, &username, role, &caller.username)
        .await
        .map_err(|e| ApiError::workspace(e, caller.is_admin()))?;
    // A member attached with another role reconnects and gets the new one.
    let now = SessionRole::from(role);
    let attached_otherwise = state
        .terminals
        .connected(&TerminalTarget::Workspace(id))
        .iter()
        .any(|c| c.username == username && c.role != now && c.role != SessionRole::Owner);
    if attached_otherwise {
        let revocation = Revocation {
            code: close::ROLE_CHANGED,
            message: format!(
                "{} made you a {} here; reconnecting.",
                caller.username,
                now.as_str()
            ),
        };
        state
            .terminals
            .revoke(Some(&TerminalTarget::Workspace(id)), &username, &revocation);
    }
    AuditEvent::new(&caller.username, AuditAction::MemberAdd, id.to_string())
        .from_ip(ip)
        .details(json!({"username": username, "role": body.role}))
        .record_to(&state.audit)
        .await;
    Ok((StatusCode::CREATED, Json(view(member))))
}

pub(crate) async fn remove(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ClientIp(ip): ClientIp,
    Path((id, name)): Path<(WorkspaceId, String)>,
) -> Result<StatusCode, ApiError> {
    managed(&state, &caller, id).await?;
    let username = Username::new(name.as_str())
        .map_err(|_| ApiError::not_found(format!("{name:?} is not a member")))?;
    let removed = state
        .workspaces
        .remove_member(id, &username)
        .await
        .map_err(|e| ApiError::workspace(e, caller.is_admin()))?;
    if !removed {
        return Err(ApiError::not_found(format!("{username} is not a member")));
    }
    // Access ends now, not when their terminals happen to close.
    let revocation = Revocation {
        code: close::FORBIDDEN,
        message: format!("{} removed you from this workspace.", caller.username),
    };
    state
        .terminals
        .revoke(Some(&TerminalTarget::Workspace(id)), &username, &revocation);
    AuditEvent::new(&caller.username, AuditAction::MemberRemove, id.to_string())
        .from_ip(ip)
        .details(json!({"username": username}))
        .record_to(&state.audit)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<WorkspaceId>,
) -> Result<Json<MemberList>, ApiError> {
    let admin = caller.is_admin();
    let ws = state
        .workspaces
        .get(id)
        .await
        .map_err(|e| ApiError::workspace(e, admin))?;
    // Members see who else is in the session they share.
    let role = state
        .workspaces
        .role_of(id, &caller.username, caller.role)
        .await
        .map_err(|e| ApiError::workspace(e, admin))?;
    if role.is_none() {
        return Err(ApiError::not_found("no such workspace"));
    }
    let members = state
        .workspaces
        .members(id)
        .await
        .map_err(|e| ApiError::workspace(e, admin))?;
    let connected = state
        .terminals
        .connected(&TerminalTarget::Workspace(id))
        .into_iter()
        .map(|c| ConnectedView {
            username: c.username,
            role: c.role,
        })
        .collect();
    Ok(Json(MemberList {
        owner: ws.owner,
        members: members.into_iter().map(view).collect(),
        connected,
    }))
}
