//! Ephemeral Kubernetes clusters: what Berth knows about each cluster a provider runs for a
//! user, and [`ClusterStore`], the store that owns them (`clusters`).
//!
//! A cluster's life is `provisioning → running → deleting → deleted`, or `failed` with a
//! reason. Moves are compare-and-set ([`ClusterStore::transition_cluster`]): the guard and the
//! write are one `UPDATE`, so of two tasks moving one cluster at once (the reaper and a user's
//! delete, say) one is refused. The row stays after `deleted`, for the history; a name is
//! unique per owner only among clusters that are not deleted (a partial unique index).
//!
//! The kubeconfig is kept sealed (encrypted by the caller) in a column of its own that no
//! query but [`ClusterStore::kubeconfig`] reads: a [`ClusterRecord`] never carries it.

use std::fmt;
use std::fmt::Write as _;

use async_trait::async_trait;
use berth_types::{ClusterId, ClusterName, ClusterState, Username};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::db::{Bind, Row, SqlStore};
use crate::{StoreError, sql, timestamp};

/// The largest sealed kubeconfig [`ClusterStore::store_kubeconfig`] keeps: 1 MiB. A k3s
/// kubeconfig is a few kilobytes; the bound keeps a broken provider from filling the database.
pub const MAX_KUBECONFIG_BYTES: usize = 1024 * 1024;

/// One cluster row. Timestamps come back normalized (UTC, microseconds; see
/// [`crate::normalize_time`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// The cluster id, chosen by the caller (providers name their resources after it).
    pub id: ClusterId,
    /// Its name, unique among its owner's clusters that are not deleted.
    pub name: ClusterName,
    /// The user who asked for it.
    pub owner: Username,
    /// The provider that runs it (`docker`).
    pub provider: String,
    /// Where it is in its life.
    pub state: ClusterState,
    /// Why it is in its state, for people ("ttl reached", "deleted by alice", a provider
    /// error).
    pub state_reason: String,
    /// The Kubernetes API's address, once the provider published it.
    pub api_url: Option<String>,
    /// When it was asked for.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it first became `running`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub running_at: Option<OffsetDateTime>,
    /// When its TTL runs out (the reaper deletes it then).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The latest `expires_at` an extension may reach.
    #[serde(with = "time::serde::rfc3339")]
    pub max_expires_at: OffsetDateTime,
    /// When it became `deleted`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
}

/// Which clusters [`ClusterStore::list_clusters`] returns. The default is all of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterFilter {
    /// Only this user's clusters.
    pub owner: Option<Username>,
    /// Only clusters in one of these states; empty means any state.
    pub states: Vec<ClusterState>,
}

/// A move for [`ClusterStore::transition_cluster`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterTransition {
    /// The new state.
    pub state: ClusterState,
    /// Why, for people.
    pub reason: String,
    /// When: `running_at` the first time it becomes `running`, `deleted_at` when it becomes
    /// `deleted`.
    pub at: OffsetDateTime,
    /// Replaces the API address when `Some`; keeps the stored one when `None`.
    pub api_url: Option<String>,
}

/// The clusters table: one row per cluster, whatever its state, until its owner's account is
/// removed ([`ClusterStore::delete_clusters_of`]).
#[async_trait]
pub trait ClusterStore: Send + Sync + fmt::Debug {
    /// Records a new cluster. [`StoreError::Conflict`] if the id is taken or the owner has a
    /// cluster of that name that is not `deleted` (another owner may use the name, and so may
    /// the owner once the other is deleted); [`StoreError::InvalidInput`] if `expires_at` is
    /// after `max_expires_at`.
    async fn insert_cluster(&self, cluster: &ClusterRecord) -> Result<(), StoreError>;

    /// One cluster. [`StoreError::NotFound`] if there is none with this id.
    async fn cluster(&self, id: ClusterId) -> Result<ClusterRecord, StoreError>;

    /// The clusters `filter` selects, oldest first (by `created_at`, then id).
    async fn list_clusters(&self, filter: &ClusterFilter)
    -> Result<Vec<ClusterRecord>, StoreError>;

