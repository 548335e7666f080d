//! Fleet machines: each machine of the inventory in force (links.yaml) with what Berth found
//! out about it, enrollment and health. [`MachineStore`] reads them and records checks; the
//! rows themselves come and go only with an inventory sync
//! ([`crate::FleetSyncStore::finish_sync`]), in the transaction that finishes it.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use berth_types::fleet::is_label;
use berth_types::{EnrollmentStatus, HealthStatus, MachineId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::db::{Bind, Row, SqlStore, Tx};
use crate::tables::filters::tags_text;
use crate::{StoreError, sql, timestamp};

/// A machine as links.yaml describes it (inventory columns only; no secrets: `key` is a file
/// name in the keys dir).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineSpec {
    /// Its stable id.
    pub id: MachineId,
    /// Shown in the UI.
    pub name: String,
    /// The host name or address to connect to.
    pub host: String,
    /// The SSH port.
    pub port: u16,
    /// The login.
    pub user: String,
    /// links.yaml's `type` (the table column `type`).
    pub kind: Option<String>,
    /// Its tags (`a-z 0-9 _ . -`, see [`berth_types::fleet::is_label`]), in links.yaml's order.
    pub tags: Vec<String>,
    /// The private key's file name in the keys dir.
    pub key: String,
    /// A pinned host key (`ssh-ed25519 AAAA…`); else known_hosts decides.
    pub host_key: Option<String>,
    /// The machine to connect through.
    pub proxy_jump: Option<MachineId>,
    /// The enrollment id expected in the machine's client id file.
    pub client_id: Option<String>,
    /// For people.
    pub description: String,
}

impl MachineSpec {
    /// Whether `self` and `other` reach the machine differently: another host, port, user,
    /// key, pinned host key, jump host or expected client id. An enrollment verified with the
    /// old settings says nothing about the new ones.
    #[must_use]
    pub fn ssh_settings_differ(&self, other: &Self) -> bool {
        self.host != other.host
            || self.port != other.port
            || self.user != other.user
            || self.key != other.key
            || self.host_key != other.host_key
            || self.proxy_jump != other.proxy_jump
            || self.client_id != other.client_id
    }
}

/// One recent health check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRecord {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The connect and auth time, or `None` when the check failed.
    pub latency_ms: Option<i64>,
}

/// A machine row: the spec and what Berth found.
///
/// Timestamps come back normalized (UTC, microseconds; see [`crate::normalize_time`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineRecord {
    /// What links.yaml says.
    pub spec: MachineSpec,
    /// Where its enrollment stands; `unknown` until verified, and again after its SSH
    /// settings change.
    pub enrollment: EnrollmentStatus,
    /// What the last verification found and what to do about it, for people.
    pub enrollment_message: String,
    /// The presented host key's SHA256 fingerprint, for an unknown or changed key.
    pub fingerprint: Option<String>,
    /// When the enrollment was last verified; `None` while it is `unknown`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub verified_at: Option<OffsetDateTime>,
    /// Its health from the recent checks.
    pub health: HealthStatus,
    /// The last connect and auth time.
    pub latency_ms: Option<i64>,
    /// When it last answered.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen: Option<OffsetDateTime>,
    /// Failed checks since the last success.
    pub consecutive_failures: i64,
    /// When it was last checked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub checked_at: Option<OffsetDateTime>,
    /// The recent checks, oldest first.
    pub probes: Vec<ProbeRecord>,
    /// The inventory commit that last wrote the spec: the one that added the machine or last
    /// changed it.
    pub commit: String,
    /// When a sync added it.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When a sync last changed its spec (checks have their own times).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The outcome of an enrollment check, for [`MachineStore::record_enrollment`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrollmentUpdate {
    /// Where it stands now.
    pub status: EnrollmentStatus,
    /// What was found and what to do, for people.
    pub message: String,
    /// The presented host key's fingerprint, for an unknown or changed key.
    pub fingerprint: Option<String>,
    /// When it was checked (becomes `verified_at`).
    pub at: OffsetDateTime,
}

