//! Operations: start a script on machines, follow its output live, find it in the history.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;

use crate::operation::{MachineRunStatus, OperationStatus, OutputStream};
use crate::units::HumanDuration;
use crate::{MachineId, OperationId, Username};

/// The most machines one operation runs on.
pub const MAX_OPERATION_MACHINES: usize = 10_000;

/// A timeout (or a TTL): a duration as in the config files (`"90s"`, `"5m"`) or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Timeout(#[schemars(with = "TimeoutSchema")] pub HumanDuration);

/// How a [`Timeout`] may be written.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only its schema is used
enum TimeoutSchema {
    /// A duration such as "90s", "5m" or "1h30m".
    Text(HumanDuration),
    /// Seconds, 1 to 31536000.
    Seconds(#[schemars(range(min = 1, max = 31_536_000))] u64),
}

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timeout;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"90s\" or \"5m\", or a number of seconds")
            }

            fn visit_u64<E: serde::de::Error>(self, secs: u64) -> Result<Timeout, E> {
                HumanDuration::from_secs(secs)
                    .map(Timeout)
                    .ok_or_else(|| E::custom("a duration is from 1 second to 365 days"))
            }

            fn visit_i64<E: serde::de::Error>(self, secs: i64) -> Result<Timeout, E> {
                u64::try_from(secs)
                    .map_err(|_| E::custom("a duration is from 1 second to 365 days"))
                    .and_then(|s| self.visit_u64(s))
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Timeout, E> {
                text.parse().map(Timeout).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Machines chosen by what they are rather than by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OperationSelector {
    /// Machines with every one of these tags.
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub tags: Vec<String>,
    /// Machines of this `type`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

impl OperationSelector {
    /// Whether it chooses nothing at all (no tag, no type): refused, not "every machine".
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.kind.is_none()
    }

    /// Whether a machine with `tags` and type `kind` is chosen: it has every tag, and the
    /// type when one is given.
    #[must_use]
    pub fn matches(&self, tags: &[String], kind: Option<&str>) -> bool {
        self.tags.iter().all(|t| tags.contains(t))
            && self.kind.as_deref().is_none_or(|k| kind == Some(k))
    }
}

/// `POST /api/v1/operations`: run an inventory script on machines, by id or by selector
/// (exactly one of the two).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartOperation {
    /// The script's name in scripts.yaml.
    #[schemars(length(min = 1, max = 63))]
    pub script: String,
    /// The machines, by id: 1 to 10 000 (`MAX_OPERATION_MACHINES`; the bound is checked by
    /// the server, not declared in the schema, so schema-driven fuzzers do not build
    /// 10 000-item bodies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub machines: Option<Vec<MachineId>>,
    /// The machines, by tags and type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<OperationSelector>,
    /// Machines at once (1 to 1000); default the script's `concurrency`, else all (within
    /// `fleet.max_concurrency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub concurrency: Option<u32>,
    /// How long the script may run on each machine; default the script's `timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Timeout>,
}

/// One machine's part of an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MachineRunView {
    /// The machine.
    pub machine: MachineId,
    /// Where it stands.
    pub status: MachineRunStatus,
    /// The script's exit code, when it exited.
    pub exit_code: Option<i64>,
    /// The signal that ended it (`TERM`, `KILL`, ...), when one did.
    pub signal: Option<String>,
    /// Why it ended as it did, for people (the connection error, the timeout).
    pub message: String,
    /// When the script started on it.
    #[serde(with = "super::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub started: Option<OffsetDateTime>,
    /// When it finished.
    #[serde(with = "super::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub finished: Option<OffsetDateTime>,
    /// How long the script ran, in milliseconds.
    pub duration_ms: Option<i64>,
    /// Standard output (kept: the first and last parts of `fleet.max_output`), as text;
    /// invalid UTF-8 is replaced here and kept in `stdout_base64`. Only in
    /// `GET /api/v1/operations/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// Standard output as base64, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_base64: Option<String>,
    /// Standard error, as `stdout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// Standard error as base64, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_base64: Option<String>,
    /// Whether output beyond `fleet.max_output` was dropped from the middle.
    pub truncated: bool,
    /// The bytes of output kept, standard output and error together (also when the output
    /// itself is left out).
    #[serde(default)]
    pub output_bytes: u64,
}

/// Machines that printed the same thing and ended the same way (as `dshbak -c` groups them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OutputGroup {
    /// The machines, by id.
    pub machines: Vec<MachineId>,
    /// How they ended.
    pub status: MachineRunStatus,
    /// Their exit code.
    pub exit_code: Option<i64>,
    /// The signal that ended them.
    #[serde(default)]
    pub signal: Option<String>,
    /// The bytes of output each of them kept, standard output and error together.
    #[serde(default)]
    pub output_bytes: u64,
    /// Their standard output (as in [`MachineRunView::stdout`]; invalid UTF-8 replaced);
    /// absent with `output=none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// Their standard error, as `stdout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
}

/// How much of the output `GET /api/v1/operations/{id}` answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputDetail {
    /// Every machine's output, and the groups with theirs (the default).
    #[default]
    All,
    /// The groups with their output, the machines without: each distinct output once.
    Groups,
    /// No output: states, exit codes, sizes and which machines group together.
    None,
}

