//! The vocabulary of terminals: who may do what in a workspace's terminal, how a grid
//! arranges its panes, and the control messages of the terminal socket ([`ServerMessage`],
//! [`ClientMessage`]). Shared by the store, the core, the API, the CLI and `web/`.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod messages;

pub use messages::{ClientMessage, Member, ServerMessage};

/// What a member may do in a workspace's terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    /// Sees the terminal and types into it.
    Peer,
    /// Sees the terminal; the server drops whatever it sends.
    Viewer,
}

impl MemberRole {
    /// The name stored in the database and used on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Peer => "peer",
            Self::Viewer => "viewer",
        }
    }
}

impl fmt::Display for MemberRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MemberRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Peer, Self::Viewer]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown member role {s:?}: expected peer or viewer"))
    }
}

/// What someone attached to a terminal may do; ordered from least to most.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SessionRole {
    /// Sees the terminal; input and resizes are dropped by the server.
    Viewer,
    /// Sees the terminal and types into it.
    Peer,
    /// The workspace's owner.
    Owner,
}

impl SessionRole {
    /// Whether input (and resizes) from this role reach the terminal.
    #[must_use]
    pub fn may_type(self) -> bool {
        self != Self::Viewer
    }

    /// The name on the wire: `owner`, `peer` or `viewer`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Peer => "peer",
            Self::Owner => "owner",
        }
    }
}

impl fmt::Display for SessionRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<MemberRole> for SessionRole {
    fn from(role: MemberRole) -> Self {
        match role {
            MemberRole::Peer => Self::Peer,
            MemberRole::Viewer => Self::Viewer,
        }
    }
}

/// How panes are arranged: `ROWSxCOLUMNS`, panes numbered row by row from the top left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// One pane.
    Single,
    /// Two rows of two.
    Grid2x2,
    /// One row of three.
    Grid1x3,
    /// Two panes stacked.
    Grid2x1,
}

impl Layout {
    /// How many panes the layout has.
    #[must_use]
    pub fn panes(self) -> usize {
        match self {
            Self::Single => 1,
            Self::Grid2x2 => 4,
            Self::Grid1x3 => 3,
            Self::Grid2x1 => 2,
        }
    }
}
