//! `berth attach`: this terminal, in raw mode, connected to a shell in a workspace.
//!
//! Keys go to the workspace as typed (Ctrl-C included); Ctrl-] then `d` detaches. Without a
//! terminal, stdin is piped to the shell and its end sent as Ctrl-D. The window
//! size follows SIGWINCH; a keep-alive ping goes every 30 s and a connection that answers
//! nothing for a whole interval is given up. The terminal is restored however the session ends:
//! the shell exits (berth exits with its status), the detach keys, the server closes, a signal
//! (SIGTERM, SIGHUP, SIGINT, SIGQUIT: exit status 128 + the signal), or a panic.
//!
//! The loop is written over two small traits so that the server's WebSocket ([`socket`]) and
//! a local exec ([`exec`]) share it.

mod detach;
mod exec;
mod socket;
mod terminal;

use std::process::ExitCode;
use std::time::Duration;

use berth_client::api::{WorkspaceState, WorkspaceView};
use berth_terminal::TtySize;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;

use self::detach::DetachKeys;
use self::terminal::RawMode;
use super::errors::CliError;
use super::local::{Engine, LocalContainer};
use super::workspaces::{Which, resolve, short};
use super::{Session, local};

/// How often a keep-alive ping is sent, and how long a silent connection is trusted.
const PING_INTERVAL: Duration = Duration::from_secs(30);
/// Input typed (or piped) before the session is ready is kept up to this much.
const MAX_TYPE_AHEAD: usize = 64 * 1024;
/// What a terminal sends for end of input (Ctrl-D).
const END_OF_INPUT: u8 = 0x04;
/// Piped input's end is sent once the terminal has been quiet this long after the last
/// input: a Ctrl-D that reaches a shell still reading in cooked mode (one starting up inside
/// tmux, say) is lost when it switches to its line editor.
const END_OF_INPUT_QUIET: Duration = Duration::from_millis(300);
/// Type-ahead waits after the `hello` for the shell's first output (its prompt) at most this.
const TYPE_AHEAD_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    /// The workspace: its id, a unique prefix of it, or the template's name when you have one
    /// live workspace of it (with --local: the container's name).
    workspace: String,
    /// A workspace on this machine's Docker Engine (a shell exec'd directly, no server).
    #[arg(long)]
    local: bool,
}

/// What the other side said.
#[derive(Debug)]
pub(crate) enum Event {
    /// Terminal output.
    Output(Bytes),
    /// The session is open; `may_type` unless the role is viewer.
    Ready { may_type: bool, role: String },
    /// The shell exited with this code.
    Exit(i64),
    /// The answer to a keep-alive.
    Pong,
    /// Anything else (activity all the same).
    Ignored,
    /// The connection closed.
    Closed(Closed),
}

/// A close: its code, reason, and the last `error` message before it.
#[derive(Debug)]
pub(crate) struct Closed {
    code: u16,
    reason: String,
    message: Option<String>,
}

/// The receiving half of a terminal connection. `next` must be cancel-safe.
pub(crate) trait Incoming {
    async fn next(&mut self) -> Event;
}

/// The sending half of a terminal connection.
pub(crate) trait Outgoing {
    async fn input(&mut self, bytes: Bytes) -> Result<(), String>;
    async fn resize(&mut self, size: TtySize) -> Result<(), String>;
    async fn ping(&mut self) -> Result<(), String>;
    async fn close(&mut self);
}

/// How a session ended.
#[derive(Debug)]
enum Outcome {
    Exited(i64),
    Detached,
    Closed(Closed),
    Signal(i32),
    Lost(String),
}

pub async fn run(args: AttachArgs) -> Result<ExitCode, CliError> {
    let session = Session::open()?;
    if args.local {
        return local::attach_to(&session, &args.workspace).await;
    }
    let workspace = resolve(&session, &args.workspace, Which::Live).await?;
    remote(&session, &workspace).await
}

