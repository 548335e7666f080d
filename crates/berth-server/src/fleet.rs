//! `/api/v1/fleet` and `/api/v1/machines`: the inventory's syncs, the webhook, machines with
//! their enrollment and health, verify and trust.
//!
//! Admins see every machine; a user sees the machines the `machines:` selectors of their
//! users.yaml entry match (ids, or `tag:NAME`), none by default. A machine a caller may not
//! see answers 404, exactly like one that does not exist. Syncing, verifying and trusting are
//! for admins. Without `fleet.repository` the lists are empty and the actions answer 409
//! `fleet_disabled`.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use berth_core::fleet::{Fleet, FleetError};
use berth_core::{Actor, MachineRecord, SyncRecord, TableQuery};
use berth_types::MachineId;
use berth_types::api::{
    EnrollmentView, FilterOp, FleetSyncStatus, HealthView, MachineList, MachineQuery, MachineView,
    ProbeView, SecretsKeyView, SortKey, SyncView, TableFilter, TrustHostKey, VerifyAll,
    WebhookAccepted,
};
use berth_types::fleet::{MachineSelector, SyncTrigger};
use serde_json::json;

use crate::auth::{AuthUser, Caller};
use crate::error::ApiError;
use crate::extract::{Json, NoQuery, Path, Query, RawBody};
use crate::state::AppState;

fn disabled() -> ApiError {
    ApiError::conflict(
        "fleet_disabled",
        "there is no fleet: set fleet.repository in main.yaml (docs/fleet.md)",
    )
}

fn fleet(state: &AppState) -> Result<&Fleet, ApiError> {
    state.fleet.as_ref().ok_or_else(disabled)
}

/// The largest webhook body: a push of many commits is far larger than an API request.
pub(crate) const MAX_WEBHOOK_BODY: usize = 4 * 1024 * 1024;

/// The answer for a fleet failure. Only admins act on the fleet, so messages are shown whole;
/// none of them holds a secret.
fn fleet_error(error: FleetError) -> ApiError {
    match error {
        FleetError::NotFound(_) => ApiError::not_found("no such machine"),
        FleetError::Invalid(message) => ApiError::invalid(message),
        FleetError::HostKey(message) => ApiError::conflict("host_key", message),
        FleetError::Unreachable(message) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "machine_unreachable", message)
        }
        FleetError::Cancelled(message) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", message)
        }
        FleetError::WebhookDisabled(_) => ApiError::not_found(
            "the webhook is not set up: put its secret in the keys dir as webhook.secret",
        ),
        FleetError::Webhook(e) => ApiError::unauthenticated(e.to_string()),
        FleetError::Secrets(e) => ApiError::conflict("secrets_key", e.to_string()),
        FleetError::Store(e) => ApiError::internal(e),
    }
}

pub(crate) fn machine_view(record: MachineRecord, with_history: bool) -> MachineView {
    let spec = record.spec;
    MachineView {
        id: spec.id,
        name: spec.name,
        host: spec.host,
        port: spec.port,
        user: spec.user,
        kind: spec.kind,
        tags: spec.tags,
        key: spec.key,
        host_key_pinned: spec.host_key.is_some(),
        proxy_jump: spec.proxy_jump,
        client_id: spec.client_id,
        description: spec.description,
        enrollment: EnrollmentView {
            status: record.enrollment,
            message: record.enrollment_message,
            fingerprint: record.fingerprint,
            verified_at: record.verified_at,
        },
        health: HealthView {
            status: record.health,
            latency_ms: record.latency_ms,
            last_seen: record.last_seen,
            consecutive_failures: record.consecutive_failures,
            checked_at: record.checked_at,
            history: if with_history {
                record
                    .probes
                    .into_iter()
                    .map(|p| ProbeView {
                        at: p.at,
                        latency_ms: p.latency_ms,
                    })
                    .collect()
            } else {
                Vec::new()
            },
        },
        commit: record.commit,
    }
}

pub(crate) fn sync_view(sync: SyncRecord) -> SyncView {
    SyncView {
        id: sync.id,
        trigger: sync.trigger,
        actor: sync.actor,
        started: sync.started_at,
        finished: sync.finished_at,
        result: sync.result,
        commit: sync.commit,
        errors: sync.errors,
        changes: sync.changes,
    }
}

/// The selectors of `caller`'s users.yaml entry; `None` for admins (every machine).
pub(crate) fn selectors(state: &AppState, caller: &Caller) -> Option<Vec<MachineSelector>> {
    if caller.is_admin() {
        return None;
    }
    let config = state.config.current();
    Some(
        config
            .user(caller.username.as_str())
            .map(|user| user.machines.clone())
            .unwrap_or_default(),
    )
}

fn may_see(selectors: Option<&[MachineSelector]>, record: &MachineRecord) -> bool {
    selectors.is_none_or(|selectors| {
        selectors
            .iter()
            .any(|s| s.matches(&record.spec.id, &record.spec.tags))
    })
}