/// A machine's health after a check, for [`MachineStore::record_health`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthUpdate {
    /// Its health now.
    pub status: HealthStatus,
    /// The last connect and auth time.
    pub latency_ms: Option<i64>,
    /// When it last answered.
    pub last_seen: Option<OffsetDateTime>,
    /// Failed checks since the last success.
    pub consecutive_failures: i64,
    /// When it was checked.
    pub checked_at: OffsetDateTime,
    /// The recent checks, oldest first (replaces the stored ones).
    pub probes: Vec<ProbeRecord>,
}

/// The machines table: one row per machine of the inventory in force.
#[async_trait]
pub trait MachineStore: Send + Sync + fmt::Debug {
    /// Every machine, by id.
    async fn list_machines(&self) -> Result<Vec<MachineRecord>, StoreError>;

    /// One machine, if the inventory in force has it.
    async fn machine(&self, id: &MachineId) -> Result<Option<MachineRecord>, StoreError>;

    /// Records an enrollment check: status, message, fingerprint, and `verified_at` = `at`.
    /// [`StoreError::NotFound`] when the machine is gone.
    async fn record_enrollment(
        &self,
        id: &MachineId,
        update: &EnrollmentUpdate,
    ) -> Result<(), StoreError>;

    /// Records a health check: every health column and the probes.
    /// [`StoreError::NotFound`] when the machine is gone.
    async fn record_health(&self, id: &MachineId, update: &HealthUpdate) -> Result<(), StoreError>;
}

macro_rules! machine_columns {
    () => {
        "id, name, host, port, ssh_user, kind, tags, key_file, host_key, proxy_jump, client_id, \
         description, enrollment, enrollment_message, fingerprint, verified_at, health, \
         latency_ms, last_seen, consecutive_failures, checked_at, probes, commit_id, created_at, \
         updated_at"
    };
}

const LIST_MACHINES: &str = concat!("SELECT ", machine_columns!(), " FROM machines ORDER BY id");

const GET_MACHINE: &str = concat!(
    "SELECT ",
    machine_columns!(),
    " FROM machines WHERE id = $1"
);

/// A new machine: not verified, not checked.
const INSERT_MACHINE: &str = concat!(
    "INSERT INTO machines (",
    machine_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'unknown', $13, NULL, NULL, \
     'unknown', NULL, NULL, 0, NULL, '[]', $14, $15, $15)"
);

/// A changed spec; the status columns stay.
const UPDATE_MACHINE_SPEC: &str = "UPDATE machines SET name = $2, host = $3, port = $4, \
     ssh_user = $5, kind = $6, tags = $7, key_file = $8, host_key = $9, proxy_jump = $10, \
     client_id = $11, description = $12, commit_id = $13, updated_at = $14 WHERE id = $1";

/// Forgets an enrollment verified with other SSH settings.
/// A machine reached another way starts again: enrollment and health both.
const RESET_ENROLLMENT: &str = "UPDATE machines SET enrollment = 'unknown', \
     enrollment_message = $2, fingerprint = NULL, verified_at = NULL, health = 'unknown', \
     latency_ms = NULL, last_seen = NULL, consecutive_failures = 0, checked_at = NULL, \
     probes = '[]' WHERE id = $1";

const DELETE_MACHINE: &str = "DELETE FROM machines WHERE id = $1";

const RECORD_ENROLLMENT: &str = "UPDATE machines SET enrollment = $2, enrollment_message = $3, \
     fingerprint = $4, verified_at = $5 WHERE id = $1";

const RECORD_HEALTH: &str = "UPDATE machines SET health = $2, latency_ms = $3, last_seen = $4, \
     consecutive_failures = $5, checked_at = $6, probes = $7 WHERE id = $1";

/// The message of a machine no one has verified yet.
pub(crate) const NOT_VERIFIED: &str = "not verified yet";

