//! `POST /api/v1/tables/query`: table queries over runtime state; users see only their rows.

use axum::extract::State;
use berth_types::api::{TableQuery, TableResult};

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;

pub(crate) async fn query(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Json(query): Json<TableQuery>,
) -> Result<Json<TableResult>, ApiError> {
    let scope = (!caller.is_admin()).then_some(&caller.username);
    Ok(Json(state.tables.query(&query, scope).await?))
}
