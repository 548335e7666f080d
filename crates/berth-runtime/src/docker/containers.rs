//! The container half of [`ContainerRuntime`] on the Docker Engine: create (with its volumes),
//! start, stop, remove (with its non-persistent volumes), inspect and list.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bollard::models::{ContainerStateStatusEnum, ContainerSummary, ContainerSummaryStateEnum};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder, StopContainerOptionsBuilder,
};

use super::DockerRuntime;
use super::body::{self, PERSISTENT_LABEL};
use crate::error::{Result, RuntimeError};
use berth_terminal::Pty;

use crate::exec::ExecSpec;
use crate::runtime::{ContainerEvents, ContainerRuntime};
use crate::spec::{ContainerSpec, NetworkMode};
use crate::state::{ContainerId, ContainerInfo, ContainerState, MANAGED_LABEL};

impl DockerRuntime {
    async fn ensure_image(&self, image: &str) -> Result<()> {
        match self
            .call("inspect image", self.docker.inspect_image(image))
            .await
        {
            Err(RuntimeError::Engine { status: 404, .. }) => Err(RuntimeError::ImageMissing {
                image: image.to_owned(),
            }),
            other => other.map(drop),
        }
    }

    async fn ensure_network(&self, network: &str) -> Result<()> {
        match self
            .call(
                "inspect network",
                self.docker.inspect_network(network, None),
            )
            .await
        {
            Err(RuntimeError::Engine { status: 404, .. }) => Err(RuntimeError::NetworkMissing {
                network: network.to_owned(),
            }),
            other => other.map(drop),
        }
    }

    /// Waits, within the call timeout, until a removal in progress has removed `id`.
    async fn until_removed(&self, id: &ContainerId) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            match self
                .call(
                    "inspect container",
                    self.docker.inspect_container(id.as_str(), None),
                )
                .await
            {
                Err(RuntimeError::Engine { status: 404, .. }) => return Ok(()),
                Err(err) => return Err(err),
                Ok(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(RuntimeError::Timeout {
                        socket: self.socket.clone(),
                        operation: "remove container",
                        after: self.timeout,
                    });
                }
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }

    /// Removes the named volumes Berth created as not persistent. A volume still used by another
    /// container (409) stays; the last user's removal takes it.
    async fn remove_volumes(&self, names: Vec<String>) -> Result<()> {
        for name in names {
            let volume = match self
                .call("inspect volume", self.docker.inspect_volume(&name))
                .await
            {
                Err(RuntimeError::Engine { status: 404, .. }) => continue,
                other => other?,
            };
            let label = |key: &str| volume.labels.get(key).map(String::as_str);
            if label(MANAGED_LABEL) != Some("true") || label(PERSISTENT_LABEL) == Some("true") {
                continue;
            }
            let options = RemoveVolumeOptionsBuilder::new().force(false).build();
            match self
                .call(
                    "remove volume",
                    self.docker.remove_volume(&name, Some(options)),
                )
                .await
            {
                Err(RuntimeError::Engine {
                    status: 404 | 409, ..
                }) => {}
                other => other?,
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    async fn create(&self, spec: &ContainerSpec) -> Result<ContainerId> {
        spec.validate(&self.docker_sockets)?;
        self.ensure_image(&spec.image).await?;
        if let NetworkMode::Named(network) = &spec.network {
            self.ensure_network(network).await?;
        }
        // Creating an existing volume returns it unchanged: whether it is persistent is decided
        // when it is first created.
        for volume in &spec.volumes {
            self.call(
                "create volume",
                self.docker
                    .create_volume(body::volume_request(spec, volume)),
            )
            .await?;
        }
        let options = CreateContainerOptionsBuilder::new()
            .name(&spec.name)
            .build();
        match self
            .call(
                "create container",
                self.docker
                    .create_container(Some(options), body::container_body(spec)),
            )
            .await
        {
            Ok(created) => Ok(ContainerId::new(created.id)),
            Err(RuntimeError::Engine { status: 409, .. }) => Err(RuntimeError::NameConflict {
                name: spec.name.clone(),
            }),
            Err(e) => Err(e),
        }
    }

    async fn start(&self, id: &ContainerId) -> Result<()> {
        match self
            .call(
                "start container",
                self.docker.start_container(id.as_str(), None),
            )
            .await
        {
            Err(RuntimeError::Engine { status: 404, .. }) => Err(RuntimeError::ContainerMissing {
                container: id.to_string(),
            }),
            other => other,
        }
    }

    async fn stop(&self, id: &ContainerId, timeout: Duration) -> Result<()> {
        let secs = i32::try_from(timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0))
            .unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::new().t(secs).build();
        let request = self.docker.stop_container(id.as_str(), Some(options));
        match self.call_with("stop container", timeout, request).await {
            Err(RuntimeError::Engine { status: 404, .. }) => Err(RuntimeError::ContainerMissing {
                container: id.to_string(),
            }),
            other => other,
        }
    }

    async fn remove(&self, id: &ContainerId) -> Result<()> {
        let container = match self
            .call(
                "inspect container",
                self.docker.inspect_container(id.as_str(), None),
            )
            .await
        {
            Err(RuntimeError::Engine { status: 404, .. }) => return Ok(()),
            other => other?,
        };
        let volumes = container
            .mounts
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.typ.as_deref() == Some("volume"))
            .filter_map(|m| m.name)
            .collect();
        // `v` removes anonymous volumes an image may declare; named ones are handled below.
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match self
            .call(
                "remove container",
                self.docker.remove_container(id.as_str(), Some(options)),
            )
            .await
        {
            Err(RuntimeError::Engine { status: 404, .. }) | Ok(()) => {}
            // Someone else's removal (a killed Berth's, finished by the engine) is ours too.
            Err(RuntimeError::Engine {
                status: 409,
                message,
                ..
            }) if message.contains("already in progress") => self.until_removed(id).await?,
            Err(e) => return Err(e),
        }
        self.remove_volumes(volumes).await
    }

    async fn inspect(&self, id: &ContainerId) -> Result<ContainerState> {
        let container = match self
            .call(
                "inspect container",
                self.docker.inspect_container(id.as_str(), None),
            )
            .await
        {
            Err(RuntimeError::Engine { status: 404, .. }) => return Ok(ContainerState::Missing),
            other => other?,
        };
        let state = container.state.unwrap_or_default();
        Ok(match (state.running, state.status) {
            (Some(true), _) => ContainerState::Running,
            (_, Some(ContainerStateStatusEnum::CREATED)) => {
                ContainerState::Stopped { exit_code: None }
            }
            _ => ContainerState::Stopped {
                exit_code: state.exit_code,
            },
        })
    }

    async fn purge_volumes(&self, labels: &BTreeMap<String, String>) -> Result<Vec<String>> {
        let filters = managed_with(labels);
        let options = ListVolumesOptionsBuilder::new().filters(&filters).build();
        let listed = self
            .call("list volumes", self.docker.list_volumes(Some(options)))
            .await?;
        let mut removed = Vec::new();
        for volume in listed.volumes.unwrap_or_default() {
            let options = RemoveVolumeOptionsBuilder::new().force(false).build();
            match self
                .call(
                    "remove volume",
                    self.docker.remove_volume(&volume.name, Some(options)),
                )
                .await
            {
                Ok(()) => removed.push(volume.name),
                // Gone meanwhile, or mounted by a container: not ours to take now.
                Err(RuntimeError::Engine {
                    status: 404 | 409, ..
                }) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(removed)
    }

    async fn list(&self, labels: &BTreeMap<String, String>) -> Result<Vec<ContainerInfo>> {
        let filters = managed_with(labels);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .call(
                "list containers",
                self.docker.list_containers(Some(options)),
            )
            .await?;
        Ok(containers.into_iter().filter_map(summary_info).collect())
    }

    fn events(
        &self,
        labels: &BTreeMap<String, String>,
        since: Option<SystemTime>,
    ) -> ContainerEvents {
        self.container_events(labels, since)
    }

    async fn exec(&self, id: &ContainerId, spec: ExecSpec) -> Result<Pty> {
        self.start_exec(id, spec).await
    }
}

/// The engine's list filter for Berth's objects carrying every label of `labels`.
pub(super) fn managed_with(
    labels: &BTreeMap<String, String>,
) -> HashMap<&'static str, Vec<String>> {
    let mut wanted = vec![format!("{MANAGED_LABEL}=true")];
    wanted.extend(labels.iter().map(|(k, v)| format!("{k}={v}")));
    HashMap::from([("label", wanted)])
}

fn summary_info(summary: ContainerSummary) -> Option<ContainerInfo> {
    use ContainerSummaryStateEnum as S;
    let state = match summary.state {
        Some(S::RUNNING | S::PAUSED | S::RESTARTING | S::STOPPING) => ContainerState::Running,
        Some(S::CREATED) => ContainerState::Stopped { exit_code: None },
        _ => ContainerState::Stopped {
            exit_code: summary.status.as_deref().and_then(exit_code_of_status),
        },
    };
    Some(ContainerInfo {
        id: ContainerId::new(summary.id?),
        name: summary
            .names
            .unwrap_or_default()
            .first()
            .map(|n| n.trim_start_matches('/').to_owned())
            .unwrap_or_default(),
        image: summary.image.unwrap_or_default(),
        labels: summary.labels.unwrap_or_default().into_iter().collect(),
        state,
    })
}

/// The exit code in a listing's status text, `Exited (137) 2 seconds ago`.
fn exit_code_of_status(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest[..rest.find(')')?].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_read_from_listing_status() {
        assert_eq!(exit_code_of_status("Exited (137) 2 seconds ago"), Some(137));
        assert_eq!(
            exit_code_of_status("Exited (0) About a minute ago"),
            Some(0)
        );
        assert_eq!(exit_code_of_status("Up 3 seconds"), None);
        assert_eq!(exit_code_of_status("Exited (x"), None);
    }
}
