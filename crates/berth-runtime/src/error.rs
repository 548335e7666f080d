//! The one error type of the runtime: each variant is a situation an operator can act on, and its
//! message says how.

use std::path::PathBuf;
use std::time::Duration;

/// Why the Docker Engine could not be reached at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// No socket file at that path.
    SocketMissing,
    /// A socket file exists but nothing listens on it (a stale socket of a stopped engine).
    ConnectionRefused,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::SocketMissing => "no socket at that path",
            Self::ConnectionRefused => "connection refused",
        })
    }
}

/// Everything that can go wrong between Berth and the container engine.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine is not running (or listens elsewhere).
    #[error(
        "the Docker Engine is not running at {} ({reason}): start it, or point `runtime.docker_socket` / DOCKER_HOST at its socket (for tests: scripts/docker-engine.sh start)",
        socket.display()
    )]
    EngineNotRunning {
        /// The socket Berth tried.
        socket: PathBuf,
        /// What the connect attempt found.
        reason: Unreachable,
    },

    /// The socket exists but this process may not connect to it.
    #[error(
        "permission denied on the Docker socket {}: run Berth as root or as a member of the socket's group (usually `docker`)",
        socket.display()
    )]
    PermissionDenied {
        /// The socket Berth tried.
        socket: PathBuf,
    },

    /// The engine accepted the connection but did not answer in time.
    #[error("the Docker Engine at {} did not answer `{operation}` within {after:?}", socket.display())]
    Timeout {
        /// The socket Berth used.
        socket: PathBuf,
        /// The API operation that timed out.
        operation: &'static str,
        /// The configured limit.
        after: Duration,
    },

    /// Something answered on the socket, but not a Docker Engine Berth can use.
    #[error("{} is not a usable Docker Engine API: {detail}", socket.display())]
    NotAnEngine {
        /// The socket Berth used.
        socket: PathBuf,
        /// What was wrong with the answer.
        detail: String,
    },

    /// The engine is older than Docker Engine 20.10 (API 1.41).
    #[error(
        "Docker Engine {engine} speaks API {api}, Berth needs Docker Engine 20.10 (API 1.41) or newer"
    )]
    UnsupportedEngine {
        /// The engine's version string.
        engine: String,
        /// The engine's newest API version.
        api: String,
    },

    /// `DOCKER_HOST` or the configured socket is not a unix socket path.
    #[error(
        "unsupported Docker endpoint `{endpoint}`: Berth talks to the Docker Engine over a unix socket only (unix:///path)"
    )]
    InvalidEndpoint {
        /// The rejected value.
        endpoint: String,
    },

    /// The image is not in the engine; Berth never pulls (there may be no registry at all).
    #[error("{}", image_missing_message(image))]
    ImageMissing {
        /// The image reference from the spec.
        image: String,
    },

    /// A named network in the spec does not exist; Berth never creates networks.
    #[error(
        "Docker network `{network}` does not exist: create it first (`docker network create {network}`) or use network `none` or `host`"
    )]
    NetworkMissing {
        /// The network name from the spec.
        network: String,
    },

    /// A container with that name already exists.
    #[error("a container named `{name}` already exists")]
    NameConflict {
        /// The conflicting name.
        name: String,
    },

    /// The container does not exist (any more).
    #[error("container `{container}` does not exist")]
    ContainerMissing {
        /// The id or name that was asked for.
        container: String,
    },

    /// The operation needs a running container.
    #[error("container `{container}` is not running")]
    ContainerNotRunning {
        /// The id or name that was asked for.
        container: String,
    },

    /// The spec was refused before it reached the engine.
    #[error("invalid container spec: {0}")]
    InvalidSpec(String),

    /// The spec would mount the Docker socket (or a directory holding it) into a container,
    /// which hands the container root on the host.
    #[error(
        "refusing to mount {} into a container: it is or contains the Docker socket {}",
        path.display(),
        socket.display()
    )]
    DockerSocketMount {
        /// The bind source from the spec.
        path: PathBuf,
        /// The Docker socket it exposes.
        socket: PathBuf,
    },

    /// Any other answer of the engine.
    #[error("the Docker Engine refused `{operation}` (HTTP {status}): {message}")]
    Engine {
        /// The API operation.
        operation: &'static str,
        /// HTTP status.
        status: u16,
        /// The engine's message.
        message: String,
    },

    /// A process's output, input or control failed (see [`berth_terminal::TerminalError`]).
    #[error(transparent)]
    Terminal(#[from] berth_terminal::TerminalError),

    /// The connection broke in a way not covered above.
    #[error("talking to the Docker Engine at {} failed during `{operation}`: {detail}", socket.display())]
    Transport {
        /// The socket Berth used.
        socket: PathBuf,
        /// The API operation.
        operation: &'static str,
        /// The underlying error chain.
        detail: String,
    },
}

fn image_missing_message(image: &str) -> String {
    let mut msg = format!(
        "image `{image}` is not loaded in the Docker Engine and Berth never pulls images: load it with `docker load -i IMAGE.tar` (a saved image) or `docker import ROOTFS.tar {image}` (a root file system)"
    );
    if image.starts_with("berth-test/") {
        msg.push_str("; the test image is built and loaded by scripts/test-image.sh");
    }
    msg
}

/// Shorthand used throughout the crate.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
