//! `GET /api/v1/monitor` (admins): the host, the live workspaces with why each is kept alive,
//! the clients' latest pings (those not yet written included) and the pools.

use std::collections::HashMap;

use axum::extract::State;
use berth_core::{WorkspaceFilter, WorkspaceState};
use berth_types::api::{ClientSeen, Monitor, PoolSize, RunningWorkspace};

use crate::auth::AdminUser;
use crate::error::ApiError;
use crate::extract::{Json, NoQuery, Query};
use crate::pings::local_workspaces;
use crate::state::AppState;
use crate::workspaces::api_state;

pub(crate) async fn monitor(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<Json<Monitor>, ApiError> {
    let last = *state
        .shared
        .cpu
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (host, sample) = crate::host::stats(&state.shared.home, last)
        .await
        .map_err(ApiError::internal)?;
    *state
        .shared
        .cpu
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sample);

    // Liveness is measured by the installation's clock, as activity and TTLs are stamped.
    let now = state.workspaces.now();
    let live = state
        .workspaces
        .list(&WorkspaceFilter {
            owner: None,
            states: WorkspaceState::LIVE.to_vec(),
            ..WorkspaceFilter::default()
        })
        .await
        .map_err(|e| ApiError::workspace(e, true))?;
    let workspaces = live
        .iter()
        .map(|w| {
            let liveness = state.workspaces.liveness(w, now);
            RunningWorkspace {
                id: w.id,
                owner: w.owner.clone(),
                template: w.template.clone(),
                state: api_state(w.state),
                started_at: w.started_at,
                alive_reason: liveness.reason,
                attached: liveness.attached,
                idle_seconds: liveness.idle_for.as_secs(),
                expires_in_seconds: liveness.expires_in.map(|d| d.as_secs()),
            }
        })
        .collect();

    let mut clients: HashMap<_, ClientSeen> = state
        .clients
        .list(None)
        .await?
        .into_iter()
        .map(|c| {
            (
                c.client_id,
                ClientSeen {
                    client_id: c.client_id,
                    username: c.username,
                    hostname: c.hostname,
                    version: c.version,
                    first_seen: c.first_seen,
                    last_seen: c.last_seen,
                    last_ip: c.last_ip.to_string(),
                    local_workspaces: local_workspaces(&c.local_workspaces),
                },
            )
        })
        .collect();
    for ping in state.shared.pings.pending() {
        let first_seen = clients
            .get(&ping.client_id)
            .map_or(ping.at, |c| c.first_seen);
        clients.insert(
            ping.client_id,
            ClientSeen {
                client_id: ping.client_id,
                username: ping.username,
                hostname: ping.hostname,
                version: ping.version,
                first_seen,
                last_seen: ping.at,
                last_ip: ping.ip.to_string(),
                local_workspaces: local_workspaces(&ping.local_workspaces),
            },
        );
    }
    let mut clients: Vec<ClientSeen> = clients.into_values().collect();
    clients.sort_by_key(|c| std::cmp::Reverse(c.last_seen));

    let pools = state
        .workspaces
        .pool_sizes()
        .into_iter()
        .map(|(template, size)| PoolSize {
            template,
            size: size as u64,
        })
        .collect();
    Ok(Json(Monitor {
        host,
        workspaces,
        clients,
        pools,
    }))
}
