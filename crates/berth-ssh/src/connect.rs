//! Connecting: TCP (or a direct-tcpip channel through the previous jump host), the SSH
//! handshake with the host key checked, public-key auth; retried with backoff while the machine
//! cannot be reached.
//!
//! A [`Session`] is a handle to a connection task: russh runs each connection as a task that
//! owns its socket, and the handle sends it requests. A session through jump hosts keeps the
//! hops' sessions alive as long as it lives.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{SshError, UnreachableReason};
use crate::host_keys::{self, HostKeyPolicy, Verdict, fingerprint};
use crate::secret::Passphrase;

/// A private key file in OpenSSH format (ed25519, ECDSA or RSA; RSA signs with SHA-2).
#[derive(Debug, Clone)]
pub struct ClientKey {
    /// The private key file.
    pub path: PathBuf,
    /// The passphrase of an encrypted key.
    pub passphrase: Option<Passphrase>,
}

impl ClientKey {
    /// An unencrypted key file.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            passphrase: None,
        }
    }
}

/// A machine to log in to.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// The client key offered (password auth is never offered).
    pub key: ClientKey,
    /// How the server's host key is checked.
    pub host_key: HostKeyPolicy,
    /// Jump hosts, first hop first: the connection to each next hop (and finally to this
    /// target) is a direct-tcpip channel through the previous one. Each hop's own `jump` is
    /// ignored.
    pub jump: Vec<Target>,
}

impl Target {
    /// `host:port`, as errors name it.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Timeouts, retries and keepalive.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Bound on one attempt: TCP connect, handshake and auth, through every hop.
    pub connect_timeout: Duration,
    /// Further attempts after a failure to reach the machine (never after auth or host key
    /// refusals).
    pub retries: u32,
    /// The wait before the first retry; doubled before each next one.
    pub backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// Send an SSH keepalive after this long without traffic from the server.
    pub keepalive_interval: Option<Duration>,
    /// Close the connection after this many unanswered keepalives.
    pub keepalive_max: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(30),
            retries: 3,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 3,
        }
    }
}

/// An authenticated SSH connection. Cheap to clone; the connection closes when the last clone
/// is dropped (or on [`Session::close`]).
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    handle: Handle<Checker>,
    address: String,
    /// Hops this connection runs through; they must outlive it.
    _hops: Vec<Session>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("address", &self.inner.address)
            .field("hops", &self.inner._hops.len())
            .finish()
    }
}

impl Session {
    /// `host:port` of the machine.
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.handle.is_closed()
    }

    /// Says goodbye to the server; the hops close when the last clone is dropped.
    pub async fn close(&self) -> Result<(), SshError> {
        self.inner
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await
            .map_err(|e| self.protocol(e))
    }

    pub(crate) async fn open_session_channel(
        &self,
    ) -> Result<russh::Channel<client::Msg>, SshError> {
        self.inner
            .handle
            .channel_open_session()
            .await
            .map_err(|e| self.protocol(e))
    }

    pub(crate) fn protocol(&self, e: russh::Error) -> SshError {
        match e {
            russh::Error::SendError | russh::Error::Disconnect | russh::Error::HUP => {
                SshError::Closed {
                    address: self.inner.address.clone(),
                }
            }
            e => SshError::Protocol {
                address: self.inner.address.clone(),
                reason: e.to_string(),
            },
        }
    }

    async fn direct_tcpip(&self, host: &str, port: u16) -> Result<Box<dyn Io>, SshError> {
        let channel = self
            .inner
            .handle
            .channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 0)
            .await
            .map_err(|e| SshError::Unreachable {
                address: format!("{host}:{port}"),
                reason: UnreachableReason::Other(format!(
                    "the jump host {} could not connect: {e}",
                    self.inner.address
                )),
                attempts: 1,
            })?;
        Ok(Box::new(channel.into_stream()))
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Connects to `target` (through its jump hosts), checks the host keys and logs in, retrying
/// with exponential backoff while a machine cannot be reached.
pub async fn connect(target: &Target, options: &ConnectOptions) -> Result<Session, SshError> {
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let error = match tokio::time::timeout(
            options.connect_timeout,
            connect_once(target, options),
        )
        .await
        {
            Ok(Ok(session)) => return Ok(session),
            Ok(Err(e)) => e,
            Err(_) => SshError::Unreachable {
                address: target.address(),
                reason: UnreachableReason::Timeout,
                attempts: attempt,
            },
        };
        let error = match error {
            SshError::Unreachable {
                address, reason, ..
            } => SshError::Unreachable {
                address,
                reason,
                attempts: attempt,
            },
            other => other,
        };
        if !error.is_retryable() || attempt > options.retries {
            return Err(error);
        }
        let factor = 2u32.saturating_pow(attempt - 1);
        let wait = options
            .backoff
            .saturating_mul(factor)
            .min(options.max_backoff);
        tracing::debug!(target = %target.address(), attempt, ?wait, %error, "retrying the SSH connection");
        tokio::time::sleep(wait).await;
    }
}

