//! What the manager needs to know about a template, and the [`Policy`] that decides it.
//!
//! The policy is where configuration meets the manager: the server implements it over the YAML
//! configuration (allowed templates, per-user limits, template fields), and unit tests of the
//! manager implement it directly.

use std::time::Duration;

use berth_runtime::{ContainerSpec, NetworkMode};
use berth_types::Username;
use berth_types::template::Shell;

use crate::WorkspaceError;

/// Whether a workspace keeps its container and files when stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Persistence {
    /// Stopping removes the container and its volumes.
    #[default]
    Ephemeral,
    /// Stopping keeps the container; its named volumes outlive even its deletion, so the owner's
    /// next persistent workspace of the template mounts them again.
    Persistent,
}

/// Options a user may give when starting a workspace; the template decides what is allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartOptions {
    /// Ask for a persistent workspace (`None`: the template's default).
    pub persist: Option<bool>,
    /// Ask for a network mode other than the template's default.
    pub network: Option<String>,
}

/// How to run one workspace of a template, decided by the [`Policy`].
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The template's name.
    pub template: String,
    /// The container to create. The manager fills in the name and Berth's labels, makes the
    /// volumes persistent or not, and sets the network.
    pub spec: ContainerSpec,
    /// Shell for terminals and its arguments (falling back to `/bin/sh -l` when the image
    /// lacks it).
    pub shell: Shell,
    /// Every terminal joins one tmux session.
    pub shared: bool,
    /// Whether the workspace is persistent.
    pub persistence: Persistence,
    /// Network mode.
    pub network: NetworkMode,
    /// Stop after this long with no terminal attached and no activity.
    pub idle_timeout: Duration,
    /// Stop and remove this long after start.
    pub ttl: Option<Duration>,
    /// Record terminal sessions.
    pub record: bool,
    /// How many live workspaces of this template one user may have (`None`: no limit beyond
    /// the user's overall one).
    pub max_per_user: Option<u32>,
}

impl Plan {
    /// Whether a container pre-started for this template's pool can serve this plan: pool
    /// containers are ephemeral, on the template's default network, and carry no user data.
    #[must_use]
    pub fn poolable(&self, pool_plan: &Plan) -> bool {
        self.persistence == Persistence::Ephemeral && self.network == pool_plan.network
    }
}

/// The decisions the manager leaves to configuration.
pub trait Policy: Send + Sync + std::fmt::Debug {
    /// The plan for `user` starting `template` with `options`: refuses templates the user may
    /// not use ([`WorkspaceError::Forbidden`]) and options the template does not allow
    /// ([`WorkspaceError::InvalidOption`]).
    fn plan(
        &self,
        user: &Username,
        template: &str,
        options: &StartOptions,
    ) -> Result<Plan, WorkspaceError>;

    /// The plan to re-create or look after an existing workspace, without access checks (the
    /// template may since have been taken from the user). `None` if the template is gone.
    fn plan_existing(
        &self,
        owner: &Username,
        template: &str,
        persistence: Persistence,
        network: &str,
    ) -> Option<Plan>;

    /// How many live workspaces `user` may have at once.
    fn max_workspaces(&self, user: &Username) -> u32;

    /// Templates with a pool: `(plan for an unowned container, pool size)`.
    fn pools(&self) -> Vec<(Plan, u32)>;
}
