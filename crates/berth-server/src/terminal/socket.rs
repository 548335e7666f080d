//! `GET /api/v1/workspaces/{id}/terminal`, `GET /api/v1/machines/{id}/terminal` and
//! `GET /api/v1/grids/{id}/ws`.

use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{OptionalFromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_core::SessionRole;
use berth_core::bridge::{self, AttachRequest, GridError, GridId, GridRequest, Message, close};
use berth_terminal::{OpenError, TtySize};
use berth_types::grid::GridServerMessage;
use berth_types::{MachineId, TerminalTarget, WorkspaceId};
use futures_util::SinkExt;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{origin, ws};
use crate::auth::{Authentication, Caller, ClientIp, authenticate};
use crate::error::ApiError;
use crate::extract::{Path, Query};
use crate::state::AppState;

/// The terminal socket's query.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TerminalQuery {
    /// Initial columns (1..1000; default 80).
    cols: Option<u32>,
    /// Initial rows (1..1000; default 24).
    rows: Option<u32>,
    /// Attach with less than you may: `viewer` (or `peer`).
    #[schemars(with = "Option<String>")]
    role: Option<SessionRole>,
}

/// A WebSocket upgrade, or a Berth error for a plain request.
pub(crate) struct Upgrade(WebSocketUpgrade);

impl OptionalFromRequestParts<AppState> for Upgrade {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(
            <WebSocketUpgrade as axum::extract::FromRequestParts<AppState>>::from_request_parts(
                parts, state,
            )
            .await
            .ok()
            .map(Upgrade),
        )
    }
}

/// The checks before upgrading: the Origin (a plain 403: a page of another site gets nothing),
/// then that this is an upgrade at all.
pub(crate) fn before_upgrade(
    state: &AppState,
    headers: &HeaderMap,
    upgrade: Option<Upgrade>,
) -> Result<WebSocketUpgrade, ApiError> {
    let public_url = state.config.current().main.public_url.clone();
    origin::check(headers, public_url.as_deref())
        .map_err(|why| ApiError::new(StatusCode::FORBIDDEN, "origin_refused", why))?;
    let Some(Upgrade(upgrade)) = upgrade else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "websocket_required",
            "this endpoint is a WebSocket: send an upgrade request",
        ));
    };
    Ok(upgrade
        .max_message_size(ws::MAX_CLIENT_MESSAGE)
        .max_frame_size(ws::MAX_CLIENT_MESSAGE))
}

/// The caller of an upgraded socket, or the close that refuses them.
fn caller(authentication: Authentication) -> Result<Caller, (u16, &'static str)> {
    match authentication {
        Authentication::Caller(caller) => Ok(caller),
        Authentication::Anonymous => Err((close::UNAUTHENTICATED, "log in to use a terminal")),
        Authentication::Rejected => Err((
            close::UNAUTHENTICATED,
            "your session or token expired or was revoked; log in again",
        )),
        Authentication::Malformed(why) => Err((close::UNAUTHENTICATED, why)),
    }
}

/// What a user is told when the attach fails; engine details stay in the log.
fn attach_message(err: &OpenError) -> String {
    match err {
        OpenError::NotFound(_) => err.to_string(),
        OpenError::Forbidden(m)
        | OpenError::Unavailable { message: m, .. }
        | OpenError::Invalid(m) => m.clone(),
        other => {
            tracing::warn!(error = %other, "a terminal could not open");
            "the terminal could not open; an administrator can find the cause in Berth's log"
                .to_owned()
        }
    }
}

/// `GET /api/v1/workspaces/{id}/terminal`.
pub(crate) async fn terminal(
    State(state): State<AppState>,
    Path(id): Path<WorkspaceId>,
    Query(query): Query<TerminalQuery>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    upgrade: Option<Upgrade>,
) -> Response {
    open(state, id.into(), query, ip, &headers, upgrade)
}

/// `GET /api/v1/machines/{id}/terminal`: the same protocol over an SSH PTY on the machine.
pub(crate) async fn machine_terminal(
    State(state): State<AppState>,
    Path(id): Path<MachineId>,
    Query(query): Query<TerminalQuery>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    upgrade: Option<Upgrade>,
) -> Response {
    open(state, id.into(), query, ip, &headers, upgrade)
}

