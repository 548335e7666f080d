//! The JSON control messages of the terminal socket (`docs/terminal-protocol.md`). Everything a
//! client sends is checked here; a message that does not fit gets a reason for people.

use berth_terminal::{TerminalTarget, TtySize};
use serde::{Deserialize, Serialize};

use crate::SessionRole;

/// The largest text (control) frame a client may send, in bytes.
pub const MAX_CONTROL_BYTES: usize = 4 * 1024;
/// The largest terminal, in columns and in rows.
pub const MAX_DIMENSION: u16 = 1000;

/// A control message from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientControl {
    Resize(TtySize),
    Ping,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Wire {
    Resize { cols: u64, rows: u64 },
    Ping,
}

/// Parses a text frame; `Err` holds the message for the client.
pub(crate) fn parse_control(text: &str) -> Result<ClientControl, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("control message is not JSON: {e}"))?;
    let kind = value
        .get("type")
        .and_then(serde_json::Value::as_str)
        .ok_or("control message has no \"type\"")?
        .to_owned();
    if !matches!(kind.as_str(), "resize" | "ping") {
        let shown: String = kind.chars().take(32).collect();
        return Err(format!(
            "unknown control message type {shown:?}: expected resize or ping"
        ));
    }
    match serde_json::from_value::<Wire>(value) {
        Ok(Wire::Ping) => Ok(ClientControl::Ping),
        Ok(Wire::Resize { cols, rows }) => size(cols, rows).map(ClientControl::Resize),
        Err(e) => Err(format!("malformed {kind} message: {e}")),
    }
}

/// A size within 1..=[`MAX_DIMENSION`] columns and rows.
pub(crate) fn size(cols: u64, rows: u64) -> Result<TtySize, String> {
    let max = u64::from(MAX_DIMENSION);
    if !(1..=max).contains(&cols) || !(1..=max).contains(&rows) {
        return Err(format!(
            "terminal size {cols}x{rows} refused: columns and rows must be 1 to {MAX_DIMENSION}"
        ));
    }
    // In range, so both fit.
    Ok(TtySize {
        cols: u16::try_from(cols).unwrap_or(MAX_DIMENSION),
        rows: u16::try_from(rows).unwrap_or(MAX_DIMENSION),
    })
}

/// Someone attached to a workspace's terminal right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connected {
    /// Who.
    pub username: berth_types::Username,
    /// As what.
    pub role: SessionRole,
}

/// A control message to a client.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum ServerControl<'a> {
    Hello {
        target: &'a TerminalTarget,
        /// For workspace targets, as before targets: clients written then read it.
        #[serde(skip_serializing_if = "Option::is_none")]
        workspace: Option<&'a str>,
        you: &'a str,
        role: SessionRole,
        members: &'a [Connected],
    },
    Members {
        members: &'a [Connected],
    },
    Pong,
    Exit {
        code: i64,
    },
    Error {
        message: &'a str,
    },
}

impl ServerControl<'_> {
    pub(crate) fn to_json(&self) -> String {
        // Plain structs of strings and numbers: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages_parse() {
        assert_eq!(
            parse_control(r#"{"type":"resize","cols":120,"rows":40}"#),
            Ok(ClientControl::Resize(TtySize {
                cols: 120,
                rows: 40
            }))
        );
        assert_eq!(
            parse_control(r#"{"type":"ping","extra":1}"#),
            Ok(ClientControl::Ping)
        );
        assert_eq!(
            parse_control(r#"{"type":"resize","cols":1000,"rows":1}"#),
            Ok(ClientControl::Resize(TtySize {
                cols: 1000,
                rows: 1
            }))
        );
    }

    #[test]
    fn malformed_control_messages_say_why() {
        for (text, why) in [
            ("not json", "not JSON"),
            ("[1,2]", "no \"type\""),
            (r#"{"type":7}"#, "no \"type\""),
            (
                r#"{"type":"shutdown"}"#,
                "unknown control message type \"shutdown\"",
            ),
            (r#"{"type":"resize","cols":80}"#, "malformed resize"),
            (
                r#"{"type":"resize","cols":"80","rows":24}"#,
                "malformed resize",
            ),
            (
                r#"{"type":"resize","cols":-1,"rows":24}"#,
                "malformed resize",
            ),
            (
                r#"{"type":"resize","cols":80.5,"rows":24}"#,
                "malformed resize",
            ),
            (
                r#"{"type":"resize","cols":0,"rows":24}"#,
                "must be 1 to 1000",
            ),
            (
                r#"{"type":"resize","cols":80,"rows":1001}"#,
                "must be 1 to 1000",
            ),
            (
                r#"{"type":"resize","cols":99999999999999999999,"rows":1}"#,
                "malformed resize",
            ),
        ] {
            let err = parse_control(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn server_messages_are_the_documented_json() {
        let members = [Connected {
            username: berth_types::Username::new("alice").unwrap(),
            role: SessionRole::Owner,
        }];
        let target = TerminalTarget::Machine(berth_types::MachineId::new("web-1").unwrap());
        let hello = ServerControl::Hello {
            target: &target,
            workspace: None,
            you: "alice",
            role: SessionRole::Owner,
            members: &members,
        };
        assert_eq!(
            hello.to_json(),
            r#"{"type":"hello","target":{"kind":"machine","id":"web-1"},"you":"alice","role":"owner","members":[{"username":"alice","role":"owner"}]}"#
        );
        assert_eq!(ServerControl::Pong.to_json(), r#"{"type":"pong"}"#);
        assert_eq!(
            ServerControl::Exit { code: 3 }.to_json(),
            r#"{"type":"exit","code":3}"#
        );
    }
}
