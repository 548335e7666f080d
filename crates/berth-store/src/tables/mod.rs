//! Table queries: the small query language behind `POST /api/v1/tables/query`.
//!
//! A query names a table and columns from a whitelist: `workspaces`, `clients` and `audit`
//! (`docs/store.md` lists their columns). Every column has a type, so filter values are checked
//! and bound as parameters, never spliced into SQL; a wrong name or type is
//! [`crate::StoreError::InvalidQuery`]. Results come in pages with keyset pagination: a cursor
//! holds the last row's sort-key values, so the next page starts strictly after that row and
//! pages stay consistent while rows are inserted between fetches.
//!
//! ```json
//! {"table": "workspaces", "columns": ["id", "owner", "state"],
//!  "filters": [{"column": "state", "op": "in", "value": ["running", "starting"]}],
//!  "sort": [{"column": "created_at", "desc": true}], "limit": 50}
//! ```

pub(crate) mod cursor;
pub(crate) mod filters;
pub(crate) mod plan;
pub(crate) mod schema;

use crate::StoreError;

/// Rows per page when the query gives no limit.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest page a query may ask for.
pub const MAX_LIMIT: u32 = 500;

// The wire types are the API's: a query arrives from the API as it is stored here.
pub use berth_types::api::{FilterOp, SortKey, TableFilter, TableQuery, TableResult};

pub(crate) fn invalid(message: String) -> StoreError {
    StoreError::InvalidQuery(message)
}
