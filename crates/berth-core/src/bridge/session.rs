//! The protocol loop of one terminal: a [`Pty`] on one side, a client's
//! `Sink<Message>` and `Stream<Item = Result<Message, E>>` on the other. How it keeps memory
//! bounded and how it ends is documented on [`Bridge::run`].

use std::fmt::Display;
use std::time::Duration;

use std::sync::Arc;

use berth_store::Recording;
use berth_terminal::{Activity, Pty, PtyControl, PtyInput, PtyOutput, TerminalTarget};
use berth_types::Username;
use berth_types::terminal::ServerMessage;
use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};

use super::presence::Revocation;
use super::protocol::{ClientControl, Connected, MAX_CONTROL_BYTES, parse_control};
use super::stats::{BridgeStats, Toucher};
use super::{Message, close};
use crate::SessionRole;
use crate::recordings::Recorder;

/// Output frames queued between the exec and the client.
pub const OUTPUT_QUEUE_FRAMES: usize = 4;
/// The largest output frame; larger exec chunks are split.
pub const MAX_OUTPUT_FRAME: usize = 32 * 1024;
/// Output bytes a session holds at most (taken from the exec, not yet accepted by the sink)
/// while the exec's chunks are at most [`MAX_OUTPUT_FRAME`] long, as the Docker runtime's
/// (32 KiB) are: the queue, the frame being sent and the chunk being queued.
pub const MAX_IN_FLIGHT: usize = (OUTPUT_QUEUE_FRAMES + 2) * MAX_OUTPUT_FRAME;
/// The largest input frame a client may send, in bytes (a big paste).
pub const MAX_INPUT_FRAME: usize = 1024 * 1024;

/// Pongs and errors waiting for the writer; more are dropped (the client is not reading).
const CONTROL_QUEUE: usize = 8;
/// How long the exit code may take once the output ended.
const EXIT_WAIT: Duration = Duration::from_secs(10);
/// How long the last output and the close may take to reach a client once the session is over.
const CLOSE_GRACE: Duration = Duration::from_secs(30);

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeEnd {
    /// The shell exited with this code (`None`: it could not be read) and the client was told.
    Exited(Option<i64>),
    /// The client closed the socket or went away.
    ClientGone,
    /// The client broke the protocol and was sent an error and this close code.
    Refused {
        /// The close code.
        code: u16,
        /// Why, as sent.
        reason: String,
    },
    /// The connection to the terminal failed; the client got close 1011 and may reconnect.
    Lost(String),
    /// Sending to the client failed.
    SinkFailed(String),
    /// The client did not take the last output or the close in time.
    CloseTimedOut,
    /// The user's access changed while attached (removed, role changed, account deleted or
    /// disabled): the client got an `error` message and the revocation's close code.
    Revoked,
}

impl BridgeEnd {
    /// A short word for logs and the audit log.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Exited(_) => "exited",
            Self::ClientGone => "client_gone",
            Self::Refused { .. } => "refused",
            Self::Lost(_) => "lost",
            Self::SinkFailed(_) => "send_failed",
            Self::CloseTimedOut => "close_timed_out",
            Self::Revoked => "revoked",
        }
    }
}

/// What [`Bridge::run`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// How the session ended.
    pub end: BridgeEnd,
    /// The finished recording, if the session was recorded and its file and index were written.
    pub recording: Option<Recording>,
}

/// One terminal session's protocol loop, ready to run.
#[derive(Debug)]
pub struct Bridge {
    exec: Pty,
    target: TerminalTarget,
    you: Username,
    role: SessionRole,
    activity: Option<Arc<dyn Activity>>,
    recorder: Option<Recorder>,
    members: Option<watch::Receiver<Vec<Connected>>>,
    revoked: Option<watch::Receiver<Option<Revocation>>>,
    stats: BridgeStats,
}

impl Bridge {
    /// A bridge from the terminal `exec` on `target` to a client who is `you` with `role`.
    #[must_use]
    pub fn new(
        exec: Pty,
        target: impl Into<TerminalTarget>,
        you: Username,
        role: SessionRole,
    ) -> Self {
        Self {
            exec,
            target: target.into(),
            you,
            role,
            activity: None,
            recorder: None,
            members: None,
            revoked: None,
            stats: BridgeStats::default(),
        }
    }

    /// Touches `activity` on input, output and pings (at most once a second).
    #[must_use]
    pub fn with_activity(mut self, activity: Arc<dyn Activity>) -> Self {
        self.activity = Some(activity);
        self
    }

