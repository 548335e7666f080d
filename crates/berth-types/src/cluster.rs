//! Ephemeral Kubernetes clusters: their names and the states of their life.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Where a cluster is in its life: `provisioning → running → deleting → deleted`, or
/// `failed` with a reason from any state before `deleted`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ClusterState {
    /// Recorded; the provider is creating it or waiting for its API to be ready.
    Provisioning,
    /// Its API answers `/readyz`; the kubeconfig can be downloaded.
    Running,
    /// The provider is removing it (the TTL ran out, or someone deleted it).
    Deleting,
    /// Gone; the row stays for the history.
    Deleted,
    /// Something went wrong; `state_reason` says what.
    Failed,
}

impl ClusterState {
    /// Every state, in life order.
    pub const ALL: [ClusterState; 5] = [
        Self::Provisioning,
        Self::Running,
        Self::Deleting,
        Self::Deleted,
        Self::Failed,
    ];

    /// The states that hold (or are about to hold) provider resources: what quotas count.
    pub const LIVE: [ClusterState; 3] = [Self::Provisioning, Self::Running, Self::Deleting];

    /// The name stored in the database and used on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Running => "running",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
            Self::Failed => "failed",
        }
    }

    /// Whether the cluster holds, or may still hold, provider resources.
    #[must_use]
    pub fn is_live(self) -> bool {
        Self::LIVE.contains(&self)
    }
}

impl fmt::Display for ClusterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClusterState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown cluster state {s:?}"))
    }
}

/// A cluster's name: 1 to 40 characters, lowercase ASCII letters, digits and `-`, starting
/// with a letter and not ending with `-` (a DNS label, so it can name a container and appear
/// in a kubeconfig's context). Unique among one user's clusters that are not deleted.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ClusterName(String);

/// Why a string is not a [`ClusterName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterNameError {
    /// The empty string.
    #[error("a cluster name cannot be empty")]
    Empty,
    /// More than [`ClusterName::MAX_LEN`] characters.
    #[error("a cluster name has at most {max} characters, this one has {len}", max = ClusterName::MAX_LEN)]
    TooLong {
        /// The length that was given.
        len: usize,
    },
    /// The first character is not a lowercase letter.
    #[error("a cluster name starts with a lowercase letter")]
    BadStart,
    /// The last character is `-`.
    #[error("a cluster name does not end with '-'")]
    BadEnd,
    /// A character outside the allowed set.
    #[error("a cluster name may contain only a-z, 0-9 and '-', not {0:?}")]
    BadChar(char),
}

impl ClusterName {
    /// The longest name accepted.
    pub const MAX_LEN: usize = 40;

    /// The same rule as a JSON Schema (ECMA 262) pattern.
    pub const PATTERN: &'static str = "^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$";

    /// Checks `name` and wraps it.
    pub fn new(name: impl Into<String>) -> Result<Self, ClusterNameError> {
        let name = name.into();
        let len = name.chars().count();
        let first = name.chars().next().ok_or(ClusterNameError::Empty)?;
        if len > Self::MAX_LEN {
            return Err(ClusterNameError::TooLong { len });
        }
        if !first.is_ascii_lowercase() {
            return Err(ClusterNameError::BadStart);
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(ClusterNameError::BadChar(c));
        }
        if name.ends_with('-') {
            return Err(ClusterNameError::BadEnd);
        }
        Ok(Self(name))
    }

    /// The name as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ClusterName {
    type Err = ClusterNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for ClusterName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::new(raw).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for ClusterName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ClusterName".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": Self::PATTERN,
            "description": "1-40 characters: a-z, 0-9, '-'; starts with a letter, does not end with '-'"
        })
    }
}

impl AsRef<str> for ClusterName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dns_labels() {
        for name in ["a", "dev", "lab-2", &format!("a{}", "b".repeat(39))] {
            assert!(ClusterName::new(name).is_ok(), "{name}");
        }
        assert_eq!(ClusterName::new(""), Err(ClusterNameError::Empty));
        assert_eq!(ClusterName::new("2x"), Err(ClusterNameError::BadStart));
        assert_eq!(ClusterName::new("-x"), Err(ClusterNameError::BadStart));
        assert_eq!(ClusterName::new("x-"), Err(ClusterNameError::BadEnd));
        assert_eq!(ClusterName::new("a_b"), Err(ClusterNameError::BadChar('_')));
        assert_eq!(ClusterName::new("aB"), Err(ClusterNameError::BadChar('B')));
        assert_eq!(ClusterName::new("a\u{0}"), Err(ClusterNameError::BadChar('\u{0}')));
        assert_eq!(
            ClusterName::new("a".repeat(41)),
            Err(ClusterNameError::TooLong { len: 41 })
        );
        let pattern = ClusterName::PATTERN;
        assert!(pattern.starts_with('^') && pattern.ends_with('$'));
        assert!(serde_json::from_str::<ClusterName>("\"Bad\"").is_err());
    }

    #[test]
    fn states_round_trip() {
        for state in ClusterState::ALL {
            assert_eq!(state.as_str().parse::<ClusterState>(), Ok(state));
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{state}\"")
            );
        }
        assert!("gone".parse::<ClusterState>().is_err());
        assert!(ClusterState::Running.is_live());
        assert!(!ClusterState::Failed.is_live());
    }
}
