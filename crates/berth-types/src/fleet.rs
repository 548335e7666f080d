//! The fleet's vocabulary, shared by the inventory (`berth-fleet`), the store, the services and
//! the API: where a machine stands ([`EnrollmentStatus`], [`HealthStatus`]), what a sync of the
//! inventory did ([`SyncTrigger`], [`SyncResult`], [`SyncChanges`], [`SyncFileError`]) and
//! which machines a user may see ([`MachineSelector`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::MachineId;

/// A tag, a type, a script name: `a-z 0-9 _ . -`, starting with a letter or digit, 1 to 63
/// characters. Tags are lowercase, so comparing them needs no case folding.
#[must_use]
pub fn is_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
}

/// Declares a unit-only enum with its wire names: `ALL`, `NAMES`, `as_str`, `parse`,
/// `Display` and `FromStr` (the names are also its serde names, snake_case).
macro_rules! named_enum {
    ($name:ident, $what:literal, [$($variant:ident => $text:literal),+ $(,)?]) => {
        impl $name {
            /// Every value, in a fixed order.
            pub const ALL: [Self; [$($text),+].len()] = [$(Self::$variant),+];
            /// Their names, in the same order: as stored, in the API and in the UI.
            pub const NAMES: [&'static str; [$($text),+].len()] = [$($text),+];

            /// The name used in the API, the store and the UI.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            /// The value named `text`.
            #[must_use]
            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|s| s.as_str() == text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s).ok_or_else(|| {
                    format!(
                        concat!("unknown ", $what, " {:?}: expected one of {}"),
                        s.chars().take(64).collect::<String>(),
                        Self::NAMES.join(", ")
                    )
                })
            }
        }
    };
}

/// Where a machine stands: does it prove to be the machine links.yaml means?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentStatus {
    /// Not verified since the machine was added or its SSH settings changed.
    Unknown,
    /// The client id file matches links.yaml.
    Enrolled,
    /// The file names another client id.
    Mismatch,
    /// There is no client id file (or it cannot be read, or is empty).
    Missing,
    /// The machine (or a jump host) cannot be reached.
    Unreachable,
    /// The machine refused the client key, or the key cannot be used.
    AuthFailed,
    /// The host key is neither pinned nor in known_hosts: an admin must trust it.
    HostKeyUnknown,
    /// The host key differs from the pinned or recorded one (or is revoked).
    HostKeyChanged,
}

impl EnrollmentStatus {
    /// Whether the check logged in: the host key was accepted and the client key too, so the
    /// machine counts as answering in its health. A machine that refuses the key, or whose
    /// host key cannot be accepted, does not.
    #[must_use]
    pub fn logged_in(self) -> bool {
        matches!(self, Self::Enrolled | Self::Mismatch | Self::Missing)
    }
}

named_enum!(EnrollmentStatus, "enrollment status", [
    Unknown => "unknown",
    Enrolled => "enrolled",
    Mismatch => "mismatch",
    Missing => "missing",
    Unreachable => "unreachable",
    AuthFailed => "auth_failed",
    HostKeyUnknown => "host_key_unknown",
    HostKeyChanged => "host_key_changed",
]);

/// A machine's health, from its recent connect checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Not checked yet.
    Unknown,
    /// It answers, quickly and steadily.
    Online,
    /// It answers, but slowly or not every time.
    Degraded,
    /// It does not answer.
    Offline,
}

named_enum!(HealthStatus, "health status", [
    Unknown => "unknown",
    Online => "online",
    Degraded => "degraded",
    Offline => "offline",
]);

/// What started a sync of the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncTrigger {
    /// Berth starting.
    Start,
    /// `fleet.sync_interval` passing.
    Schedule,
    /// `POST /api/v1/fleet/sync` (or `berth fleet sync`).
    Api,
    /// A push webhook.
    Webhook,
}

named_enum!(SyncTrigger, "sync trigger", [
    Start => "start",
    Schedule => "schedule",
    Api => "api",
    Webhook => "webhook",
]);

/// How a sync of the inventory ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncResult {
    /// Still going.
    Running,
    /// A new commit was read and put in force.
    Succeeded,
    /// Fetched; the branch is at the commit already in force.
    Unchanged,
    /// The fetch failed or the inventory is invalid; the one in force stays.
    Failed,
    /// Berth stopped during the sync.
    Interrupted,
}

named_enum!(SyncResult, "sync result", [
    Running => "running",
    Succeeded => "succeeded",
    Unchanged => "unchanged",
    Failed => "failed",
    Interrupted => "interrupted",
]);

impl SyncResult {
    /// Whether the sync ended with an inventory in force (`succeeded` or `unchanged`).
    #[must_use]
    pub fn in_force(self) -> bool {
        matches!(self, Self::Succeeded | Self::Unchanged)
    }
}

/// What changed between two inventories, by machine id or script name (each list sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Changes {
    /// Entries that are new.
    pub added: Vec<String>,
    /// Entries whose fields changed.
    pub changed: Vec<String>,
    /// Entries that are gone.
    pub removed: Vec<String>,
}