/// How much of a commit id the messages show.
const SHORT_COMMIT: usize = 12;

fn corrupt(what: &str, text: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "stored {what} {:?}",
        text.chars().take(80).collect::<String>()
    ))
}

pub(crate) fn machine_id(text: String) -> Result<MachineId, StoreError> {
    MachineId::new(text.clone()).map_err(|_| corrupt("machine id", &text))
}

fn spec_row(row: &Row) -> Result<MachineSpec, StoreError> {
    let port = row.get_i64("port")?;
    Ok(MachineSpec {
        id: machine_id(row.get_str("id")?)?,
        name: row.get_str("name")?,
        host: row.get_str("host")?,
        port: u16::try_from(port).map_err(|_| corrupt("port", &port.to_string()))?,
        user: row.get_str("ssh_user")?,
        kind: row.get_opt_str("kind")?,
        tags: sql::tags(&row.get_str("tags")?)?,
        key: row.get_str("key_file")?,
        host_key: row.get_opt_str("host_key")?,
        proxy_jump: row.get_opt_str("proxy_jump")?.map(machine_id).transpose()?,
        client_id: row.get_opt_str("client_id")?,
        description: row.get_str("description")?,
    })
}

fn machine_row(row: &Row) -> Result<MachineRecord, StoreError> {
    let enrollment = row.get_str("enrollment")?;
    let health = row.get_str("health")?;
    let probes = row.get_str("probes")?;
    Ok(MachineRecord {
        spec: spec_row(row)?,
        enrollment: EnrollmentStatus::parse(&enrollment)
            .ok_or_else(|| corrupt("enrollment status", &enrollment))?,
        enrollment_message: row.get_str("enrollment_message")?,
        fingerprint: row.get_opt_str("fingerprint")?,
        verified_at: row.get_opt_time("verified_at")?,
        health: HealthStatus::parse(&health).ok_or_else(|| corrupt("health status", &health))?,
        latency_ms: row.get_opt_i64("latency_ms")?,
        last_seen: row.get_opt_time("last_seen")?,
        consecutive_failures: row.get_i64("consecutive_failures")?,
        checked_at: row.get_opt_time("checked_at")?,
        probes: serde_json::from_str(&probes)
            .map_err(|e| StoreError::Corrupt(format!("stored probes: {e}")))?,
        commit: row.get_str("commit_id")?,
        created_at: row.get_time("created_at")?,
        updated_at: row.get_time("updated_at")?,
    })
}

/// The values of a spec's columns, `$1` to `$12` of [`INSERT_MACHINE`] and
/// [`UPDATE_MACHINE_SPEC`].
fn spec_binds(spec: &MachineSpec) -> Vec<Bind> {
    vec![
        Bind::text(spec.id.as_str()),
        Bind::text(&spec.name),
        Bind::text(&spec.host),
        Bind::Int(i64::from(spec.port)),
        Bind::text(&spec.user),
        Bind::OptText(spec.kind.clone()),
        Bind::Text(tags_text(&spec.tags)),
        Bind::text(&spec.key),
        Bind::OptText(spec.host_key.clone()),
        Bind::OptText(spec.proxy_jump.as_ref().map(|m| m.as_str().to_owned())),
        Bind::OptText(spec.client_id.clone()),
        Bind::text(&spec.description),
    ]
}

/// Refuses what the table cannot keep faithfully: a machine listed twice, port 0, a tag that
/// is not a label (a `,` would split it).
pub(crate) fn check_specs(specs: &[MachineSpec]) -> Result<(), StoreError> {
    let mut seen = HashMap::new();
    for (i, spec) in specs.iter().enumerate() {
        let refuse = |what: String| {
            StoreError::InvalidInput(format!("machine {} (entry {i}): {what}", spec.id))
        };
        if let Some(j) = seen.insert(&spec.id, i) {
            return Err(refuse(format!("the id is also entry {j}'s")));
        }
        if spec.port == 0 {
            return Err(refuse("port 0".to_owned()));
        }
        if let Some(tag) = spec.tags.iter().find(|t| !is_label(t)) {
            return Err(refuse(format!(
                "{:?} is not a tag (a-z, 0-9, _ . -, starting with a letter or a digit, at most 63)",
                tag.chars().take(80).collect::<String>()
            )));
        }
    }
    Ok(())
}

