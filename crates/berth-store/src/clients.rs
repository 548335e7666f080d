//! CLI/agent installations and their liveness pings, kept by [`ClientStore`].

use std::fmt;
use std::net::IpAddr;

use async_trait::async_trait;
use berth_types::{ClientId, Username};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::db::{Bind, Row, SqlStore};
use crate::{StoreError, sql};

/// One ping as the server received it. The server keeps pings in memory and hands them to
/// [`ClientStore::record_pings`] in batches, so a busy fleet costs one transaction every few
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

/// The clients table: each CLI/agent installation's latest ping.
#[async_trait]
pub trait ClientStore: Send + Sync + fmt::Debug {
    /// Upserts a batch of pings in one transaction. For a client pinging more than once in the
    /// batch (or arriving out of order across batches), the latest ping wins.
    async fn record_pings(&self, pings: &[ClientPing]) -> Result<(), StoreError>;

    /// Known clients, most recently seen first; only `username`'s when given.
    async fn list_clients(&self, username: Option<&Username>) -> Result<Vec<Client>, StoreError>;
}

fn client_row(row: &Row) -> Result<Client, StoreError> {
    Ok(Client {
        client_id: row.get_uuid("client_id")?.into(),
        username: sql::username(row.get_str("username")?)?,
        hostname: row.get_str("hostname")?,
        version: row.get_str("version")?,
        first_seen: row.get_time("first_seen")?,
        last_seen: row.get_time("last_seen")?,
        last_ip: sql::ip(&row.get_str("last_ip")?)?,
        local_workspaces: sql::json(&row.get_str("local_workspaces")?)?,
    })
}

#[async_trait]
impl ClientStore for SqlStore {
    async fn record_pings(&self, pings: &[ClientPing]) -> Result<(), StoreError> {
        if pings.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for ping in pings {
            tx.execute(
                sql::UPSERT_PING,
                &[
                    Bind::Uuid(ping.client_id.as_uuid()),
                    Bind::text(ping.username.as_str()),
                    Bind::text(&ping.hostname),
                    Bind::text(&ping.version),
                    Bind::Time(ping.at),
                    Bind::Text(ping.ip.to_string()),
                    Bind::Text(ping.local_workspaces.to_string()),
                ],
            )
            .await?;
        }
        tx.commit().await
    }

    async fn list_clients(&self, username: Option<&Username>) -> Result<Vec<Client>, StoreError> {
        let username = username.map(|u| u.as_str().to_owned());
        self.fetch_all(sql::LIST_CLIENTS, &[Bind::OptText(username)])
            .await?
            .iter()
            .map(client_row)
            .collect()
    }
}
