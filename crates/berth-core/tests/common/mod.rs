//! A workspace manager on the real Docker Engine (DOCKER_HOST) and a SQLite store in a temporary
//! directory, with a policy written in the test. Each test gets its own `berth.instance` label,
//! so tests running in parallel on one engine never see each other's containers; dropping the
//! [`Harness`] removes every container of its instance.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

pub mod asciicast;
pub mod fake;
pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_core::{
    Persistence, Plan, Policy, StartOptions, WorkspaceError, Workspaces, WorkspacesSettings,
};
use berth_runtime::{
    ContainerRuntime, ContainerSpec, DockerOptions, DockerRuntime, IDLE_COMMAND, NetworkMode,
    VolumeMount,
};
use berth_types::{Username, WorkspaceId};

pub const IMAGE: &str = "berth-test/base";

const HOW_TO_START: &str = "start the test Docker Engine and load the test image: \
    `scripts/docker-engine.sh start && eval \"$(scripts/docker-engine.sh env)\" && scripts/test-image.sh` \
    (or run the tests through `make test`)";

pub fn user(name: &str) -> Username {
    Username::new(name).unwrap()
}

/// A plan for `template` on the test image, with a volume at /data.
pub fn plan(template: &str) -> Plan {
    let mut spec = ContainerSpec::new("", IMAGE);
    spec.command = Some(IDLE_COMMAND.iter().map(|s| (*s).to_owned()).collect());
    spec.limits.memory_bytes = 256 * 1024 * 1024;
    spec.limits.tmp_bytes = 16 * 1024 * 1024;
    spec.volumes.push(VolumeMount {
        name: "data".into(),
        target: "/data".into(),
        persistent: false,
        read_only: false,
    });
    Plan {
        template: template.into(),
        spec,
        shell: berth_types::template::Shell::default(),
        shared: false,
        persistence: Persistence::Ephemeral,
        network: NetworkMode::None,
        idle_timeout: Duration::from_secs(900),
        ttl: None,
        record: false,
        max_per_user: None,
    }
}

/// Templates by name with their pool sizes; every user may use every template.
#[derive(Debug, Default)]
pub struct TestPolicy {
    pub templates: Mutex<HashMap<String, (Plan, u32)>>,
    pub max_workspaces: Mutex<u32>,
}

impl TestPolicy {
    pub fn with(plans: impl IntoIterator<Item = (Plan, u32)>) -> Arc<Self> {
        Arc::new(Self {
            templates: Mutex::new(
                plans
                    .into_iter()
                    .map(|(p, n)| (p.template.clone(), (p, n)))
                    .collect(),
            ),
            max_workspaces: Mutex::new(10),
        })
    }
}

impl Policy for TestPolicy {
    fn plan(
        &self,
        _user: &Username,
        template: &str,
        options: &StartOptions,
    ) -> Result<Plan, WorkspaceError> {
        let mut plan = self
            .templates
            .lock()
            .unwrap()
            .get(template)
            .map(|(p, _)| p.clone())
            .ok_or_else(|| {
                WorkspaceError::Forbidden(format!("you may not use template {template:?}"))
            })?;
        if options.persist == Some(true) {
            plan.persistence = Persistence::Persistent;
        }
        Ok(plan)
    }

    fn plan_existing(
        &self,
        _owner: &Username,
        template: &str,
        persistence: Persistence,
        _network: &str,
    ) -> Option<Plan> {
        let mut plan = self
            .templates
            .lock()
            .unwrap()
            .get(template)
            .map(|(p, _)| p.clone())?;
        plan.persistence = persistence;
        Some(plan)
    }

    fn max_workspaces(&self, _user: &Username) -> u32 {
        *self.max_workspaces.lock().unwrap()
    }

    fn pools(&self) -> Vec<(Plan, u32)> {
        self.templates
            .lock()
            .unwrap()
            .values()
            .filter(|(_, n)| *n > 0)
            .cloned()
            .collect()
    }
}

pub async fn docker() -> Arc<DockerRuntime> {
    if std::env::var_os("DOCKER_HOST").is_none() {
        panic!("DOCKER_HOST is not set: {HOW_TO_START}");
    }
    match DockerRuntime::connect_env(DockerOptions::default()).await {
        Ok(runtime) => Arc::new(runtime),
        Err(err) => panic!("cannot reach the test Docker Engine ({err}): {HOW_TO_START}"),
    }
}