/// Makes the machines table exactly `specs` inside `tx` (see
/// [`crate::FleetSyncStore::finish_sync`]); `specs` were checked by [`check_specs`].
pub(crate) async fn replace_machines(
    tx: &mut Tx,
    specs: &[MachineSpec],
    commit: &str,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let at = timestamp::checked(at)?;
    let stored: HashMap<MachineId, MachineSpec> = tx
        .fetch_all(LIST_MACHINES, &[])
        .await?
        .iter()
        .map(|row| spec_row(row).map(|spec| (spec.id.clone(), spec)))
        .collect::<Result<_, _>>()?;
    let short: String = commit.chars().take(SHORT_COMMIT).collect();
    for spec in specs {
        let mut binds = spec_binds(spec);
        match stored.get(&spec.id) {
            None => {
                binds.extend([Bind::text(NOT_VERIFIED), Bind::text(commit), Bind::Time(at)]);
                tx.execute(INSERT_MACHINE, &binds).await?;
            }
            Some(old) if old == spec => {}
            Some(old) => {
                binds.extend([Bind::text(commit), Bind::Time(at)]);
                tx.execute(UPDATE_MACHINE_SPEC, &binds).await?;
                if old.ssh_settings_differ(spec) {
                    tx.execute(
                        RESET_ENROLLMENT,
                        &[
                            Bind::text(spec.id.as_str()),
                            Bind::Text(format!(
                                "SSH settings changed in {short}; not verified since"
                            )),
                        ],
                    )
                    .await?;
                }
            }
        }
    }
    let listed: std::collections::HashSet<&MachineId> = specs.iter().map(|s| &s.id).collect();
    for id in stored.keys().filter(|id| !listed.contains(id)) {
        tx.execute(DELETE_MACHINE, &[Bind::text(id.as_str())])
            .await?;
    }
    Ok(())
}

