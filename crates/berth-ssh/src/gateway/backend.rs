//! What the gateway asks of Berth: [`GatewayBackend`]. The gateway speaks SSH; the backend
//! knows users, keys, throttling and workspaces.

use std::net::SocketAddr;

use async_trait::async_trait;
use berth_terminal::{Opened, TtySize};
use tokio::sync::watch;

use super::login::SshLogin;

/// A public key a client proved it holds (its signature was checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedKey {
    /// The key as an OpenSSH line without comment (`ssh-ed25519 AAAA...`).
    pub openssh: String,
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

/// Why the backend turned a connection or a login away; logged, never shown to the client
/// (which sees a closed connection or a refused key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// Ends a session from outside: [`Revoker::revoke`], or dropping every [`Revoker`] (the
/// backend that lost track of a session cannot keep it open).
#[derive(Debug, Clone)]
pub struct Revoker(watch::Sender<Option<String>>);

/// The gateway's side of a [`Revoker`]: the connection is closed when it fires.
#[derive(Debug, Clone)]
pub struct Revocation(watch::Receiver<Option<String>>);

/// A connected pair.
#[must_use]
pub fn revocation() -> (Revoker, Revocation) {
    let (tx, rx) = watch::channel(None);
    (Revoker(tx), Revocation(rx))
}

impl Revoker {
    /// Closes the sessions of this authorization, telling the client `reason`.
    pub fn revoke(&self, reason: impl Into<String>) {
        self.0.send_replace(Some(reason.into()));
    }

    /// Whether no connection holds the revocation any more.
    #[must_use]
    pub fn is_unused(&self) -> bool {
        self.0.is_closed()
    }
}

impl Revocation {
    /// Waits until the authorization is revoked and returns why.
    pub async fn revoked(&mut self) -> String {
        match self.0.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => "the session's authorization ended".to_owned(),
        }
    }
}

/// A successful login: who, and how to end it.
#[derive(Debug, Clone)]
pub struct Authorization {
    /// The Berth user logged in.
    pub user: berth_types::Username,
    /// The key's fingerprint.
    pub key_fingerprint: String,
    /// Fires when the user is disabled or the key removed.
    pub revocation: Revocation,
}

/// A terminal size and `TERM`, when the client asked for a PTY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtyRequest {
    /// `TERM`, e.g. `xterm-256color`.
    pub term: String,
    /// Columns and rows.
    pub size: TtySize,
}

/// What a session channel asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRequest {
    /// `ssh host CMD`: the command; `None`: a shell.
    pub command: Option<String>,
    /// The PTY, when the client asked for one (`ssh -t`, or an interactive shell).
    pub pty: Option<PtyRequest>,
    /// The client's address.
    pub peer: SocketAddr,
}

/// One choice of a menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuEntry {
    /// What the line shows (`python  (running, shared)`).
    pub label: String,
    /// What choosing it opens.
    pub login: SshLogin,
}

/// What [`GatewayBackend::open`] answers.
#[derive(Debug)]
pub enum Opening {
    /// The terminal: output to the client, its input from the client, resizes, and the exit
    /// status when it ends; its activity clock is touched on input and output, and what it
    /// holds is dropped when the channel closes.
    Session(Opened),
    /// The login does not say which workspace: the user picks one.
    Menu(Vec<MenuEntry>),
}

/// Why a session could not be opened, shown to the user (on stderr) before the channel
/// closes with exit status 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OpenRefused(pub String);

/// Berth behind the gateway. Every method may be called from many connections at once.
#[async_trait]
pub trait GatewayBackend: Send + Sync + std::fmt::Debug + 'static {
    /// A TCP connection from `peer`, once the gateway's own connection limits let it in
    /// and before any SSH is spoken: rate limits per address. Refused, it is closed at once.
    async fn admit(&self, peer: SocketAddr) -> Result<(), Refusal> {
        let _ = peer;
        Ok(())
    }

    /// The first login attempt of a connection, as `login`. Refused (the address or the
    /// user is throttled or locked out), every key of the connection is refused.
    async fn login_started(&self, peer: SocketAddr, login: &SshLogin) -> Result<(), Refusal>;

    /// The connection's login ended: with success, or without (every key refused, the
    /// client gave up or timed out). Called once per started login.
    fn login_finished(&self, peer: SocketAddr, login: &SshLogin, succeeded: bool);

    /// Whether `key`, whose signature was checked, lets `login` in. `None` for an unknown
    /// user, a disabled one, or a key that is not theirs alike: the client cannot tell.
    async fn authorize(&self, login: &SshLogin, key: &OfferedKey) -> Option<Authorization>;

    /// Opens the session `login` asks for: the workspace's terminal, or a menu when the user
    /// has several workspaces and the login names none.
    async fn open(
        &self,
        authorization: &Authorization,
        login: &SshLogin,
        request: &SessionRequest,
    ) -> Result<Opening, OpenRefused>;
}
