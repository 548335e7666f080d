//! [`ConfigPolicy`]: the manager's [`Policy`] read from the YAML configuration in force.

use berth_config::{Config, Persist, Template};
use berth_runtime::{
    BindMount, ContainerSpec, Env, Hardening, IDLE_COMMAND, Limits, NetworkMode, VolumeMount,
};
use berth_types::{Role, Username};

use crate::plan::{Persistence, Plan, Policy, StartOptions};
use crate::{LiveConfig, WorkspaceError};

/// `/tmp` is a tmpfs counted against the memory limit: at most this, and at most half of it.
const MAX_TMP_BYTES: u64 = 256 * 1024 * 1024;

/// Reads templates, users, `users.d` overrides and `main.yaml`'s runtime defaults from the
/// configuration in force at each call, so a reload applies to the next start.
#[derive(Debug, Clone)]
pub struct ConfigPolicy {
    config: LiveConfig,
}

impl ConfigPolicy {
    /// A policy over `config`.
    #[must_use]
    pub fn new(config: LiveConfig) -> Self {
        Self { config }
    }
}

/// The role of `username`: the `main.yaml` admin, a user of `users.yaml`, or nobody.
#[must_use]
pub fn role_of(config: &Config, username: &Username) -> Option<Role> {
    if *username == config.main.admin.username {
        return Some(Role::Admin);
    }
    config
        .user(username.as_str())
        .filter(|u| !u.disabled)
        .map(|u| u.role)
}

/// The templates `username` may start: every template for admins (the `main.yaml` admin too).
#[must_use]
pub fn allowed_templates<'c>(config: &'c Config, username: &Username) -> Vec<&'c Template> {
    if *username == config.main.admin.username {
        return config.templates.iter().collect();
    }
    config.allowed_templates(username)
}

impl Policy for ConfigPolicy {
    fn plan(
        &self,
        user: &Username,
        template: &str,
        options: &StartOptions,
    ) -> Result<Plan, WorkspaceError> {
        let config = self.config.current();
        let forbidden =
            || WorkspaceError::Forbidden(format!("you may not use template {template:?}"));
        let template = allowed_templates(&config, user)
            .into_iter()
            .find(|t| t.name == template)
            .ok_or_else(forbidden)?;
        let persistence = match (template.persist, options.persist) {
            (Persist::Never, Some(true)) => {
                return Err(WorkspaceError::InvalidOption(format!(
                    "template {:?} does not keep workspaces: persist is not allowed",
                    template.name
                )));
            }
            (Persist::Always, Some(false)) => {
                return Err(WorkspaceError::InvalidOption(format!(
                    "template {:?} always keeps workspaces: persist cannot be turned off",
                    template.name
                )));
            }
            (Persist::Always, _) | (Persist::Optional, Some(true)) => Persistence::Persistent,
            _ => Persistence::Ephemeral,
        };
        let network = match &options.network {
            None => template.network.clone(),
            Some(wanted) if *wanted == template.network || template.networks.contains(wanted) => {
                wanted.clone()
            }
            Some(wanted) => {
                let mut allowed = vec![template.network.as_str()];
                allowed.extend(template.networks.iter().map(String::as_str));
                return Err(WorkspaceError::InvalidOption(format!(
                    "network {wanted:?} is not allowed for template {:?} (allowed: {})",
                    template.name,
                    allowed.join(", ")
                )));
            }
        };
        Ok(plan_of(&config, user, template, persistence, &network))
    }

    fn plan_existing(
        &self,
        owner: &Username,
        template: &str,
        persistence: Persistence,
        network: &str,
    ) -> Option<Plan> {
        let config = self.config.current();
        let template = config.template(template)?;
        Some(plan_of(&config, owner, template, persistence, network))
    }

    fn max_workspaces(&self, user: &Username) -> u32 {
        self.config.current().max_workspaces(user.as_str())
    }

    fn pools(&self) -> Vec<(Plan, u32)> {
        let config = self.config.current();
        let nobody = config.main.admin.username.clone();
        config
            .templates
            .iter()
            .filter(|t| t.pool > 0 && t.persist != Persist::Always)
            .map(|t| {
                let mut plan = plan_of(&config, &nobody, t, Persistence::Ephemeral, &t.network);
                // A pool container belongs to nobody: no per-user overrides.
                plan.spec = configured_spec(&config, t, None);
                (plan, t.pool)
            })
            .collect()
    }
}

