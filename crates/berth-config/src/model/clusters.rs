//! main.yaml `clusters`: ephemeral Kubernetes clusters users ask for, with a time to live.
//! Read when Berth starts.

use std::net::{IpAddr, Ipv4Addr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::units::{HumanDuration, Memory, cpus, within};

/// The k3s image a cluster runs when main.yaml names none.
pub const DEFAULT_CLUSTER_IMAGE: &str = "rancher/k3s:v1.34.1-k3s1";

/// Ephemeral Kubernetes clusters: who may have how many, for how long, and how big.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Clusters {
    /// Let users ask for clusters. The price: with the `docker` provider Berth runs a
    /// privileged container (k3s needs it) on its Docker Engine for every cluster, and a
    /// privileged container is root on that host. Off (the default): no cluster is made and
    /// no privileged container is ever started.
    pub enabled: bool,
    /// What makes clusters: `docker` (a k3s server in a container on the Docker Engine Berth
    /// already uses). A virtual cluster on a host Kubernetes is the next provider; not yet.
    pub provider: ClusterProvider,
    /// The k3s image of a cluster's container (a `rancher/k3s` tag, or a mirror of it).
    #[schemars(example = "rancher/k3s:v1.34.1-k3s1")]
    pub image: String,
    /// Time to live of a cluster whose request names none (1m and up, at most `max_ttl`).
    pub default_ttl: HumanDuration,
    /// The longest a cluster lives, counted from its creation, extensions included (1m and
    /// up).
    pub max_ttl: HumanDuration,
    /// Live clusters (provisioning, running or deleting) one user may have at once (0 to 100;
    /// 0: none). Admins get the same limit.
    #[serde(deserialize_with = "within::<_, _, 0, 100>")]
    #[schemars(range(min = 0, max = 100))]
    pub max_per_user: u32,
    /// CPU limit of a cluster, in CPUs (0.01 to 64); `null`: no limit.
    #[serde(deserialize_with = "cpus")]
    #[schemars(range(min = 0.01, max = 64.0))]
    pub cpus: Option<f64>,
    /// Memory limit of a cluster.
    pub memory: Memory,
    /// The host address the API port of every cluster is published on (with `network:
    /// host`, the address the API listens on). Kubeconfigs point there: keep the loopback
    /// default unless users reach the clusters from other machines.
    #[schemars(with = "String", example = "127.0.0.1")]
    pub api_address: IpAddr,
    /// `bridge` (the default): each cluster on Docker's bridge network, its API port
    /// published on `api_address`. `host`: the cluster shares the host's network, for hosts
    /// without a Docker bridge.
    pub network: ClusterNetwork,
    /// How long a cluster may take to answer `/readyz` before it turns `failed` (10s to 1h).
    pub ready_timeout: HumanDuration,
    /// Run each cluster's container privileged, as k3s needs (the price described under
    /// `enabled`). Turn it off only for an image that needs no privileges, such as the
    /// stand-in image Berth's tests use on engines that cannot start privileged containers.
    pub privileged: bool,
    /// Extra environment of every cluster's server container, `NAME=value` (at most 64):
    /// k3s's own `K3S_*` variables, or a proxy (`HTTPS_PROXY=...`) for pulling workload
    /// images. Never a secret: main.yaml is readable by admins.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub env: Vec<String>,
}

impl Default for Clusters {
    fn default() -> Self {
        Self {
            enabled: false,
            provider: ClusterProvider::Docker,
            image: DEFAULT_CLUSTER_IMAGE.to_owned(),
            default_ttl: HumanDuration::from_secs_unchecked(2 * 3600),
            max_ttl: HumanDuration::from_secs_unchecked(24 * 3600),
            max_per_user: 1,
            cpus: Some(2.0),
            memory: Memory::from_bytes_unchecked(2 << 30),
            api_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            network: ClusterNetwork::Bridge,
            ready_timeout: HumanDuration::from_secs_unchecked(300),
            privileged: true,
            env: Vec::new(),
        }
    }
}

/// What makes clusters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClusterProvider {
    /// A k3s server in a privileged container on Berth's Docker Engine, as k3d does.
    #[default]
    Docker,
}

/// The network of a cluster's container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClusterNetwork {
    /// Docker's bridge network; the API port published on `api_address`.
    #[default]
    Bridge,
    /// The host's network: the API listens on `api_address` directly.
    Host,
}
