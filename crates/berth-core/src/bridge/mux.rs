//! The grid socket: up to four panes over one `Sink`/`Stream`, every message a JSON text frame
//! `{"type":...,"pane":N,"data":...}` with terminal bytes in base64 (`docs/terminal-protocol.md`;
//! the messages are [`GridServerMessage`] and [`GridClientMessage`] of `berth-types`).
//!
//! Each pane is an ordinary [`Bridge`] (or [`TerminalSession`]) in a task of its own, talking
//! to the multiplexer over small bounded channels: output from all panes goes through one
//! queue to the socket, input goes through one queue per pane. The same back-pressure rule as
//! for one terminal holds: a client that does not read stalls the writer, the queues fill and
//! every pane's exec stops being read. The socket is one ordered stream, so **one stalled pane
//! may stall the whole socket**: input for a pane whose process does not read it waits (and
//! input for the other panes waits behind it), and a client that does not read output stalls
//! all panes. Nothing is buffered beyond the queues.
//!
//! A grid with no input for its idle timeout is closed (1000, "idle"); when every pane has
//! ended it is closed (1000, "ended"). Closing drops the panes' sessions, which hangs their
//! processes up.

use std::convert::Infallible;
use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use berth_types::grid::{GridClientMessage, GridServerMessage, PaneSize, PaneState, PaneStatus};
use berth_types::terminal::{ClientMessage, ServerMessage};
use futures_channel::mpsc as fmpsc;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::session::{Bridge, MAX_INPUT_FRAME};
use super::stats::BridgeStats;
use super::terminals::TerminalSession;
use super::{Message, close, protocol};

/// The largest text frame a grid client may send (input of up to [`MAX_INPUT_FRAME`] bytes
/// in base64, with room to spare).
pub const MAX_GRID_FRAME: usize = 2 * 1024 * 1024;
/// Messages queued from all panes to the socket (plus one per pane, as the channel allows).
const FROM_PANES_QUEUE: usize = 4;
/// Messages queued from the socket to each pane.
const TO_PANE_QUEUE: usize = 2;
/// Errors for the client waiting for the writer; more are dropped.
const CONTROL_QUEUE: usize = 8;
/// How long the close may take to reach the client, and the panes to wind down.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// One pane of a grid session.
#[derive(Debug)]
pub struct GridPane {
    title: String,
    kind: PaneKind,
}

#[derive(Debug)]
enum PaneKind {
    Session(Box<TerminalSession>),
    Bridge(Box<Bridge>),
    Failed(String),
}

impl GridPane {
    /// A pane showing an attached workspace terminal.
    #[must_use]
    pub fn session(session: TerminalSession) -> Self {
        Self {
            title: session.title().to_owned(),
            kind: PaneKind::Session(Box::new(session)),
        }
    }

    /// A pane over a bare bridge (tests, tools).
    #[must_use]
    pub fn bridge(title: impl Into<String>, bridge: Bridge) -> Self {
        Self {
            title: title.into(),
            kind: PaneKind::Bridge(Box::new(bridge)),
        }
    }

    /// A pane that could not open: the client gets `message` and the pane shows as closed.
    #[must_use]
    pub fn failed(title: impl Into<String>, message: &str) -> Self {
        Self {
            title: title.into(),
            kind: PaneKind::Failed(message.to_owned()),
        }
    }

    /// Whether broadcast typing reaches it: an open session whose role may type.
    fn may_type(&self) -> bool {
        match &self.kind {
            PaneKind::Session(s) => s.role().may_type(),
            PaneKind::Bridge(b) => b.role().may_type(),
            PaneKind::Failed(_) => false,
        }
    }

    fn stats(&self) -> Option<BridgeStats> {
        match &self.kind {
            PaneKind::Session(s) => Some(s.stats()),
            PaneKind::Bridge(b) => Some(b.stats()),
            PaneKind::Failed(_) => None,
        }
    }
}

/// How a grid session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GridEnd {
    /// No input for the idle timeout.
    Idle,
    /// Every pane ended.
    PanesEnded,
    /// The client closed the socket or went away.
    ClientGone,
    /// The client broke the protocol and was closed with `code`.
    Refused {
        /// The close code.
        code: u16,
    },
    /// Sending to the client failed.
    SinkFailed(String),
    /// The client did not take the close in time.
    CloseTimedOut,
}

