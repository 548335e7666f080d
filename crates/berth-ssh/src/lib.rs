//! Berth's SSH client and SSH gateway, on russh with the `ring` crypto backend (no aws-lc C build).
//!
//! - [`connect`] reaches a [`Target`] over TCP (TCP_NODELAY, SSH keepalives) or through a
//!   chain of jump hosts (direct-tcpip channels, each hop's host key checked), with a timeout
//!   per attempt and retries with exponential backoff while the machine cannot be reached. It
//!   logs in with an OpenSSH private key file (ed25519, ECDSA, RSA with rsa-sha2-256/512;
//!   encrypted keys with a [`Passphrase`]); password auth is never offered.
//! - Host keys are always checked ([`HostKeyPolicy`]): a pinned key, or an OpenSSH
//!   known_hosts file, optionally trusting a new host on first use. Unknown and changed keys are
//!   refused as [`SshError::HostKeyUnknown`] / [`SshError::HostKeyChanged`] with SHA256
//!   fingerprints; [`trust_fingerprint`] records a key an admin has compared.
//! - [`Session::exec`] runs a command with optional stdin, streams stdout and stderr
//!   separately with bounded buffering, reports the exit code or signal, and signals or closes
//!   it ([`ExecControl`]): OpenSSH delivers the signal to the command's process group, and
//!   [`ExecControl::signal_all`] also reaches processes that left it (found by an environment
//!   variable every command is started with, [`EXEC_ID_VAR`]).
//! - [`open_pty`] opens a login shell on a PTY as a [`berth_terminal::Pty`].
//!
//! - [`gateway`] is the server side: the SSH gateway into workspaces (`ssh -p PORT
//!   alice@host`), over a [`gateway::GatewayBackend`] that Berth implements.
//!
//! Each connection and each channel is a task that owns it; handles send it commands.
#![forbid(unsafe_code)]

mod connect;
mod error;
mod exec;
pub mod gateway;
pub mod host_keys;
mod pty;
mod secret;

pub use connect::{
    ClientKey, ConnectOptions, Session, Target, connect, scan_host_key, trust_fingerprint,
};
pub use error::{SshError, UnreachableReason};
pub use exec::{
    Collected, EXEC_ID_VAR, ExecControl, ExecRequest, Execution, ExitStatus, Output, OutputStream,
    Signal,
};
pub use host_keys::{HostKeyPolicy, fingerprint};
pub use pty::open_pty;
pub use secret::Passphrase;