    /// Records the session's output and resizes; finished when the session ends.
    #[must_use]
    pub fn with_recorder(mut self, recorder: Recorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    pub(crate) fn with_members(mut self, members: watch::Receiver<Vec<Connected>>) -> Self {
        self.members = Some(members);
        self
    }

    /// Ends the session when `revoked` is set (see [`Presence::revoke`]).
    ///
    /// [`Presence::revoke`]: super::presence::Presence::revoke
    pub(crate) fn with_revocation(mut self, revoked: watch::Receiver<Option<Revocation>>) -> Self {
        self.revoked = Some(revoked);
        self
    }

    /// What the client may do in it.
    #[must_use]
    pub fn role(&self) -> SessionRole {
        self.role
    }

    /// The session's counters.
    #[must_use]
    pub fn stats(&self) -> BridgeStats {
        self.stats.clone()
    }

    /// Runs the session until it ends. The sink must apply back-pressure (a WebSocket's `send`
    /// completes when the frame is written), or it buffers what the bridge does not.
    ///
    /// Three parts run concurrently in the caller's task: the **pump** pulls output from the
    /// exec only when the output queue ([`OUTPUT_QUEUE_FRAMES`] frames) has room, records it
    /// and queues it; the **writer** sends the hello, then queued output, control answers and
    /// member changes, each send awaited, so a client that does not read stalls the writer,
    /// the queue fills, the pump stops pulling, the runtime stops reading the engine socket and
    /// the PTY blocks the process: at most [`MAX_IN_FLIGHT`] output bytes are held; the
    /// **reader** takes the client's frames one at a time and writes input to the exec
    /// (awaited: a process that does not read its input slows the client down).
    ///
    /// It ends when the shell exits (an `exit` message, then close 1000), when the client goes
    /// away, or when it breaks the protocol (an `error` message, then close 1009). Its exec
    /// handles are dropped on the way out, which hangs the process up.
    pub async fn run<S, R, E>(self, sink: S, stream: R) -> Ended
    where
        S: Sink<Message> + Unpin,
        S::Error: Display,
        R: Stream<Item = Result<Message, E>> + Unpin,
        E: Display,
    {
        let Bridge {
            exec,
            target,
            you,
            role,
            activity,
            recorder,
            members,
            mut revoked,
            stats,
        } = self;
        let (output, input, control) = exec.into_parts();
        let touch = Toucher::new(activity);
        let (out_tx, out_rx) = mpsc::channel(OUTPUT_QUEUE_FRAMES);
        let (ctl_tx, ctl_rx) = mpsc::channel(CONTROL_QUEUE);
        // At most one message ever, from the reader.
        let (close_tx, close_rx) = mpsc::channel(1);
        let hello = Hello {
            target: &target,
            you: &you,
            role,
        };
        let end = {
            let pump = pump(output, &*control, out_tx, &touch, recorder.as_ref(), &stats);
            let writer = writer(sink, hello, out_rx, ctl_rx, close_rx, members, &stats);
            let reader = reader(
                stream,
                input,
                &*control,
                role,
                ctl_tx,
                &touch,
                recorder.as_ref(),
                &stats,
            );
            tokio::pin!(pump, writer, reader);
            let mut pump_done = false;
            let mut reader_done = false;
            let mut deadline: Option<tokio::time::Instant> = None;
            loop {
                let grace = deadline.unwrap_or_else(|| tokio::time::Instant::now() + CLOSE_GRACE);
                tokio::select! {
                    end = &mut writer => break end,
                    () = &mut pump, if !pump_done => {
                        pump_done = true;
                        deadline.get_or_insert(tokio::time::Instant::now() + CLOSE_GRACE);
                    }
                    refused = &mut reader, if !reader_done => {
                        reader_done = true;
                        match refused {
                            None => break BridgeEnd::ClientGone,
                            Some(closing) => {
                                let _ = close_tx.try_send(closing);
                                deadline.get_or_insert(tokio::time::Instant::now() + CLOSE_GRACE);
                            }
                        }
                    }
                    Some(revocation) = revocation(&mut revoked) => {
                        let closing = Closing::error(
                            &revocation.message,
                            revocation.code,
                            "access changed",
                            BridgeEnd::Revoked,
                        );
                        // Unless the reader is closing already; either way the session ends.
                        let _ = close_tx.try_send(closing);
                        deadline.get_or_insert(tokio::time::Instant::now() + CLOSE_GRACE);
                    }
                    () = tokio::time::sleep_until(grace), if deadline.is_some() => {
                        break BridgeEnd::CloseTimedOut;
                    }
                }
            }
        };
        // The exec's parts are gone with the futures; the last handle hangs the process up.
        drop(control);
        let recording = match recorder {
            Some(recorder) => match recorder.finish().await {
                Ok(recording) => Some(recording),
                Err(err) => {
                    tracing::warn!(%target, user = %you, error = %err, "the recording is incomplete");
                    None
                }
            },
            None => None,
        };
        Ended { end, recording }
    }
}

struct Hello<'a> {
    target: &'a TerminalTarget,
    you: &'a Username,
    role: SessionRole,
}

