//! The JSON control messages of the terminal socket (`docs/terminal-protocol.md`): text frames
//! `{"type":...}`, the one definition the server, the CLI and `web/` follow. Binary frames
//! (terminal bytes both ways) carry no JSON and are not described here.
//!
//! These types say what the wire looks like; the limits a receiver enforces (sizes 1..1000,
//! frame sizes, messages for people) are the receiver's, see `berth-core`'s bridge.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{SessionRole, TerminalTarget, Username, WorkspaceId};

/// Someone attached to a terminal right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Member {
    /// Who.
    pub username: Username,
    /// As what.
    pub role: SessionRole,
}

/// A control message from the server to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerMessage {
    /// Once, first, on every connection.
    Hello {
        /// What the terminal is opened on.
        target: TerminalTarget,
        /// The workspace, for workspace targets only: clients written before targets read it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workspace: Option<WorkspaceId>,
        /// The account of this connection.
        you: Username,
        /// What this connection may do.
        role: SessionRole,
        /// Everyone attached, this connection included.
        members: Vec<Member>,
    },
    /// The full list of members whenever someone joins or leaves.
    Members {
        /// Everyone attached.
        members: Vec<Member>,
    },
    /// The answer to a [`ClientMessage::Ping`].
    Pong,
    /// The shell exited; the server closes with 1000 next.
    Exit {
        /// The exit code, `-1` when the engine could not tell.
        code: i64,
    },
    /// Why the socket is about to close (or what went wrong), for people.
    Error {
        /// Plain text.
        message: String,
    },
}

/// A control message from a client to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClientMessage {
    /// The terminal's new size (the server takes 1..1000 each).
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Keep-alive; counts as activity.
    Ping,
}

impl ServerMessage {
    /// The text frame.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Strings, numbers and enums only: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl ClientMessage {
    /// The text frame.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MachineId;

    #[test]
    fn messages_are_the_documented_json() {
        let hello = ServerMessage::Hello {
            target: TerminalTarget::Machine(MachineId::new("web-1").unwrap()),
            workspace: None,
            you: Username::new("alice").unwrap(),
            role: SessionRole::Owner,
            members: vec![Member {
                username: Username::new("alice").unwrap(),
                role: SessionRole::Owner,
            }],
        };
        assert_eq!(
            hello.to_json(),
            r#"{"type":"hello","target":{"kind":"machine","id":"web-1"},"you":"alice","role":"owner","members":[{"username":"alice","role":"owner"}]}"#
        );
        assert_eq!(ServerMessage::Pong.to_json(), r#"{"type":"pong"}"#);
        assert_eq!(
            ClientMessage::Resize { cols: 80, rows: 24 }.to_json(),
            r#"{"type":"resize","cols":80,"rows":24}"#
        );
        assert_eq!(ClientMessage::Ping.to_json(), r#"{"type":"ping"}"#);
        let id = "0b6c2c1e-0000-4000-8000-000000000001";
        let text = format!(
            r#"{{"type":"hello","target":{{"kind":"workspace","id":"{id}"}},"workspace":"{id}","you":"bob","role":"viewer","members":[]}}"#
        );
        let parsed: ServerMessage = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.to_json(), text);
    }
}