/// Reads the host key `target` presents, without checking it and without logging in (for
/// showing an admin what to trust). Goes through the jump hosts, whose keys are checked.
pub async fn scan_host_key(
    target: &Target,
    options: &ConnectOptions,
) -> Result<PublicKey, SshError> {
    let work = async {
        let (stream, _hops) = open_stream(target, options).await?;
        let checker = Checker::new(target, Expected::Nothing);
        let scanned = Arc::clone(&checker.scanned);
        let _ = client::connect_stream(config(options), stream, checker).await;
        let key = scanned.lock().unwrap_or_else(|p| p.into_inner()).take();
        key.ok_or_else(|| SshError::Unreachable {
            address: target.address(),
            reason: UnreachableReason::Other("the server sent no host key".into()),
            attempts: 1,
        })
    };
    match tokio::time::timeout(options.connect_timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(SshError::Unreachable {
            address: target.address(),
            reason: UnreachableReason::Timeout,
            attempts: 1,
        }),
    }
}

/// Trusts the key `target` presents now, if its fingerprint is `fingerprint` (what an admin
/// compared with the machine's own): appends it to `known_hosts` atomically. A key already
/// recorded is left as it is; a presented key with another fingerprint is refused as changed.
pub async fn trust_fingerprint(
    target: &Target,
    options: &ConnectOptions,
    known_hosts: &std::path::Path,
    expected_fingerprint: &str,
) -> Result<PublicKey, SshError> {
    let key = scan_host_key(target, options).await?;
    let got = fingerprint(&key);
    if got != expected_fingerprint.trim() {
        return Err(SshError::HostKeyChanged {
            address: target.address(),
            expected: expected_fingerprint.trim().to_owned(),
            got,
        });
    }
    let path = known_hosts.to_path_buf();
    let (host, port, k) = (target.host.clone(), target.port, key.clone());
    tokio::task::spawn_blocking(move || host_keys::append_known_host(&path, &host, port, &k))
        .await
        .map_err(|e| SshError::HostKeys(format!("the known_hosts writer failed: {e}")))??;
    Ok(key)
}

async fn connect_once(target: &Target, options: &ConnectOptions) -> Result<Session, SshError> {
    let (stream, hops) = open_stream(target, options).await?;
    handshake(target, stream, options, hops).await
}

/// The byte stream to `target`: TCP, or a channel through its jump hosts (connected here).
async fn open_stream(
    target: &Target,
    options: &ConnectOptions,
) -> Result<(Box<dyn Io>, Vec<Session>), SshError> {
    let mut hops: Vec<Session> = Vec::new();
    for hop in &target.jump {
        let stream = match hops.last() {
            None => tcp(&hop.host, hop.port).await?,
            Some(previous) => previous.direct_tcpip(&hop.host, hop.port).await?,
        };
        let session = handshake(hop, stream, options, Vec::new()).await?;
        hops.push(session);
    }
    let stream = match hops.last() {
        None => tcp(&target.host, target.port).await?,
        Some(previous) => previous.direct_tcpip(&target.host, target.port).await?,
    };
    Ok((stream, hops))
}

