//! A template as a [`ContainerSpec`] for the local engine: the server's own mapping and
//! hardening (`berth_core::template_spec`), over what `GET /api/v1/config` gives the CLI (the
//! template, the user's limits and the server's runtime defaults), and the server's rules for
//! the start options.

use berth_client::Template;
use berth_client::api::ClientConfig;
use berth_config::Persist;
use berth_core::SpecLimits;
use berth_runtime::ContainerSpec;

use crate::cli::errors::CliError;

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

/// The container for `template` with the user's limits and the server's defaults, as the
/// server builds it (`berth_core::template_spec`): no name, labels or network yet.
pub fn template_spec(template: &Template, config: &ClientConfig<Template>) -> ContainerSpec {
    berth_core::template_spec(
        template,
        SpecLimits {
            memory_bytes: config.limits.memory_bytes,
            cpus: config.limits.cpus,
            default_memory_bytes: config.defaults.memory_bytes,
            default_pids_limit: config.defaults.pids_limit,
        },
    )
}

#[cfg(test)]
mod tests {
    use berth_client::api::{Me, RuntimeDefaults, UserLimits};
    use berth_config::Memory;
    use berth_runtime::NetworkMode;
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
