//! The one error shape of every failure.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Every error response: `{"error": {"code", "message", "details"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong, for programs (`code`) and for people (`message`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code: `unauthenticated`, `not_found`, `invalid`, ...
    pub code: String,
    /// One or two sentences a person can act on.
    pub message: String,
    /// More about the error when there is more: the field paths of a validation error, the
    /// limit that was reached. `null` otherwise.
    #[serde(default)]
    pub details: Option<serde_json::Value>,
}
