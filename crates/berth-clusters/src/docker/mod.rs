//! The `docker` provider: a k3s server in one container on the Docker Engine, the way k3d
//! runs it. The engine is the one Berth's workspaces use (API 1.41 or newer); only calls that
//! API version has are made, and images are never pulled.

mod archive;
mod readyz;
mod spec;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use async_trait::async_trait;
use berth_types::{ClusterId, Username};
use bollard::Docker;
use bollard::models::{
    ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummaryStateEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;

use crate::kubeconfig::{self, Credentials};
use crate::{
    ClusterProvider, ClusterSpec, Kubeconfig, ProviderCluster, ProviderError, ProviderStatus,
    Provisioned,
};
use spec::{
    API_PORT_LABEL, CLUSTER_LABEL, INSTANCE_LABEL, K3S_PORT, MANAGED_LABEL, MANAGED_VALUE,
    NAME_LABEL, OWNER_LABEL,
};

/// The image run when main.yaml sets no `clusters.image`.
pub const DEFAULT_K3S_IMAGE: &str = "rancher/k3s:v1.34.1-k3s1";
/// Where k3s writes its admin kubeconfig inside the container.
const K3S_KUBECONFIG: &str = "/etc/rancher/k3s/k3s.yaml";
/// The label remembering the address the API was published on.
const API_ADDRESS_LABEL: &str = "berth.api_address";
/// Limit for one engine call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A kubeconfig is a few KiB; anything much larger is not one.
const KUBECONFIG_LIMIT: usize = 1 << 20;
/// How many log lines a failure reports.
const LOG_TAIL_LINES: &str = "20";

/// How the server container reaches the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClusterNetwork {
    /// The engine's default bridge; the API's port 6443 is published on `api_address` at a
    /// port the engine picks. For production.
    #[default]
    Bridge,
    /// The host's network: the server binds `api_address` at a free port Berth picks. For
    /// engines without a bridge (Berth's tests); one real k3s per host at most, since its other
    /// ports (kubelet, flannel) are fixed.
    Host,
}

/// The provider's settings, from main.yaml `clusters.*`.
#[derive(Debug, Clone)]
pub struct DockerClusterSettings {
    /// The k3s image (`clusters.image`); must already be in the engine.
    pub image: String,
    /// This installation's name, the label `berth.instance`: what `list` and reconciliation see.
    pub instance: String,
    /// CPU limit in cores (`clusters.cpus`); `None` for no limit.
    pub cpus: Option<f64>,
    /// Memory limit in bytes (`clusters.memory`); 0 for no limit.
    pub memory: u64,
    /// Where the API is published (`clusters.api_address`). An unspecified address (0.0.0.0)
    /// publishes on every address; kubeconfigs then name 127.0.0.1.
    pub api_address: IpAddr,
    /// Bridge (default) or host network.
    pub network: ClusterNetwork,
    /// Whether the server container is privileged: `true` (the default) for k3s, which runs
    /// containerd, cgroups and iptables inside. `false` only for the stand-in image in tests,
    /// on engines that cannot grant every capability (a Docker Engine inside a container).
    pub privileged: bool,
    /// Extra environment for the server container (`NAME=value`): k3s's own `K3S_*` variables,
    /// or the stand-in's `STANDIN_*` in tests.
    pub env: Vec<String>,
}

impl DockerClusterSettings {
    /// The defaults for installation `instance`: [`DEFAULT_K3S_IMAGE`], no limits, published
    /// on 127.0.0.1 over the bridge.
    pub fn new(instance: impl Into<String>) -> Self {
        Self {
            image: DEFAULT_K3S_IMAGE.to_owned(),
            instance: instance.into(),
            cpus: None,
            memory: 0,
            api_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            network: ClusterNetwork::Bridge,
            privileged: true,
            env: Vec::new(),
        }
    }
}

/// The `docker` [`ClusterProvider`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DockerProvider {
    docker: Docker,
    settings: DockerClusterSettings,
}

