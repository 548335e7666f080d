//! The SSH gateway: an SSH server (russh, ring backend) that lets `ssh -p PORT alice@host`
//! into alice's workspace (docs/ssh-gateway.md).
//!
//! The gateway speaks SSH and enforces what is the same for every backend; a
//! [`GatewayBackend`] decides who may log in and what a session opens:
//!
//! - Connections: at most `max_connections` at once, `max_connections_per_address` from one
//!   address (an IPv6 address counts as its /64), then [`GatewayBackend::admit`] (rate limits);
//!   a refused connection is closed before the SSH banner. The login (banner to
//!   authenticated) must be done within `login_timeout`; silent clients are asked every
//!   `keepalive` and dropped after three unanswered asks.
//! - Logins: publickey only (password and keyboard-interactive are refused, the client is told
//!   "publickey" is the only method), at most `max_auth_attempts` keys a connection. Every
//!   offered key is accepted for a signature and only then checked, so an unknown user and a
//!   wrong key take the same path and get the same answer after the same constant rejection
//!   time. One login name per connection: [`GatewayBackend::login_started`] at its first
//!   attempt (throttling), [`GatewayBackend::login_finished`] when it succeeded or the
//!   connection ended without success. Login names are `USER` or `USER+TEMPLATE`
//!   ([`SshLogin`]).
//! - Sessions: a shell or one command per session channel, with or without a PTY; `ssh host
//!   CMD` gets CMD's exit status. A login without a template whose user has several
//!   workspaces gets a numbered menu (on a PTY), or a message naming the `USER+TEMPLATE` logins
//!   to use (without one). Agent forwarding, X11, port forwarding (`-L`, `-R`, `-D`, Unix
//!   sockets), subsystems (sftp) and environment variables are refused.
//! - Revocation: an [`Authorization`] carries a [`Revocation`]; when it fires (a disabled user,
//!   a removed key) the connection is closed with the reason.
//! - Bad input: a malformed, oversized or out-of-order packet ends its own connection (each is
//!   a task of its own) and nothing else.

mod backend;
mod handler;
mod host_key;
mod limits;
mod login;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::{HashAlg, PrivateKey};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub use backend::{
    Authorization, GatewayBackend, MenuEntry, OfferedKey, OpenRefused, Opening, PtyRequest,
    Refusal, Revocation, Revoker, SessionRequest, revocation,
};
pub use host_key::load_or_generate_host_key;
pub use login::{LoginError, SshLogin};

/// What a gateway is set up with; [`GatewayOptions::new`] gives the defaults of main.yaml's
/// `ssh:` section.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// The host key file, made on first start.
    pub host_key: PathBuf,
    /// From connecting to being logged in.
    pub login_timeout: Duration,
    /// Keys one connection may offer.
    pub max_auth_attempts: u32,
    /// Connections at once.
    pub max_connections: u32,
    /// Connections at once from one address.
    pub max_connections_per_address: u32,
    /// How often a silent client is asked whether it is still there.
    pub keepalive: Duration,
    /// How long every refused login attempt takes, whatever was wrong.
    pub auth_rejection_time: Duration,
}

impl GatewayOptions {
    /// The defaults, with the host key at `host_key`.
    #[must_use]
    pub fn new(host_key: impl Into<PathBuf>) -> Self {
        Self {
            host_key: host_key.into(),
            login_timeout: Duration::from_secs(30),
            max_auth_attempts: 6,
            max_connections: 256,
            max_connections_per_address: 16,
            keepalive: Duration::from_secs(30),
            auth_rejection_time: Duration::from_millis(500),
        }
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The host key could not be read or made.
    #[error("SSH gateway host key {path}: {reason}")]
    HostKey {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The listen address could not be bound.
    #[error("the SSH gateway cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// The cause.
        source: io::Error,
    },
}

/// What every connection of a gateway shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) backend: Arc<dyn GatewayBackend>,
    pub(crate) config: Arc<russh::server::Config>,
    pub(crate) login_timeout: Duration,
}

/// A bound SSH gateway, ready to [`serve`](Gateway::serve).
#[derive(Debug)]
pub struct Gateway {
    listener: TcpListener,
    shared: Arc<Shared>,
    limits: limits::ConnectionLimits,
    fingerprint: String,
    public_key: String,
}

impl Gateway {
    /// Loads (or makes) the host key and listens on `address`.
    pub async fn bind(
        address: SocketAddr,
        options: GatewayOptions,
        backend: Arc<dyn GatewayBackend>,
    ) -> Result<Self, GatewayError> {
        let key = load_or_generate_host_key(&options.host_key)?;
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| GatewayError::Bind {
                address: address.to_string(),
                source,
            })?;
        Ok(Self::with_key(listener, key, &options, backend))
    }

    /// Serves on a listener bound elsewhere (tests bind `127.0.0.1:0`).
    pub fn from_listener(
        listener: TcpListener,
        options: GatewayOptions,
        backend: Arc<dyn GatewayBackend>,
    ) -> Result<Self, GatewayError> {
        let key = load_or_generate_host_key(&options.host_key)?;
        Ok(Self::with_key(listener, key, &options, backend))
    }

    fn with_key(
        listener: TcpListener,
        key: PrivateKey,
        options: &GatewayOptions,
        backend: Arc<dyn GatewayBackend>,
    ) -> Self {
        let public = key.public_key();
        let fingerprint = public.fingerprint(HashAlg::Sha256).to_string();
        let mut public = public.clone();
        public.set_comment("");
        let public_key = public.to_openssh().unwrap_or_default();
        let config = russh::server::Config {
            server_id: russh::SshId::Standard("SSH-2.0-Berth".into()),
            methods: handler::publickey_only(),
            auth_rejection_time: options.auth_rejection_time,
            auth_rejection_time_initial: Some(Duration::ZERO),
            keys: vec![key],
            max_auth_attempts: usize::try_from(options.max_auth_attempts).unwrap_or(6),
            // Idle shells stay open; dead peers are found by keepalives.
            inactivity_timeout: None,
            keepalive_interval: Some(options.keepalive),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        };
        Self {
            listener,
            shared: Arc::new(Shared {
                backend,
                config: Arc::new(config),
                login_timeout: options.login_timeout,
            }),
            limits: limits::ConnectionLimits::new(
                options.max_connections,
                options.max_connections_per_address,
            ),
            fingerprint,
            public_key,
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The host key's SHA256 fingerprint, as `ssh-keygen -l` and the ssh client print it.
    #[must_use]
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The host key's public half as an OpenSSH line (`ssh-ed25519 AAAA...`), for a
    /// known_hosts file.
    #[must_use]
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// Accepts connections until `shutdown` completes, then closes every connection.
    /// The listener is closed before the connections are, so nobody gets in meanwhile.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> io::Result<()> {
        let Self {
            listener,
            shared,
            limits,
            ..
        } = self;
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            // Out of file descriptors, say: wait instead of spinning.
                            tracing::warn!(error = %e, "SSH gateway: accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let slot = match limits.enter(peer.ip()) {
                        Ok(slot) => slot,
                        Err(over) => {
                            tracing::info!(%peer, ?over, "SSH gateway: connection refused, too many connections");
                            continue;
                        }
                    };
                    connections.spawn(handler::connection(Arc::clone(&shared), stream, peer, slot));
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        connections.shutdown().await;
        Ok(())
    }
}
