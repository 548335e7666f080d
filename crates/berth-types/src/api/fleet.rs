//! The fleet: machines from the inventory repository, their enrollment and health, syncs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::MachineId;
use crate::fleet::{
    EnrollmentStatus, HealthStatus, SyncChanges, SyncFileError, SyncResult, SyncTrigger,
};

/// A machine's enrollment: does its client id file match links.yaml?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnrollmentView {
    /// Where it stands.
    pub status: EnrollmentStatus,
    /// What was found and what to do about it.
    pub message: String,
    /// The SHA256 fingerprint of the host key it presents, when that key is unknown or
    /// changed: compare it with the machine's own (`ssh-keygen -lf
    /// /etc/ssh/ssh_host_ed25519_key.pub`) before trusting it.
    pub fingerprint: Option<String>,
    /// The last check.
    #[serde(with = "super::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub verified_at: Option<OffsetDateTime>,
}

/// One recent health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProbeView {
    /// When.
    #[serde(with = "super::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub at: OffsetDateTime,
    /// Connect and auth time in milliseconds; `null`: the machine could not be reached.
    pub latency_ms: Option<i64>,
}

/// A machine's health from its recent SSH checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HealthView {
    /// online, degraded (slow or flapping), offline, or unknown (not checked yet).
    pub status: HealthStatus,
    /// The last connect and auth time in milliseconds.
    pub latency_ms: Option<i64>,
    /// When it last answered.
    #[serde(with = "super::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub last_seen: Option<OffsetDateTime>,
    /// Failed checks since the last success.
    pub consecutive_failures: i64,
    /// The last check.
    #[serde(with = "super::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub checked_at: Option<OffsetDateTime>,
    /// The recent checks, oldest first (in `GET /api/v1/machines/{id}` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<ProbeView>,
}

/// A machine: its SSH settings from links.yaml (no secrets: `key` names a file in the keys
/// dir), its enrollment and its health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MachineView {
    /// The stable id (links.yaml `id`).
    pub id: MachineId,
    /// A name for people.
    pub name: String,
    /// Address or host name.
    pub host: String,
    /// SSH port.
    pub port: u16,
    /// The user Berth logs in as.
    pub user: String,
    /// links.yaml `type`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Tags (`tag:NAME` in selectors).
    pub tags: Vec<String>,
    /// The private key's file name in the keys dir.
    pub key: String,
    /// Whether the host key is pinned in links.yaml (else known_hosts decides).
    pub host_key_pinned: bool,
    /// The jump host's machine id.
    pub proxy_jump: Option<MachineId>,
    /// The enrollment id links.yaml expects.
    pub client_id: Option<String>,
    /// links.yaml `description`.
    pub description: String,
    /// Enrollment.
    pub enrollment: EnrollmentView,
    /// Health.
    pub health: HealthView,
    /// The inventory commit that last changed its entry.
    pub commit: String,
}

/// `GET /api/v1/machines`: filters, sort and paging in the query string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MachineQuery {
    /// Only machines of this `type`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Only machines with this health status.
    #[serde(default)]
    pub status: Option<HealthStatus>,
    /// Only machines with this enrollment status.
    #[serde(default)]
    pub enrollment: Option<EnrollmentStatus>,
    /// Only machines with this tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// The column to sort by (id, name, host, port, user, type, enrollment, health,
    /// latency_ms, last_seen, consecutive_failures, verified_at, checked_at); default id.
    #[serde(default)]
    pub sort: Option<String>,
    /// Sort descending.
    #[serde(default)]
    pub desc: Option<bool>,
    /// Rows per page (1 to 500, default 50).
    #[serde(default)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One page of machines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MachineList {
    /// The machines on this page.
    pub machines: Vec<MachineView>,
    /// Machines matching the filters, over all pages.
    pub total: u64,
    /// Pass it as `cursor` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /api/v1/machines/{id}/trust`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustHostKey {
    /// The SHA256 fingerprint the machine presents (`SHA256:...`), as the machine's status
    /// shows it and as `ssh-keygen -lf` prints it on the machine.
    #[schemars(length(min = 8, max = 100))]
    pub fingerprint: String,
}

/// `POST /api/v1/machines/verify`: every machine checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VerifyAll {
    /// Each machine after its check, by id.
    pub machines: Vec<MachineView>,
}

/// One sync of the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SyncView {
    /// Its number.
    pub id: i64,
    /// What started it.
    pub trigger: SyncTrigger,
    /// Who started it (`(berth)` for the schedule, the webhook and start-up).
    pub actor: String,
    /// When it started.
    #[serde(with = "super::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub started: OffsetDateTime,
    /// When it finished.
    #[serde(with = "super::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub finished: Option<OffsetDateTime>,
    /// How it ended.
    pub result: SyncResult,
    /// The commit fetched.
    pub commit: Option<String>,
    /// What was wrong, with file and line, when it failed.
    pub errors: Vec<SyncFileError>,
    /// Machines and scripts added, changed, removed.
    pub changes: SyncChanges,
}

/// `GET /api/v1/fleet/sync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FleetSyncStatus {
    /// The inventory repository.
    pub repository: String,
    /// The branch synced.
    pub branch: String,
    /// The commit in force (`null` before the first good sync).
    pub commit: Option<String>,
    /// A sync runs now.
    pub syncing: bool,
    /// Recent syncs, newest first.
    pub history: Vec<SyncView>,
}

/// `GET /api/v1/fleet/secrets-key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretsKeyView {
    /// The age recipient to encrypt `secrets.ini` to: `age -r RECIPIENT -a -o secrets.ini
    /// secrets.plain.ini`.
    pub recipient: String,
}

/// `POST /api/v1/fleet/webhook`: the request was verified and a sync started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookAccepted {
    /// Which signature style verified it (github, gitea, gitlab-signed, gitlab-token).
    pub sender: String,
}
