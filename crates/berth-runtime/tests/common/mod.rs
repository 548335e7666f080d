//! Shared set-up for the tests against the real Docker Engine: connecting through DOCKER_HOST,
//! and a [`Scope`] that gives each test unique names and removes everything it created, even
//! when the test panics.
#![allow(dead_code)] // each test file uses a different part
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth_runtime::{
    ContainerId, ContainerRuntime, ContainerSpec, DockerOptions, DockerRuntime, ExecSpec,
    IDLE_COMMAND,
};
use berth_terminal::Pty;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::{ClientVersion, Docker};
use futures_util::StreamExt;

pub const IMAGE: &str = "berth-test/base";
/// Upper bound for waiting on output that must come; hitting it fails the test with what was read.
pub const PATIENCE: Duration = Duration::from_secs(30);
const LABEL: &str = "berth.test";

const HOW_TO_START: &str = "start the test Docker Engine and load the test image: \
    `scripts/docker-engine.sh start && eval \"$(scripts/docker-engine.sh env)\" && scripts/test-image.sh` \
    (or run the tests through `make test`)";

/// The runtime on the engine named by DOCKER_HOST; fails the test when it is not set or down.
pub async fn runtime() -> DockerRuntime {
    if std::env::var_os("DOCKER_HOST").is_none() {
        panic!("DOCKER_HOST is not set: {HOW_TO_START}");
    }
    match DockerRuntime::connect_env(DockerOptions::default()).await {
        Ok(rt) => rt,
        Err(e) => panic!("cannot reach the test Docker Engine ({e}): {HOW_TO_START}"),
    }
}

/// A raw bollard client on the same engine, for assertions the trait does not expose.
pub fn raw_client(rt: &DockerRuntime) -> Docker {
    let (major, minor) = rt
        .api_version()
        .split_once('.')
        .map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap()))
        .unwrap();
    Docker::connect_with_unix(
        rt.socket().to_str().unwrap(),
        120,
        &ClientVersion {
            major_version: major,
            minor_version: minor,
        },
    )
    .unwrap()
}

/// Unique names and a label for one test; dropping it removes the test's containers and volumes.
pub struct Scope {
    pub rt: DockerRuntime,
    pub prefix: String,
}

impl Scope {
    pub async fn new(test: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let prefix = format!(
            "brt-{test}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        Self {
            rt: runtime().await,
            prefix,
        }
    }

    pub fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.prefix)
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(LABEL.to_owned(), self.prefix.clone())])
    }

    /// The test image running `sleep infinity` with no network, labelled for clean-up.
    pub fn spec(&self, suffix: &str) -> ContainerSpec {
        let mut spec = ContainerSpec::new(self.name(suffix), IMAGE);
        spec.command = Some(IDLE_COMMAND.iter().map(|s| s.to_string()).collect());
        spec.labels = self.labels();
        spec
    }

    /// Creates and starts a container from `spec`.
    pub async fn running(&self, spec: &ContainerSpec) -> ContainerId {
        let id = self.rt.create(spec).await.unwrap();
        self.rt.start(&id).await.unwrap();
        id
    }

    /// Runs a command without a terminal; returns its output and exit code.
    pub async fn run(&self, id: &ContainerId, cmd: &[&str]) -> (String, i64) {
        let session = self
            .rt
            .exec(id, ExecSpec::command(cmd.iter().copied()))
            .await
            .unwrap();
        let outcome = tokio::time::timeout(PATIENCE, session.collect(1 << 20))
            .await
            .expect("command did not finish")
            .unwrap();
        (
            String::from_utf8_lossy(&outcome.output).into_owned(),
            outcome.exit_code,
        )
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let docker = raw_client(&self.rt);
        let filter = format!("{LABEL}={}", self.prefix);
        // Drop cannot await, and the test's runtime may be gone or busy: clean up on a thread.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let filters = std::collections::HashMap::from([("label", vec![filter])]);
                let list = ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build();
                for c in docker.list_containers(Some(list)).await.unwrap_or_default() {
                    let options = RemoveContainerOptionsBuilder::new()
                        .force(true)
                        .v(true)
                        .build();
                    let _ = docker
                        .remove_container(&c.id.unwrap_or_default(), Some(options))
                        .await;
                }
                let list = ListVolumesOptionsBuilder::new().filters(&filters).build();
                let volumes = docker
                    .list_volumes(Some(list))
                    .await
                    .map(|v| v.volumes.unwrap_or_default())
                    .unwrap_or_default();
                for v in volumes {
                    let _ = docker
                        .remove_volume(
                            &v.name,
                            None::<bollard::query_parameters::RemoveVolumeOptions>,
                        )
                        .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Reads `session` until its output contains `needle`; fails with everything read otherwise.
pub async fn read_until(session: &mut Pty, needle: &str) -> String {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(PATIENCE, async {
        while let Some(chunk) = session.next().await {
            seen.extend_from_slice(&chunk.unwrap());
            if String::from_utf8_lossy(&seen).contains(needle) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(found, "`{needle}` never appeared; output was: {text:?}");
    text
}

/// Polls `check` until it holds; fails the test after [`PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let polled = tokio::time::timeout(PATIENCE, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(polled.is_ok(), "gave up waiting for {what}");
}