/// A manager with its own instance label, database and policy.
pub struct Harness {
    pub manager: Workspaces,
    pub runtime: Arc<DockerRuntime>,
    pub policy: Arc<TestPolicy>,
    pub instance: String,
    pub dir: std::path::PathBuf,
    /// The manager's clock: tests of timeouts move it instead of sleeping.
    pub clock: berth_core::ManualClock,
    _tmp: Option<tempfile::TempDir>,
}

pub fn settings(instance: &str) -> WorkspacesSettings {
    WorkspacesSettings {
        stop_timeout: Duration::from_secs(2),
        instance: instance.to_owned(),
        ..WorkspacesSettings::default()
    }
}

impl Harness {
    pub async fn new(policy: Arc<TestPolicy>) -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let instance = format!("test-{}", &WorkspaceId::random().to_string()[..8]);
        let mut harness = Self::open(policy, tmp.path().to_owned(), instance).await;
        harness._tmp = Some(tmp);
        harness
    }

    /// A manager over an existing database and instance (after a restart).
    pub async fn open(
        policy: Arc<TestPolicy>,
        dir: std::path::PathBuf,
        instance: String,
    ) -> Harness {
        let runtime = docker().await;
        let store = berth_store::open(dir.join("berth.db").to_str().unwrap())
            .await
            .unwrap();
        let clock = berth_core::ManualClock::new();
        let settings = WorkspacesSettings {
            clock: Arc::new(clock.clone()),
            ..settings(&instance)
        };
        let manager = Workspaces::new(runtime.clone(), store, policy.clone(), settings);
        Harness {
            manager,
            runtime,
            policy,
            instance,
            dir,
            clock,
            _tmp: None,
        }
    }

    /// The containers of this instance, by name.
    pub async fn containers(&self) -> Vec<berth_runtime::ContainerInfo> {
        let labels = BTreeMap::from([("berth.instance".to_owned(), self.instance.clone())]);
        let mut list = self.runtime.list(&labels).await.unwrap();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Remove everything this test created, whatever happened; the CLI needs no runtime.
        let filter = format!("label=berth.instance={}", self.instance);
        if let Ok(out) = std::process::Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
        {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if !ids.is_empty() {
                let _ = std::process::Command::new("docker")
                    .args(["rm", "-f", "-v"])
                    .args(&ids)
                    .output();
            }
        }
        let _ = std::process::Command::new("docker")
            .args(["volume", "prune", "-f", "--filter", &filter])
            .output();
    }
}

/// Runs `command` in the workspace's container and returns its output.
pub async fn run(harness: &Harness, id: WorkspaceId, command: &str) -> String {
    let workspace = harness.manager.get(id).await.unwrap();
    let container = berth_runtime::ContainerId::new(workspace.container_id.unwrap());
    let session = harness
        .runtime
        .exec(
            &container,
            berth_runtime::ExecSpec::command(["sh", "-c", command]),
        )
        .await
        .unwrap();
    let outcome = session.collect(1 << 20).await.unwrap();
    assert_eq!(
        outcome.exit_code,
        0,
        "{command}: {}",
        String::from_utf8_lossy(&outcome.output)
    );
    String::from_utf8_lossy(&outcome.output).into_owned()
}

/// Reads a terminal until `needle` shows up, failing after 30 s with what was read.
pub async fn read_until(output: &mut berth_terminal::PtyOutput, needle: &str) -> String {
    use futures_util::StreamExt;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, output.next()).await {
            Ok(Some(Ok(chunk))) => {
                seen.extend_from_slice(&chunk);
                if String::from_utf8_lossy(&seen).contains(needle) {
                    return String::from_utf8_lossy(&seen).into_owned();
                }
            }
            other => panic!(
                "no {needle:?} in terminal output ({other:?}); read: {:?}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
}

/// The audit entries of `action` in `store`, oldest first.
pub async fn audit_entries(
    store: &dyn berth_store::Store,
    action: &str,
) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let query: berth_store::TableQuery = serde_json::from_value(serde_json::json!({
        "table": "audit",
        "filters": [{"column": "action", "op": "eq", "value": action}],
        "sort": [{"column": "id"}],
    }))
    .unwrap();
    store.query_table(&query, None).await.unwrap().rows
}

impl Harness {
    /// The audit entries of `action` in the manager's store, oldest first.
    pub async fn audit(&self, action: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
        audit_entries(self.manager.store().as_ref(), action).await
    }
}
