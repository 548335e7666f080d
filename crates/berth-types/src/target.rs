//! What a terminal is opened on: a workspace now, a fleet machine when the fleet arrives.
//! Sessions, presence, grids, recordings and audit entries are keyed on a [`TerminalTarget`],
//! never on one kind's id, so a new kind of target is one more variant, not a special case.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::WorkspaceId;

/// A fleet machine's id from the inventory (`links.yaml`): 1 to 63 characters of `a-z`, `0-9`
/// and `-`, starting with a letter or digit, as a DNS label. Stable across renames of the
/// machine's name or address.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct MachineId(String);

/// Why a string is not a [`MachineId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MachineIdError {
    /// Not the shape of an id.
    #[error(
        "a machine id has 1 to {max} characters of a-z, 0-9 and '-', starting with a letter or a digit",
        max = MachineId::MAX_LEN
    )]
    Invalid,
    /// A word the API uses in the place of an id.
    #[error("the machine id {0:?} is reserved: /api/v1/machines/{0} names an action")]
    Reserved(&'static str),
}

impl MachineId {
    /// The longest machine id accepted.
    pub const MAX_LEN: usize = 63;

    /// Ids the API uses for something else (`POST /api/v1/machines/verify`).
    pub const RESERVED: &'static [&'static str] = &["verify"];

    /// Checks `id` and wraps it.
    pub fn new(id: impl Into<String>) -> Result<Self, MachineIdError> {
        let id = id.into();
        let valid = !id.is_empty()
            && id.len() <= Self::MAX_LEN
            && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(MachineIdError::Invalid);
        }
        if let Some(word) = Self::RESERVED.iter().find(|w| **w == id) {
            return Err(MachineIdError::Reserved(word));
        }
        Ok(Self(id))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MachineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MachineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MachineId({})", self.0)
    }
}

impl Borrow<str> for MachineId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl FromStr for MachineId {
    type Err = MachineIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for MachineId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::new(text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for MachineId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MachineId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "minLength": 1,
            "maxLength": Self::MAX_LEN,
            "pattern": "^[a-z0-9][a-z0-9-]*$"
        })
    }
}

/// The kind of a [`TerminalTarget`], as stored (`recordings.target_kind`) and on the wire.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A workspace: a container of a template.
    Workspace,
    /// A fleet machine, over SSH.
    Machine,
}

impl TargetKind {
    /// Every kind, in a fixed order.
    pub const ALL: [Self; 2] = [Self::Workspace, Self::Machine];
    /// Their names, as stored.
    pub const NAMES: [&'static str; 2] = ["workspace", "machine"];

    /// The name as stored and on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Workspace => "workspace",
            Self::Machine => "machine",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TargetKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!("unknown terminal target kind {s:?}: expected workspace or machine")
            })
    }
}

/// What a terminal is opened on. On the wire `{"kind": "workspace", "id": "…"}`.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum TerminalTarget {
    /// A workspace's container.
    Workspace(WorkspaceId),
    /// A fleet machine.
    Machine(MachineId),
}

/// Why a `(kind, id)` pair is not a [`TerminalTarget`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid terminal target {kind}:{id}: {reason}")]
pub struct TargetError {
    kind: String,
    id: String,
    reason: String,
}

impl TerminalTarget {
    /// The kind.
    #[must_use]
    pub fn kind(&self) -> TargetKind {
        match self {
            Self::Workspace(_) => TargetKind::Workspace,
            Self::Machine(_) => TargetKind::Machine,
        }
    }

    /// The id as text (a workspace's UUID, a machine's id).
    #[must_use]
    pub fn id_string(&self) -> String {
        match self {
            Self::Workspace(id) => id.to_string(),
            Self::Machine(id) => id.to_string(),
        }
    }

    /// The workspace, for a workspace target.
    #[must_use]
    pub fn workspace(&self) -> Option<WorkspaceId> {
        match self {
            Self::Workspace(id) => Some(*id),
            Self::Machine(_) => None,
        }
    }

