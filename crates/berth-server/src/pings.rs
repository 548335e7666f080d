//! `POST /api/v1/ping`: client liveness, buffered in memory and written in batches.
//!
//! A fleet of CLIs pinging every 30 s would cost one transaction per ping; instead the latest
//! ping of each client waits here and [`Pings::flush`] writes them all in one transaction every
//! few seconds and at shutdown. A failed write keeps the batch for the next attempt.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::State;
use berth_core::{ClientPing, Clients};
use berth_types::ClientId;
use berth_types::api::{LocalWorkspace, PingRequest, PingResponse};
use time::OffsetDateTime;

use crate::auth::{AuthUser, ClientIp, Via};
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;

/// How often CLIs are asked to ping.
pub(crate) const PING_INTERVAL_SECONDS: u32 = 30;
const MAX_LOCAL_WORKSPACES: usize = 100;

/// Pings not yet written, the latest per client.
#[derive(Debug, Default)]
pub(crate) struct Pings {
    pending: Mutex<HashMap<ClientId, ClientPing>>,
}

impl Pings {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientId, ClientPing>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn record(&self, ping: ClientPing) {
        self.lock().insert(ping.client_id, ping);
    }

    /// The pings not yet written.
    pub(crate) fn pending(&self) -> Vec<ClientPing> {
        self.lock().values().cloned().collect()
    }

    /// Writes the pending pings in one transaction.
    pub(crate) async fn flush(&self, clients: &Clients) {
        let batch: Vec<ClientPing> = std::mem::take(&mut *self.lock()).into_values().collect();
        if batch.is_empty() {
            return;
        }
        if let Err(err) = clients.record_pings(&batch).await {
            tracing::warn!(error = %err, pings = batch.len(), "could not record client pings; will retry");
            let mut pending = self.lock();
            for ping in batch {
                // A newer ping that arrived meanwhile wins.
                pending.entry(ping.client_id).or_insert(ping);
            }
        }
    }
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    let chars = value.chars().count();
    if chars == 0 || chars > max || value.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "{field}: 1 to {max} characters, no control characters"
        ))
        .with_details(
            serde_json::json!({ "errors": [{ "field": field, "message": "bad value" }] }),
        ));
    }
    Ok(())
}

fn check(body: &PingRequest) -> Result<(), ApiError> {
    check_text("hostname", &body.hostname, 253)?;
    check_text("version", &body.version, 64)?;
    if body.local_workspaces.len() > MAX_LOCAL_WORKSPACES {
        return Err(ApiError::invalid(format!(
            "local_workspaces: at most {MAX_LOCAL_WORKSPACES}"
        )));
    }
    for (i, w) in body.local_workspaces.iter().enumerate() {
        check_text(&format!("local_workspaces[{i}].id"), &w.id, 128)?;
        check_text(&format!("local_workspaces[{i}].template"), &w.template, 63)?;
        check_text(&format!("local_workspaces[{i}].state"), &w.state, 32)?;
    }
    Ok(())
}

pub(crate) async fn ping(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ClientIp(ip): ClientIp,
    Json(body): Json<PingRequest>,
) -> Result<Json<PingResponse>, ApiError> {
    check(&body)?;
    let owns = match caller.via {
        Via::ClientToken(id) => id == body.client_id,
        Via::Login => state
            .config
            .current()
            .user(caller.username.as_str())
            .is_some_and(|u| u.client_tokens.iter().any(|t| t.id == body.client_id)),
    };
    if !owns {
        return Err(ApiError::forbidden(
            "client_id is not the client of your token (or not one of your clients)",
        ));
    }
    let now = OffsetDateTime::now_utc();
    state.shared.pings.record(ClientPing {
        client_id: body.client_id,
        username: caller.username,
        hostname: body.hostname,
        version: body.version,
        at: now,
        ip,
        local_workspaces: serde_json::to_value(&body.local_workspaces)
            .unwrap_or(serde_json::Value::Null),
    });
    Ok(Json(PingResponse {
        received_at: now,
        interval_seconds: PING_INTERVAL_SECONDS,
    }))
}

/// What a stored `local_workspaces` value says, forgiving values written by older versions.
pub(crate) fn local_workspaces(value: &serde_json::Value) -> Vec<LocalWorkspace> {
    serde_json::from_value(value.clone()).unwrap_or_default()
}