impl Changes {
    /// The changes from `old` to `new`, entries keyed by `key`.
    pub fn between<T: PartialEq>(old: &[T], new: &[T], key: impl Fn(&T) -> String) -> Self {
        let old: BTreeMap<String, &T> = old.iter().map(|t| (key(t), t)).collect();
        let new: BTreeMap<String, &T> = new.iter().map(|t| (key(t), t)).collect();
        let mut changes = Self::default();
        for (k, n) in &new {
            match old.get(k) {
                None => changes.added.push(k.clone()),
                Some(o) if o != n => changes.changed.push(k.clone()),
                Some(_) => {}
            }
        }
        changes.removed = old
            .keys()
            .filter(|k| !new.contains_key(*k))
            .cloned()
            .collect();
        changes
    }

    /// Nothing added, changed or removed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// What one sync changed in the inventory in force.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SyncChanges {
    /// Machines of links.yaml, by id.
    pub machines: Changes,
    /// Scripts of scripts.yaml, by name.
    pub scripts: Changes,
}

/// One error of a failed sync: where in the repository, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SyncFileError {
    /// The file (`links.yaml`, `scripts/deploy.sh`), when the error is in one.
    pub file: Option<String>,
    /// Its line, 1-based, when known.
    pub line: Option<u32>,
    /// The field (`machines[3].host`), when the error is about one.
    pub path: Option<String>,
    /// What is wrong, for people.
    pub message: String,
}

/// Which machines a user may see (users.yaml `machines:`): a machine's id (`web-1`) or its tag
/// with a `tag:` prefix (`tag:web`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MachineSelector {
    /// The machine with this id.
    Id(MachineId),
    /// Every machine with this tag.
    Tag(String),
}

/// Why a string is not a [`MachineSelector`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{text:?} is not a machine selector: write a machine id (a-z, 0-9 and '-', starting with \
     a letter or a digit, at most 63) or tag:TAG (a-z, 0-9, '_', '.' and '-', starting with a \
     letter or a digit, at most 63)"
)]
pub struct MachineSelectorError {
    text: String,
}

impl MachineSelector {
    /// The prefix of a tag selector.
    pub const TAG_PREFIX: &'static str = "tag:";

    /// Whether the machine `id` with `tags` is selected.
    #[must_use]
    pub fn matches(&self, id: &MachineId, tags: &[String]) -> bool {
        match self {
            Self::Id(want) => want == id,
            Self::Tag(tag) => tags.iter().any(|t| t == tag),
        }
    }
}

impl FromStr for MachineSelector {
    type Err = MachineSelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let refused = || MachineSelectorError {
            text: s.chars().take(80).collect(),
        };
        match s.strip_prefix(Self::TAG_PREFIX) {
            Some(tag) if is_label(tag) => Ok(Self::Tag(tag.to_owned())),
            Some(_) => Err(refused()),
            None => MachineId::new(s).map(Self::Id).map_err(|_| refused()),
        }
    }
}

impl fmt::Display for MachineSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => f.write_str(id.as_str()),
            Self::Tag(tag) => write!(f, "{}{tag}", Self::TAG_PREFIX),
        }
    }
}

impl Serialize for MachineSelector {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MachineSelector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for MachineSelector {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MachineSelector".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A machine id (`web-1`) or a tag with a `tag:` prefix (`tag:web`).",
            "minLength": 1,
            "maxLength": 67,
            "pattern": "^(tag:[a-z0-9][a-z0-9_.-]{0,62}|[a-z0-9][a-z0-9-]{0,62})$"
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn names_round_trip<T>(all: &[T], names: &[&str])
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr + Serialize,
        T: for<'de> Deserialize<'de>,
    {
        assert_eq!(all.len(), names.len());
        for (value, name) in all.iter().zip(names) {
            assert_eq!(&value.to_string(), name);
            assert_eq!(name.parse::<T>().ok(), Some(*value));
            assert_eq!(serde_json::to_string(value).unwrap(), format!("\"{name}\""));
            assert_eq!(
                serde_json::from_str::<T>(&format!("\"{name}\"")).unwrap(),
                *value
            );
        }
    }

    #[test]
    fn enums_round_trip_through_their_names() {
        names_round_trip(&EnrollmentStatus::ALL, &EnrollmentStatus::NAMES);
        names_round_trip(&HealthStatus::ALL, &HealthStatus::NAMES);
        names_round_trip(&SyncTrigger::ALL, &SyncTrigger::NAMES);
        names_round_trip(&SyncResult::ALL, &SyncResult::NAMES);
        assert_eq!(EnrollmentStatus::AuthFailed.as_str(), "auth_failed");
        assert_eq!(EnrollmentStatus::parse("AuthFailed"), None);
        assert_eq!(HealthStatus::parse(""), None);
        let error = "exploded".parse::<SyncResult>().unwrap_err();
        assert!(error.contains("succeeded, unchanged"), "{error}");
        assert!(serde_json::from_str::<SyncTrigger>("\"cron\"").is_err());
        assert!(SyncResult::Unchanged.in_force() && !SyncResult::Failed.in_force());
    }

