//! `users.yaml`: the people who use Berth, what they may start, and their CLI clients.

use std::collections::BTreeMap;

use berth_types::{ClientId, Role, UserId, Username};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::passwords::PasswordHash;

/// `users.yaml`: the list of users.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UsersFile {
    /// Every user but the admin of `main.yaml`.
    #[serde(default)]
    pub users: Vec<User>,
}

/// One user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = id_is_required)]
pub struct User {
    /// Login name: 1 to 32 characters, `a-z`, `0-9`, `_`, `-`, `.`, starting with a letter or
    /// `_`. Unique, and different from the admin's.
    pub username: Username,
    /// Stable identifier (a UUID), kept when the user is renamed. Berth generates it when it
    /// adds a user; when writing the file by hand, use `uuidgen`.
    #[serde(default = "nil_user_id")]
    pub id: UserId,
    /// `user` (default) or `admin`: admins manage users, templates and every workspace, and may
    /// start every template.
    #[serde(default)]
    pub role: Role,
    /// argon2id hash of the user's password, set through the admin UI. Without it the user
    /// cannot log in with a password (client tokens still work).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<PasswordHash>,
    /// Names of the templates (from `containers.yaml`) this user may start. Also accepted
    /// under its older name `containers`.
    #[serde(default, alias = "containers")]
    pub templates: Vec<String>,
    /// When true, the admin UI and API may not change this user's access (`templates`,
    /// `role`, the templates of `users.d/<username>.yaml`); only an edit of this file can.
    /// Other fields stay editable.
    #[serde(default, skip_serializing_if = "is_false")]
    pub access_locked: bool,
    /// May ask for Kubernetes clusters (main.yaml `clusters`, when enabled). Admins always
    /// may.
    #[serde(default, skip_serializing_if = "is_false")]
    pub clusters: bool,
    /// A disabled user cannot log in, and their client tokens are refused.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    /// The user's CLI installations. Only SHA-256 hashes of the tokens are kept; a token is
    /// shown once, when it is issued.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_tokens: Vec<ClientToken>,
    /// Free-form labels (team, e-mail, course), shown in the admin UI.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The fleet machines this user may see (and, with the operations and terminals that
    /// come with them, use): machine ids from links.yaml, or tags as `tag:NAME`. None by
    /// default; admins see every machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub machines: Vec<berth_types::fleet::MachineSelector>,
    /// Public keys the user logs in to the SSH gateway with (docs/ssh-gateway.md), one
    /// OpenSSH line each (`ssh-ed25519 AAAA... alice@laptop`), as in `authorized_keys` but
    /// without options. At most 64.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_keys: Vec<crate::ssh_keys::SshKey>,
}

/// The `metadata` key [`crate::ConfigStore::register_user`] sets to [`REGISTERED_SELF`] on an
/// account made by self-service sign-up.
pub const REGISTERED_KEY: &str = "registered";

/// The value of [`REGISTERED_KEY`] on a self-registered account.
pub const REGISTERED_SELF: &str = "self";

/// The `metadata` key holding when a self-registered account signed up (RFC 3339, UTC).
pub const REGISTERED_AT_KEY: &str = "registered_at";

impl User {
    /// Whether this account was made by self-service sign-up rather than by an admin.
    #[must_use]
    pub fn is_self_registered(&self) -> bool {
        self.metadata.get(REGISTERED_KEY).map(String::as_str) == Some(REGISTERED_SELF)
    }
}

/// A client token of a user: one CLI installation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientToken {
    /// The client's id (a UUID), used in pings and the dashboard.
    pub id: ClientId,
    /// SHA-256 of the token, 64 lowercase hex digits.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub hash: String,
    /// When the token was issued (RFC 3339).
    #[serde(with = "rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub created: OffsetDateTime,
    /// What the token is for, e.g. the machine's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// RFC 3339 timestamps, with an error message that shows the expected form.
mod rfc3339 {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    pub(super) fn serialize<S: Serializer>(
        value: &OffsetDateTime,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        time::serde::rfc3339::serialize(value, serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        OffsetDateTime::parse(&text, &Rfc3339).map_err(|_| {
            D::Error::custom(format!(
                "expected a date and time such as 2025-01-31T12:00:00Z (RFC 3339), found {text:?}"
            ))
        })
    }
}

/// A user written without an `id` gets the nil UUID, reported by validation as missing: that
/// way the rest of the user (its templates, say) is still checked.
fn nil_user_id() -> UserId {
    UserId::from(Uuid::nil())
}

/// The schema says what validation enforces: `id` is required, and has no default.
fn id_is_required(schema: &mut schemars::Schema) {
    schema.insert("required".into(), serde_json::json!(["username", "id"]));
    if let Some(id) = schema
        .get_mut("properties")
        .and_then(|p| p.get_mut("id"))
        .and_then(|id| id.as_object_mut())
    {
        id.remove("default");
    }
    containers_alias(schema);
}

/// serde accepts `containers` for `templates` (the lab plan's name); so does the schema.
pub(crate) fn containers_alias(schema: &mut schemars::Schema) {
    let Some(properties) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) else {
        return;
    };
    if let Some(mut templates) = properties.get("templates").cloned() {
        if let Some(object) = templates.as_object_mut() {
            object.insert(
                "description".into(),
                "The older name of `templates`; use one or the other.".into(),
            );
        }
        properties.insert("containers".into(), templates);
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}
