//! Ephemeral Kubernetes clusters, below the service that gives them a life (TTL, quotas,
//! states): the [`ClusterProvider`] trait, its first provider [`DockerProvider`] (a k3s server
//! in one privileged container on the Docker Engine Berth already uses, the way k3d runs it),
//! and [`KubeconfigKey`], which seals kubeconfigs at rest with XChaCha20-Poly1305.
//!
//! The crate knows nothing of HTTP routes or the database: `berth-core` records clusters and
//! calls a provider through the trait; `docs/clusters.md` tells the operator's side.
#![forbid(unsafe_code)]

mod docker;
mod error;
mod kubeconfig;
mod provider;
mod seal;

pub use docker::{ClusterNetwork, DEFAULT_K3S_IMAGE, DockerClusterSettings, DockerProvider};
pub use error::ProviderError;
pub use provider::{
    ClusterProvider, ClusterSpec, Kubeconfig, ProviderCluster, ProviderStatus, Provisioned,
};
pub use seal::{KubeconfigKey, SealError};