/// What the pump queues for the writer, in order: output, then how it ended.
enum Out {
    Output(Bytes),
    Exit(Option<i64>),
    Lost(String),
}

/// The end of a session as the client sees it: a last control message, then a close frame.
struct Closing {
    last: String,
    code: u16,
    reason: &'static str,
    end: BridgeEnd,
}

impl Closing {
    fn error(message: &str, code: u16, reason: &'static str, end: BridgeEnd) -> Self {
        Self {
            last: ServerMessage::Error {
                message: message.to_owned(),
            }
            .to_json(),
            code,
            reason,
            end,
        }
    }

    /// Sends it; the session's end, or why sending failed.
    async fn send<S>(self, sink: &mut S) -> BridgeEnd
    where
        S: Sink<Message> + Unpin,
        S::Error: Display,
    {
        let sent = async {
            sink.send(Message::Text(self.last)).await?;
            sink.send(Message::Close(self.code, self.reason.into()))
                .await
        };
        match sent.await {
            Ok(()) => self.end,
            Err(err) => BridgeEnd::SinkFailed(err.to_string()),
        }
    }
}

/// Pulls output while the queue has room, then queues how the output ended: the exit code,
/// or why the connection to the terminal failed.
async fn pump(
    mut output: PtyOutput,
    control: &dyn PtyControl,
    out: mpsc::Sender<Out>,
    touch: &Toucher,
    recorder: Option<&Recorder>,
    stats: &BridgeStats,
) {
    while let Some(chunk) = output.next().await {
        let mut chunk = match chunk {
            Ok(chunk) => chunk,
            Err(err) => {
                let _ = out.send(Out::Lost(err.to_string())).await;
                return;
            }
        };
        if chunk.is_empty() {
            continue;
        }
        touch.touch();
        stats.taken(chunk.len());
        if let Some(recorder) = recorder {
            recorder.output(&chunk);
        }
        while !chunk.is_empty() {
            let piece = chunk.split_to(chunk.len().min(MAX_OUTPUT_FRAME));
            if out.send(Out::Output(piece)).await.is_err() {
                return; // the writer is gone: the session is ending anyway
            }
        }
    }
    let code = match tokio::time::timeout(EXIT_WAIT, control.wait()).await {
        Ok(Ok(code)) => Some(code),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "cannot read a terminal's exit code");
            None
        }
        Err(_) => None,
    };
    let _ = out.send(Out::Exit(code)).await;
}

/// Sends the hello, then whatever comes, until a close was sent or the sink failed.
async fn writer<S>(
    mut sink: S,
    hello: Hello<'_>,
    mut out: mpsc::Receiver<Out>,
    mut control: mpsc::Receiver<String>,
    mut closing: mpsc::Receiver<Closing>,
    mut members: Option<watch::Receiver<Vec<Connected>>>,
    stats: &BridgeStats,
) -> BridgeEnd
where
    S: Sink<Message> + Unpin,
    S::Error: Display,
{
    let now: Vec<Connected> = members
        .as_ref()
        .map(|m| m.borrow().clone())
        .unwrap_or_else(|| {
            vec![Connected {
                username: hello.you.clone(),
                role: hello.role,
            }]
        });
    let text = ServerMessage::Hello {
        target: hello.target.clone(),
        workspace: hello.target.workspace(),
        you: hello.you.clone(),
        role: hello.role,
        members: now,
    }
    .to_json();
    if let Err(err) = sink.send(Message::Text(text)).await {
        return BridgeEnd::SinkFailed(err.to_string());
    }
    let mut out_open = true;
    loop {
        let sent = tokio::select! {
            biased;
            Some(closing) = closing.recv() => return closing.send(&mut sink).await,
            Some(text) = control.recv() => sink.send(Message::Text(text)).await,
            Some(list) = changed(&mut members) => {
                let text = ServerMessage::Members { members: list }.to_json();
                sink.send(Message::Text(text)).await
            }
            next = out.recv(), if out_open => match next {
                Some(Out::Output(bytes)) => {
                    let n = bytes.len();
                    let sent = sink.send(Message::Binary(bytes)).await;
                    stats.delivered(n);
                    sent
                }
                Some(Out::Exit(code)) => {
                    let closing = Closing {
                        last: ServerMessage::Exit { code: code.unwrap_or(-1) }.to_json(),
                        code: close::NORMAL,
                        reason: "exited",
                        end: BridgeEnd::Exited(code),
                    };
                    return closing.send(&mut sink).await;
                }
                Some(Out::Lost(why)) => {
                    let message = format!("lost the connection to the terminal: {why}");
                    let closing = Closing::error(&message, close::INTERNAL, "terminal lost", BridgeEnd::Lost(why));
                    return closing.send(&mut sink).await;
                }
                None => {
                    out_open = false;
                    Ok(())
                }
            },
        };
        if let Err(err) = sent {
            return BridgeEnd::SinkFailed(err.to_string());
        }
    }
}

