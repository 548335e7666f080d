//! Users, as the admin API reads and writes them: shaped like the entries of users.yaml,
//! without password hashes or token hashes.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Secret;
use crate::fleet::MachineSelector;
use crate::{ClientId, Role, UserId, Username};

/// `POST /api/v1/users` and `PUT /api/v1/users/{name}`: a users.yaml entry, with the password
/// in clear (stored hashed). `PUT` replaces the user: absent fields take their defaults, except
/// `password`, which is kept when absent; a different `username` renames the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    /// The login name.
    pub username: Username,
    /// `user` (default) or `admin`.
    #[serde(default)]
    pub role: Role,
    /// A new password (1 to 128 characters). Absent: no password (`POST`), unchanged (`PUT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Templates the user may start.
    #[serde(default)]
    pub templates: Vec<String>,
    /// Forbid changing this user's access (templates, role, machines) through Berth.
    #[serde(default)]
    pub access_locked: bool,
    /// A disabled user cannot log in and their tokens are refused.
    #[serde(default)]
    pub disabled: bool,
    /// Free-form labels.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The fleet machines the user may see: ids, or tags as `tag:NAME` (users.yaml
    /// `machines:`); none by default.
    #[serde(default)]
    pub machines: Vec<MachineSelector>,
}

/// A user as the API shows it: no password hash, no token hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserView {
    /// The login name.
    pub username: Username,
    /// The stable id.
    pub id: UserId,
    /// `user` or `admin`.
    pub role: Role,
    /// Whether the user has a password (and so may log in with one).
    pub has_password: bool,
    /// Templates the user may start (users.yaml; users.d may add more).
    pub templates: Vec<String>,
    /// Whether the user's access is locked against changes through Berth.
    pub access_locked: bool,
    /// Whether the user is disabled.
    pub disabled: bool,
    /// The user's CLI installations.
    pub clients: Vec<ClientTokenView>,
    /// Free-form labels.
    pub metadata: BTreeMap<String, String>,
    /// The fleet machines the user may see (users.yaml `machines:`).
    pub machines: Vec<MachineSelector>,
}

/// A client token of a user, without the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientTokenView {
    /// The client id.
    pub id: ClientId,
    /// When the token was issued.
    #[serde(with = "super::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub created: OffsetDateTime,
    /// What it is for.
    pub label: Option<String>,
}

/// `GET /api/v1/users`: the users of users.yaml (the main.yaml admin is not among them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserList {
    /// In users.yaml order.
    pub users: Vec<UserView>,
}

/// `POST /api/v1/users/{name}/keys`: an SSH public key for the SSH gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSshKey {
    /// The key in OpenSSH format, as a line of `~/.ssh/id_ed25519.pub` or
    /// `authorized_keys` (`ssh-ed25519 AAAA... comment`): a public key, not a private one.
    #[schemars(length(min = 1, max = 4096))]
    pub key: String,
}

/// An SSH public key of a user (users.yaml `ssh_keys`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SshKeyView {
    /// As `ssh-keygen -lf` prints it: `SHA256:` and unpadded base64. Names the key in
    /// `DELETE /api/v1/users/{name}/keys/{fingerprint}` (percent-encoded: it may hold `/`
    /// and `+`).
    pub fingerprint: String,
    /// The key type, as `ssh-ed25519` or `ecdsa-sha2-nistp256`.
    pub algorithm: String,
    /// The key's comment (often user@host), empty when it has none.
    pub comment: String,
    /// The key in OpenSSH format, as saved.
    pub key: String,
}

/// `GET /api/v1/users/{name}/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SshKeyList {
    /// In the order they were added.
    pub keys: Vec<SshKeyView>,
}
