//! Translation of a [`ContainerSpec`] into the engine's create request, with the hardening
//! defaults applied. Pure, so the defaults are unit-tested without an engine.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, VolumeCreateRequest,
};

use crate::spec::{ContainerSpec, VolumeMount};
use crate::state::MANAGED_LABEL;

/// Volume label: `true` when the volume outlives its container.
pub(crate) const PERSISTENT_LABEL: &str = "berth.persistent";

/// The container log (the main process's output) is capped at this many files of this size.
pub(crate) const LOG_MAX_SIZE: &str = "10m";
pub(crate) const LOG_MAX_FILES: &str = "2";
/// The only security option Berth sets: the process and its children can never gain privileges
/// (setuid binaries, file capabilities). Seccomp keeps the engine's default profile because
/// nothing here overrides it.
pub(crate) const NO_NEW_PRIVILEGES: &str = "no-new-privileges";

pub(crate) fn labels(spec: &ContainerSpec) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = spec
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(MANAGED_LABEL.into(), "true".into());
    labels
}

pub(crate) fn volume_request(spec: &ContainerSpec, volume: &VolumeMount) -> VolumeCreateRequest {
    let mut labels = labels(spec);
    labels.insert(PERSISTENT_LABEL.into(), volume.persistent.to_string());
    VolumeCreateRequest {
        name: Some(volume.name.clone()),
        labels: Some(labels),
        ..Default::default()
    }
}

pub(crate) fn container_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let volumes = spec.volumes.iter().map(|v| Mount {
        typ: Some(MountType::VOLUME),
        source: Some(v.name.clone()),
        target: Some(v.target.clone()),
        read_only: Some(v.read_only),
        ..Default::default()
    });
    // The mount API (unlike `Binds`) fails on a missing source instead of creating it.
    let binds = spec.binds.iter().map(|b| Mount {
        typ: Some(MountType::BIND),
        source: Some(b.source.to_string_lossy().into_owned()),
        target: Some(b.target.clone()),
        read_only: Some(b.read_only),
        ..Default::default()
    });
    let tmp = format!("rw,nosuid,nodev,mode=1777,size={}", spec.limits.tmp_bytes);
    let host_config = HostConfig {
        mounts: Some(volumes.chain(binds).collect()),
        tmpfs: Some(HashMap::from([("/tmp".to_owned(), tmp)])),
        network_mode: Some(spec.network.engine_name().to_owned()),
        nano_cpus: spec.limits.nano_cpus,
        memory: Some(spec.limits.memory_bytes),
        memory_swap: Some(spec.limits.memory_bytes),
        pids_limit: Some(spec.limits.pids),
        cap_drop: Some(vec!["ALL".into()]),
        cap_add: Some(spec.hardening.cap_add.clone()),
        security_opt: Some(vec![NO_NEW_PRIVILEGES.into()]),
        readonly_rootfs: Some(spec.hardening.read_only_root),
        init: Some(spec.hardening.init),
        privileged: Some(false),
        // A main process that prints without end must not fill the host's disk.
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(HashMap::from([
                ("max-size".to_owned(), LOG_MAX_SIZE.to_owned()),
                ("max-file".to_owned(), LOG_MAX_FILES.to_owned()),
            ])),
        }),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: spec.command.clone(),
        env: Some(spec.env.to_engine()),
        working_dir: spec.working_dir.clone(),
        user: spec.user.clone(),
        hostname: spec.hostname.clone(),
        labels: Some(labels(spec)),
        host_config: Some(host_config),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{BindMount, NetworkMode};

    #[test]
    fn hardening_defaults_are_applied() {
        let mut spec = ContainerSpec::new("berth-ws", "img");
        spec.labels.insert(MANAGED_LABEL.into(), "false".into());
        spec.labels.insert("berth.owner".into(), "ann".into());
        let body = container_body(&spec);
        let host = body.host_config.unwrap();
        let log = host.log_config.clone().unwrap();
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        assert_eq!(log.config.unwrap()["max-size"], "10m");
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(host.cap_add, Some(vec![]));
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges".to_string()])
        );
        assert_eq!(host.privileged, Some(false));
        assert_eq!(host.init, Some(true));
        assert_eq!(host.readonly_rootfs, Some(false));
        assert_eq!(host.memory, Some(1 << 30));
        assert_eq!(host.memory_swap, host.memory);
        assert_eq!(host.pids_limit, Some(512));
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(
            host.tmpfs.unwrap()["/tmp"],
            format!("rw,nosuid,nodev,mode=1777,size={}", 256 << 20)
        );
        let labels = body.labels.unwrap();
        assert_eq!(
            labels[MANAGED_LABEL], "true",
            "the caller cannot unset berth.managed"
        );
        assert_eq!(labels["berth.owner"], "ann");
    }

    #[test]
    fn spec_fields_reach_the_request() {
        let mut spec = ContainerSpec::new("berth-ws", "img");
        spec.network = NetworkMode::Named("lab".into());
        spec.limits.nano_cpus = Some(500_000_000);
        spec.hardening.cap_add = vec!["NET_BIND_SERVICE".into()];
        spec.hardening.read_only_root = true;
        spec.volumes.push(VolumeMount {
            name: "home".into(),
            target: "/home/u".into(),
            persistent: true,
            read_only: false,
        });
        spec.binds.push(BindMount {
            source: "/srv/data".into(),
            target: "/data".into(),
            read_only: true,
        });
        let host = container_body(&spec).host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("lab"));
        assert_eq!(host.nano_cpus, Some(500_000_000));
        assert_eq!(host.cap_add, Some(vec!["NET_BIND_SERVICE".to_string()]));
        assert_eq!(host.readonly_rootfs, Some(true));
        let mounts = host.mounts.unwrap();
        assert_eq!(mounts[0].typ, Some(MountType::VOLUME));
        assert_eq!(mounts[1].typ, Some(MountType::BIND));
        assert_eq!(mounts[1].read_only, Some(true));
        let volume = volume_request(&spec, &spec.volumes[0]);
        assert_eq!(volume.labels.unwrap()[PERSISTENT_LABEL], "true");
    }
}