fn plan_of(
    config: &Config,
    user: &Username,
    template: &Template,
    persistence: Persistence,
    network: &str,
) -> Plan {
    Plan {
        template: template.name.clone(),
        spec: configured_spec(config, template, Some(user)),
        shell: template.shell.clone(),
        shared: template.shared,
        persistence,
        network: network_mode(network),
        idle_timeout: template
            .idle_timeout
            .unwrap_or(config.main.runtime.default_idle_timeout)
            .get(),
        ttl: template.ttl.map(|t| t.get()),
        record: template.record,
        max_per_user: template.max_per_user,
    }
}

/// What a container gets beyond its template: the user's own limits (`users.d` overrides,
/// which win over the template's) and the server's defaults for what the template leaves out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpecLimits {
    /// The user's memory limit, in bytes.
    pub memory_bytes: Option<u64>,
    /// The user's CPU limit.
    pub cpus: Option<f64>,
    /// `runtime.default_memory`, in bytes.
    pub default_memory_bytes: u64,
    /// `runtime.default_pids_limit`.
    pub default_pids_limit: u32,
}

/// The container for `template` with `limits`: the hardening, the `/tmp` size and the idle
/// command every workspace gets, here and in the CLI's local workspaces. No name, labels or
/// network yet.
#[must_use]
pub fn template_spec(template: &Template, limits: SpecLimits) -> ContainerSpec {
    let memory = limits
        .memory_bytes
        .or(template.memory.map(berth_config::Memory::bytes))
        .unwrap_or(limits.default_memory_bytes);
    let cpus = limits.cpus.or(template.cpus);
    let mut spec = ContainerSpec::new("", template.image.clone());
    spec.command = Some(
        template
            .command
            .clone()
            .unwrap_or_else(|| IDLE_COMMAND.iter().map(|s| (*s).to_owned()).collect()),
    );
    spec.env = template.env.iter().collect::<Env>();
    spec.volumes = template
        .volumes
        .iter()
        .map(|v| VolumeMount {
            name: v.name.clone(),
            target: v.target.clone(),
            persistent: false,
            read_only: v.read_only,
        })
        .collect();
    spec.binds = template
        .bind_mounts
        .iter()
        .map(|b| BindMount {
            source: b.source.clone(),
            target: b.target.clone(),
            read_only: b.read_only,
        })
        .collect();
    spec.working_dir.clone_from(&template.workdir);
    spec.user.clone_from(&template.user);
    spec.hostname.clone_from(&template.hostname);
    spec.limits = Limits {
        #[allow(clippy::cast_possible_truncation)] // at most 64 CPUs: far inside i64
        nano_cpus: cpus.map(|c| (c * 1e9).round() as i64),
        memory_bytes: i64::try_from(memory).unwrap_or(i64::MAX),
        pids: i64::from(template.pids_limit.unwrap_or(limits.default_pids_limit)),
        tmp_bytes: i64::try_from(MAX_TMP_BYTES.min(memory / 2)).unwrap_or(i64::MAX),
    };
    spec.hardening = Hardening {
        cap_add: template.cap_add.clone(),
        read_only_root: template.read_only_root,
        init: true,
    };
    spec
}

/// [`template_spec`] with the server's configuration: `user`'s `users.d` overrides (none for
/// a pool container, which belongs to nobody) and main.yaml's runtime defaults.
fn configured_spec(config: &Config, template: &Template, user: Option<&Username>) -> ContainerSpec {
    let runtime = &config.main.runtime;
    let overrides = user.and_then(|u| config.overrides(u.as_str()));
    let limits = SpecLimits {
        memory_bytes: overrides
            .and_then(|o| o.memory)
            .map(berth_config::Memory::bytes),
        cpus: overrides.and_then(|o| o.cpus),
        default_memory_bytes: runtime.default_memory.bytes(),
        default_pids_limit: runtime.default_pids_limit,
    };
    template_spec(template, limits)
}

/// The network mode of a network name: `none`, `host`, or a Docker network's.
#[must_use]
pub fn network_mode(network: &str) -> NetworkMode {
    match network {
        "none" => NetworkMode::None,
        "host" => NetworkMode::Host,
        named => NetworkMode::Named(named.to_owned()),
    }
}