/// A grid's panes, ready to run over one socket.
#[derive(Debug)]
pub struct GridSession {
    panes: Vec<GridPane>,
    idle_timeout: Duration,
}

enum PaneEvent {
    Message(Message),
    Gone,
}

enum Control {
    Text(String),
    Close(u16, &'static str, GridEnd),
}

impl GridSession {
    /// A session over `panes` (pane `n` is `panes[n]`), closed after `idle_timeout` without
    /// input.
    #[must_use]
    pub fn new(panes: Vec<GridPane>, idle_timeout: Duration) -> Self {
        Self {
            panes,
            idle_timeout,
        }
    }

    /// Each pane's counters (`None` for a pane that could not open).
    #[must_use]
    pub fn stats(&self) -> Vec<Option<BridgeStats>> {
        self.panes.iter().map(GridPane::stats).collect()
    }

    /// Runs the grid until it ends (see the module docs).
    pub async fn run<S, R, E>(self, sink: S, stream: R) -> GridEnd
    where
        S: Sink<Message> + Unpin,
        S::Error: Display,
        R: Stream<Item = Result<Message, E>> + Unpin,
        E: Display,
    {
        let started = Instant::now();
        let (from_tx, from_rx) = fmpsc::channel::<(usize, PaneEvent)>(FROM_PANES_QUEUE);
        let (ctl_tx, ctl_rx) = mpsc::channel::<Control>(CONTROL_QUEUE);
        let mut titles = Vec::new();
        let mut to_panes = Vec::new();
        let mut tasks: Vec<JoinHandle<()>> = Vec::new();
        let mut first = Vec::new();
        let typers: Vec<bool> = self.panes.iter().map(GridPane::may_type).collect();
        for (i, pane) in self.panes.into_iter().enumerate() {
            titles.push(pane.title.clone());
            let run = match pane.kind {
                PaneKind::Failed(message) => {
                    first.push(
                        GridServerMessage::Error {
                            pane: Some(i),
                            data: message,
                        }
                        .to_json(),
                    );
                    first.push(status(i, PaneState::Closed, &pane.title));
                    to_panes.push(None);
                    continue;
                }
                run => run,
            };
            let (in_tx, in_rx) = fmpsc::channel::<Result<Message, Infallible>>(TO_PANE_QUEUE);
            to_panes.push(Some(in_tx));
            let sink = from_tx.clone().with(move |m| {
                std::future::ready(Ok::<_, fmpsc::SendError>((i, PaneEvent::Message(m))))
            });
            let mut gone = from_tx.clone();
            tasks.push(tokio::spawn(async move {
                match run {
                    PaneKind::Session(session) => drop(session.run(sink, in_rx).await),
                    PaneKind::Bridge(bridge) => drop(bridge.run(sink, in_rx).await),
                    PaneKind::Failed(_) => {}
                }
                let _ = gone.send((i, PaneEvent::Gone)).await;
            }));
        }
        drop(from_tx);
        let live = tasks.len();
        let last_input = AtomicU64::new(0);
        let end = {
            let writer = writer(sink, first, from_rx, ctl_rx, titles, live);
            let reader = reader(
                stream,
                to_panes,
                typers,
                ctl_tx.clone(),
                &last_input,
                started,
            );
            tokio::pin!(writer, reader);
            let mut reader_done = false;
            let mut closing = false;
            let mut deadline: Option<Instant> = None;
            loop {
                let idle_at = started
                    + Duration::from_millis(last_input.load(Ordering::Relaxed))
                    + self.idle_timeout;
                let grace = deadline.unwrap_or(idle_at);
                tokio::select! {
                    end = &mut writer => break end,
                    refused = &mut reader, if !reader_done => {
                        reader_done = true;
                        let Some(code) = refused else { break GridEnd::ClientGone };
                        closing = true;
                        let _ = ctl_tx.try_send(Control::Close(code, "too large", GridEnd::Refused { code }));
                        deadline = Some(Instant::now() + CLOSE_GRACE);
                    }
                    () = tokio::time::sleep_until(idle_at), if !closing => {
                        // Input may have come since this deadline was computed.
                        if Instant::now() >= idle_at {
                            closing = true;
                            let _ = ctl_tx.try_send(Control::Close(close::NORMAL, "idle", GridEnd::Idle));
                            deadline = Some(Instant::now() + CLOSE_GRACE);
                        }
                    }
                    () = tokio::time::sleep_until(grace), if deadline.is_some() => {
                        break GridEnd::CloseTimedOut;
                    }
                }
            }
        };
        // The panes' input queues are gone with the reader: each pane sees its client leave,
        // ends (hanging its process up) and audits its detach.
        let wind_down = futures_util::future::join_all(tasks.iter_mut());
        if tokio::time::timeout(CLOSE_GRACE, wind_down).await.is_err() {
            for task in &tasks {
                task.abort();
            }
        }
        end
    }
}

fn status(pane: usize, state: PaneState, title: &str) -> String {
    GridServerMessage::Status {
        pane,
        data: PaneStatus {
            state,
            title: title.to_owned(),
        },
    }
    .to_json()
}

/// Sends what the panes and the multiplexer have to say until a close was sent, every pane is
/// gone (then it closes), or the sink fails.
async fn writer<S>(
    mut sink: S,
    first: Vec<String>,
    mut from_panes: fmpsc::Receiver<(usize, PaneEvent)>,
    mut control: mpsc::Receiver<Control>,
    titles: Vec<String>,
    mut live: usize,
) -> GridEnd
where
    S: Sink<Message> + Unpin,
    S::Error: Display,
{
    let mut closed = vec![false; titles.len()];
    for text in first {
        if let Err(err) = sink.send(Message::Text(text)).await {
            return GridEnd::SinkFailed(err.to_string());
        }
    }
    loop {
        if live == 0 {
            return match sink
                .send(Message::Close(close::NORMAL, "ended".into()))
                .await
            {
                Ok(()) => GridEnd::PanesEnded,
                Err(err) => GridEnd::SinkFailed(err.to_string()),
            };
        }
        let text = tokio::select! {
            biased;
            Some(control) = control.recv() => match control {
                Control::Text(text) => Some(text),
                Control::Close(code, reason, end) => {
                    return match sink.send(Message::Close(code, reason.into())).await {
                        Ok(()) => end,
                        Err(err) => GridEnd::SinkFailed(err.to_string()),
                    };
                }
            },
            Some((pane, event)) = from_panes.next() => match event {
                PaneEvent::Gone => {
                    live -= 1;
                    (!std::mem::replace(&mut closed[pane], true))
                        .then(|| status(pane, PaneState::Closed, &titles[pane]))
                }
                PaneEvent::Message(Message::Close(..)) => {
                    (!std::mem::replace(&mut closed[pane], true))
                        .then(|| status(pane, PaneState::Closed, &titles[pane]))
                }
                PaneEvent::Message(message) => translate(pane, message, &titles[pane]),
            },
            else => return GridEnd::PanesEnded,
        };
        if let Some(text) = text
            && let Err(err) = sink.send(Message::Text(text)).await
        {
            return GridEnd::SinkFailed(err.to_string());
        }
    }
}

/// A pane's message as a grid message; `None` for what the grid protocol does not carry
/// (members, pongs).
fn translate(pane: usize, message: Message, title: &str) -> Option<String> {
    let message = match message {
        Message::Binary(bytes) => GridServerMessage::Output {
            pane,
            data: BASE64.encode(&bytes),
        },
        Message::Text(text) => match serde_json::from_str::<ServerMessage>(&text).ok()? {
            ServerMessage::Hello { .. } => return Some(status(pane, PaneState::Connected, title)),
            ServerMessage::Exit { code } => GridServerMessage::Exit { pane, data: code },
            ServerMessage::Error { message } => GridServerMessage::Error {
                pane: Some(pane),
                data: message,
            },
            ServerMessage::Members { .. } | ServerMessage::Pong => return None,
        },
        Message::Close(..) => return None,
    };
    Some(message.to_json())
}

/// Routes the client's messages to the panes until it goes away (`None`) or sends a frame too
/// large (`Some(close code)`). While broadcast typing is on, input for any pane goes to every
/// pane in `typers` (one after the other, in pane order).
async fn reader<R, E>(
    mut stream: R,
    mut panes: Vec<Option<fmpsc::Sender<Result<Message, Infallible>>>>,
    typers: Vec<bool>,
    control: mpsc::Sender<Control>,
    last_input: &AtomicU64,
    started: Instant,
) -> Option<u16>
where
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: Display,
{
    let error = |pane: Option<usize>, message: String| {
        let _ = control.try_send(Control::Text(
            GridServerMessage::Error {
                pane,
                data: message,
            }
            .to_json(),
        ));
    };
    let mut broadcast = false;
    while let Some(frame) = stream.next().await {
        let text = match frame {
            Ok(Message::Text(text)) => text,
            Ok(Message::Binary(_)) => {
                error(None, "the grid socket takes JSON text frames only".into());
                continue;
            }
            Ok(Message::Close(..)) => return None,
            Err(err) => {
                tracing::debug!(error = %err, "grid client failed");
                return None;
            }
        };
        if text.len() > MAX_GRID_FRAME {
            error(
                None,
                format!(
                    "grid message of {} bytes refused: at most {MAX_GRID_FRAME}",
                    text.len()
                ),
            );
            return Some(close::TOO_BIG);
        }
        let (pane, message) = match parse(&text, panes.len()) {
            Ok(Parsed::Pane(pane, message)) => (pane, message),
            Ok(Parsed::Broadcast(on)) => {
                broadcast = on;
                let _ = control.try_send(Control::Text(
                    GridServerMessage::Broadcast { data: on }.to_json(),
                ));
                continue;
            }
            Err((pane, message)) => {
                error(pane, message);
                continue;
            }
        };
        let input = matches!(message, Message::Binary(_));
        if input {
            let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            last_input.store(millis, Ordering::Relaxed);
        }
        let targets: Vec<usize> = if input && broadcast {
            (0..panes.len())
                .filter(|&i| typers[i] && panes[i].is_some())
                .collect()
        } else {
            vec![pane]
        };
        for pane in targets {
            let Some(sender) = panes[pane].as_mut() else {
                error(Some(pane), format!("pane {pane} is closed"));
                continue;
            };
            if sender.send(Ok(message.clone())).await.is_err() {
                panes[pane] = None;
                error(Some(pane), format!("pane {pane} is closed"));
            }
        }
    }
    None
}

/// A grid message from the client, parsed.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// A message for one pane's bridge.
    Pane(usize, Message),
    /// Broadcast typing on or off.
    Broadcast(bool),
}

