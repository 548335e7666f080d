//! What can go wrong talking to Berth.

use berth_types::api::ErrorBody;

/// An error answer of the server.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiFailure {
    /// The HTTP status.
    pub status: u16,
    /// The error code (`unauthenticated`, `not_found`, `invalid`, ...).
    pub code: String,
    /// The message for people.
    pub message: String,
    /// The details, when the server gave some.
    pub details: Option<serde_json::Value>,
    /// Seconds to wait before retrying, from `Retry-After` (429 answers).
    pub retry_after: Option<u64>,
}

impl ApiFailure {
    pub(crate) fn from_body(status: u16, body: &[u8], retry_after: Option<u64>) -> Self {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(body) => Self {
                status,
                code: body.error.code,
                message: body.error.message,
                details: body.error.details,
                retry_after,
            },
            Err(_) => Self {
                status,
                code: "unexpected".into(),
                message: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
                details: None,
                retry_after,
            },
        }
    }
}

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL cannot be used.
    #[error("invalid server URL {url:?}: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The server could not be reached, or the connection failed.
    #[error("cannot talk to {url}: {reason}")]
    Transport {
        /// The request's URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// TLS cannot be set up: a CA file that holds no certificate, no trusted roots at all.
    /// (A server whose certificate fails verification is a [`ClientError::Transport`] that
    /// says so.)
    #[error("TLS: {reason}")]
    Tls {
        /// What is wrong.
        reason: String,
    },
    /// The server did not answer in time.
    #[error("{url}: no answer within {seconds} s")]
    Timeout {
        /// The request's URL.
        url: String,
        /// The limit.
        seconds: u64,
    },
    /// The server answered with an error.
    #[error("{} {}: {}", .0.status, .0.code, .0.message)]
    Api(Box<ApiFailure>),
    /// The answer is not what the API promises.
    #[error("unexpected answer ({status}): {reason}")]
    Decode {
        /// The HTTP status.
        status: u16,
        /// Why it could not be read.
        reason: String,
    },
}

impl ClientError {
    /// The HTTP status of an error answer.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(failure) => Some(failure.status),
            _ => None,
        }
    }

    /// The error code of an error answer.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api(failure) => Some(&failure.code),
            _ => None,
        }
    }

    /// The error answer, if the server gave one.
    #[must_use]
    pub fn api(&self) -> Option<&ApiFailure> {
        match self {
            Self::Api(failure) => Some(failure),
            _ => None,
        }
    }
}
