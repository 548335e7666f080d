//! Terminal sessions below the HTTP layer: the protocol loops of the terminal socket and of the
//! grid socket, written over a generic `Sink<Message>` and `Stream<Item = Result<Message, E>>`
//! so they run without a network in tests and the server adapts its WebSocket to them.
//!
//! - [`Terminals`] is the service: [`Terminals::attach`] asks the target's
//!   [`TerminalSource`](berth_terminal::TerminalSource) who may use its terminal and as what
//!   ([`SessionRole`](crate::SessionRole)), opens the terminal, starts its recording, puts the
//!   user in the target's presence list and audits the attach; [`TerminalSession::run`] then
//!   pumps the session ([`Bridge`]) and audits the detach.
//! - [`Bridge`] is one session's loop, usable over any [`berth_terminal::Pty`].
//! - Grids ([`Grids`], [`GridSession`]) put up to four panes over one socket, each pane one
//!   [`Bridge`].
//!
//! The wire protocol is in `docs/terminal-protocol.md`; the back-pressure rules are in the
//! docs of [`Bridge::run`] and [`GridSession`].

mod grid;
mod mux;
mod presence;
mod protocol;
mod session;
mod stats;
mod terminals;

use std::fmt::Display;

use bytes::Bytes;
use futures_util::{Sink, SinkExt};

pub use grid::{Grid, GridError, GridId, Grids, Layout, MAX_GRIDS_PER_USER};
pub use mux::{GridEnd, GridPane, GridSession, MAX_GRID_FRAME};
pub use presence::Revocation;
pub use protocol::{Connected, MAX_CONTROL_BYTES, MAX_DIMENSION};
pub use session::{
    Bridge, BridgeEnd, Ended, MAX_IN_FLIGHT, MAX_INPUT_FRAME, MAX_OUTPUT_FRAME, OUTPUT_QUEUE_FRAMES,
};
pub use stats::BridgeStats;
pub use terminals::{
    AttachRequest, GridRequest, PaneConnect, TerminalSession, TerminalSettings, Terminals,
};

use berth_terminal::OpenError;
use berth_types::terminal::ServerMessage;

/// A WebSocket message as the bridge sees it; the server maps its WebSocket's messages to and
/// from these (and answers WebSocket pings itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Terminal bytes.
    Binary(Bytes),
    /// A JSON control message.
    Text(String),
    /// A close frame: code and reason.
    Close(u16, String),
}

/// Close codes the bridge and the server use.
pub mod close {
    /// The session ended normally (the shell exited, the grid was idle).
    pub const NORMAL: u16 = 1000;
    /// A frame was larger than allowed.
    pub const TOO_BIG: u16 = 1009;
    /// The terminal failed on the server's side; the client may reconnect.
    pub const INTERNAL: u16 = 1011;
    /// The request was malformed (a terminal size out of range).
    pub const BAD_REQUEST: u16 = 4400;
    /// Not logged in.
    pub const UNAUTHENTICATED: u16 = 4401;
    /// Logged in but not allowed.
    pub const FORBIDDEN: u16 = 4403;
    /// No such target (or grid), or one the user may not see.
    pub const NOT_FOUND: u16 = 4404;
    /// The target has no terminal now (a stopped workspace, an unreachable machine).
    pub const CONFLICT: u16 = 4409;
    /// The user's role changed while attached: reconnect to get the new one.
    pub const ROLE_CHANGED: u16 = 1012;
}

/// The close code for a failed attach.
#[must_use]
pub fn close_code(err: &OpenError) -> u16 {
    match err {
        OpenError::NotFound(_) => close::NOT_FOUND,
        OpenError::Forbidden(_) => close::FORBIDDEN,
        OpenError::Unavailable { .. } => close::CONFLICT,
        OpenError::Invalid(_) => close::BAD_REQUEST,
        OpenError::Failed(_) => close::INTERNAL,
    }
}

/// Tells a client why its terminal cannot open: an error message, then a close with `code`.
/// For use after the WebSocket upgrade, when an HTTP status can no longer be sent.
pub async fn refuse<S>(sink: &mut S, code: u16, message: &str) -> Result<(), S::Error>
where
    S: Sink<Message> + Unpin,
    S::Error: Display,
{
    let text = ServerMessage::Error {
        message: message.to_owned(),
    }
    .to_json();
    sink.send(Message::Text(text)).await?;
    let reason = match code {
        close::NOT_FOUND => "not found",
        close::FORBIDDEN => "forbidden",
        close::UNAUTHENTICATED => "unauthenticated",
        close::CONFLICT => "not available",
        close::BAD_REQUEST => "bad request",
        close::TOO_BIG => "too large",
        _ => "error",
    };
    sink.send(Message::Close(code, reason.into())).await
}
