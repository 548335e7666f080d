//! `/api/v1/grids`: a layout of up to four panes, each a workspace or a fleet machine, opened
//! over one socket. Grids live in memory (a view, cheap to make again); another user's grid
//! answers 404, and so does a pane's target the caller may not see.

use axum::extract::State;
use axum::http::StatusCode;
use berth_core::bridge::{Grid, GridError, GridId, GridRequest};
use berth_terminal::{Caller as TerminalCaller, OpenError};
use berth_types::api::{ConnectAll, GridView, NewGrid, PaneState, PaneStatus, SetPanes};
use berth_types::{PaneTarget, TerminalTarget};

use crate::auth::{AuthUser, Caller, ClientIp};
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::state::AppState;

fn view(grid: Grid) -> GridView {
    GridView {
        page_url: format!("/g/{}", grid.id),
        id: grid.id,
        owner: grid.owner,
        layout: grid.layout,
        panes: grid.panes.into_iter().map(PaneTarget::from).collect(),
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

/// The panes' targets, each one the caller may see: a workspace they have a role in, a
/// machine their selectors match; any other is refused as if it did not exist.
async fn check_panes(
    state: &AppState,
    caller: &Caller,
    panes: Vec<PaneTarget>,
) -> Result<Vec<TerminalTarget>, ApiError> {
    let who = TerminalCaller {
        username: caller.username.clone(),
        role: caller.role,
    };
    let mut targets = Vec::with_capacity(panes.len());
    for pane in panes {
        let target = TerminalTarget::from(pane);
        match &target {
            TerminalTarget::Workspace(id) => {
                crate::workspaces::joinable(state, caller, *id).await?;
            }
            TerminalTarget::Machine(_) => match state.terminals.grant(&target, &who).await {
                Ok(Some(_)) => {}
                Ok(None) | Err(OpenError::NotFound(_)) => {
                    return Err(ApiError::not_found("no such machine"));
                }
                Err(err) => return Err(ApiError::internal(err)),
            },
        }
        targets.push(target);
    }
    Ok(targets)
}

pub(crate) async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Json(body): Json<NewGrid>,
) -> Result<(StatusCode, Json<GridView>), ApiError> {
    let targets = check_panes(&state, &caller, body.panes).await?;
    let grid = state
        .terminals
        .grids()
        .create_grid(&caller.username, body.layout, targets)
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
    let targets = check_panes(&state, &caller, body.panes).await?;
    let layout = body.layout.unwrap_or(grid.layout);
    let grid = state
        .terminals
        .grids()
        .set_panes(id, layout, targets)
        .map_err(grid_error)?;
    Ok(Json(view(grid)))
}

/// A pane's outcome as the API reports it, the message for people (internal causes stay in
/// the log).
fn pane_state(outcome: &Result<(), OpenError>) -> (PaneState, String) {
    match outcome {
        Ok(()) => (PaneState::Connected, String::new()),
        Err(OpenError::NotFound(_)) => (PaneState::NotFound, outcome_message(outcome)),
        Err(OpenError::Unavailable { reason, message }) => {
            (PaneState::unavailable(*reason), message.clone())
        }
        Err(OpenError::Forbidden(message) | OpenError::Invalid(message)) => {
            (PaneState::Failed, message.clone())
        }
        Err(OpenError::Failed(err)) => {
            tracing::warn!(error = %err, "a grid pane could not open");
            (
                PaneState::Failed,
                "the terminal could not open; an administrator can find the cause in Berth's log"
                    .to_owned(),
            )
        }
    }
}

fn outcome_message(outcome: &Result<(), OpenError>) -> String {
    outcome
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// `POST /api/v1/grids/{id}/connect-all`: opens every pane's session at once (SSH to each
/// machine in parallel) and holds them for the grid's socket; says per pane why one did not.
pub(crate) async fn connect_all(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<GridId>,
) -> Result<Json<ConnectAll>, ApiError> {
    owned(&state, &caller, id)?;
    let request = GridRequest {
        user: caller.username.clone(),
        account: caller.role,
        ip: Some(ip),
    };
    let report = state
        .terminals
        .connect_all(id, request)
        .await
        .map_err(grid_error)?;
    let panes = report
        .into_iter()
        .map(|pane| {
            let (state, message) = pane_state(&pane.outcome);
            PaneStatus {
                pane: pane.pane,
                workspace: pane.target.workspace(),
                target: pane.target,
                state,
                title: pane.title,
                message,
            }
        })
        .collect();
    Ok(Json(ConnectAll {
        ws_url: format!("/api/v1/grids/{id}/ws"),
        panes,
        held_seconds: state.terminals.connect_hold().as_secs(),
    }))
}
