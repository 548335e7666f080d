//! The engine watcher over a fake runtime (the real engine cannot be restarted under the other
//! tests): an event settles its workspace, and when the event stream breaks the watcher
//! reconnects and reconciles, so a container that vanished meanwhile still stops its workspace.
//! A workspace the engine refuses to inspect is reported, and neither stops the others being
//! settled nor the watcher following events. A pool container that died before its claim was
//! recorded does not leave its workspace `running`.
#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

mod common;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use berth_core::{StartOptions, Workspaces};
use berth_runtime::{
    ContainerEvent, ContainerEventKind, ContainerEvents, ContainerId, ContainerInfo,
    ContainerRuntime, ContainerSpec, ContainerState, ExecSpec, Result, RuntimeError,
};
use berth_store::{Workspace, WorkspaceState};
use berth_terminal::Pty;
use berth_types::WorkspaceId;
use common::{TestPolicy, plan, settings, user};
use futures_channel::mpsc;
use futures_util::StreamExt;

/// Containers in memory; each `events` call hands out the next queued stream (then one that
/// never ends), remembering its `since`.
#[derive(Default)]
struct FakeEngine {
    containers: Mutex<BTreeMap<ContainerId, ContainerInfo>>,
    streams: Mutex<VecDeque<ContainerEvents>>,
    connections: Mutex<Vec<Option<SystemTime>>>,
    /// Containers whose inspection the engine answers with a 500.
    refused: Mutex<HashSet<ContainerId>>,
}

impl std::fmt::Debug for FakeEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeEngine").finish_non_exhaustive()
    }
}

impl FakeEngine {
    fn set_state(&self, id: &ContainerId, state: ContainerState) {
        if let Some(c) = self.containers.lock().unwrap().get_mut(id) {
            c.state = state;
        }
    }
}

#[async_trait]
impl ContainerRuntime for FakeEngine {
    async fn create(&self, spec: &ContainerSpec) -> Result<ContainerId> {
        let mut containers = self.containers.lock().unwrap();
        let id = ContainerId::new(format!("c{}", containers.len() + 1));
        let mut labels = spec.labels.clone();
        labels.insert("berth.managed".into(), "true".into());
        let info = ContainerInfo {
            id: id.clone(),
            name: spec.name.clone(),
            image: spec.image.clone(),
            labels,
            state: ContainerState::Stopped { exit_code: None },
        };
        containers.insert(id.clone(), info);
        Ok(id)
    }
    async fn start(&self, id: &ContainerId) -> Result<()> {
        self.set_state(id, ContainerState::Running);
        Ok(())
    }
    async fn stop(&self, id: &ContainerId, _: Duration) -> Result<()> {
        self.set_state(id, ContainerState::Stopped { exit_code: Some(0) });
        Ok(())
    }
    async fn remove(&self, id: &ContainerId) -> Result<()> {
        self.containers.lock().unwrap().remove(id);
        Ok(())
    }
    async fn purge_volumes(&self, _: &BTreeMap<String, String>) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    async fn inspect(&self, id: &ContainerId) -> Result<ContainerState> {
        if self.refused.lock().unwrap().contains(id) {
            return Err(RuntimeError::Engine {
                operation: "inspect",
                status: 500,
                message: "the fake refuses".into(),
            });
        }
        let containers = self.containers.lock().unwrap();
        Ok(containers
            .get(id)
            .map_or(ContainerState::Missing, |c| c.state))
    }
    async fn list(&self, labels: &BTreeMap<String, String>) -> Result<Vec<ContainerInfo>> {
        let containers = self.containers.lock().unwrap();
        Ok(containers
            .values()
            .filter(|c| labels.iter().all(|(k, v)| c.labels.get(k) == Some(v)))
            .cloned()
            .collect())
    }
    fn events(&self, _: &BTreeMap<String, String>, since: Option<SystemTime>) -> ContainerEvents {
        self.connections.lock().unwrap().push(since);
        self.streams
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| futures_util::stream::pending().boxed())
    }
    async fn exec(&self, _: &ContainerId, _: ExecSpec) -> Result<Pty> {
        Err(RuntimeError::InvalidSpec(
            "the fake runs no processes".into(),
        ))
    }
}

