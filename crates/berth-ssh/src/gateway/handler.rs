//! One connection: the russh handler (logins, which requests are allowed) and one task per
//! session channel (the terminal's bytes, resizes, the exit status, the menu).

use std::collections::{HashMap, VecDeque};
use std::future::Future as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_terminal::{Activity, Opened, TtySize};
use futures_util::StreamExt as _;
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{
    Channel, ChannelId, ChannelMsg, ChannelOpenFailure, Disconnect, MethodKind, MethodSet,
};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

use super::Shared;
use super::backend::{Authorization, MenuEntry, OfferedKey, Opening, PtyRequest, SessionRequest};
use super::limits::Slot;
use super::login::SshLogin;

/// Session channels one connection may have open at once (OpenSSH's MaxSessions).
const MAX_SESSIONS: usize = 10;

/// The longest line typed at the menu.
const MAX_MENU_LINE: usize = 16;

/// How often activity is reported at most.
const ACTIVITY_EVERY: Duration = Duration::from_secs(1);

pub(crate) fn publickey_only() -> MethodSet {
    MethodSet::from(&[MethodKind::PublicKey][..])
}

fn reject() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(publickey_only()),
        partial_success: false,
    }
}

/// Serves one TCP connection to its end.
pub(crate) async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
) {
    let _slot = slot;
    if let Err(refusal) = shared.backend.admit(peer).await {
        tracing::info!(%peer, reason = %refusal, "SSH gateway: connection refused");
        return;
    }
    let _ = stream.set_nodelay(true);
    let deadline = tokio::time::Instant::now() + shared.login_timeout;
    let (authed_tx, mut authed) = watch::channel(false);
    let handler = Handler {
        shared: Arc::clone(&shared),
        peer,
        login: None,
        state: LoginState::NotStarted,
        authorization: None,
        authed: authed_tx,
        ended: None,
        channels: HashMap::new(),
    };
    // russh runs the session in a task of its own, which dropping this future would not end:
    // the stream ends it (EOF) when `kill` is dropped, whenever this future is.
    let (kill, killed) = oneshot::channel::<()>();
    let stream = Guarded {
        inner: stream,
        kill: killed,
        killed: false,
    };
    let started = tokio::time::timeout_at(
        deadline,
        russh::server::run_stream(Arc::clone(&shared.config), stream, handler),
    )
    .await;
    let running = match started {
        Ok(Ok(running)) => running,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "SSH gateway: handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "SSH gateway: no SSH banner before the login timeout");
            return;
        }
    };
    let handle = running.handle();
    tokio::pin!(running);
    let login_deadline = async {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            _ = async { authed.wait_for(|a| *a).await.map(|_| ()) } => {
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        ended = &mut running => {
            if let Err(e) = ended {
                // Malformed or oversized packets end up here: this connection only.
                tracing::debug!(%peer, error = %e, "SSH gateway: connection ended with an error");
            }
        }
        () = login_deadline => {
            tracing::info!(%peer, "SSH gateway: login timed out");
            let _ = handle
                .disconnect(Disconnect::ByApplication, "login timed out".into(), "en".into())
                .await;
            drop(kill);
            let _ = tokio::time::timeout(Duration::from_secs(2), running).await;
        }
    }
}

/// A connection's stream that reads as ended once its `kill` sender is gone.
struct Guarded<S> {
    inner: S,
    kill: oneshot::Receiver<()>,
    killed: bool,
}

