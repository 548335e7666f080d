//! Logins and client tokens.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ClientId;

/// A password or a token on the wire. `Debug` prints `<secret>`, so request and response
/// values can be logged without leaking it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; every place that reveals it is visible in the code.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A password or token: never logged, never returned twice."
        })
    }
}

/// `POST /api/v1/auth/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The main.yaml admin or a user of users.yaml (1 to 256 bytes, no control characters).
    #[schemars(length(min = 1), regex(pattern = super::PRINTABLE))]
    pub username: String,
    /// The account's password.
    pub password: Secret,
}

/// A JWT for `Authorization: Bearer`, valid 24 hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LoginResponse {
    /// The token (HS256 JWT).
    pub token: Secret,
    /// When it stops being accepted.
    #[serde(with = "super::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub expires_at: OffsetDateTime,
}

/// `POST /api/v1/auth/tokens` and `POST /api/v1/users/{name}/token`: an optional label.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenRequest {
    /// What the token is for, e.g. the machine's name (1 to 100 printable characters).
    #[serde(default)]
    #[schemars(length(min = 1, max = 100), regex(pattern = super::PRINTABLE))]
    pub label: Option<String>,
}

/// A client token, shown this once: only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenResponse {
    /// The client the token identifies (used in pings).
    pub client_id: ClientId,
    /// The token, for `Authorization: Bearer`.
    pub token: Secret,
}
