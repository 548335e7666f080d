//! A template as a [`ContainerSpec`] for the local engine: the same mapping and hardening as
//! the server's (berth-core's `ConfigPolicy`), from what `GET /api/v1/config` gives the CLI
//! (the template, the user's limits and the server's runtime defaults).
//!
//! berth-core keeps its mapping private and reads it from the server's whole configuration;
//! this is a copy of it over the client's view, to be replaced by a shared
//! `berth_core::template_spec` once berth-core exports one. The tests below pin the parts that
//! must stay equal.

use berth_client::Template;
use berth_client::api::ClientConfig;
use berth_config::Persist;
use berth_runtime::{
    BindMount, ContainerSpec, Env, Hardening, IDLE_COMMAND, Limits, NetworkMode, VolumeMount,
};

use crate::cli::errors::CliError;

/// `/tmp` is a tmpfs counted against the memory limit: at most this, and at most half of it.
const MAX_TMP_BYTES: u64 = 256 * 1024 * 1024;

/// Whether the workspace is persistent and its network, by the rules of the server's policy.
pub fn options(
    template: &Template,
    persist: Option<bool>,
    network: Option<&str>,
) -> Result<(bool, String), CliError> {
    let persistent = match (template.persist, persist) {
        (Persist::Never, Some(true)) => {
            return Err(CliError::new(format!(
                "template {:?} does not keep workspaces: --persist is not allowed",
                template.name
            )));
        }
        (Persist::Always, Some(false)) => {
            return Err(CliError::new(format!(
                "template {:?} always keeps workspaces: --no-persist is not allowed",
                template.name
            )));
        }
        (Persist::Always, _) | (Persist::Optional, Some(true)) => true,
        _ => false,
    };
    let network = match network {
        None => template.network.clone(),
        Some(wanted)
            if wanted == template.network || template.networks.iter().any(|n| n == wanted) =>
        {
            wanted.to_owned()
        }
        Some(wanted) => {
            let mut allowed = vec![template.network.as_str()];
            allowed.extend(template.networks.iter().map(String::as_str));
            return Err(CliError::new(format!(
                "network {wanted:?} is not allowed for template {:?} (allowed: {})",
                template.name,
                allowed.join(", ")
            )));
        }
    };
    Ok((persistent, network))
}

/// The network mode of a network name.
pub fn network_mode(network: &str) -> NetworkMode {
    match network {
        "none" => NetworkMode::None,
        "host" => NetworkMode::Host,
        named => NetworkMode::Named(named.to_owned()),
    }
}

/// The container for `template` with the user's limits: no name, labels or network yet.
pub fn template_spec(template: &Template, config: &ClientConfig<Template>) -> ContainerSpec {
    let memory = config
        .limits
        .memory_bytes
        .or(template.memory.map(berth_config::Memory::bytes))
        .unwrap_or(config.defaults.memory_bytes);
    let cpus = config.limits.cpus.or(template.cpus);
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
        pids: i64::from(template.pids_limit.unwrap_or(config.defaults.pids_limit)),
        tmp_bytes: i64::try_from(MAX_TMP_BYTES.min(memory / 2)).unwrap_or(i64::MAX),
    };
    spec.hardening = Hardening {
        cap_add: template.cap_add.clone(),
        read_only_root: template.read_only_root,
        init: true,
    };
    spec
}

#[cfg(test)]
mod tests {
    use berth_client::api::{Me, RuntimeDefaults, UserLimits};
    use berth_config::Memory;
    use berth_types::{Role, Username};

    use super::*;

    fn config(limits: UserLimits) -> ClientConfig<Template> {
        ClientConfig {
            user: Me {
                username: Username::new("alice").unwrap(),
                role: Role::User,
                templates: vec!["base".into()],
            },
            templates: Vec::new(),
            limits,
            defaults: RuntimeDefaults {
                memory_bytes: 1 << 30,
                pids_limit: 512,
                idle_timeout_seconds: 900,
            },
            ping_interval_seconds: 30,
        }
    }

    fn limits() -> UserLimits {
        UserLimits {
            max_workspaces: 3,
            memory_bytes: None,
            cpus: None,
            extra_templates: Vec::new(),
        }
    }

    #[test]
    fn the_spec_keeps_the_hardening_and_the_limits() {
        let mut template = Template::new("base", "berth-test/base");
        template.cap_add = vec!["NET_RAW".into()];
        template.read_only_root = true;
        let spec = template_spec(&template, &config(limits()));
        assert_eq!(spec.limits.memory_bytes, 1 << 30, "the server's default");
        assert_eq!(spec.limits.pids, 512);
        assert_eq!(spec.limits.tmp_bytes, 256 << 20);
        assert_eq!(spec.limits.nano_cpus, None);
        assert!(spec.hardening.init && spec.hardening.read_only_root);
        assert_eq!(spec.hardening.cap_add, ["NET_RAW"]);
        assert_eq!(spec.network, NetworkMode::None);
        assert_eq!(
            spec.command,
            Some(vec!["sleep".to_owned(), "infinity".to_owned()])
        );

        template.memory = Some(serde_json::from_value::<Memory>("128m".into()).unwrap());
        template.cpus = Some(0.5);
        let spec = template_spec(&template, &config(limits()));
        assert_eq!(spec.limits.memory_bytes, 128 << 20);
        assert_eq!(spec.limits.tmp_bytes, 64 << 20, "half of the memory");
        assert_eq!(spec.limits.nano_cpus, Some(500_000_000));

        let mut mine = limits();
        mine.memory_bytes = Some(512 << 20);
        mine.cpus = Some(2.0);
        let spec = template_spec(&template, &config(mine));
        assert_eq!(spec.limits.memory_bytes, 512 << 20, "users.d overrides win");
        assert_eq!(spec.limits.nano_cpus, Some(2_000_000_000));
    }

    #[test]
    fn persistence_and_network_follow_the_template() {
        let mut template = Template::new("base", "img");
        template.networks = vec!["host".into()];
        assert_eq!(
            options(&template, None, None).unwrap(),
            (false, "none".into())
        );
        assert_eq!(
            options(&template, Some(true), Some("host")).unwrap(),
            (true, "host".into())
        );
        assert!(options(&template, None, Some("bridge")).is_err());
        template.persist = Persist::Always;
        assert!(options(&template, None, None).unwrap().0);
        assert!(options(&template, Some(false), None).is_err());
        template.persist = Persist::Never;
        assert!(options(&template, Some(true), None).is_err());
    }
}
