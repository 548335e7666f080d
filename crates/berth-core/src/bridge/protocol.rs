//! Reading the terminal socket's control messages ([`ClientMessage`], defined once in
//! `berth-types`, `docs/terminal-protocol.md`). Everything a client sends is checked here; a
//! message that does not fit gets a reason for people.

use berth_terminal::TtySize;
use berth_types::terminal::ClientMessage;
use serde_json::Value;

/// Someone attached to a terminal right now (the `members` of the hello).
pub use berth_types::terminal::Member as Connected;

/// The largest text (control) frame a client may send, in bytes.
pub const MAX_CONTROL_BYTES: usize = 4 * 1024;
/// The largest terminal, in columns and in rows.
pub const MAX_DIMENSION: u16 = 1000;

/// A control message from a client, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientControl {
    Resize(TtySize),
    Ping,
}

/// Parses a text frame; `Err` holds the message for the client.
pub(crate) fn parse_control(text: &str) -> Result<ClientControl, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("control message is not JSON: {e}"))?;
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or("control message has no \"type\"")?
        .to_owned();
    if !matches!(kind.as_str(), "resize" | "ping") {
        let shown: String = kind.chars().take(32).collect();
        return Err(format!(
            "unknown control message type {shown:?}: expected resize or ping"
        ));
    }
    match serde_json::from_value::<ClientMessage>(value.clone()) {
        Ok(ClientMessage::Ping) => Ok(ClientControl::Ping),
        Ok(ClientMessage::Resize { cols, rows }) => {
            size(u64::from(cols), u64::from(rows)).map(ClientControl::Resize)
        }
        Err(e) => {
            // Whole numbers too large for the wire type get the range's reason.
            let field = |name: &str| value.get(name).and_then(Value::as_u64);
            if let (Some(cols), Some(rows)) = (field("cols"), field("rows")) {
                size(cols, rows)?;
            }
            Err(format!("malformed {kind} message: {e}"))
        }
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
    fn sizes_past_the_wire_type_get_the_range_reason() {
        let err = parse_control(r#"{"type":"resize","cols":70000,"rows":24}"#).unwrap_err();
        assert!(err.contains("must be 1 to 1000"), "{err}");
    }
}
