//! The messages of the grid socket (`docs/terminal-protocol.md`): every frame is JSON text
//! `{"type":...,"pane":N,"data":...}`, terminal bytes in standard padded base64. The one
//! definition the server and `web/` follow.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A message from the server to a grid client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum GridServerMessage {
    /// Terminal output of a pane.
    Output {
        /// The pane number (its slot in the layout).
        pane: usize,
        /// The bytes, in base64.
        data: String,
    },
    /// A pane's connection changed.
    Status {
        /// The pane number.
        pane: usize,
        /// The new state.
        data: PaneStatus,
    },
    /// A pane's shell exited.
    Exit {
        /// The pane number.
        pane: usize,
        /// The exit code, `-1` when the engine could not tell.
        data: i64,
    },
    /// Broadcast typing was turned on or off (the answer to the client's `broadcast`).
    Broadcast {
        /// Whether input for one pane now goes to every pane that may type.
        data: bool,
    },
    /// Something went wrong, for people.
    Error {
        /// The pane, or `null` for the whole grid.
        pane: Option<usize>,
        /// Plain text.
        data: String,
    },
}

/// The `data` of a [`GridServerMessage::Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PaneStatus {
    /// The connection's state.
    pub state: PaneState,
    /// The pane's title; replaces the page's when not empty.
    pub title: String,
}

/// Where a pane's connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaneState {
    /// Opening.
    Connecting,
    /// Open: the pane's terminal said hello.
    Connected,
    /// Ended (or never opened).
    Closed,
}

/// A message from a grid client to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum GridClientMessage {
    /// Keyboard input for a pane.
    Input {
        /// The pane number.
        pane: usize,
        /// The bytes, in base64.
        data: String,
    },
    /// A pane's new size (the server takes 1..1000 each).
    Resize {
        /// The pane number.
        pane: usize,
        /// The size.
        data: PaneSize,
    },
    /// Broadcast typing on or off, as tmux's synchronize-panes: while on, input for any pane
    /// goes to every pane whose session may type (viewer panes and closed panes excluded).
    /// Off when the socket opens. No `pane`.
    Broadcast {
        /// On or off.
        data: bool,
    },
}

/// The `data` of a [`GridClientMessage::Resize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PaneSize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

impl GridServerMessage {
    /// The text frame.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Strings, numbers and enums only: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl GridClientMessage {
    /// The text frame.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_the_documented_json() {
        let error = GridServerMessage::Error {
            pane: None,
            data: "no such grid".into(),
        };
        assert_eq!(
            error.to_json(),
            r#"{"type":"error","pane":null,"data":"no such grid"}"#
        );
        let status = GridServerMessage::Status {
            pane: 1,
            data: PaneStatus {
                state: PaneState::Connected,
                title: "alice@py".into(),
            },
        };
        assert_eq!(
            status.to_json(),
            r#"{"type":"status","pane":1,"data":{"state":"connected","title":"alice@py"}}"#
        );
        let resize: GridClientMessage =
            serde_json::from_str(r#"{"pane":0,"type":"resize","data":{"cols":90,"rows":30}}"#)
                .unwrap();
        assert_eq!(
            resize,
            GridClientMessage::Resize {
                pane: 0,
                data: PaneSize { cols: 90, rows: 30 }
            }
        );
    }
}