/// Polls the row until it is `stopped`, failing after 30 s with the last row seen.
async fn until_stopped(manager: &Workspaces, id: WorkspaceId) -> Workspace {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = manager.get(id).await.unwrap();
        if row.state == WorkspaceState::Stopped {
            return row;
        }
        assert!(Instant::now() < deadline, "never stopped: {row:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn events_settle_workspaces_and_a_broken_stream_is_reconnected_and_reconciled() {
    let tmp = tempfile::tempdir().unwrap();
    let store = berth_store::open(tmp.path().join("berth.db").to_str().unwrap())
        .await
        .unwrap();
    let engine = Arc::new(FakeEngine::default());
    let (first, mut first_stream) = mpsc::unbounded::<Result<ContainerEvent>>();
    // Polled once the watcher's first pass is done.
    let watching = Arc::new(AtomicBool::new(false));
    let polled = Arc::clone(&watching);
    let first_stream = futures_util::stream::poll_fn(move |cx| {
        polled.store(true, Ordering::SeqCst);
        first_stream.poll_next_unpin(cx)
    });
    engine
        .streams
        .lock()
        .unwrap()
        .push_back(first_stream.boxed());
    let manager = Workspaces::new(
        engine.clone(),
        store,
        TestPolicy::with([(plan("base"), 0)]),
        settings("fake"),
    );
    let ivy = user("ivy");
    let killed = manager
        .start(&ivy, "base", &StartOptions::default())
        .await
        .unwrap();
    let vanished = manager
        .start(&ivy, "base", &StartOptions::default())
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let watcher = {
        let manager = manager.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            manager
                .watch_engine(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await;
        })
    };

    let deadline = Instant::now() + Duration::from_secs(30);
    while !watching.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the watcher never followed the events"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A kill, reported by the engine (the pass is over: only the event can stop the workspace).
    let container = ContainerId::new(killed.container_id.clone().unwrap());
    engine.set_state(
        &container,
        ContainerState::Stopped {
            exit_code: Some(137),
        },
    );
    let labels = engine.containers.lock().unwrap()[&container].labels.clone();
    first
        .unbounded_send(Ok(ContainerEvent {
            id: container.clone(),
            labels,
            kind: ContainerEventKind::Died {
                exit_code: Some(137),
            },
        }))
        .unwrap();
    let row = until_stopped(&manager, killed.id).await;
    assert_eq!(row.state_reason, "container exited (code 137)");
    assert_eq!(
        engine.inspect(&container).await.unwrap(),
        ContainerState::Missing,
        "an ephemeral workspace's container is removed as on a stop"
    );

    // The engine goes away, and a container vanishes with no event anyone could see.
    let container = ContainerId::new(vanished.container_id.clone().unwrap());
    engine.remove(&container).await.unwrap();
    drop(first);
    let row = until_stopped(&manager, vanished.id).await;
    assert_eq!(
        row.state_reason, "container removed outside Berth",
        "no event came: the pass after reconnecting saw it"
    );
    let connections = engine.connections.lock().unwrap().clone();
    assert_eq!(connections.len(), 2, "reconnected once: {connections:?}");
    assert!(
        connections.iter().all(Option::is_some),
        "every connection asks for the events since just before it: {connections:?}"
    );

    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(10), watcher)
        .await
        .unwrap()
        .unwrap();
}

async fn store() -> (tempfile::TempDir, Arc<dyn berth_store::Store>) {
    let tmp = tempfile::tempdir().unwrap();
    let store = berth_store::open(tmp.path().join("berth.db").to_str().unwrap())
        .await
        .unwrap();
    (tmp, store)
}

fn container_of(workspace: &Workspace) -> ContainerId {
    ContainerId::new(workspace.container_id.clone().unwrap())
}

