//! main.yaml `registration`: whether people may make their own accounts, and what such an
//! account gets.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::units::HumanDuration;

/// Self-service sign-up (`POST /api/v1/auth/register`, the `/register` page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Registration {
    /// `off` (the default): only admins make accounts. `invite`: anyone with an unused,
    /// unexpired invite code an admin made (`berth users invite`). `open`: anyone.
    pub mode: RegistrationMode,
    /// What a self-registered account gets.
    pub defaults: RegistrationDefaults,
    /// How long an invite code may be used when the admin names no lifetime (1m to 365d).
    pub invite_ttl: HumanDuration,
}

impl Default for Registration {
    fn default() -> Self {
        Self {
            mode: RegistrationMode::Off,
            defaults: RegistrationDefaults::default(),
            invite_ttl: HumanDuration::from_secs_unchecked(7 * 86_400),
        }
    }
}

/// Who may make an account. Written bare (`mode: off`): Berth reads YAML 1.2, where `off` is
/// a string, not the boolean of YAML 1.1; quoting it works as well.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    /// No sign-up; the route answers 403 `registration_disabled`.
    #[default]
    Off,
    /// Sign-up with a one-time invite code.
    Invite,
    /// Anyone may sign up.
    Open,
}

/// What a self-registered account gets; an admin may change it afterwards.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationDefaults {
    /// Templates (from containers.yaml) the account may start.
    #[schemars(example = example_templates())]
    pub templates: Vec<String>,
    /// Whether the account may ask for clusters (`clusters` in users.yaml).
    pub clusters: bool,
}

fn example_templates() -> Vec<&'static str> {
    vec!["base"]
}
