//! Inventory syncs: one row per fetch of the fleet's git repository, with what started it,
//! how it ended, the commit, the errors of a failed one and what it changed.
//! [`FleetSyncStore`] owns them; finishing a sync that read a new inventory replaces the
//! machines table ([`crate::MachineStore`]) in the same transaction, so the machines and the
//! commit in force never disagree.

use std::fmt;

use async_trait::async_trait;
use berth_types::{SyncChanges, SyncFileError, SyncResult, SyncTrigger};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::StoreError;
use crate::db::{Bind, Row, SqlStore};
use crate::machines::{self, MachineSpec};

/// The most finished syncs kept: [`FleetSyncStore::finish_sync`] forgets older ones (except
/// the one whose commit is in force, and running ones).
pub const SYNC_HISTORY: u32 = 1000;

/// One sync of the inventory.
///
/// Timestamps come back normalized (UTC, microseconds; see [`crate::normalize_time`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRecord {
    /// Its id: ids only grow, in the order syncs begin.
    pub id: i64,
    /// What started it.
    pub trigger: SyncTrigger,
    /// Who: the admin of an API call, `(berth)` for Berth itself (timers and webhooks; the
    /// trigger tells them apart).
    pub actor: String,
    /// When it began.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When it ended; `None` while running.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// How it ended, or `running`.
    pub result: SyncResult,
    /// The commit it fetched, when it got that far.
    pub commit: Option<String>,
    /// What was wrong, for a failed sync.
    pub errors: Vec<SyncFileError>,
    /// What it changed in the inventory in force.
    pub changes: SyncChanges,
}

/// How a sync ended, for [`FleetSyncStore::finish_sync`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Anything but `running`.
    pub result: SyncResult,
    /// The commit fetched; required for `succeeded` and `unchanged`, and with machines.
    pub commit: Option<String>,
    /// What was wrong, for a failed sync.
    pub errors: Vec<SyncFileError>,
    /// What it changed.
    pub changes: SyncChanges,
    /// When it ended.
    pub at: OffsetDateTime,
}

/// The fleet_syncs table: the history of inventory syncs, and with it the commit in force.
#[async_trait]
pub trait FleetSyncStore: Send + Sync + fmt::Debug {
    /// Records a sync that starts now, `running`.
    async fn begin_sync(
        &self,
        trigger: SyncTrigger,
        actor: &str,
        at: OffsetDateTime,
    ) -> Result<SyncRecord, StoreError>;

    /// Finishes sync `id` with `outcome`. When `machines` is `Some`, the machines table
    /// becomes exactly those machines in the same transaction: each spec is upserted, keeping
    /// the enrollment and health of rows that stay; rows not listed are deleted; a row whose
    /// SSH settings changed ([`MachineSpec::ssh_settings_differ`]) gets enrollment `unknown`,
    /// the message `"SSH settings changed in <short commit>; not verified since"` and no
    /// fingerprint or `verified_at`; new rows are enrollment `unknown` ("not verified yet")
    /// and health `unknown`. A row's `commit` and `updated_at` move only when its spec
    /// changes. Then only the newest [`SYNC_HISTORY`] syncs are kept (and the one whose
    /// commit is in force).
    ///
    /// [`StoreError::NotFound`] if there is no sync `id`; [`StoreError::Conflict`] if it is
    /// not running (then nothing changes, machines included); [`StoreError::InvalidInput`]
    /// for an outcome `running`, a missing commit (`succeeded`, `unchanged`, or machines
    /// given), or machines the table cannot keep (an id twice, port 0, a tag that is not
    /// `a-z 0-9 _ . -`).
    async fn finish_sync(
        &self,
        id: i64,
        outcome: &SyncOutcome,
        machines: Option<&[MachineSpec]>,
    ) -> Result<(), StoreError>;

    /// The newest `limit` syncs, newest first.
    async fn list_syncs(&self, limit: u32) -> Result<Vec<SyncRecord>, StoreError>;

    /// The commit of the sync that ended `succeeded` or `unchanged` last (by `finished_at`,
    /// then id): the inventory the machines table holds. `None` before the first.
    async fn commit_in_force(&self) -> Result<Option<String>, StoreError>;

    /// Marks every `running` sync `interrupted`, finished `at` (at start-up: a sync that was
    /// running when Berth stopped never ends); how many.
    async fn interrupt_running_syncs(&self, at: OffsetDateTime) -> Result<u64, StoreError>;
}

macro_rules! sync_columns {
    () => {
        "id, triggered_by, actor, started_at, finished_at, result, commit_id, errors, changes"
    };
}

const BEGIN_SYNC: &str = concat!(
    "INSERT INTO fleet_syncs (triggered_by, actor, started_at, result, errors, changes) \
     VALUES ($1, $2, $3, 'running', '[]', $4) RETURNING ",
    sync_columns!()
);

const FINISH_SYNC: &str = "UPDATE fleet_syncs SET finished_at = $2, result = $3, \
     commit_id = $4, errors = $5, changes = $6 WHERE id = $1 AND result = 'running'";

const SYNC_RESULT: &str = "SELECT result FROM fleet_syncs WHERE id = $1";

const LIST_SYNCS: &str = concat!(
    "SELECT ",
    sync_columns!(),
    " FROM fleet_syncs ORDER BY id DESC LIMIT $1"
);

