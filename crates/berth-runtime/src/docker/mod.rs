//! [`DockerRuntime`]: the [`ContainerRuntime`] on a Docker Engine (20.10 / API 1.41 or newer)
//! reached through a unix socket.

mod attach;
mod body;
mod containers;
mod events;
mod exec;
mod probe;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::{ClientVersion, Docker};

use crate::error::{Result, RuntimeError, Unreachable};
use crate::spec::DEFAULT_DOCKER_SOCKETS;

/// Where the Docker Engine listens when neither `DOCKER_HOST` nor the config says otherwise.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// bollard's own request timeout; every call is bounded by [`DockerOptions::timeout`] instead,
/// so this only has to be longer than any of those.
const BOLLARD_TIMEOUT_SECS: u64 = 24 * 3600;

/// How to talk to the engine.
#[derive(Debug, Clone)]
pub struct DockerOptions {
    /// Limit for one API call to answer (`stop` adds its own grace period on top).
    pub timeout: Duration,
}

impl Default for DockerOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
        }
    }
}

/// The Docker Engine runtime. Cheap to clone; clones share the connection settings.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    socket: PathBuf,
    timeout: Duration,
    api: (usize, usize),
    engine: String,
    /// Sockets never mounted into a container: the defaults and the one in use.
    docker_sockets: Vec<PathBuf>,
}

/// The socket path of a Docker endpoint: `unix:///path` or an absolute path (as written in
/// `runtime.docker_socket`). TCP, SSH and named pipes are refused.
pub fn parse_endpoint(endpoint: &str) -> Result<PathBuf> {
    let path = endpoint.strip_prefix("unix://").unwrap_or(endpoint);
    if !path.starts_with('/') || path.contains('\0') {
        return Err(RuntimeError::InvalidEndpoint {
            endpoint: endpoint.to_owned(),
        });
    }
    Ok(PathBuf::from(path))
}

/// The socket named by a `DOCKER_HOST` value, [`DEFAULT_SOCKET`] when unset or empty.
pub fn socket_from_docker_host(docker_host: Option<&str>) -> Result<PathBuf> {
    match docker_host {
        None | Some("") => Ok(PathBuf::from(DEFAULT_SOCKET)),
        Some(host) if host.starts_with("unix://") => parse_endpoint(host),
        Some(host) => Err(RuntimeError::InvalidEndpoint {
            endpoint: host.to_owned(),
        }),
    }
}

impl DockerRuntime {
    /// Connects to the engine at `socket` and negotiates the API version: the engine's newest,
    /// capped at the newest bollard knows. Fails on engines older than 20.10 (API 1.41).
    pub async fn connect(socket: impl Into<PathBuf>, options: DockerOptions) -> Result<Self> {
        let socket = socket.into();
        let version = probe::probe(&socket, options.timeout).await?;
        let newest = bollard::API_DEFAULT_VERSION;
        let api = version
            .api
            .min((newest.major_version, newest.minor_version));
        let client_version = ClientVersion {
            major_version: api.0,
            minor_version: api.1,
        };
        let path = socket
            .to_str()
            .ok_or_else(|| RuntimeError::InvalidEndpoint {
                endpoint: socket.display().to_string(),
            })?;
        let docker = Docker::connect_with_unix(path, BOLLARD_TIMEOUT_SECS, &client_version)
            .map_err(|e| RuntimeError::Transport {
                socket: socket.clone(),
                operation: "connect",
                detail: e.to_string(),
            })?;
        let mut docker_sockets: Vec<PathBuf> =
            DEFAULT_DOCKER_SOCKETS.iter().map(PathBuf::from).collect();
        docker_sockets.push(socket.clone());
        Ok(Self {
            docker,
            socket,
            timeout: options.timeout,
            api,
            engine: version.engine,
            docker_sockets,
        })
    }

