//! `/api/v1/clusters`: ask for an ephemeral Kubernetes cluster, list, show, extend, download
//! the kubeconfig, delete.
//!
//! A user sees and touches only their own clusters: another user's id answers 404, exactly
//! like an id that does not exist. Admins act on all of them. Asking for a cluster needs
//! main.yaml `clusters.enabled` and, for users, users.yaml `clusters: true`.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::{ClusterError, ClusterFilter, ClusterRecord, Clusters};
use berth_types::api::{ClusterList, ClusterQuery, ClusterView, ExtendCluster, NewCluster};
use berth_types::{ClusterId, ClusterState};

use crate::auth::{AuthUser, Caller, ClientIp};
use crate::error::ApiError;
use crate::extract::{Json, NoQuery, Path, Query};
use crate::state::AppState;

pub(crate) fn view(record: ClusterRecord) -> ClusterView {
    ClusterView {
        id: record.id,
        name: record.name,
        owner: record.owner,
        provider: record.provider,
        state: record.state,
        state_reason: record.state_reason,
        api_url: record.api_url,
        created_at: record.created_at,
        running_at: record.running_at,
        expires_at: record.expires_at,
        max_expires_at: record.max_expires_at,
    }
}

impl ApiError {
    pub(crate) fn cluster(err: ClusterError) -> Self {
        match err {
            ClusterError::NotFound => Self::not_found("no such cluster"),
            e @ ClusterError::NameTaken(_) => Self::conflict("name_taken", e.to_string()),
            e @ ClusterError::Quota { .. } => Self::conflict("quota_exceeded", e.to_string()),
            ClusterError::TtlTooLong(message) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "ttl_too_long", message)
            }
            e @ ClusterError::WrongState { .. } => Self::conflict("wrong_state", e.to_string()),
            ClusterError::Store(e) => Self::from(e),
            e @ (ClusterError::Provider(_) | ClusterError::Seal(_)) => Self::internal(e),
        }
    }
}

/// The cluster service, or 403 `clusters_disabled` when main.yaml does not enable it.
pub(crate) fn service(state: &AppState) -> Result<&Clusters, ApiError> {
    state.clusters.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "clusters_disabled",
            "clusters are not enabled on this server (main.yaml clusters.enabled)",
        )
    })
}

/// Whether `caller` may ask for clusters: admins, and users with users.yaml `clusters: true`.
pub(crate) fn may_create(state: &AppState, caller: &Caller) -> bool {
    caller.is_admin()
        || state
            .config
            .current()
            .user(caller.username.as_str())
            .is_some_and(|user| user.clusters)
}

/// The cluster `id` if `caller` may see it; 404 otherwise.
async fn visible(
    clusters: &Clusters,
    caller: &Caller,
    id: ClusterId,
) -> Result<ClusterRecord, ApiError> {
    let record = clusters.get(id).await.map_err(ApiError::cluster)?;
    if record.owner != caller.username && !caller.is_admin() {
        return Err(ApiError::not_found("no such cluster"));
    }
    Ok(record)
}

/// `POST /api/v1/clusters`.
pub(crate) async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ClientIp(ip): ClientIp,
    Json(body): Json<NewCluster>,
) -> Result<(StatusCode, Json<ClusterView>), ApiError> {
    let clusters = service(&state)?;
    if !may_create(&state, &caller) {
        return Err(ApiError::forbidden(
            "you may not ask for clusters: an admin allows it (users.yaml clusters: true)",
        ));
    }
    let record = clusters
        .create(
            &caller.username,
            body.name,
            body.ttl.map(|ttl| ttl.0.get()),
            Some(ip),
        )
        .await
        .map_err(ApiError::cluster)?;
    Ok((StatusCode::CREATED, Json(view(record))))
}

/// `GET /api/v1/clusters`.
pub(crate) async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Query(query): Query<ClusterQuery>,
) -> Result<Json<ClusterList>, ApiError> {
    let clusters = service(&state)?;
    let owner = match query.owner {
        Some(owner) if caller.is_admin() || owner == caller.username => Some(owner),
        Some(_) => {
            return Err(ApiError::forbidden(
                "only admins list other users' clusters",
            ));
        }
        None if caller.is_admin() => None,
        None => Some(caller.username.clone()),
    };
    let states = match query.state {
        Some(one) => vec![one],
        None => ClusterState::ALL
            .into_iter()
            .filter(|s| *s != ClusterState::Deleted)
            .collect(),
    };
    let records = clusters
        .list(&ClusterFilter { owner, states })
        .await
        .map_err(ApiError::cluster)?;
    Ok(Json(ClusterList {
        clusters: records.into_iter().map(view).collect(),
    }))
}

/// `GET /api/v1/clusters/{id}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<ClusterId>,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<Json<ClusterView>, ApiError> {
    let clusters = service(&state)?;
    Ok(Json(view(visible(clusters, &caller, id).await?)))
}

/// `DELETE /api/v1/clusters/{id}`: 204 once it is `deleting` (or already gone).
pub(crate) async fn delete(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<ClusterId>,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<StatusCode, ApiError> {
    let clusters = service(&state)?;
    visible(clusters, &caller, id).await?;
    let reason = format!("deleted by {}", caller.username);
    clusters
        .delete(id, (&caller.username).into(), &reason, Some(ip))
        .await
        .map_err(ApiError::cluster)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/clusters/{id}/extend` `{ttl}`.
pub(crate) async fn extend(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<ClusterId>,
    Json(body): Json<ExtendCluster>,
) -> Result<Json<ClusterView>, ApiError> {
    let clusters = service(&state)?;
    visible(clusters, &caller, id).await?;
    let record = clusters
        .extend(id, body.ttl.0.get(), &caller.username, Some(ip))
        .await
        .map_err(ApiError::cluster)?;
    Ok(Json(view(record)))
}

/// `GET /api/v1/clusters/{id}/kubeconfig`: the owner's or an admin's, as
/// `application/yaml`, never cached; the download is audited.
pub(crate) async fn kubeconfig(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<ClusterId>,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<Response, ApiError> {
    let clusters = service(&state)?;
    let record = visible(clusters, &caller, id).await?;
    let kubeconfig = clusters
        .kubeconfig(id, &caller.username, Some(ip))
        .await
        .map_err(ApiError::cluster)?;
    let disposition = format!("attachment; filename=\"{}.kubeconfig.yaml\"", record.name);
    let mut response = kubeconfig.into_bytes().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/yaml"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
