//! CLI/agent installations and their liveness pings.

use std::net::IpAddr;

use berth_types::{ClientId, Username};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One ping as the server received it. The server keeps pings in memory and hands them to
/// [`crate::Store::record_pings`] in batches, so a busy fleet costs one transaction every few
/// seconds rather than one per ping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientPing {
    /// The installation.
    pub client_id: ClientId,
    /// The user its token belongs to.
    pub username: Username,
    /// The machine it runs on, as it reports it.
    pub hostname: String,
    /// Its `berth` version.
    pub version: String,
    /// When the ping arrived.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Where it came from.
    pub ip: IpAddr,
    /// What it runs locally (workspaces in local Docker mode), as it reports it.
    pub local_workspaces: serde_json::Value,
}

/// What the store knows about a client: its latest ping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// The installation.
    pub client_id: ClientId,
    /// The user its token belongs to.
    pub username: Username,
    /// The machine it runs on.
    pub hostname: String,
    /// Its `berth` version.
    pub version: String,
    /// Its first recorded ping.
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    /// Its latest ping.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    /// Where the latest ping came from.
    pub last_ip: IpAddr,
    /// What it ran locally at the latest ping.
    pub local_workspaces: serde_json::Value,
}
