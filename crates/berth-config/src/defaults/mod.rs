//! The commented files `init` writes: the reference users read first.

use crate::load::{CONTAINERS, MAIN, USERS};
use crate::passwords::PasswordHash;
use crate::store::render::leading_comments;

const MAIN_TEMPLATE: &str = include_str!("main.yaml");
pub(crate) const CONTAINERS_YAML: &str = include_str!("containers.yaml");
pub(crate) const USERS_YAML: &str = include_str!("users.yaml");

/// The header of a rendered `users.d/<username>.yaml` that has none of its own.
pub(crate) const OVERRIDES_HEADER: &str = "\
# Berth: per-user overrides for the user this file is named after (users.d/<username>.yaml).
# Keys: max_workspaces (1 to 100), templates (extra templates), memory (16m to 256g),
# cpus (0.01 to 64); all optional. The comment at the top of users.yaml explains them.
";

/// The default main.yaml with the admin's password hash filled in.
pub(crate) fn main_yaml(hash: &PasswordHash) -> String {
    let quoted = serde_json::to_string(hash.as_str()).unwrap_or_default();
    MAIN_TEMPLATE.replace("\"{{password_hash}}\"", &quoted)
}

/// The opening comment block of the default `file`, for files that lost theirs.
pub(crate) fn header(file: &str) -> &'static str {
    let text = match file {
        MAIN => MAIN_TEMPLATE,
        CONTAINERS => CONTAINERS_YAML,
        USERS => USERS_YAML,
        _ => OVERRIDES_HEADER,
    };
    leading_comments(text).unwrap_or_default()
}
