//! Clusters: create, list, extend, download the kubeconfig, delete.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Timeout;
use crate::{ClusterId, ClusterName, ClusterState, Username};

/// `POST /api/v1/clusters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCluster {
    /// Its name, unique among your clusters that are not deleted.
    pub name: ClusterName,
    /// How long it lives (`"2h"`, `"90m"` or seconds), at most main.yaml `clusters.max_ttl`.
    /// Absent: `clusters.default_ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Timeout>,
}

/// `POST /api/v1/clusters/{id}/extend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendCluster {
    /// How much longer it lives, added to its current expiry; the new expiry is at most
    /// `clusters.max_ttl` after its creation.
    pub ttl: Timeout,
}

/// A cluster as the API shows it. Never carries the kubeconfig: that is
/// `GET /api/v1/clusters/{id}/kubeconfig`, audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClusterView {
    /// The cluster.
    pub id: ClusterId,
    /// Its name.
    pub name: ClusterName,
    /// Its owner.
    pub owner: Username,
    /// The provider that runs it (`docker`).
    pub provider: String,
    /// Where it is in its life.
    pub state: ClusterState,
    /// Why it is in its state, for people ("ttl reached", "deleted by alice", a provider
    /// error).
    pub state_reason: String,
    /// The Kubernetes API's address, once known (`https://127.0.0.1:40123`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// When it was asked for.
    #[serde(with = "super::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub created_at: OffsetDateTime,
    /// When its API first answered `/readyz`.
    #[serde(default, with = "super::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub running_at: Option<OffsetDateTime>,
    /// When its TTL deletes it.
    #[serde(with = "super::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub expires_at: OffsetDateTime,
    /// The latest `expires_at` an extension may reach (`created_at` + `clusters.max_ttl`).
    #[serde(with = "super::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub max_expires_at: OffsetDateTime,
}

/// `GET /api/v1/clusters` filters. Users see their own clusters only; `owner` is for admins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterQuery {
    /// Only this user's clusters (admins; a user may give only their own name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Username>,
    /// Only clusters in this state. Absent: every state but `deleted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ClusterState>,
}

/// `GET /api/v1/clusters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClusterList {
    /// The clusters, oldest first.
    pub clusters: Vec<ClusterView>,
}