async fn tcp(host: &str, port: u16) -> Result<Box<dyn Io>, SshError> {
    let address = format!("{host}:{port}");
    let unreachable = |reason| SshError::Unreachable {
        address: address.clone(),
        reason,
        attempts: 1,
    };
    let addrs: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| unreachable(UnreachableReason::Dns(e.to_string())))?
        .collect();
    let mut last = UnreachableReason::Dns("no addresses".into());
    for addr in addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(socket) => {
                if let Err(e) = socket.set_nodelay(true) {
                    tracing::warn!(%addr, "TCP_NODELAY: {e}");
                }
                return Ok(Box::new(socket));
            }
            Err(e) => {
                last = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => UnreachableReason::Refused,
                    std::io::ErrorKind::TimedOut => UnreachableReason::Timeout,
                    _ => UnreachableReason::Other(e.to_string()),
                }
            }
        }
    }
    Err(unreachable(last))
}

fn config(options: &ConnectOptions) -> Arc<client::Config> {
    Arc::new(client::Config {
        keepalive_interval: options.keepalive_interval,
        keepalive_max: options.keepalive_max,
        nodelay: true,
        ..Default::default()
    })
}

async fn handshake(
    target: &Target,
    stream: Box<dyn Io>,
    options: &ConnectOptions,
    hops: Vec<Session>,
) -> Result<Session, SshError> {
    let address = target.address();
    // Read the key first: a bad key file is the caller's to fix, not worth a connection.
    let key = load_key(&target.key).await?;
    let checker = Checker::new(target, Expected::load(&target.host_key).await?);
    let refusal = Arc::clone(&checker.refusal);
    let first_use = Arc::clone(&checker.first_use);
    let mut handle = match client::connect_stream(config(options), stream, checker).await {
        Ok(handle) => handle,
        Err(e) => {
            if let Some(refused) = refusal.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return Err(refused);
            }
            return Err(SshError::Unreachable {
                address,
                reason: UnreachableReason::Other(format!("SSH handshake failed: {e}")),
                attempts: 1,
            });
        }
    };
    let new_key = first_use.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let (Some(key), HostKeyPolicy::KnownHosts { path, .. }) = (new_key, &target.host_key) {
        tracing::info!(host = %address, fingerprint = %fingerprint(&key), "trusting a new host key on first use");
        let (path, host, port) = (path.clone(), target.host.clone(), target.port);
        tokio::task::spawn_blocking(move || host_keys::append_known_host(&path, &host, port, &key))
            .await
            .map_err(|e| SshError::HostKeys(format!("the known_hosts writer failed: {e}")))??;
    }
    let protocol = |e: russh::Error| SshError::Protocol {
        address: target.address(),
        reason: e.to_string(),
    };
    let hash = if key.algorithm().is_rsa() {
        // Only SHA-2 signatures for RSA: an old server that knows only ssh-rsa (SHA-1) refuses.
        Some(
            handle
                .best_supported_rsa_hash()
                .await
                .map_err(protocol)?
                .flatten()
                .unwrap_or(russh::keys::HashAlg::Sha512),
        )
    } else {
        None
    };
    let auth = handle
        .authenticate_publickey(
            target.user.clone(),
            PrivateKeyWithHashAlg::new(Arc::new(key), hash),
        )
        .await
        .map_err(protocol)?;
    if !auth.success() {
        return Err(SshError::AuthFailed {
            address,
            user: target.user.clone(),
            key: target.key.path.display().to_string(),
        });
    }
    Ok(Session {
        inner: Arc::new(Inner {
            handle,
            address,
            _hops: hops,
        }),
    })
}

async fn load_key(key: &ClientKey) -> Result<russh::keys::PrivateKey, SshError> {
    let fail = |reason: String| SshError::ClientKey {
        path: key.path.display().to_string(),
        reason,
    };
    let text = tokio::fs::read_to_string(&key.path)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let passphrase = key.passphrase.as_ref().map(Passphrase::expose);
    russh::keys::decode_secret_key(&text, passphrase).map_err(|e| match e {
        russh::keys::Error::KeyIsEncrypted => {
            fail("the key is encrypted and no passphrase was given".into())
        }
        e if passphrase.is_some() => {
            fail(format!("cannot decrypt the key (wrong passphrase?): {e}"))
        }
        e => fail(e.to_string()),
    })
}