/// Attaches to `workspace` on the server.
pub async fn remote(session: &Session, workspace: &WorkspaceView) -> Result<ExitCode, CliError> {
    if workspace.state != WorkspaceState::Running {
        return Err(CliError::new(format!(
            "workspace {} is {}, not running",
            short(workspace.id),
            workspace.state
        ))
        .hint(match workspace.state {
            WorkspaceState::Stopped => {
                format!("start it again with `berth start {}`", short(workspace.id))
            }
            _ => "wait a moment and try again".to_owned(),
        }));
    }
    let size = terminal::size();
    let (incoming, outgoing) = socket::connect(
        session.server(),
        &session.login.token,
        session.client.tls_config(),
        workspace.id,
        size,
    )
    .await?;
    let title = format!("{} ({})", short(workspace.id), workspace.template);
    let outcome = pump(incoming, outgoing, &title, false, true).await?;
    finish(outcome, session.server(), &short(workspace.id))
}

/// Attaches to a local workspace through the local engine.
pub async fn local(engine: &Engine, container: &LocalContainer) -> Result<ExitCode, CliError> {
    let (incoming, outgoing) = exec::open(engine, container, terminal::size()).await?;
    let outcome = pump(incoming, outgoing, &container.name, true, false).await?;
    finish(outcome, "the local engine", &container.name)
}

/// Pumps bytes both ways until the session ends. `ready`: input may be sent at once (a local
/// exec); otherwise only after the server's `hello` gave a role that may type. Input that comes
/// before that is kept and sent once the shell has printed something (its prompt), or
/// [`TYPE_AHEAD_WAIT`] after the `hello`: a shell that has not set up its terminal yet loses a
/// Ctrl-D sent to it. (The browser drops type-ahead because it reconnects into new shells,
/// which the CLI never does.) When stdin is not a terminal, its end is sent as Ctrl-D once the
/// terminal has been quiet for [`END_OF_INPUT_QUIET`], so `berth attach ID < script` ends like
/// `ssh host < script`, in a shared (tmux) workspace too.
async fn pump(
    mut incoming: impl Incoming,
    mut outgoing: impl Outgoing,
    title: &str,
    ready: bool,
    keepalive: bool,
) -> Result<Outcome, CliError> {
    eprint!("Attached to {title}. Detach: Ctrl-] then d.\r\n");
    let mut winch = signal(SignalKind::window_change())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    let raw = RawMode::enter()?;
    let mut keys = raw.is_active().then(DetachKeys::default);
    let mut stdin = terminal::stdin_chunks();
    let mut stdin_open = true;
    let mut stdout = tokio::io::stdout();
    let mut may_type = ready;
    // Until the shell is ready for input, input is kept here; the wait for its first output
    // starts at the `hello` (at once for a local exec).
    let mut holding = true;
    let mut release_at: Option<Instant> = ready.then(|| Instant::now() + TYPE_AHEAD_WAIT);
    let mut type_ahead: Vec<u8> = Vec::new();
    // Piped stdin has ended: when to send its Ctrl-D (pushed back by every output).
    let mut end_at: Option<Instant> = None;
    let mut exit: Option<i64> = None;
    let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    let mut last_heard = Instant::now();
    let mut pinged_at: Option<Instant> = None;
    if let Err(err) = outgoing.resize(terminal::size()).await {
        return Ok(Outcome::Lost(err));
    }
    let outcome = loop {
        tokio::select! {
            event = incoming.next() => {
                last_heard = Instant::now();
                match event {
                    Event::Output(bytes) => {
                        if stdout.write_all(&bytes).await.is_err() || stdout.flush().await.is_err() {
                            break Outcome::Lost("cannot write to this terminal".into());
                        }
                        if let Some(at) = end_at.as_mut() {
                            *at = Instant::now() + END_OF_INPUT_QUIET;
                        }
                        if holding && release_at.is_some() {
                            holding = false;
                            release_at = None;
                            if let Err(err) = release(&mut outgoing, &mut type_ahead, may_type).await {
                                break Outcome::Lost(err);
                            }
                        }
                    }
                    Event::Ready { may_type: typing, role } => {
                        may_type = typing;
                        release_at = Some(Instant::now() + TYPE_AHEAD_WAIT);
                        if !typing {
                            eprint!("View only (you are a {role}): your keys are not sent.\r\n");
                        }
                    }
                    Event::Exit(code) => exit = Some(code),
                    Event::Pong | Event::Ignored => {}
                    Event::Closed(closed) => break match exit {
                        // After `exit`, whatever close follows is final.
                        Some(code) => Outcome::Exited(code),
                        None => Outcome::Closed(closed),
                    },
                }
            }
            chunk = stdin.recv(), if stdin_open => {
                let (send, detach) = match chunk {
                    Some(bytes) => match keys.as_mut() {
                        Some(keys) => keys.feed(&bytes),
                        None => (bytes.to_vec(), false),
                    },
                    None => {
                        stdin_open = false;
                        // A terminal's end of input is a key (Ctrl-D) already sent as typed;
                        // piped input's is sent once the shell has gone quiet.
                        if !raw.is_active() {
                            end_at = Some(Instant::now() + END_OF_INPUT_QUIET);
                        }
                        (Vec::new(), false)
                    }
                };
                if holding {
                    let room = MAX_TYPE_AHEAD.saturating_sub(type_ahead.len());
                    type_ahead.extend(send.iter().take(room));
                } else if may_type && !send.is_empty()
                    && let Err(err) = outgoing.input(Bytes::from(send)).await
                {
                    break Outcome::Lost(err);
                }
                if detach {
                    break Outcome::Detached;
                }
            }
            () = sleep_until_some(end_at), if !holding => {
                end_at = None;
                if may_type
                    && let Err(err) = outgoing.input(Bytes::from_static(&[END_OF_INPUT])).await
                {
                    break Outcome::Lost(err);
                }
            }
            () = sleep_until_some(release_at), if holding => {
                holding = false;
                release_at = None;
                if let Err(err) = release(&mut outgoing, &mut type_ahead, may_type).await {
                    break Outcome::Lost(err);
                }
            }
            _ = winch.recv() => {
                if let Err(err) = outgoing.resize(terminal::size()).await {
                    break Outcome::Lost(err);
                }
            }
            _ = ping.tick(), if keepalive => {
                if pinged_at.is_some_and(|at| last_heard < at) {
                    break Outcome::Lost(format!(
                        "no answer for {} s",
                        PING_INTERVAL.as_secs()
                    ));
                }
                if let Err(err) = outgoing.ping().await {
                    break Outcome::Lost(err);
                }
                pinged_at = Some(Instant::now());
            }
            _ = terminate.recv() => break Outcome::Signal(15),
            _ = hangup.recv() => break Outcome::Signal(1),
            _ = interrupt.recv() => break Outcome::Signal(2),
            _ = quit.recv() => break Outcome::Signal(3),
        }
    };
    if !matches!(outcome, Outcome::Exited(_) | Outcome::Closed(_)) {
        outgoing.close().await;
    }
    drop(raw);
    Ok(outcome)
}

