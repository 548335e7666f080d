//! What can go wrong, in words a person can act on.

use std::fmt;

/// Why a machine could not be reached at the TCP level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnreachableReason {
    /// Nothing listens there (connection refused).
    Refused,
    /// No answer within the connect timeout (TCP connect, handshake and auth together).
    Timeout,
    /// The host name did not resolve.
    Dns(String),
    /// No route, reset during the banner, a jump host that could not open the next hop, ...
    Other(String),
}

impl fmt::Display for UnreachableReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused => f.write_str("connection refused"),
            Self::Timeout => f.write_str("timed out"),
            Self::Dns(e) => write!(f, "name does not resolve ({e})"),
            Self::Other(e) => f.write_str(e),
        }
    }
}

/// An SSH client error. Host key errors carry the SHA256 fingerprint as `ssh-keygen -l` prints
/// it, so an admin can compare it with the machine's own before trusting it.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// TCP connect or the SSH handshake failed `attempts` times.
    #[error("{address} is unreachable: {reason} (after {attempts} attempt(s))")]
    Unreachable {
        /// `host:port` of the machine (or hop) that failed.
        address: String,
        /// What failed the last attempt.
        reason: UnreachableReason,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The server refused the client key.
    #[error("{user}@{address} refused the client key {key}")]
    AuthFailed {
        /// `host:port`.
        address: String,
        /// The login user.
        user: String,
        /// The private key file that was offered.
        key: String,
    },
    /// The server's host key is neither pinned nor in known_hosts.
    #[error(
        "the host key of {address} is unknown ({fingerprint}); trust it only after comparing it with `ssh-keygen -lf` on the machine"
    )]
    HostKeyUnknown {
        /// `host:port`.
        address: String,
        /// `SHA256:...` of the key the server presented.
        fingerprint: String,
        /// The presented key as an OpenSSH line (`ssh-ed25519 AAAA...`).
        key: String,
    },
    /// The server presented a different key than the one pinned or recorded.
    #[error(
        "the host key of {address} has CHANGED: expected {expected}, got {got}; someone may be intercepting the connection, or the machine was reinstalled"
    )]
    HostKeyChanged {
        /// `host:port`.
        address: String,
        /// Fingerprint of the pinned or recorded key.
        expected: String,
        /// Fingerprint of the key the server presented.
        got: String,
    },
    /// The server presented a key that known_hosts marks `@revoked` for it.
    #[error("{address} presented the host key {fingerprint}, which known_hosts revokes")]
    HostKeyRevoked {
        /// `host:port`.
        address: String,
        /// Fingerprint of the presented key.
        fingerprint: String,
    },
    /// The client key file cannot be used.
    #[error("client key {path}: {reason}")]
    ClientKey {
        /// The key file.
        path: String,
        /// Unreadable, encrypted without a passphrase, a wrong passphrase, ...
        reason: String,
    },
    /// A pinned host key or the known_hosts file cannot be used.
    #[error("host keys: {0}")]
    HostKeys(String),
    /// The SSH protocol failed after the connection was up, or the server refused a request.
    #[error("SSH protocol error with {address}: {reason}")]
    Protocol {
        /// `host:port`.
        address: String,
        /// What failed.
        reason: String,
    },
    /// The connection or the channel is gone.
    #[error("the SSH connection to {address} is closed")]
    Closed {
        /// `host:port`.
        address: String,
    },
}

impl SshError {
    /// Whether another attempt could succeed: only failures to reach the machine or to finish
    /// the handshake, never auth or host key refusals.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }

    /// A short, stable name for the kind of failure (`unreachable`, `auth_failed`,
    /// `host_key_unknown`, `host_key_changed`, `client_key`, `host_keys`, `protocol`, `closed`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "unreachable",
            Self::AuthFailed { .. } => "auth_failed",
            Self::HostKeyUnknown { .. } => "host_key_unknown",
            Self::HostKeyChanged { .. } => "host_key_changed",
            Self::HostKeyRevoked { .. } => "host_key_revoked",
            Self::ClientKey { .. } => "client_key",
            Self::HostKeys(_) => "host_keys",
            Self::Protocol { .. } => "protocol",
            Self::Closed { .. } => "closed",
        }
    }
}
