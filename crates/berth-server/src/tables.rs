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
    // A user's rows: their own, and the machines their users.yaml selectors match.
    let scope = crate::fleet::selectors(&state, &caller).map(|machines| berth_core::TableScope {
        user: caller.username.clone(),
        machines,
    });
    Ok(Json(state.tables.query(&query, scope.as_ref()).await?))
}
