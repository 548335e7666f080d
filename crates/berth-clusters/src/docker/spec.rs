//! The server container's definition, as a pure function of the settings and the cluster, so
//! what the engine is asked for can be checked without an engine.

use std::collections::HashMap;
use std::net::IpAddr;

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};

use super::{ClusterNetwork, DockerClusterSettings};
use crate::ClusterSpec;

/// The label holding the cluster's id.
pub(crate) const CLUSTER_LABEL: &str = "berth.cluster";
/// The label holding the owner's username.
pub(crate) const OWNER_LABEL: &str = "berth.owner";
/// The label naming the Berth installation that made the container.
pub(crate) const INSTANCE_LABEL: &str = "berth.instance";
/// The label holding the cluster's name (for the kubeconfig's entry names).
pub(crate) const NAME_LABEL: &str = "berth.cluster-name";
/// The label holding the API port chosen on the host network.
pub(crate) const API_PORT_LABEL: &str = "berth.api_port";
/// `berth.managed` says "made by Berth". Its value is `cluster`, not the `true` of workspace
/// containers, because the workspaces' reconciliation removes every `berth.managed=true`
/// container of its instance that no workspace owns.
pub(crate) const MANAGED_LABEL: &str = "berth.managed";
pub(crate) const MANAGED_VALUE: &str = "cluster";

/// The port k3s serves its API on inside the container (bridge network).
pub(crate) const K3S_PORT: u16 = 6443;

/// `berth-cluster-<instance>-<name>-<first 8 hex of the id>`: Docker's names take
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, so other characters of the instance become `-`.
pub(crate) fn container_name(instance: &str, spec: &ClusterSpec) -> String {
    let instance: String = instance
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let id = spec.id.as_uuid().simple().to_string();
    format!(
        "berth-cluster-{instance}-{}-{}",
        spec.name.as_str(),
        &id[..8]
    )
}

