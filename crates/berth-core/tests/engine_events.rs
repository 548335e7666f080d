//! The engine's events while Berth runs: a container killed or removed behind Berth's back
//! stops its workspace; Berth's own stops are not disturbed by their events.
#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use berth_core::StartOptions;
use berth_store::{Workspace, WorkspaceState};
use berth_types::WorkspaceId;
use common::{Harness, TestPolicy, plan, run, user};

/// `docker ARGS` on the test engine (DOCKER_HOST), which must succeed.
fn docker(args: &[&str]) {
    let output = Command::new("docker").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Polls the row until it is `stopped`, failing after 30 s with the last row seen.
async fn until_stopped(h: &Harness, id: WorkspaceId) -> Workspace {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = h.manager.get(id).await.unwrap();
        if row.state == WorkspaceState::Stopped {
            return row;
        }
        assert!(
            Instant::now() < deadline,
            "the workspace never became stopped: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_container_killed_or_removed_outside_berth_stops_its_workspace() {
    let h = Harness::new(TestPolicy::with([(plan("base"), 0)])).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let watcher = {
        let manager = h.manager.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            manager
                .watch_engine(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await;
        })
    };
    let kim = user("kim");
    let start = |persist| {
        let manager = h.manager.clone();
        let kim = kim.clone();
        async move {
            let options = StartOptions {
                persist: Some(persist),
                network: None,
            };
            manager.start(&kim, "base", &options).await.unwrap()
        }
    };
    let killed = start(false).await;
    let removed = start(true).await;
    let own = start(false).await;
    let killed_container = killed.container_id.clone().unwrap();
    docker(&["kill", &killed_container]);
    docker(&["rm", "-f", removed.container_id.as_deref().unwrap()]);
    // Berth's own stop, with its events arriving while and after it runs.
    h.manager.stop(own.id, "stopped by kim").await.unwrap();

    let row = until_stopped(&h, killed.id).await;
    assert_eq!(row.state_reason, "container exited (code 137)");
    let row = until_stopped(&h, removed.id).await;
    assert_eq!(row.state_reason, "container removed outside Berth");
    let names: Vec<String> = h.containers().await.into_iter().map(|c| c.name).collect();
    assert!(
        names.is_empty(),
        "the killed ephemeral container is removed as a stop would: {names:?}"
    );
    let own = h.manager.get(own.id).await.unwrap();
    assert_eq!(
        (own.state, own.state_reason.as_str()),
        (WorkspaceState::Stopped, "stopped by kim"),
        "the events of Berth's own stop change nothing"
    );
    let audited: Vec<(String, String)> = h
        .audit("workspace.stop")
        .await
        .iter()
        .map(|e| {
            (
                e["target"].as_str().unwrap_or_default().to_owned(),
                e["details"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    for (id, reason) in [
        (killed.id, "container exited (code 137)"),
        (removed.id, "container removed outside Berth"),
    ] {
        assert!(
            audited.contains(&(id.to_string(), reason.to_owned())),
            "{audited:?}"
        );
    }

    // Both start again: the persistent one from its volume, the ephemeral one afresh.
    for id in [killed.id, removed.id] {
        let again = h.manager.start_existing(id).await.unwrap();
        assert_eq!(again.state, WorkspaceState::Running);
        assert_eq!(run(&h, id, "echo back").await, "back\n");
    }
    assert_ne!(
        h.manager
            .get(killed.id)
            .await
            .unwrap()
            .container_id
            .unwrap(),
        killed_container
    );
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(10), watcher)
        .await
        .expect("the watcher ends with its shutdown")
        .unwrap();
    h.manager.delete(removed.id, "cleanup").await.unwrap();
    let _ = Command::new("docker")
        .args(["volume", "rm", "-f", "berth-kim-base-data"])
        .output();
}