/// `GET /api/v1/machines`.
pub(crate) async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Query(query): Query<MachineQuery>,
) -> Result<Json<MachineList>, ApiError> {
    let mut filters = Vec::new();
    if let Some(kind) = &query.kind {
        filters.push(TableFilter {
            column: "type".into(),
            op: FilterOp::Eq,
            value: json!(kind),
        });
    }
    if let Some(status) = query.status {
        filters.push(TableFilter {
            column: "health".into(),
            op: FilterOp::Eq,
            value: json!(status.as_str()),
        });
    }
    if let Some(enrollment) = query.enrollment {
        filters.push(TableFilter {
            column: "enrollment".into(),
            op: FilterOp::Eq,
            value: json!(enrollment.as_str()),
        });
    }
    if let Some(tag) = &query.tag {
        filters.push(TableFilter {
            column: "tags".into(),
            op: FilterOp::Has,
            value: json!(tag),
        });
    }
    let sort = query
        .sort
        .clone()
        .map(|column| {
            vec![SortKey {
                column,
                desc: query.desc.unwrap_or(false),
            }]
        })
        .unwrap_or_default();
    let table_query = TableQuery {
        table: "machines".into(),
        columns: vec!["id".into()],
        filters,
        sort,
        limit: query.limit,
        cursor: query.cursor.clone(),
    };
    let scope = selectors(&state, &caller).map(|machines| berth_core::TableScope {
        user: caller.username.clone(),
        machines,
    });
    let page = state.tables.query(&table_query, scope.as_ref()).await?;
    let mut records: HashMap<String, MachineRecord> = state
        .store
        .list_machines()
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|r| (r.spec.id.to_string(), r))
        .collect();
    let machines = page
        .rows
        .iter()
        .filter_map(|row| row.get("id").and_then(|v| v.as_str()))
        .filter_map(|id| records.remove(id))
        .map(|r| machine_view(r, false))
        .collect();
    Ok(Json(MachineList {
        machines,
        total: page.total,
        next_cursor: page.next_cursor,
    }))
}

/// The machine `id` if `caller` may see it; 404 otherwise.
async fn visible(
    state: &AppState,
    caller: &Caller,
    id: &MachineId,
) -> Result<MachineRecord, ApiError> {
    let record = state
        .store
        .machine(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("no such machine"))?;
    if !may_see(selectors(state, caller).as_deref(), &record) {
        return Err(ApiError::not_found("no such machine"));
    }
    Ok(record)
}

/// `GET /api/v1/machines/{id}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<MachineId>,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<Json<MachineView>, ApiError> {
    Ok(Json(machine_view(
        visible(&state, &caller, &id).await?,
        true,
    )))
}

/// `POST /api/v1/machines/{id}/verify` (admins).
pub(crate) async fn verify(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<MachineId>,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<Json<MachineView>, ApiError> {
    let fleet = fleet(&state)?;
    let record = fleet
        .verify(&id, &Actor::from(&caller.username))
        .await
        .map_err(fleet_error)?;
    Ok(Json(machine_view(record, true)))
}

/// `POST /api/v1/machines/verify` (admins): every machine, `fleet.max_concurrency` at once.
pub(crate) async fn verify_all(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<Json<VerifyAll>, ApiError> {
    let fleet = fleet(&state)?;
    let outcomes = fleet
        .verify_all(&Actor::from(&caller.username))
        .await
        .map_err(fleet_error)?;
    Ok(Json(VerifyAll {
        machines: outcomes
            .into_iter()
            .filter_map(|o| o.record)
            .map(|r| machine_view(r, false))
            .collect(),
    }))
}

/// `POST /api/v1/machines/{id}/trust` (admins).
pub(crate) async fn trust(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<MachineId>,
    Json(body): Json<TrustHostKey>,
) -> Result<Json<MachineView>, ApiError> {
    let fleet = fleet(&state)?;
    let record = fleet
        .trust(&id, &body.fingerprint, &Actor::from(&caller.username))
        .await
        .map_err(fleet_error)?;
    Ok(Json(machine_view(record, true)))
}

/// `GET /api/v1/fleet/sync` (admins).
pub(crate) async fn sync_status(
    State(state): State<AppState>,
    _: AuthUser,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<Json<FleetSyncStatus>, ApiError> {
    let status = fleet(&state)?.status().await.map_err(fleet_error)?;
    Ok(Json(FleetSyncStatus {
        repository: status.repository,
        branch: status.branch,
        commit: status.commit,
        syncing: status.syncing,
        history: status.history.into_iter().map(sync_view).collect(),
    }))
}

/// `POST /api/v1/fleet/sync` (admins): syncs now and answers the sync, failed or not.
pub(crate) async fn sync_now(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<Json<SyncView>, ApiError> {
    let sync = fleet(&state)?
        .sync(SyncTrigger::Api, Actor::from(&caller.username))
        .await
        .map_err(fleet_error)?;
    Ok(Json(sync_view(sync)))
}

/// `GET /api/v1/fleet/secrets-key` (admins).
pub(crate) async fn secrets_key(
    State(state): State<AppState>,
    _: AuthUser,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<Json<SecretsKeyView>, ApiError> {
    let recipient = fleet(&state)?
        .secrets_recipient()
        .await
        .map_err(fleet_error)?;
    Ok(Json(SecretsKeyView { recipient }))
}

/// `POST /api/v1/fleet/webhook`: a push from the git host, signed with `webhook.secret`.
pub(crate) async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(NoQuery {}): Query<NoQuery>,
    RawBody(body): RawBody<MAX_WEBHOOK_BODY>,
) -> Result<(StatusCode, Json<WebhookAccepted>), ApiError> {
    let fleet = fleet(&state)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match fleet.webhook(header, &body) {
        Ok(sender) => {
            tracing::info!(sender, "fleet webhook verified; syncing");
            Ok((
                StatusCode::ACCEPTED,
                Json(WebhookAccepted {
                    sender: sender.to_owned(),
                }),
            ))
        }
        Err(e) => {
            tracing::warn!(error = %e, "fleet webhook refused");
            Err(fleet_error(e))
        }
    }
}