    /// Reads back a stored `(kind, id)` pair.
    pub fn from_parts(kind: &str, id: &str) -> Result<Self, TargetError> {
        let error = |reason: String| TargetError {
            kind: kind.chars().take(32).collect(),
            id: id.chars().take(64).collect(),
            reason,
        };
        match kind.parse::<TargetKind>().map_err(error)? {
            TargetKind::Workspace => id
                .parse::<WorkspaceId>()
                .map(Self::Workspace)
                .map_err(|e| error(e.to_string())),
            TargetKind::Machine => MachineId::new(id)
                .map(Self::Machine)
                .map_err(|e| error(e.to_string())),
        }
    }
}

impl From<WorkspaceId> for TerminalTarget {
    fn from(id: WorkspaceId) -> Self {
        Self::Workspace(id)
    }
}

impl From<MachineId> for TerminalTarget {
    fn from(id: MachineId) -> Self {
        Self::Machine(id)
    }
}

/// Why a target has no terminal now, for a refused attach and for `connect-all`'s report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Unavailability {
    /// A workspace that is not running.
    NotRunning,
    /// A machine that is not `enrolled`.
    NotEnrolled,
    /// A machine that could not be reached (or whose SSH connection failed).
    Unreachable,
    /// A machine whose host key is unknown, changed or revoked.
    HostKey,
    /// A machine that refused Berth's client key.
    Auth,
}

impl Unavailability {
    /// The name on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotRunning => "not-running",
            Self::NotEnrolled => "not-enrolled",
            Self::Unreachable => "unreachable",
            Self::HostKey => "host-key",
            Self::Auth => "auth",
        }
    }
}

impl fmt::Display for Unavailability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A grid pane's target as the API takes it: a workspace id alone (as before grids had
/// machines), `{"workspace": ID}` or `{"machine": ID}`. Answers write a workspace as its id
/// alone, a machine as `{"machine": ID}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum PaneTarget {
    /// `{"workspace": ID}`.
    Workspace {
        /// The workspace.
        workspace: WorkspaceId,
    },
    /// `{"machine": ID}`.
    Machine {
        /// The machine.
        machine: MachineId,
    },
    /// A workspace id alone.
    Id(WorkspaceId),
}

const PANE_SHAPES: &str = "a pane is a workspace id, {\"workspace\": ID} or {\"machine\": ID}";

/// Read by hand, so that a bad pane says which shape was meant and what is wrong with its id.
impl<'de> Deserialize<'de> for PaneTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;

        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Id(String),
            Object(std::collections::BTreeMap<String, serde_json::Value>),
        }
        let raw = Raw::deserialize(deserializer).map_err(|_| D::Error::custom(PANE_SHAPES))?;
        match raw {
            Raw::Id(id) => id
                .parse::<WorkspaceId>()
                .map(Self::Id)
                .map_err(|e| D::Error::custom(format!("{PANE_SHAPES}: {e}"))),
            Raw::Object(map) => {
                let mut entries = map.into_iter();
                let (Some((key, value)), None) = (entries.next(), entries.next()) else {
                    return Err(D::Error::custom(format!("{PANE_SHAPES}, with one key")));
                };
                let Some(text) = value.as_str() else {
                    return Err(D::Error::custom(format!(
                        "{PANE_SHAPES}: {key} is not a string"
                    )));
                };
                match key.as_str() {
                    "workspace" => text
                        .parse::<WorkspaceId>()
                        .map(|workspace| Self::Workspace { workspace })
                        .map_err(|e| D::Error::custom(format!("workspace: {e}"))),
                    "machine" => MachineId::new(text)
                        .map(|machine| Self::Machine { machine })
                        .map_err(|e| D::Error::custom(format!("machine: {e}"))),
                    other => {
                        let shown: String = other.chars().take(32).collect();
                        Err(D::Error::custom(format!("{PANE_SHAPES}, not {shown:?}")))
                    }
                }
            }
        }
    }
}

