//! `/api/v1/grids`: a layout of up to four panes, each a workspace, opened over one socket.
//! Grids live in memory (a view, cheap to make again); another user's grid answers 404.

use axum::extract::State;
use axum::http::StatusCode;
use berth_core::bridge::{Grid, GridError, GridId};
use berth_terminal::Caller as TerminalCaller;
use berth_types::api::{ConnectAll, GridView, NewGrid, PaneState, PaneStatus, SetPanes};
use berth_types::{TerminalTarget, WorkspaceId};

use crate::auth::{AuthUser, Caller};
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::state::AppState;

fn view(grid: Grid) -> GridView {
    GridView {
        page_url: format!("/g/{}", grid.id),
        id: grid.id,
        owner: grid.owner,
        layout: grid.layout,
        panes: grid
            .panes
            .iter()
            .filter_map(TerminalTarget::workspace)
            .collect(),
    }
}

fn grid_error(err: GridError) -> ApiError {
    match err {
        GridError::NotFound => ApiError::not_found("no such grid"),
        GridError::TooManyGrids => ApiError::conflict("too_many_grids", err.to_string()),
        other => ApiError::invalid(other.to_string()),
    }
}

/// The grid if `caller` owns it (or is an admin); 404 otherwise.
pub(crate) fn owned(state: &AppState, caller: &Caller, id: GridId) -> Result<Grid, ApiError> {
    let grid = state.terminals.grids().grid(id).map_err(grid_error)?;
    if grid.owner == caller.username || caller.is_admin() {
        Ok(grid)
    } else {
        Err(ApiError::not_found("no such grid"))
    }
}

/// Refuses panes of workspaces the caller has no role in, as if they did not exist.
async fn check_panes(
    state: &AppState,
    caller: &Caller,
    panes: &[WorkspaceId],
) -> Result<(), ApiError> {
    for &id in panes {
        crate::workspaces::joinable(state, caller, id).await?;
    }
    Ok(())
}

fn targets(panes: &[WorkspaceId]) -> Vec<TerminalTarget> {
    panes
        .iter()
        .copied()
        .map(TerminalTarget::Workspace)
        .collect()
}

pub(crate) async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Json(body): Json<NewGrid>,
) -> Result<(StatusCode, Json<GridView>), ApiError> {
    check_panes(&state, &caller, &body.panes).await?;
    let grid = state
        .terminals
        .grids()
        .create_grid(&caller.username, body.layout, targets(&body.panes))
        .map_err(grid_error)?;
    Ok((StatusCode::CREATED, Json(view(grid))))
}

pub(crate) async fn set_panes(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<GridId>,
    Json(body): Json<SetPanes>,
) -> Result<Json<GridView>, ApiError> {
    let grid = owned(&state, &caller, id)?;
    check_panes(&state, &caller, &body.panes).await?;
    let layout = body.layout.unwrap_or(grid.layout);
    let grid = state
        .terminals
        .grids()
        .set_panes(id, layout, targets(&body.panes))
        .map_err(grid_error)?;
    Ok(Json(view(grid)))
}

pub(crate) async fn connect_all(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<GridId>,
) -> Result<Json<ConnectAll>, ApiError> {
    let grid = owned(&state, &caller, id)?;
    let who = TerminalCaller {
        username: caller.username.clone(),
        role: caller.role,
    };
    let mut panes = Vec::with_capacity(grid.panes.len());
    for (pane, target) in grid.panes.into_iter().enumerate() {
        let Some(workspace) = target.workspace() else {
            continue;
        };
        let (state_name, title) = match state.terminals.grant(&target, &who).await {
            Ok(Some(grant)) if grant.unavailable.is_some() => (PaneState::NotRunning, grant.title),
            Ok(Some(grant)) => (PaneState::Ready, grant.title),
            Ok(None) | Err(_) => (PaneState::NotFound, String::new()),
        };
        panes.push(PaneStatus {
            pane,
            workspace,
            state: state_name,
            title,
        });
    }
    Ok(Json(ConnectAll {
        ws_url: format!("/api/v1/grids/{id}/ws"),
        panes,
    }))
}
