//! `users.d/<username>.yaml`: what one user gets beyond the defaults.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::units::{Memory, cpus, within_opt};

/// `users.d/<username>.yaml`: per-user overrides. The file name must be the username of a user
/// in `users.yaml`. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = super::users::containers_alias)]
pub struct UserOverrides {
    /// Workspaces this user may have at once (1 to 100), instead of
    /// `runtime.max_workspaces_per_user` of `main.yaml`.
    #[serde(
        default,
        deserialize_with = "within_opt::<_, _, 1, 100>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 100))]
    pub max_workspaces: Option<u32>,
    /// Templates this user may start in addition to those listed in `users.yaml`. Also
    /// accepted under its older name `containers`.
    #[serde(default, alias = "containers", skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<String>,
    /// Memory limit of this user's workspaces, instead of the template's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    /// CPU limit of this user's workspaces (0.01 to 64), instead of the template's.
    #[serde(
        default,
        deserialize_with = "cpus",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 0.01, max = 64.0))]
    pub cpus: Option<f64>,
}