/// The address written into kubeconfigs and probed for readiness: the configured one, or the
/// loopback address when the API listens on every address.
pub(crate) fn reach_address(api_address: IpAddr) -> IpAddr {
    match api_address {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// `https://ADDR:PORT`, with brackets around IPv6.
pub(crate) fn api_url(address: IpAddr, port: u16) -> String {
    match address {
        IpAddr::V4(a) => format!("https://{a}:{port}"),
        IpAddr::V6(a) => format!("https://[{a}]:{port}"),
    }
}

/// The create body: k3s's `server` with the API port and the SANs of the published address,
/// privileged (k3s runs containerd, cgroups and iptables inside), tmpfs on /run and /var/run
/// (as k3d does), the limits, and the labels. `host_port` is the port chosen on the host
/// network (`None` on a bridge, where the engine picks the published port).
pub(crate) fn create_body(
    settings: &DockerClusterSettings,
    spec: &ClusterSpec,
    host_port: Option<u16>,
) -> ContainerCreateBody {
    let address = settings.api_address;
    let reach = reach_address(address);
    let mut cmd = vec!["server".to_owned()];
    let mut labels = HashMap::from([
        (CLUSTER_LABEL.to_owned(), spec.id.to_string()),
        (OWNER_LABEL.to_owned(), spec.owner.as_str().to_owned()),
        (INSTANCE_LABEL.to_owned(), settings.instance.clone()),
        (NAME_LABEL.to_owned(), spec.name.as_str().to_owned()),
        (MANAGED_LABEL.to_owned(), MANAGED_VALUE.to_owned()),
    ]);
    let mut host_config = HostConfig {
        privileged: Some(settings.privileged),
        tmpfs: Some(HashMap::from([
            ("/run".to_owned(), String::new()),
            ("/var/run".to_owned(), String::new()),
        ])),
        memory: (settings.memory > 0).then(|| i64::try_from(settings.memory).unwrap_or(i64::MAX)),
        // f64 → i64 saturates; a non-positive or absent limit means none.
        nano_cpus: settings
            .cpus
            .filter(|c| *c > 0.0)
            .map(|c| (c * 1e9).round() as i64),
        ..HostConfig::default()
    };
    let mut exposed = None;
    match (settings.network, host_port) {
        (ClusterNetwork::Host, Some(port)) => {
            host_config.network_mode = Some("host".to_owned());
            cmd.extend(["--https-listen-port".to_owned(), port.to_string()]);
            cmd.extend(["--bind-address".to_owned(), address.to_string()]);
            labels.insert(API_PORT_LABEL.to_owned(), port.to_string());
        }
        _ => {
            let key = format!("{K3S_PORT}/tcp");
            cmd.extend(["--https-listen-port".to_owned(), K3S_PORT.to_string()]);
            host_config.port_bindings = Some(HashMap::from([(
                key.clone(),
                Some(vec![PortBinding {
                    host_ip: Some(address.to_string()),
                    // Empty: the engine picks a free port, read back from inspect.
                    host_port: Some(String::new()),
                }]),
            )]));
            exposed = Some(vec![key]);
        }
    }
    cmd.extend(["--tls-san".to_owned(), reach.to_string()]);
    if reach != address {
        cmd.extend(["--tls-san".to_owned(), address.to_string()]);
    }
    ContainerCreateBody {
        image: Some(settings.image.clone()),
        cmd: Some(cmd),
        env: (!settings.env.is_empty()).then(|| settings.env.clone()),
        labels: Some(labels),
        exposed_ports: exposed,
        host_config: Some(host_config),
        ..ContainerCreateBody::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::net::Ipv4Addr;

    use super::*;
    use berth_types::{ClusterId, ClusterName, Username};

    fn spec() -> ClusterSpec {
        ClusterSpec {
            id: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
                .parse::<ClusterId>()
                .unwrap(),
            name: ClusterName::new("dev").unwrap(),
            owner: Username::new("alice").unwrap(),
        }
    }

    fn settings(network: ClusterNetwork) -> DockerClusterSettings {
        DockerClusterSettings {
            image: "rancher/k3s:test".to_owned(),
            instance: "prod".to_owned(),
            cpus: Some(1.5),
            memory: 2 << 30,
            api_address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
            network,
            privileged: true,
            env: vec!["K3S_X=1".to_owned()],
        }
    }

    #[test]
    fn names_follow_docker_rules() {
        assert_eq!(
            container_name("prod", &spec()),
            "berth-cluster-prod-dev-0f1e2d3c"
        );
        assert_eq!(
            container_name("my host/1", &spec()),
            "berth-cluster-my-host-1-dev-0f1e2d3c"
        );
    }

    #[test]
    fn bridge_publishes_6443_on_the_address_and_limits_the_container() {
        let body = create_body(&settings(ClusterNetwork::Bridge), &spec(), None);
        let host = body.host_config.unwrap();
        assert_eq!(host.privileged, Some(true));
        assert_eq!(host.network_mode, None);
        assert_eq!(host.memory, Some(2 << 30));
        assert_eq!(host.nano_cpus, Some(1_500_000_000));
        let tmpfs = host.tmpfs.unwrap();
        assert!(tmpfs.contains_key("/run") && tmpfs.contains_key("/var/run"));
        let binding = &host.port_bindings.unwrap()["6443/tcp"].clone().unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("192.0.2.7"));
        assert_eq!(binding.host_port.as_deref(), Some(""));
        assert_eq!(body.exposed_ports, Some(vec!["6443/tcp".to_owned()]));
        assert_eq!(
            body.cmd.unwrap(),
            [
                "server",
                "--https-listen-port",
                "6443",
                "--tls-san",
                "192.0.2.7"
            ]
        );
        let labels = body.labels.unwrap();
        assert_eq!(labels[CLUSTER_LABEL], spec().id.to_string());
        assert_eq!(labels[OWNER_LABEL], "alice");
        assert_eq!(labels[INSTANCE_LABEL], "prod");
        assert_eq!(labels[MANAGED_LABEL], "cluster");
        assert!(!labels.contains_key(API_PORT_LABEL));
        assert_eq!(body.env.unwrap(), ["K3S_X=1"]);
    }

    #[test]
    fn host_network_binds_the_chosen_port_and_remembers_it() {
        let mut s = settings(ClusterNetwork::Host);
        s.api_address = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        s.cpus = None;
        s.memory = 0;
        s.privileged = false;
        let body = create_body(&s, &spec(), Some(40123));
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("host"));
        assert_eq!(host.privileged, Some(false));
        assert_eq!(host.port_bindings, None);
        assert_eq!((host.memory, host.nano_cpus), (None, None));
        assert_eq!(
            body.cmd.unwrap(),
            [
                "server",
                "--https-listen-port",
                "40123",
                "--bind-address",
                "0.0.0.0",
                "--tls-san",
                "127.0.0.1",
                "--tls-san",
                "0.0.0.0"
            ]
        );
        assert_eq!(body.labels.unwrap()[API_PORT_LABEL], "40123");
    }

    #[test]
    fn urls_bracket_ipv6() {
        assert_eq!(api_url("::1".parse().unwrap(), 1), "https://[::1]:1");
        assert_eq!(
            reach_address("::".parse().unwrap()),
            "::1".parse::<IpAddr>().unwrap()
        );
    }
}
