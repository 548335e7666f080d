//! `/api/v1/workspaces`: start, list, show, stop, start again and delete.
//!
//! A user sees and touches only their own workspaces: another user's id answers 404, exactly
//! like an id that does not exist, so ids cannot be probed. Admins act on all of them.

use axum::extract::State;
use axum::http::StatusCode;
use berth_core::StartOptions;
use berth_core::{Workspace, WorkspaceFilter};
use berth_types::WorkspaceId;
use berth_types::api::{
    StartWorkspace, WorkspaceList, WorkspaceQuery, WorkspaceState, WorkspaceView,
};
use serde_json::json;

use crate::auth::{AuthUser, Caller, ClientIp};
use crate::error::ApiError;
use crate::extract::{Json, NoQuery, Path, Query};
use crate::state::AppState;
use berth_core::{AuditAction, AuditEvent, AuditOutcome};

/// The wire name of a stored state.
pub(crate) fn api_state(state: berth_core::WorkspaceState) -> WorkspaceState {
    use berth_core::WorkspaceState as S;
    match state {
        S::Pending => WorkspaceState::Pending,
        S::Starting => WorkspaceState::Starting,
        S::Running => WorkspaceState::Running,
        S::Stopping => WorkspaceState::Stopping,
        S::Stopped => WorkspaceState::Stopped,
        S::Failed => WorkspaceState::Failed,
    }
}

fn store_state(state: WorkspaceState) -> berth_core::WorkspaceState {
    use berth_core::WorkspaceState as S;
    match state {
        WorkspaceState::Pending => S::Pending,
        WorkspaceState::Starting => S::Starting,
        WorkspaceState::Running => S::Running,
        WorkspaceState::Stopping => S::Stopping,
        WorkspaceState::Stopped => S::Stopped,
        WorkspaceState::Failed => S::Failed,
    }
}

pub(crate) fn view(state: &AppState, w: Workspace) -> WorkspaceView {
    let alive_reason = (w.state == berth_core::WorkspaceState::Running)
        .then(|| state.workspaces.liveness(&w, state.workspaces.now()).reason);
    WorkspaceView {
        id: w.id,
        template: w.template,
        owner: w.owner,
        state: api_state(w.state),
        persistent: w.persistent,
        network: w.network,
        created_at: w.created_at,
        started_at: w.started_at,
        last_activity: w.last_activity,
        expires_at: w.expires_at,
        state_reason: w.state_reason,
        alive_reason,
    }
}

/// The workspace `id` if `caller` may see it; 404 otherwise.
async fn visible(
    state: &AppState,
    caller: &Caller,
    id: WorkspaceId,
) -> Result<Workspace, ApiError> {
    let workspace = state
        .workspaces
        .get(id)
        .await
        .map_err(|e| ApiError::workspace(e, caller.is_admin()))?;
    if workspace.owner != caller.username && !caller.is_admin() {
        return Err(ApiError::not_found("no such workspace"));
    }
    Ok(workspace)
}

fn check_start(body: &StartWorkspace) -> Result<(), ApiError> {
    let bad = |field: &str, what: &str| {
        ApiError::invalid(format!("{field}: {what}"))
            .with_details(json!({ "errors": [{ "field": field, "message": what }] }))
    };
    if body.template.is_empty()
        || body.template.len() > 63
        || body.template.chars().any(char::is_control)
    {
        return Err(bad(
            "template",
            "a template name has 1 to 63 printable characters",
        ));
    }
    if let Some(network) = &body.network
        && (network.is_empty() || network.len() > 128 || network.chars().any(char::is_control))
    {
        return Err(bad(
            "network",
            "a network name has 1 to 128 printable characters",
        ));
    }
    Ok(())
}

/// `POST /api/v1/workspaces`.
pub(crate) async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ClientIp(ip): ClientIp,
    Json(body): Json<StartWorkspace>,
) -> Result<(StatusCode, Json<WorkspaceView>), ApiError> {
    check_start(&body)?;
    let options = StartOptions {
        persist: body.persist,
        network: body.network.clone(),
    };
    let audit = AuditEvent::new(
        &caller.username,
        AuditAction::WorkspaceStart,
        body.template.clone(),
    )
    .from_ip(ip);
    match state
        .workspaces
        .start(&caller.username, &body.template, &options)
        .await
    {
        Ok(workspace) => {
            audit
                .details(json!({ "workspace": workspace.id, "persist": body.persist, "network": body.network }))
                .record_to(&state.audit)
                .await;
            Ok((StatusCode::CREATED, Json(view(&state, workspace))))
        }
        Err(err) => {
            let error = ApiError::workspace(err, caller.is_admin());
            let outcome = if error.status.is_client_error() {
                AuditOutcome::Denied
            } else {
                AuditOutcome::Failure
            };
            audit
                .outcome(outcome)
                .details(json!({ "error": error.message }))
                .record_to(&state.audit)
                .await;
            Err(error)
        }
    }
}