    /// How many of `owner`'s clusters are in one of `states` (quotas count
    /// [`ClusterState::LIVE`]); 0 for no states.
    async fn count_clusters(
        &self,
        owner: &Username,
        states: &[ClusterState],
    ) -> Result<u64, StoreError>;

    /// Moves cluster `id` to `to.state` if it is in one of `from` now, in one statement, and
    /// answers it as stored afterwards. Sets the state and the reason; `running_at` = `to.at`
    /// the first time it becomes `running` (a later `running` keeps it); `deleted_at` =
    /// `to.at` when it becomes `deleted` (and its kubeconfig is dropped: the cluster it opens
    /// is gone); the API address when `to.api_url` is `Some`.
    ///
    /// [`StoreError::Conflict`] (naming the state it is in) if it is in none of `from` (also
    /// for an empty `from`), and nothing changes; [`StoreError::NotFound`] if there is no
    /// cluster `id`.
    async fn transition_cluster(
        &self,
        id: ClusterId,
        from: &[ClusterState],
        to: &ClusterTransition,
    ) -> Result<ClusterRecord, StoreError>;

    /// Sets cluster `id`'s `expires_at` (later or earlier: the caller computes it) while it
    /// is `provisioning` or `running`, and answers it as stored afterwards.
    ///
    /// [`StoreError::Conflict`] in any other state; [`StoreError::InvalidInput`] if
    /// `expires_at` is after its `max_expires_at`; [`StoreError::NotFound`] if there is no
    /// cluster `id`. The checks and the write are one statement.
    async fn extend_cluster(
        &self,
        id: ClusterId,
        expires_at: OffsetDateTime,
    ) -> Result<ClusterRecord, StoreError>;

    /// The clusters `provisioning` or `running` whose `expires_at` is at or before `now`,
    /// soonest expired first: what the reaper deletes.
    async fn expired_clusters(&self, now: OffsetDateTime)
    -> Result<Vec<ClusterRecord>, StoreError>;

    /// Keeps `sealed`, the encrypted kubeconfig of cluster `id` (opaque bytes), replacing any
    /// stored one. [`StoreError::InvalidInput`] if it is empty or larger than
    /// [`MAX_KUBECONFIG_BYTES`]; [`StoreError::Conflict`] if the cluster is `deleted`;
    /// [`StoreError::NotFound`] if there is no cluster `id`.
    async fn store_kubeconfig(&self, id: ClusterId, sealed: &[u8]) -> Result<(), StoreError>;

    /// Cluster `id`'s sealed kubeconfig, `None` while none is stored.
    /// [`StoreError::NotFound`] if there is no cluster `id`.
    async fn kubeconfig(&self, id: ClusterId) -> Result<Option<Vec<u8>>, StoreError>;

    /// Gives `from`'s clusters to `to` (the account was renamed); how many there were.
    /// [`StoreError::Conflict`], with nothing changed, if `to` has a cluster that is not
    /// deleted under the name of one of `from`'s.
    async fn rename_cluster_owner(&self, from: &Username, to: &Username)
    -> Result<u64, StoreError>;

    /// Forgets every cluster of `owner` (the account was removed), kubeconfigs with them, and
    /// answers their ids, oldest first, so the caller can remove what providers still hold.
    async fn delete_clusters_of(&self, owner: &Username) -> Result<Vec<ClusterId>, StoreError>;
}

/// The columns of a [`ClusterRecord`]: never `kubeconfig`.
macro_rules! cluster_columns {
    () => {
        "id, name, owner, provider, state, state_reason, api_url, created_at, running_at, \
         expires_at, max_expires_at, deleted_at"
    };
}

/// The states in which a cluster's TTL runs, as SQL.
macro_rules! ttl_states {
    () => {
        "('provisioning', 'running')"
    };
}

const INSERT_CLUSTER: &str = concat!(
    "INSERT INTO clusters (",
    cluster_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
);

const GET_CLUSTER: &str = concat!(
    "SELECT ",
    cluster_columns!(),
    " FROM clusters WHERE id = $1"
);

const CLUSTER_ID_TAKEN: &str = "SELECT 1 FROM clusters WHERE id = $1";

const CLUSTER_STATE: &str = "SELECT state, max_expires_at FROM clusters WHERE id = $1";