named_enum!(OutputDetail, "output detail", [
    All => "all",
    Groups => "groups",
    None => "none",
]);

/// `GET /api/v1/operations/{id}`: what to include.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OperationDetailQuery {
    /// How much output: `all` (default), `groups` or `none`. An answer with more than
    /// `MAX_INLINE_OUTPUT` bytes of output is refused (422 `output_too_large`): ask for less,
    /// and for each machine's at `/api/v1/operations/{id}/machines/{machine}`.
    #[serde(default)]
    pub output: Option<OutputDetail>,
}

/// The most output bytes (as kept) one answer of `GET /api/v1/operations/{id}` carries.
pub const MAX_INLINE_OUTPUT: u64 = 8 * 1024 * 1024;

/// An operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OperationView {
    /// Its id.
    pub id: OperationId,
    /// The script run.
    pub script: String,
    /// The inventory commit the script came from.
    pub commit: String,
    /// Who started it.
    pub user: Username,
    /// Where it stands.
    pub status: OperationStatus,
    /// Machines at once.
    pub concurrency: u32,
    /// The timeout per machine, in seconds.
    pub timeout_seconds: u64,
    /// The operation this one reruns.
    pub rerun_of: Option<OperationId>,
    /// When it was started.
    #[serde(with = "super::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub created: OffsetDateTime,
    /// When it finished.
    #[serde(with = "super::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub finished: Option<OffsetDateTime>,
    /// Every machine, in the order given.
    pub machines: Vec<MachineRunView>,
    /// The machines grouped by identical output and end (only in
    /// `GET /api/v1/operations/{id}`, once it finished; with their output unless
    /// `output=none`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<OutputGroup>,
}

/// `GET /api/v1/operations`: filters and paging in the query string; newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OperationQuery {
    /// Only operations in this state.
    #[serde(default)]
    pub status: Option<OperationStatus>,
    /// Only runs of this script.
    #[serde(default)]
    pub script: Option<String>,
    /// Only operations that ran on this machine.
    #[serde(default)]
    pub machine: Option<MachineId>,
    /// Only operations this user started.
    #[serde(default)]
    pub user: Option<Username>,
    /// Only operations started at or after this time (RFC 3339).
    #[serde(default, with = "super::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub since: Option<OffsetDateTime>,
    /// Only operations started before this time (RFC 3339).
    #[serde(default, with = "super::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub until: Option<OffsetDateTime>,
    /// Rows per page (1 to 500, default 50).
    #[serde(default)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One page of operations (their machines without output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OperationList {
    /// Newest first.
    pub operations: Vec<OperationView>,
    /// Operations matching the filters, over all pages.
    pub total: u64,
    /// Pass it as `cursor` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// SSE `operation` event of `GET /api/v1/operations/{id}/events`: the operation's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OperationStatusEvent {
    /// The operation.
    pub id: OperationId,
    /// Its state now.
    pub status: OperationStatus,
}

/// SSE `machine` event: a machine's state changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MachineStatusEvent {
    /// The machine.
    pub machine: MachineId,
    /// Its state now.
    pub status: MachineRunStatus,
    /// The exit code, once it exited.
    pub exit_code: Option<i64>,
    /// The signal that ended it.
    pub signal: Option<String>,
    /// Why, for people.
    pub message: String,
}

/// SSE `output` event: output of a machine, as it arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OutputEvent {
    /// The machine.
    pub machine: MachineId,
    /// Which stream.
    pub stream: OutputStream,
    /// The bytes as text (invalid UTF-8 replaced; a chunk may end inside a character).
    pub data: String,
    /// The bytes as base64, when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_base64: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selector_chooses_machines_with_every_tag_and_its_type() {
        let tags = |t: &[&str]| t.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>();
        let selector = |t: &[&str], kind: Option<&str>| OperationSelector {
            tags: tags(t),
            kind: kind.map(str::to_owned),
        };
        let web_eu = tags(&["web", "eu"]);
        assert!(selector(&["web"], None).matches(&web_eu, Some("vm")));
        assert!(selector(&["web", "eu"], Some("vm")).matches(&web_eu, Some("vm")));
        assert!(!selector(&["web", "us"], None).matches(&web_eu, Some("vm")));
        assert!(!selector(&["web"], Some("metal")).matches(&web_eu, Some("vm")));
        assert!(!selector(&[], Some("vm")).matches(&web_eu, None));
        assert!(selector(&[], None).is_empty());
        assert!(!selector(&[], Some("vm")).is_empty());
    }

    #[test]
    fn a_timeout_is_a_duration_or_seconds() {
        let t: Timeout = serde_json::from_str("\"90s\"").unwrap();
        assert_eq!(t.0.as_secs(), 90);
        let t: Timeout = serde_json::from_str("300").unwrap();
        assert_eq!(t.0.as_secs(), 300);
        for bad in ["0", "-5", "\"soon\"", "1.5", "null", "31536001"] {
            assert!(serde_json::from_str::<Timeout>(bad).is_err(), "{bad}");
        }
    }
}