impl DockerProvider {
    /// The provider on the engine `docker` (the negotiated client of Berth's runtime).
    pub fn new(docker: Docker, settings: DockerClusterSettings) -> Self {
        Self { docker, settings }
    }

    /// The settings in use.
    pub fn settings(&self) -> &DockerClusterSettings {
        &self.settings
    }

    async fn call<T>(
        &self,
        operation: &'static str,
        request: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, ProviderError> {
        match tokio::time::timeout(CALL_TIMEOUT, request).await {
            Ok(result) => result.map_err(|e| classify(operation, e)),
            Err(_) => Err(ProviderError::Timeout {
                operation,
                secs: CALL_TIMEOUT.as_secs(),
            }),
        }
    }

    /// The containers of this installation carrying every label `extra`, stopped ones too.
    async fn containers(
        &self,
        extra: Option<(&str, String)>,
    ) -> Result<Vec<bollard::models::ContainerSummary>, ProviderError> {
        let mut wanted = vec![
            format!("{INSTANCE_LABEL}={}", self.settings.instance),
            format!("{MANAGED_LABEL}={MANAGED_VALUE}"),
        ];
        if let Some((key, value)) = extra {
            wanted.push(format!("{key}={value}"));
        }
        let filters = HashMap::from([("label", wanted)]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        self.call(
            "list containers",
            self.docker.list_containers(Some(options)),
        )
        .await
    }

    /// The container of cluster `id`, inspected; `None` when there is none.
    async fn find(&self, id: ClusterId) -> Result<Option<ContainerInspectResponse>, ProviderError> {
        let found = self
            .containers(Some((CLUSTER_LABEL, id.to_string())))
            .await?;
        let Some(handle) = found.into_iter().find_map(|c| c.id) else {
            return Ok(None);
        };
        match self
            .call(
                "inspect container",
                self.docker.inspect_container(&handle, None),
            )
            .await
        {
            Err(ProviderError::Engine {
                status: Some(404), ..
            }) => Ok(None),
            other => other.map(Some),
        }
    }

    /// The container that holds `name` after a create was refused because the name is
    /// taken: another create of the same cluster, whose container the engine may show only a
    /// moment later. A container of that name for another cluster is an error.
    async fn taken(
        &self,
        spec: &ClusterSpec,
        name: &str,
    ) -> Result<ContainerInspectResponse, ProviderError> {
        let deadline = tokio::time::Instant::now() + CALL_TIMEOUT;
        loop {
            match self
                .call(
                    "inspect container",
                    self.docker.inspect_container(name, None),
                )
                .await
            {
                Ok(container) => {
                    let owner = container
                        .config
                        .as_ref()
                        .and_then(|c| c.labels.as_ref()?.get(CLUSTER_LABEL).cloned());
                    if owner.as_deref() == Some(spec.id.to_string().as_str()) {
                        return Ok(container);
                    }
                    return Err(ProviderError::Engine {
                        operation: "create container",
                        status: Some(409),
                        message: format!(
                            "the name {name} is taken by a container that is not cluster {}",
                            spec.id
                        ),
                    });
                }
                Err(ProviderError::Engine {
                    status: Some(404), ..
                }) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn ensure_image(&self) -> Result<(), ProviderError> {
        match self
            .call(
                "inspect image",
                self.docker.inspect_image(&self.settings.image),
            )
            .await
        {
            Err(ProviderError::Engine {
                status: Some(404), ..
            }) => Err(ProviderError::ImageMissing {
                image: self.settings.image.clone(),
            }),
            other => other.map(drop),
        }
    }

    async fn start(&self, handle: &str) -> Result<(), ProviderError> {
        match self
            .call("start container", self.docker.start_container(handle, None))
            .await
        {
            // 304: it already runs (another create got there first).
            Err(ProviderError::Engine {
                status: Some(304), ..
            }) => Ok(()),
            other => other,
        }
    }

    /// The URL of a running container's API; `None` while the engine has not published it.
    fn api_url_of(&self, container: &ContainerInspectResponse) -> Option<String> {
        let (address, port) = self.endpoint_of(container)?;
        Some(spec::api_url(address, port))
    }

    fn endpoint_of(&self, container: &ContainerInspectResponse) -> Option<(IpAddr, u16)> {
        let labels = container.config.as_ref()?.labels.as_ref()?;
        let address = labels
            .get(API_ADDRESS_LABEL)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| spec::reach_address(self.settings.api_address));
        if let Some(port) = labels.get(API_PORT_LABEL) {
            return Some((address, port.parse().ok()?));
        }
        let ports = container.network_settings.as_ref()?.ports.as_ref()?;
        let binding = ports.get(&format!("{K3S_PORT}/tcp"))?.as_ref()?.first()?;
        Some((address, binding.host_port.as_deref()?.parse().ok()?))
    }

    /// The running container of `id`, or the error saying why there is none.
    async fn running(&self, id: ClusterId) -> Result<ContainerInspectResponse, ProviderError> {
        let container = self.find(id).await?.ok_or(ProviderError::NotFound { id })?;
        if let Some(code) = exited(&container) {
            return Err(ProviderError::ContainerExited {
                id,
                code,
                log_tail: self.log_tail(&handle(&container)).await,
            });
        }
        Ok(container)
    }

    /// The kubeconfig k3s wrote in the container.
    async fn k3s_yaml(&self, id: ClusterId, container: &str) -> Result<String, ProviderError> {
        let options = DownloadFromContainerOptionsBuilder::new()
            .path(K3S_KUBECONFIG)
            .build();
        let read = async {
            let mut stream = self
                .docker
                .download_from_container(container, Some(options));
            let mut tar = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                if tar.len() + chunk.len() > KUBECONFIG_LIMIT + 64 * 1024 {
                    return Ok(None);
                }
                tar.extend_from_slice(&chunk);
            }
            Ok(Some(tar))
        };
        let tar = match self.call("read the kubeconfig", read).await {
            Err(ProviderError::Engine {
                status: Some(404), ..
            }) => return Err(ProviderError::KubeconfigNotReady { id }),
            other => other?,
        };
        let unreadable = |reason: String| ProviderError::KubeconfigUnreadable { id, reason };
        let tar = tar.ok_or_else(|| unreadable("it is larger than 1 MiB".to_owned()))?;
        let file = archive::first_file(&tar).map_err(unreadable)?;
        String::from_utf8(file.to_vec()).map_err(|_| unreadable("it is not UTF-8".to_owned()))
    }

    async fn credentials(
        &self,
        id: ClusterId,
        container: &str,
    ) -> Result<Credentials, ProviderError> {
        let text = self.k3s_yaml(id, container).await?;
        kubeconfig::credentials(&text)
            .map_err(|reason| ProviderError::KubeconfigUnreadable { id, reason })
    }

    /// The last lines of the container's log, stdout and stderr interleaved.
    async fn log_tail(&self, container: &str) -> String {
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail(LOG_TAIL_LINES)
            .build();
        let collect = async {
            let mut stream = self.docker.logs(container, Some(options));
            let mut out = Vec::new();
            while let Some(item) = stream.next().await {
                out.extend_from_slice(&item?.into_bytes());
            }
            Ok(out)
        };
        match self.call("read the container's log", collect).await {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).trim_end().to_owned();
                if text.is_empty() {
                    "(the log is empty)".to_owned()
                } else {
                    text
                }
            }
            Err(e) => format!("(the log cannot be read: {e})"),
        }
    }
}

/// A free port on `address` now: bound, read and released. Another process may take it before
/// k3s binds it; the cluster then fails with k3s's "address already in use" in its log.
fn free_port(address: IpAddr) -> Result<u16, ProviderError> {
    let listener = std::net::TcpListener::bind((address, 0)).map_err(|e| {
        ProviderError::Settings(format!(
            "cannot bind clusters.api_address {address} to pick an API port: {e}"
        ))
    })?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| ProviderError::Settings(format!("cannot read the picked port: {e}")))
}

