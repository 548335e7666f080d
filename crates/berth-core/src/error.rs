//! Why a workspace operation failed, in terms the API can map to status codes.

use berth_runtime::RuntimeError;
use berth_store::StoreError;

/// A workspace operation that could not be done.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// No such workspace, or one the caller may not see (the API answers 404 for both).
    #[error("no such workspace")]
    NotFound,
    /// The user may not use this template or option.
    #[error("{0}")]
    Forbidden(String),
    /// The user already runs as many workspaces as allowed.
    #[error("you already have {limit} live workspaces, the most allowed; stop one first")]
    QuotaExceeded {
        /// The per-user limit.
        limit: u32,
    },
    /// The user already runs as many workspaces of this template as it allows.
    #[error(
        "you already have {limit} live workspaces of template {template:?}, the most it allows"
    )]
    TemplateQuotaExceeded {
        /// The template.
        template: String,
        /// Its per-user limit.
        limit: u32,
    },
    /// A request option the template does not allow (persist, network).
    #[error("{0}")]
    InvalidOption(String),
    /// The workspace is not in a state that allows this (e.g. a terminal to a stopped one).
    #[error("{0}")]
    Conflict(String),
    /// The container engine failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The database failed.
    #[error("the state database failed: {0}")]
    Store(#[from] StoreError),
}
