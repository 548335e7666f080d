//! The provider boundary: what a cluster service asks of whatever runs the clusters.

use std::fmt;

use async_trait::async_trait;
use berth_types::{ClusterId, ClusterName, Username};

use crate::ProviderError;

/// What to create: the cluster's identity, fixed for its whole life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    pub id: ClusterId,
    pub name: ClusterName,
    pub owner: Username,
}

/// A cluster whose server runs (not necessarily ready yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// Where its Kubernetes API is reached, e.g. `https://127.0.0.1:40123`.
    pub api_url: String,
}

/// What the provider sees of one cluster now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderStatus {
    /// The provider holds nothing for this id.
    Missing,
    /// Its server runs but its API is not ready yet; `detail` says what is awaited.
    Provisioning { detail: String },
    /// Its API answers `GET /readyz` with `ok`, verified with the cluster's own credentials.
    Ready { api_url: String },
    /// Its server stopped or cannot start; `reason` says why (with the log's last lines).
    Failed { reason: String },
}

/// One cluster the provider holds for this installation, for reconciliation with the records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderCluster {
    pub id: ClusterId,
    /// `None` when the label is missing or not a valid username.
    pub owner: Option<Username>,
    /// The provider's handle (a container name for the `docker` provider).
    pub container: String,
    /// Whether its server runs now (a stopped one is still held: `create` starts it again).
    pub running: bool,
}

/// A kubeconfig: the cluster's address, CA and admin credentials. Its `Debug` prints
/// `<kubeconfig>`, so it never lands in a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Kubeconfig(String);

impl Kubeconfig {
    /// Wraps kubeconfig text (a provider's, or a fake's in tests above the trait).
    #[must_use]
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// The YAML text, to hand to its owner or to seal.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The YAML text as bytes.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.0.into_bytes()
    }
}

impl fmt::Debug for Kubeconfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<kubeconfig>")
    }
}

/// Something that runs Kubernetes clusters: `docker` (k3s in a container) today; a virtual
/// cluster on a host Kubernetes is the next one (see `docs/clusters.md`).
#[async_trait]
pub trait ClusterProvider: Send + Sync + fmt::Debug {
    /// The provider's name as written in main.yaml `clusters.provider`: `docker`.
    fn name(&self) -> &'static str;

    /// Creates the cluster `spec.id`, or reuses what already exists for that id (starting it
    /// when stopped): never a second one. Returns once its server runs, not when it is ready.
    async fn create(&self, spec: &ClusterSpec) -> Result<Provisioned, ProviderError>;

    /// Where the cluster is: missing, provisioning, ready (its `/readyz` answered `ok` over
    /// verified TLS with the cluster's own client credentials) or failed.
    async fn status(&self, id: ClusterId) -> Result<ProviderStatus, ProviderError>;

    /// The cluster's kubeconfig, pointing at the address the API is published on, with its
    /// cluster, context and user named `berth-<name>`.
    async fn kubeconfig(&self, id: ClusterId) -> Result<Kubeconfig, ProviderError>;

    /// Removes the cluster and its storage. Deleting what is already gone is `Ok`.
    async fn delete(&self, id: ClusterId) -> Result<(), ProviderError>;

    /// Every cluster the provider holds for this installation.
    async fn list(&self) -> Result<Vec<ProviderCluster>, ProviderError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_debug_is_redacted() {
        let k = Kubeconfig::new("client-key-data: c2VjcmV0".to_owned());
        assert_eq!(format!("{k:?}"), "<kubeconfig>");
        assert_eq!(k.expose(), "client-key-data: c2VjcmV0");
        assert_eq!(k.into_bytes(), b"client-key-data: c2VjcmV0");
    }
}