impl From<PaneTarget> for TerminalTarget {
    fn from(pane: PaneTarget) -> Self {
        match pane {
            PaneTarget::Workspace { workspace } | PaneTarget::Id(workspace) => {
                Self::Workspace(workspace)
            }
            PaneTarget::Machine { machine } => Self::Machine(machine),
        }
    }
}

impl From<WorkspaceId> for PaneTarget {
    fn from(id: WorkspaceId) -> Self {
        Self::Id(id)
    }
}

impl From<MachineId> for PaneTarget {
    fn from(machine: MachineId) -> Self {
        Self::Machine { machine }
    }
}

/// A workspace as its plain id (what clients of grids without machines read), a machine as
/// `{"machine": ID}`.
impl From<TerminalTarget> for PaneTarget {
    fn from(target: TerminalTarget) -> Self {
        match target {
            TerminalTarget::Workspace(workspace) => Self::Id(workspace),
            TerminalTarget::Machine(machine) => Self::Machine { machine },
        }
    }
}

/// `workspace:0b6c…` or `machine:web-1`, for logs and audit targets.
impl fmt::Display for TerminalTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.id_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_ids_are_dns_labels() {
        for good in ["web-1", "a", "0db", &"x".repeat(63)] {
            assert!(MachineId::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-web",
            "Web",
            "web_1",
            "web.1",
            "wéb",
            &"x".repeat(64),
            "a b",
            "a\0",
        ] {
            assert!(MachineId::new(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<MachineId>("\"UPPER\"").is_err());
    }

    #[test]
    fn an_id_the_api_uses_for_an_action_is_reserved() {
        let err = MachineId::new("verify").unwrap_err();
        assert_eq!(err, MachineIdError::Reserved("verify"));
        assert!(err.to_string().contains("reserved"), "{err}");
        assert!(MachineId::new("verify-1").is_ok());
    }

    #[test]
    fn targets_round_trip_as_json_and_as_stored_parts() {
        let workspace = TerminalTarget::Workspace(WorkspaceId::random());
        let machine = TerminalTarget::Machine(MachineId::new("web-1").unwrap());
        for target in [&workspace, &machine] {
            let json = serde_json::to_string(target).unwrap();
            assert_eq!(
                &serde_json::from_str::<TerminalTarget>(&json).unwrap(),
                target
            );
            let back =
                TerminalTarget::from_parts(target.kind().as_str(), &target.id_string()).unwrap();
            assert_eq!(&back, target);
        }
        assert_eq!(
            serde_json::to_string(&machine).unwrap(),
            r#"{"kind":"machine","id":"web-1"}"#
        );
        assert_eq!(machine.to_string(), "machine:web-1");
        assert!(TerminalTarget::from_parts("cluster", "x").is_err());
        assert!(TerminalTarget::from_parts("workspace", "web-1").is_err());
        assert!(TerminalTarget::from_parts("machine", "Web 1").is_err());
    }

    #[test]
    fn pane_targets_take_a_plain_id_or_a_tagged_object() {
        let id = WorkspaceId::random();
        let panes: Vec<PaneTarget> = serde_json::from_str(&format!(
            r#"["{id}", {{"workspace": "{id}"}}, {{"machine": "web-1"}}]"#
        ))
        .unwrap();
        let targets: Vec<TerminalTarget> = panes.into_iter().map(Into::into).collect();
        let machine = TerminalTarget::Machine(MachineId::new("web-1").unwrap());
        assert_eq!(
            targets,
            [
                TerminalTarget::Workspace(id),
                TerminalTarget::Workspace(id),
                machine.clone()
            ]
        );
        assert_eq!(
            serde_json::to_string(&PaneTarget::from(machine)).unwrap(),
            r#"{"machine":"web-1"}"#
        );
        for bad in [
            r#"{"machine": "Web 1"}"#,
            r#"{"cluster": "x"}"#,
            "\"nope\"",
            "7",
        ] {
            assert!(serde_json::from_str::<PaneTarget>(bad).is_err(), "{bad}");
        }
    }
}