/// A grid message from the client as a pane number and a message for that pane's bridge, or
/// broadcast typing turned on or off.
fn parse(text: &str, panes: usize) -> Result<Parsed, (Option<usize>, String)> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| (None, format!("grid message is not JSON: {e}")))?;
    if value.get("type").and_then(Value::as_str) == Some("broadcast") {
        return match serde_json::from_value::<GridClientMessage>(value) {
            Ok(GridClientMessage::Broadcast { data }) => Ok(Parsed::Broadcast(data)),
            _ => Err((None, "broadcast.data must be true or false".into())),
        };
    }
    let pane = value
        .get("pane")
        .and_then(Value::as_u64)
        .and_then(|p| usize::try_from(p).ok())
        .filter(|p| *p < panes)
        .ok_or_else(|| {
            (
                None,
                format!(
                    "grid message has no pane number from 0 to {}",
                    panes.saturating_sub(1)
                ),
            )
        })?;
    let fail = |message: String| (Some(pane), message);
    match serde_json::from_value::<GridClientMessage>(value.clone()) {
        Ok(GridClientMessage::Input { data, .. }) => {
            if data.len() / 4 * 3 > MAX_INPUT_FRAME + 3 {
                return Err(fail(format!(
                    "input of more than {MAX_INPUT_FRAME} bytes refused"
                )));
            }
            let bytes = BASE64
                .decode(data)
                .map_err(|e| fail(format!("input.data is not valid base64: {e}")))?;
            Ok(Parsed::Pane(pane, Message::Binary(bytes.into())))
        }
        Ok(GridClientMessage::Resize {
            data: PaneSize { cols, rows },
            ..
        }) => {
            protocol::size(u64::from(cols), u64::from(rows)).map_err(fail)?;
            Ok(Parsed::Pane(
                pane,
                Message::Text(ClientMessage::Resize { cols, rows }.to_json()),
            ))
        }
        Ok(GridClientMessage::Broadcast { .. }) | Err(_) => Err(fail(refusal(&value))),
    }
}