/// A terminal socket on `target`: the Origin is checked before anything else (no connection
/// to a machine is made for a page of another site), then the upgrade, the caller and the
/// attach.
fn open(
    state: AppState,
    target: TerminalTarget,
    query: TerminalQuery,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    upgrade: Option<Upgrade>,
) -> Response {
    let upgrade = match before_upgrade(&state, headers, upgrade) {
        Ok(upgrade) => upgrade,
        Err(err) => return err.into_response(),
    };
    let authentication = authenticate(&state, &state.config.current(), headers);
    let size = TtySize {
        cols: clamp(query.cols, 80),
        rows: clamp(query.rows, 24),
    };
    upgrade
        .on_upgrade(move |socket| async move {
            let (mut sink, mut stream, refusal) = ws::adapt(socket);
            let caller = match caller(authentication) {
                Ok(caller) => caller,
                Err((code, why)) => return refuse(&mut sink, code, why).await,
            };
            let request = AttachRequest {
                want: query.role,
                size,
                ip: Some(ip),
                ..AttachRequest::new(target, caller.username, caller.role)
            };
            match state.terminals.attach(request).await {
                Err(err) => {
                    refuse(&mut sink, bridge::close_code(&err), &attach_message(&err)).await;
                }
                Ok(session) => {
                    let _listed = state.shared.live.list([session.stats()]);
                    session.run(&mut sink, &mut stream).await;
                    refusal.send(&mut sink).await;
                }
            }
        })
        .into_response()
}

/// A size from the query: out-of-range values reach the bridge, which refuses them (4400).
fn clamp(value: Option<u32>, default: u16) -> u16 {
    value.map_or(default, |v| u16::try_from(v).unwrap_or(u16::MAX))
}

async fn refuse(sink: &mut ws::WsSink, code: u16, message: &str) {
    if let Err(err) = bridge::refuse(sink, code, message).await {
        tracing::debug!(error = %err, "could not tell a client why its terminal was refused");
    }
}

pub(crate) async fn grid(
    State(state): State<AppState>,
    Path(id): Path<GridId>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    upgrade: Option<Upgrade>,
) -> Response {
    let upgrade = match before_upgrade(&state, &headers, upgrade) {
        Ok(upgrade) => upgrade,
        Err(err) => return err.into_response(),
    };
    let authentication = authenticate(&state, &state.config.current(), &headers);
    upgrade
        .on_upgrade(move |socket: WebSocket| async move {
            let (mut sink, mut stream, refusal) = ws::adapt(socket);
            let caller = match caller(authentication) {
                Ok(caller) => caller,
                Err((code, why)) => return refuse_grid(&mut sink, code, why).await,
            };
            let request = GridRequest {
                user: caller.username,
                account: caller.role,
                ip: Some(ip),
            };
            match state.terminals.open_grid(id, request).await {
                Err(GridError::NotFound) => {
                    refuse_grid(&mut sink, close::NOT_FOUND, "no such grid").await;
                }
                Err(err) => refuse_grid(&mut sink, close::BAD_REQUEST, &err.to_string()).await,
                Ok(session) => {
                    let _listed = state
                        .shared
                        .live
                        .list(session.stats().into_iter().flatten());
                    session.run(&mut sink, &mut stream).await;
                    refusal.send(&mut sink).await;
                }
            }
        })
        .into_response()
}

/// A grid's refusal: an error about the whole grid (`pane: null`), then the close.
async fn refuse_grid(sink: &mut ws::WsSink, code: u16, message: &str) {
    let error = GridServerMessage::Error {
        pane: None,
        data: message.to_owned(),
    }
    .to_json();
    let sent = async {
        sink.send(Message::Text(error)).await?;
        sink.send(Message::Close(code, "refused".into())).await
    };
    if let Err(err) = sent.await {
        tracing::debug!(error = %err, "could not tell a client why its grid was refused");
    }
}