fn handle(container: &ContainerInspectResponse) -> String {
    container.id.clone().unwrap_or_default()
}

/// The exit code of a container that stopped (exited or dead); `None` while it may still run.
fn exited(container: &ContainerInspectResponse) -> Option<i64> {
    let state = container.state.as_ref()?;
    match state.status? {
        ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD => {
            Some(state.exit_code.unwrap_or(-1))
        }
        _ => None,
    }
}

fn classify(operation: &'static str, err: bollard::errors::Error) -> ProviderError {
    use bollard::errors::Error as B;
    match err {
        B::DockerResponseServerError {
            status_code,
            message,
        } => ProviderError::Engine {
            operation,
            status: Some(status_code),
            message,
        },
        B::SocketNotFoundError(socket) => ProviderError::EngineUnreachable {
            detail: format!("no socket at {socket}"),
        },
        B::RequestTimeoutError => ProviderError::Timeout {
            operation,
            secs: CALL_TIMEOUT.as_secs(),
        },
        other => {
            // Connection failures arrive wrapped by hyper; an io::Error in the chain says so.
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&other);
            while let Some(e) = source {
                if let Some(io) = e.downcast_ref::<std::io::Error>() {
                    return ProviderError::EngineUnreachable {
                        detail: format!("{operation}: {io}"),
                    };
                }
                source = e.source();
            }
            ProviderError::Engine {
                operation,
                status: None,
                message: other.to_string(),
            }
        }
    }
}