/// Why a grid message with a good pane number is not a [`GridClientMessage`], for people.
fn refusal(value: &Value) -> String {
    let data = value.get("data");
    match value.get("type").and_then(Value::as_str) {
        Some("input") => "input.data is not a base64 string".into(),
        Some("resize") => {
            let field = |name: &str| data.and_then(|d| d.get(name)).and_then(Value::as_u64);
            match (field("cols"), field("rows")) {
                (Some(cols), Some(rows)) => protocol::size(cols, rows)
                    .err()
                    .unwrap_or_else(|| "resize.data is malformed".into()),
                _ => "resize.data needs whole numbers cols and rows".into(),
            }
        }
        Some(other) => {
            let shown: String = other.chars().take(32).collect();
            format!("unknown grid message type {shown:?}: expected input, resize or broadcast")
        }
        None => "grid message has no \"type\"".into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn grid_messages_parse_into_pane_messages() {
        assert_eq!(
            parse(r#"{"pane":1,"type":"input","data":"aGk="}"#, 2).unwrap(),
            Parsed::Pane(1, Message::Binary("hi".into()))
        );
        assert_eq!(
            parse(
                r#"{"pane":0,"type":"resize","data":{"cols":90,"rows":30}}"#,
                1,
            )
            .unwrap(),
            Parsed::Pane(
                0,
                Message::Text(r#"{"type":"resize","cols":90,"rows":30}"#.into())
            )
        );
        assert_eq!(
            parse(r#"{"type":"broadcast","data":true}"#, 4).unwrap(),
            Parsed::Broadcast(true)
        );
        assert_eq!(
            parse(r#"{"type":"broadcast","data":false}"#, 0).unwrap(),
            Parsed::Broadcast(false)
        );
    }

    #[test]
    fn bad_grid_messages_say_why_and_for_which_pane() {
        for (text, pane, why) in [
            ("{", None, "not JSON"),
            (
                r#"{"pane":2,"type":"input","data":""}"#,
                None,
                "from 0 to 1",
            ),
            (
                r#"{"pane":-1,"type":"input","data":""}"#,
                None,
                "pane number",
            ),
            (
                r#"{"pane":0,"type":"input","data":"!!"}"#,
                Some(0),
                "not valid base64",
            ),
            (
                r#"{"pane":0,"type":"input","data":7}"#,
                Some(0),
                "not a base64 string",
            ),
            (
                r#"{"pane":1,"type":"resize","data":{"cols":0,"rows":5}}"#,
                Some(1),
                "1 to 1000",
            ),
            (
                r#"{"pane":1,"type":"resize","data":{"cols":"a"}}"#,
                Some(1),
                "whole numbers",
            ),
            (
                r#"{"pane":1,"type":"exec"}"#,
                Some(1),
                "unknown grid message type \"exec\"",
            ),
            (r#"{"pane":1}"#, Some(1), "no \"type\""),
            (
                r#"{"type":"broadcast","data":"yes"}"#,
                None,
                "true or false",
            ),
        ] {
            let (got_pane, message) = parse(text, 2).unwrap_err();
            assert_eq!(got_pane, pane, "{text}");
            assert!(message.contains(why), "{text}: {message}");
        }
        let huge = format!(
            r#"{{"pane":0,"type":"input","data":"{}"}}"#,
            "A".repeat(MAX_INPUT_FRAME / 3 * 4 + 8)
        );
        assert!(parse(&huge, 1).unwrap_err().1.contains("refused"));
    }

    #[test]
    fn pane_messages_translate_to_grid_messages() {
        let out = translate(3, Message::Binary("hi".into()), "t").unwrap();
        assert_eq!(out, r#"{"type":"output","pane":3,"data":"aGk="}"#);
        let hello = translate(
            0,
            Message::Text(
                r#"{"type":"hello","target":{"kind":"machine","id":"m"},"you":"a","role":"owner","members":[]}"#.into(),
            ),
            "alice@py",
        )
        .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&hello).unwrap(),
            json!({"pane": 0, "type": "status", "data": {"state": "connected", "title": "alice@py"}})
        );
        let exit = translate(1, Message::Text(r#"{"type":"exit","code":2}"#.into()), "t").unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&exit).unwrap(),
            json!({"pane": 1, "type": "exit", "data": 2})
        );
        assert_eq!(
            translate(1, Message::Text(r#"{"type":"pong"}"#.into()), "t"),
            None
        );
    }
}