    /// Connects to the engine named by `DOCKER_HOST` (unix sockets only), or the default socket.
    pub async fn connect_env(options: DockerOptions) -> Result<Self> {
        let host = std::env::var("DOCKER_HOST").ok();
        Self::connect(socket_from_docker_host(host.as_deref())?, options).await
    }

    /// The API version in use, e.g. `1.41`.
    pub fn api_version(&self) -> String {
        format!("{}.{}", self.api.0, self.api.1)
    }

    /// The engine's version, e.g. `20.10.24+dfsg1`.
    pub fn engine_version(&self) -> &str {
        &self.engine
    }

    /// The socket in use.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The negotiated engine client, for sibling crates (the clusters' `docker` provider) whose
    /// containers are not workspaces: they do not go through [`ContainerRuntime`] and get none
    /// of the workspace hardening (a k3s server needs a privileged container).
    ///
    /// [`ContainerRuntime`]: crate::ContainerRuntime
    pub fn engine(&self) -> &Docker {
        &self.docker
    }

    /// Runs one API call within the configured timeout (plus `grace`), mapping its error.
    async fn call_with<T>(
        &self,
        operation: &'static str,
        grace: Duration,
        request: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T> {
        let after = self.timeout + grace;
        match tokio::time::timeout(after, request).await {
            Ok(result) => result.map_err(|e| self.classify(operation, e)),
            Err(_) => Err(RuntimeError::Timeout {
                socket: self.socket.clone(),
                operation,
                after,
            }),
        }
    }

    async fn call<T>(
        &self,
        operation: &'static str,
        request: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T> {
        self.call_with(operation, Duration::ZERO, request).await
    }

    fn classify(&self, operation: &'static str, err: bollard::errors::Error) -> RuntimeError {
        use bollard::errors::Error as B;
        match err {
            B::DockerResponseServerError {
                status_code,
                message,
            } => RuntimeError::Engine {
                operation,
                status: status_code,
                message,
            },
            B::SocketNotFoundError(_) => RuntimeError::EngineNotRunning {
                socket: self.socket.clone(),
                reason: Unreachable::SocketMissing,
            },
            B::RequestTimeoutError => RuntimeError::Timeout {
                socket: self.socket.clone(),
                operation,
                after: self.timeout,
            },
            other => {
                // Connection failures arrive wrapped by hyper; their io::Error says what happened.
                let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&other);
                let mut chain = Vec::new();
                while let Some(e) = source {
                    if let Some(io) = e.downcast_ref::<std::io::Error>() {
                        return probe::connect_error(&self.socket, operation, io);
                    }
                    chain.push(e.to_string());
                    source = e.source();
                }
                self.transport(operation, chain.join(": "))
            }
        }
    }

    fn transport(&self, operation: &'static str, detail: String) -> RuntimeError {
        RuntimeError::Transport {
            socket: self.socket.clone(),
            operation,
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_unix_sockets_only() {
        assert_eq!(
            socket_from_docker_host(None).unwrap(),
            Path::new(DEFAULT_SOCKET)
        );
        assert_eq!(
            socket_from_docker_host(Some("")).unwrap(),
            Path::new(DEFAULT_SOCKET)
        );
        assert_eq!(
            socket_from_docker_host(Some("unix:///run/berth-test/docker.sock")).unwrap(),
            Path::new("/run/berth-test/docker.sock")
        );
        assert_eq!(
            parse_endpoint("/var/run/docker.sock").unwrap(),
            Path::new("/var/run/docker.sock")
        );
        for bad in [
            "tcp://127.0.0.1:2375",
            "ssh://host",
            "npipe:////./pipe/docker_engine",
            "unix://relative",
            "/var/run/docker.sock",
        ] {
            let err = if bad.starts_with('/') {
                socket_from_docker_host(Some(bad))
            } else {
                parse_endpoint(bad)
            }
            .unwrap_err();
            assert!(
                matches!(err, RuntimeError::InvalidEndpoint { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("unix socket only"), "{err}");
        }
    }
}
