//! The [`ContainerRuntime`] trait: everything the core may ask of a container engine.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures_util::stream::BoxStream;

use crate::error::Result;
use berth_terminal::Pty;

use crate::exec::ExecSpec;
use crate::spec::ContainerSpec;
use crate::state::{ContainerEvent, ContainerId, ContainerInfo, ContainerState};

/// A stream of [`ContainerEvent`]s; see [`ContainerRuntime::events`].
pub type ContainerEvents = BoxStream<'static, Result<ContainerEvent>>;

/// A container engine. Object-safe: the core holds an `Arc<dyn ContainerRuntime>` and its unit
/// tests use a fake.
#[async_trait]
pub trait ContainerRuntime: Send + Sync + std::fmt::Debug {
    /// Creates (does not start) a container from `spec`, creating its named volumes first.
    /// Adds `berth.managed=true` and the hardening defaults.
    async fn create(&self, spec: &ContainerSpec) -> Result<ContainerId>;

    /// Starts a created or stopped container; starting a running one does nothing.
    async fn start(&self, id: &ContainerId) -> Result<()>;

    /// Asks the main process to stop (SIGTERM), and kills it after `timeout`. Stopping a
    /// stopped container does nothing.
    async fn stop(&self, id: &ContainerId, timeout: Duration) -> Result<()>;

    /// Removes the container (killing it if it still runs) and its named volumes that are not
    /// persistent. Removing a missing container does nothing; a removal already in progress
    /// (another client's, or a killed Berth's) is waited for.
    async fn remove(&self, id: &ContainerId) -> Result<()>;

    /// Removes the managed named volumes carrying every label of `labels`, persistent ones
    /// included: an owner's files when their account is deleted. A volume still mounted by a
    /// container stays. Returns the names removed.
    async fn purge_volumes(&self, labels: &BTreeMap<String, String>) -> Result<Vec<String>>;

    /// The container's state; [`ContainerState::Missing`] when the engine does not know it.
    async fn inspect(&self, id: &ContainerId) -> Result<ContainerState>;

    /// Managed containers (running or not) carrying every label of `labels` with that value.
    async fn list(&self, labels: &BTreeMap<String, String>) -> Result<Vec<ContainerInfo>>;

    /// What happens from now on to the managed containers carrying every label of `labels`:
    /// they are created or started, their main process exits, or they are removed (see
    /// [`ContainerEventKind`]). With `since`, events the engine still holds from that time on
    /// come first. The request is sent when the stream is first polled; the stream yields an
    /// error or ends when the engine goes away, and the caller reconnects.
    ///
    /// [`ContainerEventKind`]: crate::ContainerEventKind
    fn events(
        &self,
        labels: &BTreeMap<String, String>,
        since: Option<SystemTime>,
    ) -> ContainerEvents;

    /// Starts a process in a running container: a terminal (a [`Pty`]) when the spec asks for
    /// one, else a plain process behind the same interface (its resize does nothing useful).
    async fn exec(&self, id: &ContainerId, spec: ExecSpec) -> Result<Pty>;
}
