//! `/api/v1/workspaces/{id}/recordings`, `/api/v1/machines/{id}/recordings`,
//! `/api/v1/recordings/{id}` and its `cast`: recordings belong to the workspace's owner (on a
//! machine: to the user who opened the session); only they and admins see them (`docs/recordings.md`).
//! Anyone else gets 404, as for a recording that does not exist.

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use berth_core::{Recording, RecordingId};
use berth_core::{RecordingError, RecordingFile};
use berth_terminal::OpenError;
use berth_types::api::{RecordingList, RecordingView};
use berth_types::{MachineId, TerminalTarget, WorkspaceId};
use tokio::io::AsyncReadExt;

use crate::auth::{AuthUser, Caller, ClientIp};
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::state::AppState;
use berth_core::{AuditAction, AuditEvent};

fn view(r: Recording) -> RecordingView {
    RecordingView {
        cast_url: format!("/api/v1/recordings/{}/cast", r.id),
        id: r.id,
        workspace: r.target.workspace(),
        target: r.target,
        owner: r.owner,
        username: r.username,
        started_at: r.started_at,
        ended_at: r.ended_at,
        bytes: r.bytes,
        width: r.width,
        height: r.height,
    }
}

fn recording_error(err: RecordingError) -> ApiError {
    match err {
        RecordingError::NotFound => ApiError::not_found("no such recording"),
        RecordingError::Live => ApiError::conflict("in_use", RecordingError::Live.to_string()),
        other => ApiError::internal(other),
    }
}

/// `DELETE /api/v1/recordings/{id}` (admins): deletes a finished recording, its file and its
/// row, for output that should never have been kept (a secret printed to the terminal).
/// Audited as `recording.delete`; 409 `in_use` while the session is still recorded.
pub(crate) async fn delete(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<RecordingId>,
) -> Result<axum::http::StatusCode, ApiError> {
    let deleted = state
        .terminals
        .recordings()
        .delete_one(id)
        .await
        .map_err(recording_error)?;
    AuditEvent::new(&caller.username, AuditAction::RecordingDelete, id.to_string()).from_ip(ip)
        .details(serde_json::json!({
            "target": deleted.target,
            "owner": deleted.owner,
            "username": deleted.username,
            "started_at": deleted.started_at.format(&time::format_description::well_known::Rfc3339).ok(),
        }))
        .record_to(&state.audit)
        .await;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

pub(crate) async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<WorkspaceId>,
) -> Result<Json<RecordingList>, ApiError> {
    let admin = caller.is_admin();
    // Recordings outlive their workspace: without one, each row's owner decides. Another
    // user's workspace and an id that names nothing the caller may see answer alike (404), so
    // ids cannot be probed.
    let not_found = || ApiError::not_found("no such workspace");
    let exists = match state.workspaces.get(id).await {
        Ok(ws) if ws.owner != caller.username && !admin => return Err(not_found()),
        Ok(_) => true,
        Err(berth_core::WorkspaceError::NotFound) => false,
        Err(err) => return Err(ApiError::workspace(err, admin)),
    };
    let recordings = state
        .terminals
        .recordings()
        .recordings_for(&TerminalTarget::Workspace(id))
        .await
        .map_err(recording_error)?;
    let recordings: Vec<RecordingView> = recordings
        .into_iter()
        .filter(|r| admin || r.owner == caller.username)
        .map(view)
        .collect();
    if !exists && recordings.is_empty() {
        return Err(not_found());
    }
    Ok(Json(RecordingList { recordings }))
}

/// `GET /api/v1/machines/{id}/recordings`: the sessions on a machine the caller may reach,
/// theirs (every user's for admins), newest first. A machine they may not reach answers 404,
/// as one that does not exist; recordings outlive a machine that left the inventory.
pub(crate) async fn list_machine(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<MachineId>,
) -> Result<Json<RecordingList>, ApiError> {
    let admin = caller.is_admin();
    let target = TerminalTarget::Machine(id);
    let who = berth_terminal::Caller {
        username: caller.username.clone(),
        role: caller.role,
    };
    let exists = match state.terminals.grant(&target, &who).await {
        Ok(Some(_)) => true,
        Ok(None) if !admin => return Err(ApiError::not_found("no such machine")),
        Ok(None) | Err(OpenError::NotFound(_)) => false,
        Err(err) => return Err(ApiError::internal(err)),
    };
    let recordings: Vec<RecordingView> = state
        .terminals
        .recordings()
        .recordings_for(&target)
        .await
        .map_err(recording_error)?
        .into_iter()
        .filter(|r| admin || r.owner == caller.username)
        .map(view)
        .collect();
    // A machine gone from the inventory still lists the caller's own recordings of it.
    if !exists && recordings.is_empty() {
        return Err(ApiError::not_found("no such machine"));
    }
    Ok(Json(RecordingList { recordings }))
}

/// The recording if `caller` may watch it; 404 otherwise.
pub(crate) async fn watchable(
    state: &AppState,
    caller: &Caller,
    id: RecordingId,
) -> Result<RecordingFile, ApiError> {
    let file = state
        .terminals
        .recordings()
        .recording(id)
        .await
        .map_err(recording_error)?;
    if file.recording.owner == caller.username || caller.is_admin() {
        Ok(file)
    } else {
        Err(ApiError::not_found("no such recording"))
    }
}

pub(crate) async fn get(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<RecordingId>,
) -> Result<Json<RecordingView>, ApiError> {
    Ok(Json(view(watchable(&state, &caller, id).await?.recording)))
}

/// How much of the file is read at a time while streaming it.
const CHUNK: usize = 64 * 1024;

pub(crate) async fn cast(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<RecordingId>,
) -> Result<Response, ApiError> {
    let file = watchable(&state, &caller, id).await?;
    let opened = match tokio::fs::File::open(&file.path).await {
        Ok(opened) => opened,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::not_found(
                "the recording's file is gone (removed from the recordings directory)",
            ));
        }
        Err(err) => return Err(ApiError::internal(err)),
    };
    let length = opened.metadata().await.map_err(ApiError::internal)?.len();
    // The file may still grow while its session runs: stream what is there, chunk by chunk.
    let chunks = futures_util::stream::unfold(opened, |mut f| async move {
        let mut buffer = vec![0; CHUNK];
        match f.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buffer)), f))
            }
            Err(err) => Some((Err(err), f)),
        }
    });
    let name = format!("attachment; filename=\"{id}.cast\"");
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/x-asciicast".to_owned()),
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "private, no-cache".to_owned()),
        ],
        Body::from_stream(chunks),
    )
        .into_response();
    // A finished recording's length is known; a running one's is not.
    if file.recording.ended_at.is_some() {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, header::HeaderValue::from(length));
    }
    Ok(response)
}