#[tokio::test]
async fn a_workspace_the_engine_refuses_to_inspect_does_not_stop_the_watcher_following_events() {
    let (_tmp, store) = store().await;
    let engine = Arc::new(FakeEngine::default());
    let (events, stream) = mpsc::unbounded::<Result<ContainerEvent>>();
    let watching = Arc::new(AtomicBool::new(false));
    let polled = Arc::clone(&watching);
    let mut stream = stream;
    let stream = futures_util::stream::poll_fn(move |cx| {
        polled.store(true, Ordering::SeqCst);
        stream.poll_next_unpin(cx)
    });
    engine.streams.lock().unwrap().push_back(stream.boxed());
    let manager = Workspaces::new(
        engine.clone(),
        store,
        TestPolicy::with([(plan("base"), 0)]),
        settings("fake"),
    );
    let ivy = user("ivy");
    let stuck = manager
        .start(&ivy, "base", &StartOptions::default())
        .await
        .unwrap();
    let other = manager
        .start(&ivy, "base", &StartOptions::default())
        .await
        .unwrap();
    engine.refused.lock().unwrap().insert(container_of(&stuck));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let watcher = {
        let manager = manager.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            manager
                .watch_engine(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await;
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !watching.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "a workspace the pass could not settle kept the watcher from following events"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let container = container_of(&other);
    engine.set_state(&container, ContainerState::Stopped { exit_code: Some(1) });
    let labels = engine.containers.lock().unwrap()[&container].labels.clone();
    events
        .unbounded_send(Ok(ContainerEvent {
            id: container.clone(),
            labels,
            kind: ContainerEventKind::Died { exit_code: Some(1) },
        }))
        .unwrap();
    let row = until_stopped(&manager, other.id).await;
    assert_eq!(row.state_reason, "container exited (code 1)");
    assert_eq!(
        engine.connections.lock().unwrap().len(),
        1,
        "the stream was kept, not dropped and reconnected"
    );
    assert_eq!(
        manager.get(stuck.id).await.unwrap().state,
        WorkspaceState::Running,
        "left as it was until the engine answers"
    );
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(10), watcher)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn start_up_reconciliation_reports_a_workspace_it_cannot_settle_and_settles_the_others() {
    let (_tmp, store) = store().await;
    let engine = Arc::new(FakeEngine::default());
    let manager = Workspaces::new(
        engine.clone(),
        store,
        TestPolicy::with([(plan("base"), 0)]),
        settings("fake"),
    );
    let ivy = user("ivy");
    let stuck = manager
        .start(&ivy, "base", &StartOptions::default())
        .await
        .unwrap();
    let gone = manager
        .start(&ivy, "base", &StartOptions::default())
        .await
        .unwrap();
    engine.refused.lock().unwrap().insert(container_of(&stuck));
    engine.remove(&container_of(&gone)).await.unwrap();

    let report = manager
        .reconcile()
        .await
        .expect("one workspace the engine refuses does not fail the pass");
    assert_eq!(report.stopped, vec![gone.id]);
    assert_eq!(report.unsettled.len(), 1, "{report:?}");
    assert_eq!(report.unsettled[0].workspace, Some(stuck.id));
    assert!(report.unsettled[0].error.contains("HTTP 500"), "{report:?}");
    let row = manager.get(gone.id).await.unwrap();
    assert_eq!(row.state_reason, "container gone while Berth was down");
}

#[tokio::test]
async fn a_pool_container_that_died_before_its_claim_was_recorded_does_not_run_its_workspace() {
    let (_tmp, store) = store().await;
    let engine = Arc::new(FakeEngine::default());
    let manager = Workspaces::new(
        engine.clone(),
        store,
        TestPolicy::with([(plan("base"), 1)]),
        settings("fake"),
    );
    manager.fill_pools().await.unwrap();
    let pooled: Vec<ContainerId> = engine.containers.lock().unwrap().keys().cloned().collect();
    assert_eq!(pooled.len(), 1, "the pool holds one container");
    // Its death's event came while no row named it (the claim was not yet recorded): no one
    // settled it.
    engine.set_state(
        &pooled[0],
        ContainerState::Stopped {
            exit_code: Some(137),
        },
    );

    let workspace = manager
        .start(&user("ivy"), "base", &StartOptions::default())
        .await
        .unwrap();
    assert_eq!(workspace.container_id.as_deref(), Some(pooled[0].as_str()));
    assert_eq!(
        workspace.state,
        WorkspaceState::Stopped,
        "recorded running with a dead container: {workspace:?}"
    );
    assert_eq!(workspace.state_reason, "container exited (code 137)");
    assert_eq!(
        manager.get(workspace.id).await.unwrap().state,
        WorkspaceState::Stopped
    );
}