#[async_trait]
impl ClusterProvider for DockerProvider {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn create(&self, spec: &ClusterSpec) -> Result<Provisioned, ProviderError> {
        let existing = match self.find(spec.id).await? {
            Some(container) => Some(container),
            None => {
                self.ensure_image().await?;
                let host_port = match self.settings.network {
                    ClusterNetwork::Host => Some(free_port(self.settings.api_address)?),
                    ClusterNetwork::Bridge => None,
                };
                let mut body = spec::create_body(&self.settings, spec, host_port);
                if let Some(labels) = body.labels.as_mut() {
                    labels.insert(
                        API_ADDRESS_LABEL.to_owned(),
                        spec::reach_address(self.settings.api_address).to_string(),
                    );
                }
                let name = spec::container_name(&self.settings.instance, spec);
                let options = CreateContainerOptionsBuilder::new().name(&name).build();
                match self
                    .call(
                        "create container",
                        self.docker.create_container(Some(options), body),
                    )
                    .await
                {
                    Ok(_) => None,
                    // The name is the id's: another create made it meanwhile; reuse that one.
                    Err(ProviderError::Engine {
                        status: Some(409), ..
                    }) => Some(self.taken(spec, &name).await?),
                    Err(ProviderError::Engine {
                        status: Some(404), ..
                    }) => {
                        return Err(ProviderError::ImageMissing {
                            image: self.settings.image.clone(),
                        });
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let handle = match &existing {
            Some(container) => handle(container),
            None => spec::container_name(&self.settings.instance, spec),
        };
        let runs = existing
            .as_ref()
            .and_then(|c| c.state.as_ref()?.running)
            .unwrap_or(false);
        if !runs {
            self.start(&handle).await?;
        }
        let container = self
            .call(
                "inspect container",
                self.docker.inspect_container(&handle, None),
            )
            .await?;
        if let Some(code) = exited(&container) {
            return Err(ProviderError::ContainerExited {
                id: spec.id,
                code,
                log_tail: self.log_tail(&handle).await,
            });
        }
        let api_url = self
            .api_url_of(&container)
            .ok_or_else(|| ProviderError::Engine {
                operation: "inspect container",
                status: None,
                message: format!("the engine published no port for {K3S_PORT}/tcp"),
            })?;
        Ok(Provisioned { api_url })
    }

    async fn status(&self, id: ClusterId) -> Result<ProviderStatus, ProviderError> {
        let Some(container) = self.find(id).await? else {
            return Ok(ProviderStatus::Missing);
        };
        let handle = handle(&container);
        let state = container.state.as_ref().and_then(|s| s.status);
        let provisioning = |detail: &str| {
            Ok(ProviderStatus::Provisioning {
                detail: detail.to_owned(),
            })
        };
        match state {
            Some(ContainerStateStatusEnum::RUNNING) => {}
            Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD) => {
                let code = exited(&container).unwrap_or(-1);
                return Ok(ProviderStatus::Failed {
                    reason: format!(
                        "the k3s server container exited with code {code}; its log ends with:\n{}",
                        self.log_tail(&handle).await
                    ),
                });
            }
            Some(ContainerStateStatusEnum::PAUSED) => {
                return provisioning("the server container is paused");
            }
            _ => return provisioning("the server container is starting"),
        }
        let Some((address, port)) = self.endpoint_of(&container) else {
            return provisioning("waiting for the engine to publish the API port");
        };
        let credentials = match self.credentials(id, &handle).await {
            Err(ProviderError::KubeconfigNotReady { .. }) => {
                return provisioning("waiting for k3s to write its kubeconfig");
            }
            other => other?,
        };
        match readyz::probe(&credentials, address, port).await {
            Ok(()) => Ok(ProviderStatus::Ready {
                api_url: spec::api_url(address, port),
            }),
            Err(detail) => Ok(ProviderStatus::Provisioning {
                detail: format!("the API is not ready yet: {detail}"),
            }),
        }
    }

    async fn kubeconfig(&self, id: ClusterId) -> Result<Kubeconfig, ProviderError> {
        let container = self.running(id).await?;
        let handle = handle(&container);
        let credentials = self.credentials(id, &handle).await?;
        let api_url = self
            .api_url_of(&container)
            .ok_or_else(|| ProviderError::ApiNotReady {
                id,
                detail: "the engine has not published its port".to_owned(),
            })?;
        let entry = container
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref()?.get(NAME_LABEL).cloned())
            .unwrap_or_else(|| id.as_uuid().simple().to_string()[..8].to_owned());
        kubeconfig::rewrite(&credentials, &api_url, &format!("berth-{entry}"))
            .map(Kubeconfig::new)
            .map_err(|reason| ProviderError::KubeconfigUnreadable { id, reason })
    }

    async fn delete(&self, id: ClusterId) -> Result<(), ProviderError> {
        for container in self
            .containers(Some((CLUSTER_LABEL, id.to_string())))
            .await?
        {
            let Some(handle) = container.id else { continue };
            // v: the anonymous volumes go with it (k3s's /var/lib/rancher/k3s and the like).
            let options = RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            match self
                .call(
                    "remove container",
                    self.docker.remove_container(&handle, Some(options)),
                )
                .await
            {
                // Gone already, or another delete is removing it.
                Err(ProviderError::Engine {
                    status: Some(404), ..
                }) => {}
                Err(ProviderError::Engine {
                    status: Some(409),
                    message,
                    ..
                }) if message.contains("already in progress") => {}
                other => other?,
            }
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ProviderCluster>, ProviderError> {
        let mut out = Vec::new();
        for container in self.containers(None).await? {
            let labels = container.labels.unwrap_or_default();
            let Some(id) = labels.get(CLUSTER_LABEL).and_then(|v| v.parse().ok()) else {
                tracing::warn!(container = ?container.id, "a cluster container without a valid {CLUSTER_LABEL} label");
                continue;
            };
            let name = container
                .names
                .unwrap_or_default()
                .first()
                .map(|n| n.trim_start_matches('/').to_owned())
                .or(container.id)
                .unwrap_or_default();
            out.push(ProviderCluster {
                id,
                owner: labels
                    .get(OWNER_LABEL)
                    .and_then(|o| Username::new(o.as_str()).ok()),
                container: name,
                running: container.state == Some(ContainerSummaryStateEnum::RUNNING),
            });
        }
        Ok(out)
    }
}
