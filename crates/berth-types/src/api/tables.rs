//! Table queries: filtered, sorted, keyset-paginated listings of runtime state.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /api/v1/tables/query`: one page of one table (`workspaces`, `clients`, `audit`,
/// `recordings` or `machines`). Users get only their own rows, and the machines their
/// users.yaml `machines:` selectors pick.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableQuery {
    /// `workspaces`, `clients`, `audit`, `recordings` or `machines`.
    #[schemars(extend("enum" = ["workspaces", "clients", "audit", "recordings", "machines"]))]
    pub table: String,
    /// The columns to return; empty means all of them.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Conditions a row must all meet (at most 32).
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub filters: Vec<TableFilter>,
    /// Sort keys, most significant first (at most 4); the table's unique key is appended as a
    /// tie-breaker. Empty means the table's default order.
    #[serde(default)]
    #[schemars(length(max = 4))]
    pub sort: Vec<SortKey>,
    /// Rows per page, 1 to 500; 50 when absent.
    #[serde(default)]
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page, with the same table and sort.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// `column op value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableFilter {
    /// A filterable column.
    pub column: String,
    /// The comparison.
    pub op: FilterOp,
    /// A value of the column's type (an array for `in`, one tag for `has`); `null` with `eq`
    /// matches empty columns.
    pub value: Value,
}

/// A filter comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FilterOp {
    /// Equal.
    Eq,
    /// One of an array of values.
    In,
    /// Greater than.
    Gt,
    /// Less than.
    Lt,
    /// Greater than or equal.
    Gte,
    /// Less than or equal.
    Lte,
    /// A list of tags (`machines.tags`) holds this tag; the only comparison such a column
    /// takes.
    Has,
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SortKey {
    /// A sortable column.
    pub column: String,
    /// Descending; empty (`null`) values sort first ascending and last descending.
    #[serde(default)]
    pub desc: bool,
}

/// One page of rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TableResult {
    /// The rows, each an object of the requested columns.
    pub rows: Vec<Map<String, Value>>,
    /// Rows matching the filters over all pages.
    pub total: u64,
    /// Pass it as `cursor` for the next page; absent on the last one.
    #[serde(default)]
    pub next_cursor: Option<String>,
}