/// Sends the input kept while the shell was not ready (dropped for a viewer).
async fn release(
    outgoing: &mut impl Outgoing,
    type_ahead: &mut Vec<u8>,
    may_type: bool,
) -> Result<(), String> {
    let early = std::mem::take(type_ahead);
    if may_type && !early.is_empty() {
        outgoing.input(Bytes::from(early)).await?;
    }
    Ok(())
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The exit status and the last words of a session, once the terminal is restored.
fn finish(outcome: Outcome, server: &str, name: &str) -> Result<ExitCode, CliError> {
    match outcome {
        Outcome::Exited(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(1))),
        Outcome::Detached => {
            eprintln!("\nDetached from {name}; `berth attach {name}` opens a new terminal.");
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Signal(signal) => {
            eprintln!();
            Err(CliError::new(format!("stopped by signal {signal}"))
                .with_status(128 + u8::try_from(signal).unwrap_or(0)))
        }
        Outcome::Lost(why) => Err(CliError::new(format!("the connection was lost: {why}"))),
        Outcome::Closed(closed) => {
            let said = closed
                .message
                .clone()
                .unwrap_or_else(|| closed.reason.clone());
            match closed.code {
                1000 if closed.message.is_none() => {
                    eprintln!("\nSession ended.");
                    Ok(ExitCode::SUCCESS)
                }
                1000 => Err(CliError::new(format!("session ended: {said}"))),
                4401 => Err(
                    CliError::new("your token was refused (it expired or was revoked)")
                        .hint(format!("run `berth login {server}`")),
                ),
                4403 => Err(CliError::new(format!("access denied: {said}"))),
                4404 => Err(CliError::new(format!("no such workspace: {said}"))),
                4400 | 4409 => Err(CliError::new(said)),
                code => Err(CliError::new(format!(
                    "the connection was lost (code {code}{})",
                    if said.is_empty() {
                        String::new()
                    } else {
                        format!(": {said}")
                    }
                ))),
            }
        }
    }
}