impl<S: Unpin> Guarded<S> {
    fn killed(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        if !self.killed && std::pin::Pin::new(&mut self.kill).poll(cx).is_ready() {
            self.killed = true;
        }
        self.killed
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Guarded<S> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.killed(cx) {
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Guarded<S> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.killed(cx) {
            return std::task::Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        std::pin::Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoginState {
    NotStarted,
    /// The backend refused the login before any key was looked at.
    Refused,
    Started,
    Succeeded,
}

#[derive(Debug, Default)]
struct ChannelState {
    started: bool,
}

struct Handler {
    shared: Arc<Shared>,
    peer: SocketAddr,
    login: Option<SshLogin>,
    state: LoginState,
    authorization: Option<Authorization>,
    authed: watch::Sender<bool>,
    /// Dropped with the handler: ends the revocation watcher.
    ended: Option<oneshot::Sender<()>>,
    channels: HashMap<ChannelId, ChannelState>,
}

impl Drop for Handler {
    fn drop(&mut self) {
        if self.state == LoginState::Started
            && let Some(login) = &self.login
        {
            self.shared.backend.login_finished(self.peer, login, false);
        }
    }
}

impl Handler {
    fn request_allowed(&mut self, channel: ChannelId, starts: bool) -> bool {
        match self.channels.get_mut(&channel) {
            Some(state) if !state.started => {
                state.started |= starts;
                true
            }
            _ => false,
        }
    }

    fn answer(
        &mut self,
        channel: ChannelId,
        starts: bool,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        if self.request_allowed(channel, starts) {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }
}

impl russh::server::Handler for Handler {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(reject())
    }

    async fn auth_password(&mut self, _user: &str, _password: &str) -> Result<Auth, Self::Error> {
        Ok(reject())
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        _user: &str,
        _submethods: &str,
        _response: Option<russh::server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        Ok(reject())
    }

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        _offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // Every key is asked for its signature before anything is looked up, so that which
        // keys and users exist cannot be probed without holding a key.
        Ok(Auth::Accept)
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let Ok(login) = SshLogin::parse(user) else {
            return Ok(reject());
        };
        match &self.login {
            None => {
                self.state = match self.shared.backend.login_started(self.peer, &login).await {
                    Ok(()) => LoginState::Started,
                    Err(refusal) => {
                        tracing::info!(peer = %self.peer, %login, reason = %refusal, "SSH gateway: login refused");
                        LoginState::Refused
                    }
                };
                self.login = Some(login.clone());
            }
            Some(first) if *first != login => return Ok(reject()),
            Some(_) => {}
        }
        if self.state != LoginState::Started {
            return Ok(reject());
        }
        let mut public = key.public_key.clone();
        public.set_comment("");
        let offered = OfferedKey {
            openssh: public.to_openssh().unwrap_or_default(),
            fingerprint: crate::host_keys::fingerprint(key.public_key),
        };
        match self.shared.backend.authorize(&login, &offered).await {
            Some(authorization) => {
                self.state = LoginState::Succeeded;
                self.shared.backend.login_finished(self.peer, &login, true);
                tracing::info!(peer = %self.peer, %login, key = %offered.fingerprint, "SSH gateway: logged in");
                self.authorization = Some(authorization);
                Ok(Auth::Accept)
            }
            None => Ok(reject()),
        }
    }

    async fn auth_succeeded(&mut self, session: &mut Session) -> Result<(), Self::Error> {
        let _ = self.authed.send(true);
        let Some(authorization) = &self.authorization else {
            return Err(russh::Error::NotAuthenticated);
        };
        let mut revocation = authorization.revocation.clone();
        let handle = session.handle();
        let (ended_tx, ended) = oneshot::channel();
        self.ended = Some(ended_tx);
        let peer = self.peer;
        tokio::spawn(async move {
            tokio::select! {
                reason = revocation.revoked() => {
                    tracing::info!(%peer, %reason, "SSH gateway: session revoked");
                    let _ = handle
                        .disconnect(Disconnect::ByApplication, format!("Berth closed this session: {reason}"), "en".into())
                        .await;
                }
                _ = ended => {}
            }
        });
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some(authorization), Some(login)) = (&self.authorization, &self.login) else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        if self.channels.len() >= MAX_SESSIONS {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        self.channels.insert(channel.id(), ChannelState::default());
        reply.accept().await;
        let context = SessionContext {
            shared: Arc::clone(&self.shared),
            authorization: authorization.clone(),
            login: login.clone(),
            peer: self.peer,
        };
        tokio::spawn(run_channel(channel, context));
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.answer(channel, false, session)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.answer(channel, true, session)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.answer(channel, true, session)
    }

    async fn window_change_request(
        &mut self,
        _channel: ChannelId,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        tracing::info!(peer = %self.peer, subsystem = %name, "SSH gateway: subsystem refused");
        session.channel_failure(channel)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _variable_name: &str,
        _variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        tracing::info!(peer = %self.peer, "SSH gateway: agent forwarding refused");
        Ok(false)
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        tracing::info!(peer = %self.peer, "SSH gateway: remote port forwarding refused");
        Ok(false)
    }
}

/// What a session channel's task knows.
struct SessionContext {
    shared: Arc<Shared>,
    authorization: Authorization,
    login: SshLogin,
    peer: SocketAddr,
}

type Writer = russh::ChannelWriteHalf<Msg>;

/// Chunks of input on their way to a session's process, and the bytes held beyond them
/// before the client is no longer read until the process takes some.
const INPUT_CHUNKS: usize = 16;
const MAX_INPUT_BACKLOG: usize = 1 << 20;

/// The most columns or rows a client may ask for: the web terminal's bound, so that an SSH
/// client cannot blow up a tmux session shared with browsers.
const MAX_DIMENSION: u32 = 1000;

fn tty_size(cols: u32, rows: u32) -> TtySize {
    let clamp = |n: u32, default: u16| match n {
        0 => default,
        n => u16::try_from(n.min(MAX_DIMENSION)).unwrap_or(default),
    };
    TtySize {
        cols: clamp(cols, TtySize::DEFAULT.cols),
        rows: clamp(rows, TtySize::DEFAULT.rows),
    }
}

/// A session channel from its requests to its exit status.
async fn run_channel(channel: Channel<Msg>, context: SessionContext) {
    let (mut read, write) = channel.split();
    let write = Arc::new(write);
    let mut pty: Option<PtyRequest> = None;
    // The requests before the shell or command.
    let command = loop {
        match read.wait().await {
            Some(ChannelMsg::RequestPty {
                term,
                col_width,
                row_height,
                ..
            }) => {
                pty = Some(PtyRequest {
                    term,
                    size: tty_size(col_width, row_height),
                });
            }
            Some(ChannelMsg::WindowChange {
                col_width,
                row_height,
                ..
            }) => {
                if let Some(pty) = &mut pty {
                    pty.size = tty_size(col_width, row_height);
                }
            }
            Some(ChannelMsg::RequestShell { .. }) => break None,
            Some(ChannelMsg::Exec { command, .. }) => match String::from_utf8(command) {
                Ok(command) => break Some(command),
                Err(_) => {
                    fail(&write, "the command is not UTF-8").await;
                    return;
                }
            },
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return,
            Some(_) => {}
        }
    };
    let mut request = SessionRequest {
        command,
        pty,
        peer: context.peer,
    };
    let mut login = context.login.clone();
    let mut pending_input = Vec::new();
    let opened = loop {
        match context
            .shared
            .backend
            .open(&context.authorization, &login, &request)
            .await
        {
            Ok(Opening::Session(opened)) => break opened,
            Ok(Opening::Menu(entries)) => {
                let Some((choice, rest)) = menu(&mut read, &write, &entries, &mut request).await
                else {
                    return;
                };
                login = choice;
                pending_input = rest;
            }
            Err(refused) => {
                fail(&write, &refused.0).await;
                return;
            }
        }
    };
    run_session(read, write, opened, pending_input).await;
}

/// Tells the client why on stderr, exits 1 and closes.
async fn fail(write: &Writer, message: &str) {
    let _ = write
        .extended_data_bytes(1, format!("berth: {message}\r\n").into_bytes())
        .await;
    finish(write, 1).await;
}

async fn finish(write: &Writer, status: u32) {
    let _ = write.exit_status(status).await;
    let _ = write.eof().await;
    let _ = write.close().await;
}

/// Shows the menu and reads a choice; `None` when the client left (or there is no PTY to ask
/// on). Returns the login chosen and what was typed after the choice.
async fn menu(
    read: &mut russh::ChannelReadHalf,
    write: &Writer,
    entries: &[MenuEntry],
    request: &mut SessionRequest,
) -> Option<(SshLogin, Vec<u8>)> {
    if request.pty.is_none() || entries.is_empty() {
        let logins: Vec<String> = entries.iter().map(|e| e.login.to_string()).collect();
        fail(
            write,
            &format!(
                "several workspaces: log in as one of {} (ssh USER+TEMPLATE@host)",
                logins.join(", ")
            ),
        )
        .await;
        return None;
    }
    let mut text = String::from("Your workspaces:\r\n");
    for (i, entry) in entries.iter().enumerate() {
        text.push_str(&format!("  {}) {}\r\n", i + 1, entry.label));
    }
    let prompt = format!("Choose 1-{}: ", entries.len());
    text.push_str(&prompt);
    write.data_bytes(text.into_bytes()).await.ok()?;
    let mut line = Vec::new();
    loop {
        match read.wait().await? {
            ChannelMsg::Data { data } => {
                for (i, &byte) in data.iter().enumerate() {
                    match byte {
                        b'\r' | b'\n' => {
                            let chosen = std::str::from_utf8(&line)
                                .ok()
                                .and_then(|s| s.trim().parse::<usize>().ok())
                                .and_then(|n| n.checked_sub(1))
                                .and_then(|n| entries.get(n));
                            if let Some(entry) = chosen {
                                write.data_bytes(&b"\r\n"[..]).await.ok()?;
                                let mut rest = data[i + 1..].to_vec();
                                if byte == b'\r' && rest.first() == Some(&b'\n') {
                                    rest.remove(0);
                                }
                                return Some((entry.login.clone(), rest));
                            }
                            line.clear();
                            let again = format!("\r\n{prompt}");
                            write.data_bytes(again.into_bytes()).await.ok()?;
                        }
                        // Ctrl-C, Ctrl-D: leave.
                        3 | 4 => {
                            finish(write, 130).await;
                            return None;
                        }
                        // Backspace, DEL.
                        8 | 127 if line.pop().is_some() => {
                            write.data_bytes(&b"\x08 \x08"[..]).await.ok()?;
                        }
                        b'0'..=b'9' if line.len() < MAX_MENU_LINE => {
                            line.push(byte);
                            write.data_bytes(vec![byte]).await.ok()?;
                        }
                        _ => {}
                    }
                }
            }
            ChannelMsg::WindowChange {
                col_width,
                row_height,
                ..
            } => {
                if let Some(pty) = &mut request.pty {
                    pty.size = tty_size(col_width, row_height);
                }
            }
            ChannelMsg::Eof | ChannelMsg::Close => return None,
            _ => {}
        }
    }
}

/// Reports activity at most once a second.
struct Ticker {
    activity: Option<Arc<dyn Activity>>,
    last: Option<Instant>,
}

impl Ticker {
    fn touch(&mut self) {
        let Some(activity) = &self.activity else {
            return;
        };
        let now = Instant::now();
        if self
            .last
            .is_none_or(|last| now.duration_since(last) >= ACTIVITY_EVERY)
        {
            self.last = Some(now);
            activity.touch();
        }
    }
}

/// Pumps bytes both ways until the process exits (its status goes to the client) or the
/// client goes away (the process is hung up).
async fn run_session(
    mut read: russh::ChannelReadHalf,
    write: Arc<Writer>,
    opened: Opened,
    pending_input: Vec<u8>,
) {
    let Opened {
        pty,
        activity,
        hold,
    } = opened;
    let _hold = hold;
    let (mut output, mut input, control) = pty.into_parts();
    let output_activity = activity.clone();
    let writer = Arc::clone(&write);
    let pump_control = Arc::clone(&control);
    let mut pump = tokio::spawn(async move {
        let mut ticker = Ticker {
            activity: output_activity,
            last: None,
        };
        while let Some(chunk) = output.next().await {
            match chunk {
                Ok(bytes) => {
                    ticker.touch();
                    if writer.data_bytes(bytes).await.is_err() {
                        return None;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "SSH gateway: terminal output failed");
                    break;
                }
            }
        }
        pump_control.wait().await.ok()
    });
    let mut ticker = Ticker {
        activity,
        last: None,
    };
    // The process's stdin is written by a task of its own: a process that stops reading it
    // never keeps this loop from hearing the client hang up.
    let (feed, mut fed) = mpsc::channel::<Vec<u8>>(INPUT_CHUNKS);
    let feeder = tokio::spawn(async move {
        while let Some(data) = fed.recv().await {
            if input.write_all(&data).await.is_err() || input.flush().await.is_err() {
                return;
            }
        }
        let _ = input.shutdown().await;
    });
    let mut feed = Some(feed);
    // What the process has not taken yet beyond the channel. Past its bound the client is
    // no longer read (SSH's flow control holds it back, nothing is dropped), so only a
    // process that ignores more than that of its input keeps a hang-up from being heard.
    let mut backlog: VecDeque<Vec<u8>> = VecDeque::new();
    let mut backlog_bytes = 0;
    let mut eof = false;
    if !pending_input.is_empty() {
        backlog_bytes = pending_input.len();
        backlog.push_back(pending_input);
    }
    loop {
        tokio::select! {
            status = &mut pump => {
                let code = match status {
                    Ok(Some(code)) => u32::try_from(code).unwrap_or(255),
                    _ => 255,
                };
                feeder.abort();
                finish(&write, code).await;
                return;
            }
            permit = room(feed.clone()), if !backlog.is_empty() => match permit {
                Some(permit) => {
                    if let Some(data) = backlog.pop_front() {
                        backlog_bytes -= data.len();
                        permit.send(data);
                    }
                    if backlog.is_empty() && eof {
                        feed = None;
                    }
                }
                None => {
                    // The process closed its stdin: what it did not take is dropped.
                    feed = None;
                    backlog.clear();
                    backlog_bytes = 0;
                }
            },
            message = read.wait(), if backlog_bytes < MAX_INPUT_BACKLOG => match message {
                Some(ChannelMsg::Data { data }) => {
                    ticker.touch();
                    if feed.is_some() && !eof {
                        backlog_bytes += data.len();
                        backlog.push_back(data.to_vec());
                    }
                }
                Some(ChannelMsg::WindowChange { col_width, row_height, .. }) => {
                    let _ = control.resize(tty_size(col_width, row_height)).await;
                }
                Some(ChannelMsg::Eof) => {
                    eof = true;
                    if backlog.is_empty() {
                        // The writer shuts the process's stdin once it wrote what it has.
                        feed = None;
                    }
                }
                Some(ChannelMsg::Close) | None => {
                    let _ = control.hang_up().await;
                    pump.abort();
                    feeder.abort();
                    return;
                }
                Some(_) => {}
            }
        }
    }
}

/// Room for one more chunk of input in `feed`; `None` once there is no feed or its process
/// took no more.
async fn room(feed: Option<mpsc::Sender<Vec<u8>>>) -> Option<mpsc::OwnedPermit<Vec<u8>>> {
    feed?.reserve_owned().await.ok()
}

#[cfg(test)]
mod size_tests {
    use super::tty_size;
    use berth_terminal::TtySize;

    #[test]
    fn a_client_s_window_size_is_bounded_like_the_web_terminal_s() {
        assert_eq!(
            tty_size(120, 40),
            TtySize {
                cols: 120,
                rows: 40
            }
        );
        assert_eq!(tty_size(0, 0), TtySize::DEFAULT);
        assert_eq!(
            tty_size(65_535, 1_000_000),
            TtySize {
                cols: 1000,
                rows: 1000
            }
        );
    }
}