fn probes_json(probes: &[ProbeRecord]) -> Result<String, StoreError> {
    let normalized = probes
        .iter()
        .map(|p| {
            Ok(ProbeRecord {
                at: timestamp::checked(p.at)?,
                latency_ms: p.latency_ms,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    serde_json::to_string(&normalized).map_err(|e| StoreError::InvalidInput(format!("probes: {e}")))
}

#[async_trait]
impl MachineStore for SqlStore {
    async fn list_machines(&self) -> Result<Vec<MachineRecord>, StoreError> {
        self.fetch_all(LIST_MACHINES, &[])
            .await?
            .iter()
            .map(machine_row)
            .collect()
    }

    async fn machine(&self, id: &MachineId) -> Result<Option<MachineRecord>, StoreError> {
        self.fetch_optional(GET_MACHINE, &[Bind::text(id.as_str())])
            .await?
            .as_ref()
            .map(machine_row)
            .transpose()
    }

    async fn record_enrollment(
        &self,
        id: &MachineId,
        update: &EnrollmentUpdate,
    ) -> Result<(), StoreError> {
        let changed = self
            .execute(
                RECORD_ENROLLMENT,
                &[
                    Bind::text(id.as_str()),
                    Bind::text(update.status.as_str()),
                    Bind::text(&update.message),
                    Bind::OptText(update.fingerprint.clone()),
                    Bind::Time(update.at),
                ],
            )
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn record_health(&self, id: &MachineId, update: &HealthUpdate) -> Result<(), StoreError> {
        if update.consecutive_failures < 0 {
            return Err(StoreError::InvalidInput(format!(
                "consecutive failures cannot be negative ({})",
                update.consecutive_failures
            )));
        }
        let changed = self
            .execute(
                RECORD_HEALTH,
                &[
                    Bind::text(id.as_str()),
                    Bind::text(update.status.as_str()),
                    Bind::OptInt(update.latency_ms),
                    Bind::OptTime(update.last_seen),
                    Bind::Int(update.consecutive_failures),
                    Bind::Time(update.checked_at),
                    Bind::Text(probes_json(&update.probes)?),
                ],
            )
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn spec(id: &str) -> MachineSpec {
        MachineSpec {
            id: MachineId::new(id).unwrap(),
            name: id.to_owned(),
            host: "127.0.0.1".into(),
            port: 22,
            user: "ops".into(),
            kind: None,
            tags: vec!["web".into()],
            key: "ops.key".into(),
            host_key: None,
            proxy_jump: None,
            client_id: None,
            description: String::new(),
        }
    }

    #[test]
    fn ssh_settings_are_what_reaches_the_machine() {
        let a = spec("web-1");
        let renamed = MachineSpec {
            name: "Web".into(),
            description: "front".into(),
            tags: vec![],
            kind: Some("web".into()),
            ..a.clone()
        };
        assert!(!a.ssh_settings_differ(&renamed));
        for changed in [
            MachineSpec {
                host: "127.0.0.2".into(),
                ..a.clone()
            },
            MachineSpec {
                port: 2222,
                ..a.clone()
            },
            MachineSpec {
                user: "root".into(),
                ..a.clone()
            },
            MachineSpec {
                key: "other.key".into(),
                ..a.clone()
            },
            MachineSpec {
                host_key: Some("ssh-ed25519 AAAA".into()),
                ..a.clone()
            },
            MachineSpec {
                proxy_jump: Some(MachineId::new("bastion").unwrap()),
                ..a.clone()
            },
            MachineSpec {
                client_id: Some("5de3".into()),
                ..a.clone()
            },
        ] {
            assert!(a.ssh_settings_differ(&changed), "{changed:?}");
        }
    }

    #[test]
    fn specs_the_table_cannot_keep_are_refused() {
        assert!(check_specs(&[spec("a"), spec("b")]).is_ok());
        let refused = |specs: &[MachineSpec]| match check_specs(specs) {
            Err(StoreError::InvalidInput(message)) => message,
            other => panic!("{other:?}"),
        };
        assert!(refused(&[spec("a"), spec("b"), spec("a")]).contains("also entry 0"));
        let mut zero = spec("a");
        zero.port = 0;
        assert!(refused(&[zero]).contains("port 0"));
        for tag in ["a,b", "", "Web", "50%", "x\\y"] {
            let mut bad = spec("a");
            bad.tags = vec!["ok".into(), tag.into()];
            assert!(refused(&[bad]).contains("is not a tag"), "{tag:?}");
        }
    }

    #[test]
    fn records_serialize_timestamps_as_rfc3339() {
        let at = datetime!(2024-05-01 12:00 UTC);
        let record = MachineRecord {
            spec: spec("web-1"),
            enrollment: EnrollmentStatus::Unknown,
            enrollment_message: NOT_VERIFIED.into(),
            fingerprint: None,
            verified_at: None,
            health: HealthStatus::Online,
            latency_ms: Some(12),
            last_seen: Some(at),
            consecutive_failures: 0,
            checked_at: Some(at),
            probes: vec![ProbeRecord {
                at,
                latency_ms: None,
            }],
            commit: "0123abcd".into(),
            created_at: at,
            updated_at: at,
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["last_seen"], "2024-05-01T12:00:00Z");
        assert_eq!(json["verified_at"], serde_json::Value::Null);
        assert_eq!(json["enrollment"], "unknown");
        assert_eq!(json["probes"][0]["at"], "2024-05-01T12:00:00Z");
        assert_eq!(
            serde_json::from_value::<MachineRecord>(json).unwrap(),
            record
        );
    }
}
