//! `POST /api/v1/tables/query`: table queries over runtime state; users see only their rows.

use axum::extract::State;
use berth_types::api::{FilterOp, TableQuery, TableResult};

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;

fn op(op: FilterOp) -> berth_store::FilterOp {
    use berth_store::FilterOp as O;
    match op {
        FilterOp::Eq => O::Eq,
        FilterOp::In => O::In,
        FilterOp::Gt => O::Gt,
        FilterOp::Lt => O::Lt,
        FilterOp::Gte => O::Gte,
        FilterOp::Lte => O::Lte,
    }
}

pub(crate) async fn query(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Json(query): Json<TableQuery>,
) -> Result<Json<TableResult>, ApiError> {
    let query = berth_store::TableQuery {
        table: query.table,
        columns: query.columns,
        filters: query
            .filters
            .into_iter()
            .map(|f| berth_store::Filter {
                column: f.column,
                op: op(f.op),
                value: f.value,
            })
            .collect(),
        sort: query
            .sort
            .into_iter()
            .map(|s| berth_store::SortKey {
                column: s.column,
                desc: s.desc,
            })
            .collect(),
        limit: query.limit,
        cursor: query.cursor,
    };
    let scope = (!caller.is_admin()).then_some(&caller.username);
    let page = state.store.query_table(&query, scope).await?;
    Ok(Json(TableResult {
        rows: page.rows,
        total: page.total,
        next_cursor: page.next_cursor,
    }))
}
