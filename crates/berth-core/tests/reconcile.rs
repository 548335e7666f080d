//! Reconciliation after the server is SIGKILLed while workspaces run.
//!
//! This test has no libtest harness: the same binary is the "server" (a child process that
//! starts workspaces and is then killed) and the test itself (the parent), chosen by an
//! environment variable.
#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use berth_core::StartOptions;
use berth_runtime::{ContainerId, ContainerRuntime, ContainerSpec, ContainerState, IDLE_COMMAND};
use berth_store::WorkspaceState;
use berth_types::WorkspaceId;
use common::{Harness, TestPolicy, plan, user};

const CHILD: &str = "BERTH_RECONCILE_CHILD";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Ok(spec) = std::env::var(CHILD) {
        let (dir, instance) = spec.split_once('|').unwrap();
        runtime.block_on(child(dir.into(), instance.to_owned()));
    } else {
        runtime.block_on(parent());
        println!("1 passed, 0 failed");
    }
}

/// The "server": starts workspaces, reports their ids, then waits to be killed.
async fn child(dir: std::path::PathBuf, instance: String) {
    let h = Harness::open(TestPolicy::with([(plan("base"), 0)]), dir, instance).await;
    let ivy = user("ivy");
    let keep = h
        .manager
        .start(&ivy, "base", &StartOptions::default())
        .await
        .unwrap();
    let vanish = h
        .manager
        .start(&ivy, "base", &StartOptions::default())
        .await
        .unwrap();
    let parked = h
        .manager
        .start(
            &ivy,
            "base",
            &StartOptions {
                persist: Some(true),
                network: None,
            },
        )
        .await
        .unwrap();
    h.manager.stop(parked.id, "stopped by ivy").await.unwrap();
    println!("keep {}", keep.id);
    println!("vanish {}", vanish.id);
    println!("parked {}", parked.id);
    println!("ready");
    std::future::pending::<()>().await;
}

async fn parent() {
    let tmp = tempfile::tempdir().unwrap();
    let instance = format!("test-{}", &WorkspaceId::random().to_string()[..8]);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, format!("{}|{instance}", tmp.path().display()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ids = BTreeMap::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "ready" {
            break;
        }
        let (name, id) = line.split_once(' ').unwrap();
        ids.insert(name.to_owned(), id.parse::<WorkspaceId>().unwrap());
    }
    assert_eq!(ids.len(), 3, "the child started its workspaces: {ids:?}");

    let h = Harness::open(
        TestPolicy::with([(plan("base"), 0)]),
        tmp.path().to_owned(),
        instance.clone(),
    )
    .await;
    // While the server is down: a container it never recorded appears, and one of its
    // containers disappears.
    let mut orphan = ContainerSpec::new(format!("berth-orphan-{instance}"), common::IMAGE);
    orphan.command = Some(IDLE_COMMAND.iter().map(|s| (*s).to_owned()).collect());
    orphan
        .labels
        .insert("berth.instance".into(), instance.clone());
    let orphan = h.runtime.create(&orphan).await.unwrap();
    let vanished = h
        .manager
        .get(ids["vanish"])
        .await
        .unwrap()
        .container_id
        .unwrap();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    h.runtime.remove(&ContainerId::new(vanished)).await.unwrap();

    let report = h.manager.reconcile().await.unwrap();
    assert_eq!(report.adopted, vec![ids["keep"]]);
    assert_eq!(report.stopped, vec![ids["vanish"]]);
    assert_eq!(report.removed, vec![format!("berth-orphan-{instance}")]);
    assert_eq!(
        h.runtime.inspect(&orphan).await.unwrap(),
        ContainerState::Missing
    );

    let keep = h.manager.get(ids["keep"]).await.unwrap();
    assert_eq!(keep.state, WorkspaceState::Running);
    assert_eq!(keep.state_reason, "running; adopted at start-up");
    let vanish = h.manager.get(ids["vanish"]).await.unwrap();
    assert_eq!(vanish.state, WorkspaceState::Stopped);
    assert_eq!(vanish.state_reason, "container gone while Berth was down");
    let parked = h.manager.get(ids["parked"]).await.unwrap();
    assert_eq!(parked.state, WorkspaceState::Stopped);

    // The engine agrees: the adopted workspace runs, the parked one is kept stopped, nothing else.
    let containers = h.containers().await;
    let states: BTreeMap<String, ContainerState> = containers
        .iter()
        .map(|c| (c.labels["berth.workspace"].clone(), c.state))
        .collect();
    assert_eq!(states.len(), 2, "{states:?}");
    assert_eq!(states[&keep.id.to_string()], ContainerState::Running);
    assert!(
        matches!(
            states[&parked.id.to_string()],
            ContainerState::Stopped { .. }
        ),
        "{states:?}"
    );
    // The adopted workspace is usable.
    assert_eq!(common::run(&h, keep.id, "echo alive").await, "alive\n");
    // A second reconciliation finds nothing to do.
    let again = h.manager.reconcile().await.unwrap();
    assert!(
        again.removed.is_empty() && again.stopped.is_empty(),
        "{again:?}"
    );
    h.manager.delete(parked.id, "cleanup").await.unwrap();
    let _ = Command::new("docker")
        .args(["volume", "rm", "-f", "berth-ivy-base-data"])
        .output();
}