/// `$2` the new state, `$3` the reason, `$4` when, `$5` the API address (null keeps it); the
/// guard (`AND state IN (...)`) is appended.
const TRANSITION_CLUSTER: &str = "UPDATE clusters SET state = $2, state_reason = $3, \
     running_at = CASE WHEN $2 = 'running' THEN COALESCE(running_at, $4) ELSE running_at END, \
     deleted_at = CASE WHEN $2 = 'deleted' THEN COALESCE(deleted_at, $4) ELSE deleted_at END, \
     kubeconfig = CASE WHEN $2 = 'deleted' THEN NULL ELSE kubeconfig END, \
     api_url = COALESCE($5, api_url) \
     WHERE id = $1";

const EXTEND_CLUSTER: &str = concat!(
    "UPDATE clusters SET expires_at = $2 WHERE id = $1 AND state IN ",
    ttl_states!(),
    " AND $2 <= max_expires_at RETURNING ",
    cluster_columns!()
);

const EXPIRED_CLUSTERS: &str = concat!(
    "SELECT ",
    cluster_columns!(),
    " FROM clusters WHERE state IN ",
    ttl_states!(),
    " AND expires_at <= $1 ORDER BY expires_at, id"
);

const STORE_KUBECONFIG: &str =
    "UPDATE clusters SET kubeconfig = $2 WHERE id = $1 AND state <> 'deleted'";

const GET_KUBECONFIG: &str = "SELECT kubeconfig FROM clusters WHERE id = $1";

const RENAME_OWNER: &str = "UPDATE clusters SET owner = $2 WHERE owner = $1";

const DELETE_CLUSTERS_OF: &str = "DELETE FROM clusters WHERE owner = $1 RETURNING id, created_at";

fn cluster_row(row: &Row) -> Result<ClusterRecord, StoreError> {
    let name = row.get_str("name")?;
    let state = row.get_str("state")?;
    Ok(ClusterRecord {
        id: ClusterId::from(row.get_uuid("id")?),
        name: ClusterName::new(name.as_str())
            .map_err(|e| StoreError::Corrupt(format!("stored cluster name {name:?}: {e}")))?,
        owner: sql::username(row.get_str("owner")?)?,
        provider: row.get_str("provider")?,
        state: cluster_state(&state)?,
        state_reason: row.get_str("state_reason")?,
        api_url: row.get_opt_str("api_url")?,
        created_at: row.get_time("created_at")?,
        running_at: row.get_opt_time("running_at")?,
        expires_at: row.get_time("expires_at")?,
        max_expires_at: row.get_time("max_expires_at")?,
        deleted_at: row.get_opt_time("deleted_at")?,
    })
}

fn cluster_state(text: &str) -> Result<ClusterState, StoreError> {
    text.parse().map_err(StoreError::Corrupt)
}

/// ` AND state IN ($n, ...)` for `states` bound after `binds`, or ` AND 1 = 0` for none.
fn push_states(sql: &mut String, binds: &mut Vec<Bind>, states: &[ClusterState]) {
    if states.is_empty() {
        sql.push_str(" AND 1 = 0");
        return;
    }
    sql.push_str(" AND state IN (");
    for (i, state) in states.iter().enumerate() {
        binds.push(Bind::text(state.as_str()));
        let _ = write!(sql, "{}${}", if i > 0 { ", " } else { "" }, binds.len());
    }
    sql.push(')');
}