/// The next member list, or never when there is none to watch.
/// The revocation once it is set; never if there is none (or the registry is gone). Taking it
/// leaves `None` behind, so it fires once.
async fn revocation(
    revoked: &mut Option<watch::Receiver<Option<Revocation>>>,
) -> Option<Revocation> {
    let revocation = match revoked {
        Some(receiver) => receiver
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|value| value.clone()),
        None => None,
    };
    *revoked = None;
    if revocation.is_some() {
        return revocation;
    }
    std::future::pending().await
}

async fn changed(members: &mut Option<watch::Receiver<Vec<Connected>>>) -> Option<Vec<Connected>> {
    if let Some(receiver) = members {
        if receiver.changed().await.is_ok() {
            return Some(receiver.borrow_and_update().clone());
        }
        *members = None;
    }
    std::future::pending().await
}

/// Handles the client's frames until it goes away (`None`) or breaks the protocol.
#[allow(clippy::too_many_arguments)] // the parts of one session, borrowed for its duration
async fn reader<R, E>(
    mut stream: R,
    mut input: PtyInput,
    control: &dyn PtyControl,
    role: SessionRole,
    answers: mpsc::Sender<String>,
    touch: &Toucher,
    recorder: Option<&Recorder>,
    stats: &BridgeStats,
) -> Option<Closing>
where
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: Display,
{
    let mut input_open = true;
    while let Some(frame) = stream.next().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(err) => {
                tracing::debug!(error = %err, "terminal client failed");
                return None;
            }
        };
        match frame {
            Message::Binary(bytes) => {
                if bytes.len() > MAX_INPUT_FRAME {
                    return Some(too_big("input", bytes.len(), MAX_INPUT_FRAME));
                }
                if !role.may_type() {
                    stats.dropped_input(bytes.len());
                    continue;
                }
                touch.touch();
                if input_open {
                    let written = async {
                        input.write_all(&bytes).await?;
                        input.flush().await
                    }
                    .await;
                    match written {
                        Ok(()) => {
                            stats.input(bytes.len());
                        }
                        Err(err) => {
                            // The process closed its input; its output (and exit) still come.
                            tracing::debug!(error = %err, "terminal input closed");
                            input_open = false;
                        }
                    }
                }
            }
            Message::Text(text) => {
                if text.len() > MAX_CONTROL_BYTES {
                    return Some(too_big("control message", text.len(), MAX_CONTROL_BYTES));
                }
                match parse_control(&text) {
                    Ok(ClientControl::Ping) => {
                        touch.touch();
                        let _ = answers.try_send(ServerMessage::Pong.to_json());
                    }
                    Ok(ClientControl::Resize(size)) if role.may_type() => {
                        match control.resize(size).await {
                            Ok(()) => {
                                if let Some(recorder) = recorder {
                                    recorder.resize(size);
                                }
                            }
                            Err(err) => {
                                let message = format!("resize failed: {err}");
                                let _ =
                                    answers.try_send(ServerMessage::Error { message }.to_json());
                            }
                        }
                    }
                    // A viewer's size must not change the shared terminal.
                    Ok(ClientControl::Resize(_)) => {}
                    Err(message) => {
                        let _ = answers.try_send(ServerMessage::Error { message }.to_json());
                    }
                }
            }
            Message::Close(..) => return None,
        }
    }
    None
}

fn too_big(what: &'static str, len: usize, max: usize) -> Closing {
    let reason = if what == "input" {
        "input too large"
    } else {
        "control message too large"
    };
    Closing::error(
        &format!("{what} of {len} bytes refused: at most {max}"),
        close::TOO_BIG,
        reason,
        BridgeEnd::Refused {
            code: close::TOO_BIG,
            reason: reason.into(),
        },
    )
}
