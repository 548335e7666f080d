//! [`ApiError`]: every failure as `{"error": {"code", "message", "details"}}` with its status.
//!
//! Server-side failures (5xx) are logged with their cause and answered with a generic message,
//! so internals (paths, SQL, engine messages) never reach callers who cannot act on them.

use std::fmt;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::WorkspaceError;
use berth_types::api::{ErrorBody, ErrorDetail};
use serde_json::{Value, json};

/// The code of a change refused because the configuration files on disk are invalid.
const CONFIG_INVALID_ON_DISK: &str = "config_invalid_on_disk";

/// A failed request, answered as `{"error": {"code", "message", "details"}}` with its status.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) details: Option<Value>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The `Retry-After` seconds of a 429.
    pub(crate) fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub(crate) fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// This error as `caller` may see it. The errors of invalid configuration files on disk
    /// (their files, lines and messages, which quote every user and template) are for admins;
    /// a user, whose own change (a client token) found them, gets the code and a generic
    /// message.
    pub(crate) fn seen_by(self, caller: &crate::auth::Caller) -> Self {
        if caller.is_admin() || self.code != CONFIG_INVALID_ON_DISK {
            return self;
        }
        Self::conflict(
            CONFIG_INVALID_ON_DISK,
            "the configuration files on disk are invalid: nothing can be changed until an \
             admin fixes them",
        )
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    /// 429 with `Retry-After` rounded up to whole seconds.
    pub(crate) fn too_many(code: &'static str, message: impl Into<String>, wait: Duration) -> Self {
        let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, code, message);
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        error.retry_after = Some(seconds.max(1));
        error.details = Some(json!({ "retry_after_seconds": seconds.max(1) }));
        error
    }

    /// A 500 whose cause is logged, not shown.
    pub(crate) fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to handle the request; the cause is in its log",
        )
    }

    /// The answer for a bare status (axum's 404, 405, ...), in Berth's shape.
    pub(crate) fn from_status(status: StatusCode, message: impl Into<String>) -> Self {
        let code = match status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            s if s.is_server_error() => "internal",
            _ => "error",
        };
        Self::new(status, code, message)
    }

    /// A workspace manager failure. Engine failures are shown in full to admins only: an
    /// image missing from the engine is for them to fix, and its message names internals.
    pub(crate) fn workspace(err: WorkspaceError, admin: bool) -> Self {
        match err {
            WorkspaceError::NotFound => Self::not_found("no such workspace"),
            WorkspaceError::Forbidden(message) => Self::forbidden(message),
            e @ (WorkspaceError::QuotaExceeded { .. }
            | WorkspaceError::TemplateQuotaExceeded { .. }) => {
                Self::conflict("quota_exceeded", e.to_string())
            }
            WorkspaceError::InvalidOption(message) => Self::invalid(message),
            WorkspaceError::Conflict(message) => Self::conflict("conflict", message),
            WorkspaceError::Runtime(e) => {
                tracing::warn!(error = %e, "the container engine failed");
                let message = if admin {
                    format!("the container engine failed: {e}")
                } else {
                    "the container engine failed; an administrator can find the cause in \
                     Berth's log"
                        .to_owned()
                };
                Self::new(StatusCode::BAD_GATEWAY, "engine_failed", message)
            }
            WorkspaceError::Store(e) => Self::from(e),
        }
    }
}

impl From<berth_core::StoreError> for ApiError {
    fn from(err: berth_core::StoreError) -> Self {
        use berth_core::StoreError as E;
        match err {
            E::NotFound => Self::not_found("not found"),
            E::Conflict(message) => Self::conflict("conflict", message),
            E::InvalidQuery(message) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_query", message)
            }
            E::InvalidInput(message) => Self::bad_request(message),
            other => Self::internal(other),
        }
    }
}

impl From<berth_config::StoreError> for ApiError {
    fn from(err: berth_config::StoreError) -> Self {
        use berth_config::StoreError as E;
        match err {
            E::Invalid(errors) => Self::invalid(format!(
                "refused: the configuration would be invalid ({} error(s))",
                errors.len()
            ))
            .with_details(config_errors(&errors)),
            E::InvalidOnDisk(errors) => Self::conflict(
                CONFIG_INVALID_ON_DISK,
                "the configuration files on disk are invalid; fix them first",
            )
            .with_details(config_errors(&errors)),
            e @ (E::NoSuchUser(_)
            | E::NoSuchTemplate(_)
            | E::NoSuchClient { .. }
            | E::NoSuchSshKey { .. }) => Self::not_found(e.to_string()),
            e @ (E::UserExists(_)
            | E::AdminName(_)
            | E::TemplateExists(_)
            | E::SshKeyExists { .. }) => Self::conflict("already_exists", e.to_string()),
            e @ E::TemplateInUse { .. } => Self::conflict("in_use", e.to_string()),
            e @ E::AccessLocked { .. } => {
                Self::new(StatusCode::FORBIDDEN, "access_locked", e.to_string())
            }
            E::Unchangeable(message) => Self::invalid(message),
            E::Password(e) => Self::invalid(e.to_string()).with_details(
                json!({ "errors": [{ "field": "password", "message": e.to_string() }] }),
            ),
            e @ E::Io { .. } => Self::internal(e),
        }
    }
}

/// Validation errors as `{"errors": [{file, line, path, field, message}]}`; `field` is the path
/// within the entry changed (`image` for `templates[3].image`), as a request body names it.
fn config_errors(errors: &berth_config::ConfigErrors) -> Value {
    let list: Vec<Value> = errors
        .iter()
        .map(|e| {
            json!({
                "file": e.file,
                "line": e.line,
                "path": e.path,
                "field": entry_field(&e.path),
                "message": e.message,
            })
        })
        .collect();
    json!({ "errors": list })
}

/// `templates[3].volumes[0].name` → `volumes[0].name`; `users[2]` → ``.
fn entry_field(path: &str) -> String {
    for list in ["templates[", "users["] {
        if let Some(rest) = path.strip_prefix(list)
            && let Some((_, field)) = rest.split_once(']')
        {
            return field.trim_start_matches('.').to_owned();
        }
    }
    path.to_owned()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                details: self.details,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"berth\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::entry_field;

    #[test]
    fn field_paths_are_relative_to_the_entry() {
        assert_eq!(entry_field("templates[3].image"), "image");
        assert_eq!(
            entry_field("templates[0].volumes[1].name"),
            "volumes[1].name"
        );
        assert_eq!(entry_field("users[12].templates[0]"), "templates[0]");
        assert_eq!(entry_field("users[2]"), "");
        assert_eq!(entry_field("admin.username"), "admin.username");
    }
}
