//! Self-service sign-up (main.yaml `registration`) and the invites that admit it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Secret, Timeout};
use crate::{InviteId, Username};

/// `POST /api/v1/auth/register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The new account's name: not taken, not the admin's.
    pub username: Username,
    /// Its password, by the same rules as an admin-made user's.
    pub password: Secret,
    /// The invite code, when `registration.mode` is `invite`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<Secret>,
}

/// The account `POST /api/v1/auth/register` made: log in with it next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Registered {
    /// The new account.
    pub username: Username,
    /// The templates it may start (`registration.defaults.templates`).
    pub templates: Vec<String>,
    /// Whether it may ask for clusters (`registration.defaults.clusters`).
    pub clusters: bool,
}

/// `POST /api/v1/invites`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvite {
    /// How long the code may be used (`"7d"`, `"2h"` or seconds). Absent: 7 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<Timeout>,
    /// A note for admins ("course 2026-A"), up to 200 characters, no control characters.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 200), regex(pattern = super::PRINTABLE))]
    pub note: String,
}

/// An invite as admins see it; the code itself is shown once, in [`InviteCreated`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InviteView {
    /// The invite.
    pub id: InviteId,
    /// The admin who made it.
    pub created_by: Username,
    /// Its note.
    pub note: String,
    /// When it was made.
    #[serde(with = "super::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub created_at: OffsetDateTime,
    /// When it stops being accepted.
    #[serde(with = "super::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub expires_at: OffsetDateTime,
    /// The account it made, once used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_by: Option<Username>,
    /// When it was used.
    #[serde(default, with = "super::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub used_at: Option<OffsetDateTime>,
}

/// `POST /api/v1/invites` (201): the invite and its code, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InviteCreated {
    /// The invite.
    #[serde(flatten)]
    pub invite: InviteView,
    /// The one-time code.
    pub code: Secret,
    /// The sign-up page with the code filled in.
    pub url: String,
}

/// `GET /api/v1/invites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InviteList {
    /// Every invite, newest first.
    pub invites: Vec<InviteView>,
}