/// `GET /api/v1/workspaces`.
pub(crate) async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Query(query): Query<WorkspaceQuery>,
) -> Result<Json<WorkspaceList>, ApiError> {
    if query.shared && query.owner.is_some() {
        return Err(ApiError::invalid(
            "shared lists the workspaces shared with you: it takes no owner",
        ));
    }
    let owner = match query.owner {
        _ if query.shared => None,
        Some(owner) if owner != caller.username && !caller.is_admin() => {
            return Err(ApiError::forbidden(
                "only admins may list other users' workspaces",
            ));
        }
        Some(owner) => Some(owner),
        None if caller.is_admin() => None,
        None => Some(caller.username.clone()),
    };
    let filter = WorkspaceFilter {
        owner,
        states: query.state.map(store_state).into_iter().collect(),
        member: query.shared.then(|| caller.username.clone()),
    };
    let workspaces = state
        .workspaces
        .list(&filter)
        .await
        .map_err(|e| ApiError::workspace(e, caller.is_admin()))?
        .into_iter()
        .filter(|w| query.template.as_ref().is_none_or(|t| *t == w.template))
        .map(|w| view(&state, w))
        .collect();
    Ok(Json(WorkspaceList { workspaces }))
}

/// `GET /api/v1/workspaces/{id}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<WorkspaceId>,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<Json<WorkspaceView>, ApiError> {
    // Members see the workspace they were invited to (to attach to it); only its owner and
    // admins may change it.
    let workspace = joinable(&state, &caller, id).await?;
    Ok(Json(view(&state, workspace)))
}

/// The workspace if `caller` may join its terminal (its owner, a member or an admin); 404
/// otherwise, as for a workspace that does not exist.
pub(crate) async fn joinable(
    state: &AppState,
    caller: &Caller,
    id: WorkspaceId,
) -> Result<Workspace, ApiError> {
    let failed = |e| ApiError::workspace(e, caller.is_admin());
    let workspace = state.workspaces.get(id).await.map_err(failed)?;
    let role = state
        .workspaces
        .role_in(&workspace, &caller.username, caller.role)
        .await
        .map_err(failed)?;
    match role {
        Some(_) => Ok(workspace),
        None => Err(ApiError::not_found("no such workspace")),
    }
}

/// `POST /api/v1/workspaces/{id}/stop`.
pub(crate) async fn stop(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<WorkspaceId>,
) -> Result<Json<WorkspaceView>, ApiError> {
    let before = visible(&state, &caller, id).await?;
    let reason = format!("stopped by {}", caller.username);
    let result = state.workspaces.stop(id, &reason).await;
    finish(
        &state,
        &caller,
        ip,
        AuditAction::WorkspaceStop,
        &before,
        result,
    )
    .await
}

/// `POST /api/v1/workspaces/{id}/start`.
pub(crate) async fn start(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<WorkspaceId>,
) -> Result<Json<WorkspaceView>, ApiError> {
    let before = visible(&state, &caller, id).await?;
    let result = state.workspaces.start_existing(id).await;
    finish(
        &state,
        &caller,
        ip,
        AuditAction::WorkspaceRestart,
        &before,
        result,
    )
    .await
}

/// `DELETE /api/v1/workspaces/{id}`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<WorkspaceId>,
) -> Result<StatusCode, ApiError> {
    let before = visible(&state, &caller, id).await?;
    let reason = format!("deleted by {}", caller.username);
    let result = state.workspaces.delete(id, &reason).await;
    let audit = AuditEvent::new(
        &caller.username,
        AuditAction::WorkspaceDelete,
        id.to_string(),
    )
    .from_ip(ip)
    .details(json!({ "owner": before.owner, "template": before.template, "state": before.state }));
    match result {
        Ok(()) => {
            audit.record_to(&state.audit).await;
            Ok(StatusCode::NO_CONTENT)
        }
        Err(err) => {
            let error = ApiError::workspace(err, caller.is_admin());
            audit
                .outcome(AuditOutcome::Failure)
                .record_to(&state.audit)
                .await;
            Err(error)
        }
    }
}

async fn finish(
    state: &AppState,
    caller: &Caller,
    ip: std::net::IpAddr,
    action: AuditAction,
    before: &Workspace,
    result: Result<Workspace, berth_core::WorkspaceError>,
) -> Result<Json<WorkspaceView>, ApiError> {
    let audit = AuditEvent::new(&caller.username, action, before.id.to_string()).from_ip(ip);
    match result {
        Ok(after) => {
            audit
                .details(
                    json!({ "owner": before.owner, "before": before.state, "after": after.state }),
                )
                .record_to(&state.audit)
                .await;
            Ok(Json(view(state, after)))
        }
        Err(err) => {
            let error = ApiError::workspace(err, caller.is_admin());
            audit
                .outcome(AuditOutcome::Failure)
                .details(json!({ "owner": before.owner, "before": before.state, "error": error.message }))
                .record_to(&state.audit)
                .await;
            Err(error)
        }
    }
}