fn state_names(states: &[ClusterState]) -> String {
    if states.is_empty() {
        return "(none)".to_owned();
    }
    states
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl ClusterStore for SqlStore {
    async fn insert_cluster(&self, c: &ClusterRecord) -> Result<(), StoreError> {
        if c.expires_at > c.max_expires_at {
            return Err(StoreError::InvalidInput(format!(
                "cluster {} would expire at {}, after its latest expiry {}",
                c.id,
                timestamp::to_text(c.expires_at)?,
                timestamp::to_text(c.max_expires_at)?
            )));
        }
        let inserted = self
            .execute(
                INSERT_CLUSTER,
                &[
                    Bind::Uuid(c.id.as_uuid()),
                    Bind::text(c.name.as_str()),
                    Bind::text(c.owner.as_str()),
                    Bind::text(&c.provider),
                    Bind::text(c.state.as_str()),
                    Bind::text(&c.state_reason),
                    Bind::OptText(c.api_url.clone()),
                    Bind::Time(c.created_at),
                    Bind::OptTime(c.running_at),
                    Bind::Time(c.expires_at),
                    Bind::Time(c.max_expires_at),
                    Bind::OptTime(c.deleted_at),
                ],
            )
            .await;
        match inserted {
            Ok(_) => Ok(()),
            // Two unique keys: say which one was taken, not the database's wording.
            Err(StoreError::Conflict(_)) => {
                let id_taken = self
                    .fetch_optional(CLUSTER_ID_TAKEN, &[Bind::Uuid(c.id.as_uuid())])
                    .await?
                    .is_some();
                Err(StoreError::Conflict(if id_taken {
                    format!("cluster {} exists", c.id)
                } else {
                    format!("{} already has a cluster named {}", c.owner, c.name)
                }))
            }
            Err(other) => Err(other),
        }
    }

    async fn cluster(&self, id: ClusterId) -> Result<ClusterRecord, StoreError> {
        let row = self
            .fetch_one(GET_CLUSTER, &[Bind::Uuid(id.as_uuid())])
            .await?;
        cluster_row(&row)
    }

    async fn list_clusters(
        &self,
        filter: &ClusterFilter,
    ) -> Result<Vec<ClusterRecord>, StoreError> {
        let mut text =
            concat!("SELECT ", cluster_columns!(), " FROM clusters WHERE 1 = 1").to_owned();
        let mut binds = Vec::new();
        if let Some(owner) = &filter.owner {
            binds.push(Bind::text(owner.as_str()));
            let _ = write!(text, " AND owner = ${}", binds.len());
        }
        if !filter.states.is_empty() {
            push_states(&mut text, &mut binds, &filter.states);
        }
        text.push_str(" ORDER BY created_at, id");
        self.fetch_all(text, &binds)
            .await?
            .iter()
            .map(cluster_row)
            .collect()
    }

    async fn count_clusters(
        &self,
        owner: &Username,
        states: &[ClusterState],
    ) -> Result<u64, StoreError> {
        let mut text = "SELECT COUNT(*) FROM clusters WHERE owner = $1".to_owned();
        let mut binds = vec![Bind::text(owner.as_str())];
        push_states(&mut text, &mut binds, states);
        let count = self.fetch_one(text, &binds).await?.get_i64(0)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn transition_cluster(
        &self,
        id: ClusterId,
        from: &[ClusterState],
        to: &ClusterTransition,
    ) -> Result<ClusterRecord, StoreError> {
        let mut text = TRANSITION_CLUSTER.to_owned();
        let mut binds = vec![
            Bind::Uuid(id.as_uuid()),
            Bind::text(to.state.as_str()),
            Bind::text(&to.reason),
            Bind::Time(to.at),
            Bind::OptText(to.api_url.clone()),
        ];
        push_states(&mut text, &mut binds, from);
        text.push_str(concat!(" RETURNING ", cluster_columns!()));
        if let Some(row) = self.fetch_optional(text, &binds).await? {
            return cluster_row(&row);
        }
        let now = self
            .fetch_one(CLUSTER_STATE, &[Bind::Uuid(id.as_uuid())])
            .await?
            .get_str("state")?;
        Err(StoreError::Conflict(format!(
            "cluster {id} is {now}, not {}: it cannot become {}",
            state_names(from),
            to.state
        )))
    }

    async fn extend_cluster(
        &self,
        id: ClusterId,
        expires_at: OffsetDateTime,
    ) -> Result<ClusterRecord, StoreError> {
        let binds = [Bind::Uuid(id.as_uuid()), Bind::Time(expires_at)];
        if let Some(row) = self.fetch_optional(EXTEND_CLUSTER, &binds).await? {
            return cluster_row(&row);
        }
        let row = self.fetch_one(CLUSTER_STATE, &binds[..1]).await?;
        let state = cluster_state(&row.get_str("state")?)?;
        if !matches!(state, ClusterState::Provisioning | ClusterState::Running) {
            return Err(StoreError::Conflict(format!(
                "cluster {id} is {state}: only a provisioning or running cluster is extended"
            )));
        }
        let max = row.get_time("max_expires_at")?;
        Err(StoreError::InvalidInput(format!(
            "cluster {id} cannot live past {}, not until {}",
            timestamp::to_text(max)?,
            timestamp::to_text(expires_at)?
        )))
    }

    async fn expired_clusters(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<ClusterRecord>, StoreError> {
        self.fetch_all(EXPIRED_CLUSTERS, &[Bind::Time(now)])
            .await?
            .iter()
            .map(cluster_row)
            .collect()
    }

    async fn store_kubeconfig(&self, id: ClusterId, sealed: &[u8]) -> Result<(), StoreError> {
        if sealed.is_empty() || sealed.len() > MAX_KUBECONFIG_BYTES {
            return Err(StoreError::InvalidInput(format!(
                "a sealed kubeconfig has 1 to {MAX_KUBECONFIG_BYTES} bytes, this one {}",
                sealed.len()
            )));
        }
        let changed = self
            .execute(
                STORE_KUBECONFIG,
                &[Bind::Uuid(id.as_uuid()), Bind::Bytes(sealed.to_vec())],
            )
            .await?;
        if changed == 1 {
            return Ok(());
        }
        // Not stored: either there is no such cluster or it is deleted.
        let state = self
            .fetch_one(CLUSTER_STATE, &[Bind::Uuid(id.as_uuid())])
            .await?
            .get_str("state")?;
        Err(StoreError::Conflict(format!(
            "cluster {id} is {state}: its kubeconfig is not kept"
        )))
    }

    async fn kubeconfig(&self, id: ClusterId) -> Result<Option<Vec<u8>>, StoreError> {
        self.fetch_one(GET_KUBECONFIG, &[Bind::Uuid(id.as_uuid())])
            .await?
            .get::<Option<Vec<u8>>>("kubeconfig")
    }

    async fn rename_cluster_owner(
        &self,
        from: &Username,
        to: &Username,
    ) -> Result<u64, StoreError> {
        self.execute(
            RENAME_OWNER,
            &[Bind::text(from.as_str()), Bind::text(to.as_str())],
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => StoreError::Conflict(format!(
                "{to} already has a cluster named like one of {from}'s"
            )),
            other => other,
        })
    }

    async fn delete_clusters_of(&self, owner: &Username) -> Result<Vec<ClusterId>, StoreError> {
        let rows = self
            .fetch_all(DELETE_CLUSTERS_OF, &[Bind::text(owner.as_str())])
            .await?;
        // RETURNING gives no order: sort as listings do.
        let mut gone = rows
            .iter()
            .map(|row| {
                Ok((
                    row.get_time("created_at")?,
                    ClusterId::from(row.get_uuid("id")?),
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        gone.sort();
        Ok(gone.into_iter().map(|(_, id)| id).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn records_serialize_timestamps_as_rfc3339() {
        let at = datetime!(2024-05-01 12:00 UTC);
        let c = ClusterRecord {
            id: ClusterId::random(),
            name: ClusterName::new("demo").unwrap(),
            owner: Username::new("alice").unwrap(),
            provider: "docker".into(),
            state: ClusterState::Provisioning,
            state_reason: String::new(),
            api_url: None,
            created_at: at,
            running_at: None,
            expires_at: at,
            max_expires_at: at,
            deleted_at: None,
        };
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["created_at"], "2024-05-01T12:00:00Z");
        assert_eq!(json["state"], "provisioning");
        assert_eq!(json["running_at"], serde_json::Value::Null);
        assert_eq!(serde_json::from_value::<ClusterRecord>(json).unwrap(), c);
    }

    #[test]
    fn state_guards_bind_each_state_or_match_nothing() {
        let mut text = String::from("WHERE id = $1");
        let mut binds = vec![Bind::text("x")];
        push_states(
            &mut text,
            &mut binds,
            &[ClusterState::Provisioning, ClusterState::Running],
        );
        assert_eq!(text, "WHERE id = $1 AND state IN ($2, $3)");
        assert_eq!(binds[2], Bind::text("running"));
        let mut none = String::new();
        push_states(&mut none, &mut Vec::new(), &[]);
        assert_eq!(none, " AND 1 = 0");
        assert_eq!(state_names(&[]), "(none)");
    }
}