    #[test]
    fn changes_between_inventories() {
        let old = [("a", 1), ("b", 2), ("c", 3)];
        let new = [("d", 4), ("b", 5), ("a", 1)];
        let changes = Changes::between(&old, &new, |(k, _)| (*k).to_owned());
        assert_eq!(changes.added, ["d"]);
        assert_eq!(changes.changed, ["b"]);
        assert_eq!(changes.removed, ["c"]);
        assert!(!changes.is_empty());
        assert!(Changes::between(&new, &new, |(k, _)| (*k).to_owned()).is_empty());
        let sync = SyncChanges {
            machines: changes,
            scripts: Changes::default(),
        };
        let json = serde_json::to_value(&sync).unwrap();
        assert_eq!(json["machines"]["added"], serde_json::json!(["d"]));
        assert_eq!(serde_json::from_value::<SyncChanges>(json).unwrap(), sync);
    }

    #[test]
    fn selectors_parse_print_and_match() {
        let id = MachineSelector::from_str("web-1").unwrap();
        assert_eq!(id, MachineSelector::Id(MachineId::new("web-1").unwrap()));
        let tag = MachineSelector::from_str("tag:eu_west.2").unwrap();
        assert_eq!(tag, MachineSelector::Tag("eu_west.2".into()));
        assert_eq!(tag.to_string(), "tag:eu_west.2");
        assert_eq!(
            serde_json::to_string(&vec![id.clone(), tag.clone()]).unwrap(),
            r#"["web-1","tag:eu_west.2"]"#
        );
        let web1 = MachineId::new("web-1").unwrap();
        let web2 = MachineId::new("web-2").unwrap();
        let tags = vec!["eu_west.2".to_owned(), "web".to_owned()];
        assert!(id.matches(&web1, &[]));
        assert!(!id.matches(&web2, &tags));
        assert!(tag.matches(&web2, &tags));
        assert!(!tag.matches(&web1, &["eu".to_owned()]));
        assert!(
            !MachineSelector::Tag("eu".into()).matches(&web1, &tags),
            "whole tags only"
        );
        for bad in [
            "",
            "tag:",
            "tag:Web",
            "tag:-web",
            "tag:a,b",
            "tag:50%",
            "tag:a b",
            "Tag:web",
            "web_1",
            "-web",
            "tag:tag:web",
            &"x".repeat(64),
            &format!("tag:{}", "x".repeat(64)),
            "web\n",
        ] {
            let error = MachineSelector::from_str(bad).unwrap_err().to_string();
            assert!(error.contains("tag:TAG"), "{bad:?}: {error}");
            assert!(
                serde_json::from_value::<MachineSelector>(serde_json::json!(bad)).is_err(),
                "{bad:?}"
            );
        }
        // A hostile selector is echoed bounded.
        let long = format!("tag:{}", "X".repeat(10_000));
        assert!(
            MachineSelector::from_str(&long)
                .unwrap_err()
                .to_string()
                .len()
                < 400
        );
        assert!(serde_json::from_str::<MachineSelector>("5").is_err());
    }

    #[test]
    fn labels() {
        for good in ["web", "0", "eu-west_1.a", &"x".repeat(63)] {
            assert!(is_label(good), "{good}");
        }
        for bad in [
            "",
            "_x",
            ".x",
            "-x",
            "Web",
            "a,b",
            "a%",
            "a\\b",
            &"x".repeat(64),
        ] {
            assert!(!is_label(bad), "{bad}");
        }
    }
}

#[cfg(test)]
mod properties {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    fn selector() -> impl Strategy<Value = MachineSelector> {
        prop_oneof![
            "[a-z0-9][a-z0-9-]{0,62}".prop_map(|s| MachineSelector::Id(MachineId::new(s).unwrap())),
            "[a-z0-9][a-z0-9_.-]{0,62}".prop_map(MachineSelector::Tag),
        ]
    }

    proptest! {
        /// Every selector prints to text that parses back to it, as a string and through serde.
        #[test]
        fn selectors_round_trip(selector in selector()) {
            let text = selector.to_string();
            prop_assert_eq!(text.parse::<MachineSelector>().unwrap(), selector.clone());
            let json = serde_json::to_string(&selector).unwrap();
            prop_assert_eq!(serde_json::from_str::<MachineSelector>(&json).unwrap(), selector);
        }

        /// Any text either parses to a selector that prints back to the same text, or is
        /// refused; it never parses to something else.
        #[test]
        fn parsing_is_exact(text in "(tag:)?[a-zA-Z0-9_.,%: -]{0,70}") {
            if let Ok(selector) = text.parse::<MachineSelector>() {
                prop_assert_eq!(selector.to_string(), text);
            }
        }
    }
}