/// What a host key is checked against, read before the handshake so the handler does no I/O.
enum Expected {
    Pinned(PublicKey),
    KnownHosts {
        entries: Vec<host_keys::KnownHost>,
        trust_on_first_use: bool,
    },
    /// Scanning: nothing is accepted.
    Nothing,
}

impl Expected {
    async fn load(policy: &HostKeyPolicy) -> Result<Self, SshError> {
        match policy {
            HostKeyPolicy::Pinned(line) => Ok(Self::Pinned(host_keys::parse_public_key(line)?)),
            HostKeyPolicy::KnownHosts {
                path,
                trust_on_first_use,
            } => {
                let path = path.clone();
                let entries =
                    tokio::task::spawn_blocking(move || host_keys::read_known_hosts(&path))
                        .await
                        .map_err(|e| {
                            SshError::HostKeys(format!("the known_hosts reader failed: {e}"))
                        })??;
                Ok(Self::KnownHosts {
                    entries,
                    trust_on_first_use: *trust_on_first_use,
                })
            }
        }
    }
}

/// The russh handler: checks the host key and remembers why it refused one, or which new key
/// it accepted on first use (recorded by the caller once the handshake is done).
struct Checker {
    host: String,
    port: u16,
    expected: Expected,
    refusal: Arc<Mutex<Option<SshError>>>,
    scanned: Arc<Mutex<Option<PublicKey>>>,
    first_use: Arc<Mutex<Option<PublicKey>>>,
}

impl Checker {
    fn new(target: &Target, expected: Expected) -> Self {
        Self {
            host: target.host.clone(),
            port: target.port,
            expected,
            refusal: Arc::default(),
            scanned: Arc::default(),
            first_use: Arc::default(),
        }
    }

    fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn verify(&self, key: &PublicKey) -> Result<(), SshError> {
        match &self.expected {
            Expected::Nothing => Err(SshError::HostKeys("scanning only".into())),
            Expected::Pinned(pinned) => {
                if pinned.key_data() == key.key_data() {
                    Ok(())
                } else {
                    Err(SshError::HostKeyChanged {
                        address: self.address(),
                        expected: fingerprint(pinned),
                        got: fingerprint(key),
                    })
                }
            }
            Expected::KnownHosts {
                entries,
                trust_on_first_use,
            } => match host_keys::check(entries, &self.host, self.port, key) {
                Verdict::Known => Ok(()),
                Verdict::Changed { expected } => Err(SshError::HostKeyChanged {
                    address: self.address(),
                    expected,
                    got: fingerprint(key),
                }),
                Verdict::Revoked => Err(SshError::HostKeyRevoked {
                    address: self.address(),
                    fingerprint: fingerprint(key),
                }),
                // Known only with other key types: never trusted on first use (it is how a
                // man in the middle would offer a type not yet recorded); an admin decides.
                Verdict::OtherTypes { .. } => Err(SshError::HostKeyUnknown {
                    address: self.address(),
                    fingerprint: fingerprint(key),
                    key: key
                        .to_openssh()
                        .unwrap_or_else(|_| key.algorithm().to_string()),
                }),
                Verdict::Unknown if *trust_on_first_use => {
                    *self.first_use.lock().unwrap_or_else(|p| p.into_inner()) = Some(key.clone());
                    Ok(())
                }
                Verdict::Unknown => Err(SshError::HostKeyUnknown {
                    address: self.address(),
                    fingerprint: fingerprint(key),
                    key: key
                        .to_openssh()
                        .unwrap_or_else(|_| key.algorithm().to_string()),
                }),
            },
        }
    }
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        presented: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match presented {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(_) => {
                *self.refusal.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(SshError::HostKeys(format!(
                        "{} presented a host certificate; certificates are not supported",
                        self.address()
                    )));
                return Ok(false);
            }
        };
        *self.scanned.lock().unwrap_or_else(|p| p.into_inner()) = Some(key.clone());
        match self.verify(key) {
            Ok(()) => Ok(true),
            Err(e) => {
                *self.refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                Ok(false)
            }
        }
    }
}