/// The sync whose commit is in force: the last to end with an inventory, as the machines
/// table holds the inventory of the last `finish_sync` (the fleet runs one sync at a time, so
/// this is also the latest by id).
macro_rules! in_force {
    ($column:literal) => {
        concat!(
            "SELECT ",
            $column,
            " FROM fleet_syncs WHERE result IN ('succeeded', 'unchanged') \
             ORDER BY finished_at DESC, id DESC LIMIT 1"
        )
    };
}

const COMMIT_IN_FORCE: &str = in_force!("commit_id");

/// Forgets finished syncs older than the newest `$1`, but never the one in force.
const PRUNE_SYNCS: &str = concat!(
    "DELETE FROM fleet_syncs WHERE result <> 'running' \
     AND id <= (SELECT id FROM fleet_syncs ORDER BY id DESC LIMIT 1 OFFSET $1) \
     AND id <> COALESCE((",
    in_force!("id"),
    "), 0)"
);

const INTERRUPT_SYNCS: &str = "UPDATE fleet_syncs SET result = 'interrupted', finished_at = $1 \
     WHERE result = 'running'";

fn json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::InvalidInput(format!("{e}")))
}

fn stored_json<T: serde::de::DeserializeOwned>(row: &Row, column: &str) -> Result<T, StoreError> {
    serde_json::from_str(&row.get_str(column)?)
        .map_err(|e| StoreError::Corrupt(format!("stored sync {column}: {e}")))
}

fn sync_row(row: &Row) -> Result<SyncRecord, StoreError> {
    let trigger = row.get_str("triggered_by")?;
    let result = row.get_str("result")?;
    Ok(SyncRecord {
        id: row.get_i64("id")?,
        trigger: SyncTrigger::parse(&trigger)
            .ok_or_else(|| StoreError::Corrupt(format!("stored sync trigger {trigger:?}")))?,
        actor: row.get_str("actor")?,
        started_at: row.get_time("started_at")?,
        finished_at: row.get_opt_time("finished_at")?,
        result: SyncResult::parse(&result)
            .ok_or_else(|| StoreError::Corrupt(format!("stored sync result {result:?}")))?,
        commit: row.get_opt_str("commit_id")?,
        errors: stored_json(row, "errors")?,
        changes: stored_json(row, "changes")?,
    })
}

/// Refuses an outcome that cannot be recorded as asked.
fn check_outcome(
    outcome: &SyncOutcome,
    machines: Option<&[MachineSpec]>,
) -> Result<(), StoreError> {
    if outcome.result == SyncResult::Running {
        return Err(StoreError::InvalidInput(
            "a sync cannot finish as running".to_owned(),
        ));
    }
    if outcome.commit.is_none() && (outcome.result.in_force() || machines.is_some()) {
        return Err(StoreError::InvalidInput(format!(
            "a sync that ends {}{} names its commit",
            outcome.result,
            if machines.is_some() {
                " with machines"
            } else {
                ""
            }
        )));
    }
    if let Some(specs) = machines {
        machines::check_specs(specs)?;
    }
    Ok(())
}

#[async_trait]
impl FleetSyncStore for SqlStore {
    async fn begin_sync(
        &self,
        trigger: SyncTrigger,
        actor: &str,
        at: OffsetDateTime,
    ) -> Result<SyncRecord, StoreError> {
        let row = self
            .fetch_one(
                BEGIN_SYNC,
                &[
                    Bind::text(trigger.as_str()),
                    Bind::text(actor),
                    Bind::Time(at),
                    Bind::Text(json(&SyncChanges::default())?),
                ],
            )
            .await?;
        sync_row(&row)
    }

    async fn finish_sync(
        &self,
        id: i64,
        outcome: &SyncOutcome,
        machines: Option<&[MachineSpec]>,
    ) -> Result<(), StoreError> {
        check_outcome(outcome, machines)?;
        let mut tx = self.begin_write().await?;
        let finished = tx
            .execute(
                FINISH_SYNC,
                &[
                    Bind::Int(id),
                    Bind::Time(outcome.at),
                    Bind::text(outcome.result.as_str()),
                    Bind::OptText(outcome.commit.clone()),
                    Bind::Text(json(&outcome.errors)?),
                    Bind::Text(json(&outcome.changes)?),
                ],
            )
            .await?;
        if finished == 0 {
            // Dropping the transaction rolls it back: nothing was written.
            return match tx.fetch_optional(SYNC_RESULT, &[Bind::Int(id)]).await? {
                None => Err(StoreError::NotFound),
                Some(row) => Err(StoreError::Conflict(format!(
                    "sync {id} is {}, not running",
                    row.get_str("result")?
                ))),
            };
        }
        if let (Some(specs), Some(commit)) = (machines, &outcome.commit) {
            machines::replace_machines(&mut tx, specs, commit, outcome.at).await?;
        }
        tx.execute(PRUNE_SYNCS, &[Bind::Int(i64::from(SYNC_HISTORY))])
            .await?;
        tx.commit().await
    }

    async fn list_syncs(&self, limit: u32) -> Result<Vec<SyncRecord>, StoreError> {
        self.fetch_all(LIST_SYNCS, &[Bind::Int(i64::from(limit))])
            .await?
            .iter()
            .map(sync_row)
            .collect()
    }

    async fn commit_in_force(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .fetch_optional(COMMIT_IN_FORCE, &[])
            .await?
            .map(|row| row.get_opt_str("commit_id"))
            .transpose()?
            .flatten())
    }

    async fn interrupt_running_syncs(&self, at: OffsetDateTime) -> Result<u64, StoreError> {
        self.execute(INTERRUPT_SYNCS, &[Bind::Time(at)]).await
    }
}
