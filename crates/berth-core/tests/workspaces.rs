//! The workspace manager against the real Docker Engine: lifecycle, quotas, persistence,
//! terminals, shared sessions, idle culling, TTL and pools.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use berth_core::{StartOptions, WorkspaceError};
use berth_runtime::{ContainerId, ContainerRuntime, ContainerState};
use berth_store::WorkspaceState;
use berth_terminal::TtySize;
use common::{Harness, TestPolicy, plan, read_until, run, user};
use tokio::io::AsyncWriteExt;

const SIZE: TtySize = TtySize {
    cols: 100,
    rows: 30,
};

#[tokio::test]
async fn start_stop_delete_with_labels_and_idempotent_stop() {
    let h = Harness::new(TestPolicy::with([(plan("base"), 0)])).await;
    let alice = user("alice");
    let ws = h
        .manager
        .start(&alice, "base", &StartOptions::default())
        .await
        .unwrap();
    assert_eq!(ws.state, WorkspaceState::Running);
    assert_eq!(ws.owner, alice);
    let containers = h.containers().await;
    assert_eq!(containers.len(), 1);
    let labels = &containers[0].labels;
    assert_eq!(labels["berth.managed"], "true");
    assert_eq!(labels["berth.workspace"], ws.id.to_string());
    assert_eq!(labels["berth.owner"], "alice");
    assert_eq!(labels["berth.template"], "base");
    assert_eq!(containers[0].state, ContainerState::Running);
    assert_eq!(run(&h, ws.id, "echo $((6*7))").await.trim(), "42");

    let stopped = h.manager.stop(ws.id, "stopped by alice").await.unwrap();
    assert_eq!(stopped.state, WorkspaceState::Stopped);
    assert_eq!(stopped.state_reason, "stopped by alice");
    assert!(
        h.containers().await.is_empty(),
        "an ephemeral workspace loses its container"
    );
    let again = h.manager.stop(ws.id, "again").await.unwrap();
    assert_eq!(
        again.state,
        WorkspaceState::Stopped,
        "stopping twice is fine"
    );
    assert_eq!(
        again.state_reason, "stopped by alice",
        "and changes nothing"
    );

    let restarted = h.manager.start_existing(ws.id).await.unwrap();
    assert_eq!(restarted.state, WorkspaceState::Running);
    h.manager.delete(ws.id, "deleted by alice").await.unwrap();
    assert!(matches!(
        h.manager.get(ws.id).await,
        Err(WorkspaceError::NotFound)
    ));
    assert!(h.containers().await.is_empty());
    h.manager.delete(ws.id, "twice").await.unwrap_err();
}

#[tokio::test]
async fn refuses_unknown_templates_and_enforces_the_per_user_limit() {
    let h = Harness::new(TestPolicy::with([(plan("base"), 0)])).await;
    *h.policy.max_workspaces.lock().unwrap() = 1;
    let bob = user("bob");
    let err = h
        .manager
        .start(&bob, "nope", &StartOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, WorkspaceError::Forbidden(_)), "{err:?}");

    let first = h
        .manager
        .start(&bob, "base", &StartOptions::default())
        .await
        .unwrap();
    let err = h
        .manager
        .start(&bob, "base", &StartOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, WorkspaceError::QuotaExceeded { limit: 1 }),
        "{err:?}"
    );
    // Another user has their own quota.
    h.manager
        .start(&user("carol"), "base", &StartOptions::default())
        .await
        .unwrap();
    // A stopped workspace no longer counts.
    h.manager.stop(first.id, "done").await.unwrap();
    h.manager
        .start(&bob, "base", &StartOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_persistent_workspace_keeps_its_files_across_stop_and_start() {
    let h = Harness::new(TestPolicy::with([(plan("base"), 0)])).await;
    let dana = user("dana");
    let options = StartOptions {
        persist: Some(true),
        network: None,
    };
    let ws = h.manager.start(&dana, "base", &options).await.unwrap();
    assert!(ws.persistent);
    run(
        &h,
        ws.id,
        "echo kept > /data/file && echo root-kept > /root/file",
    )
    .await;
    h.manager.stop(ws.id, "stopped by dana").await.unwrap();
    assert_eq!(
        h.containers().await.len(),
        1,
        "a persistent workspace keeps its container"
    );
    h.manager.start_existing(ws.id).await.unwrap();
    assert_eq!(
        run(&h, ws.id, "cat /data/file /root/file").await,
        "kept\nroot-kept\n"
    );

    // Deleting it keeps the named volume for dana's next persistent workspace of the template.
    h.manager.delete(ws.id, "deleted").await.unwrap();
    let next = h.manager.start(&dana, "base", &options).await.unwrap();
    assert_eq!(run(&h, next.id, "cat /data/file").await, "kept\n");
    // An ephemeral one starts empty.
    let ephemeral = h
        .manager
        .start(&dana, "base", &StartOptions::default())
        .await
        .unwrap();
    assert_eq!(run(&h, ephemeral.id, "ls /data | wc -l").await.trim(), "0");
    h.manager.delete(next.id, "cleanup").await.unwrap();
    let _ = std::process::Command::new("docker")
        .args(["volume", "rm", "-f", "berth-dana-base-data"])
        .output();
}

#[tokio::test]
async fn terminals_echo_and_a_shared_workspace_shows_one_screen_to_everyone() {
    let mut shared = plan("pair");
    shared.shared = true;
    let h = Harness::new(TestPolicy::with([(plan("base"), 0), (shared, 0)])).await;
    let erin = user("erin");

    let ws = h
        .manager
        .start(&erin, "base", &StartOptions::default())
        .await
        .unwrap();
    let terminal = h.manager.open_terminal(ws.id, SIZE).await.unwrap();
    assert_eq!(
        h.manager
            .liveness(
                &h.manager.get(ws.id).await.unwrap(),
                time::OffsetDateTime::now_utc()
            )
            .attached,
        1
    );
    let (mut output, mut input, _control) = terminal.session.into_parts();
    input
        .write_all(b"echo \"$BERTH_USER-$((40+2))\"\n")
        .await
        .unwrap();
    read_until(&mut output, "erin-42").await;
    drop((output, input, terminal.attachment));
    let after = h.manager.liveness(
        &h.manager.get(ws.id).await.unwrap(),
        time::OffsetDateTime::now_utc(),
    );
    assert_eq!(after.attached, 0, "detaching counts down");

    let pair = h
        .manager
        .start(&erin, "pair", &StartOptions::default())
        .await
        .unwrap();
    let first = h.manager.open_terminal(pair.id, SIZE).await.unwrap();
    let (mut out1, mut in1, _c1) = first.session.into_parts();
    read_until(&mut out1, ":/# ").await;
    let second = h.manager.open_terminal(pair.id, SIZE).await.unwrap();
    let (mut out2, _in2, _c2) = second.session.into_parts();
    in1.write_all(b"echo shared-$((20+3))\n").await.unwrap();
    read_until(&mut out2, "shared-23").await;
    assert_eq!(
        run(&h, pair.id, "tmux list-clients -t berth | wc -l")
            .await
            .trim(),
        "2"
    );
}

#[tokio::test]
async fn a_shell_missing_from_the_image_falls_back_to_sh() {
    let mut odd = plan("odd");
    odd.shell = berth_types::template::Shell::new("/bin/zsh");
    let h = Harness::new(TestPolicy::with([(odd, 0)])).await;
    let ws = h
        .manager
        .start(&user("hal"), "odd", &StartOptions::default())
        .await
        .unwrap();
    let terminal = h.manager.open_terminal(ws.id, SIZE).await.unwrap();
    let (mut output, mut input, _control) = terminal.session.into_parts();
    input.write_all(b"echo \"shell=$0\"\n").await.unwrap();
    read_until(&mut output, "shell=/bin/sh").await;
}

#[tokio::test]
async fn idle_workspaces_are_stopped_unless_a_terminal_is_attached() {
    let mut short = plan("short");
    short.idle_timeout = Duration::from_secs(1);
    let h = Harness::new(TestPolicy::with([(short, 0)])).await;
    let fay = user("fay");
    let idle = h
        .manager
        .start(&fay, "short", &StartOptions::default())
        .await
        .unwrap();
    let busy = h
        .manager
        .start(&fay, "short", &StartOptions::default())
        .await
        .unwrap();
    let terminal = h.manager.open_terminal(busy.id, SIZE).await.unwrap();
    h.clock.advance(Duration::from_secs(2));

    let acted = h.manager.sweep().await.unwrap();
    assert_eq!(acted, vec![idle.id]);
    let idle = h.manager.get(idle.id).await.unwrap();
    assert_eq!(idle.state, WorkspaceState::Stopped);
    assert!(
        idle.state_reason.contains("idle for 1s"),
        "{}",
        idle.state_reason
    );
    let busy_now = h.manager.get(busy.id).await.unwrap();
    assert_eq!(busy_now.state, WorkspaceState::Running);
    let why = h.manager.liveness(&busy_now, h.manager.now());
    assert_eq!(why.reason, "1 terminal attached");

    // Once the terminal leaves, the idle clock runs from then.
    drop(terminal);
    assert!(h.manager.sweep().await.unwrap().is_empty(), "just left");
    h.clock.advance(Duration::from_secs(2));
    assert_eq!(h.manager.sweep().await.unwrap(), vec![busy.id]);

    // Activity is written to the store in batches.
    h.manager.flush_activity().await.unwrap();
    let stored = h.manager.get(busy.id).await.unwrap();
    assert!(stored.last_activity > busy.last_activity, "{stored:?}");

    // The sweep's stops are in the audit log as Berth's own, with the reason.
    let stops = h.audit("workspace.stop").await;
    assert_eq!(stops.len(), 2, "{stops:?}");
    for (entry, id) in stops.iter().zip([idle.id, busy.id]) {
        assert_eq!(entry["actor"], "(berth)");
        assert_eq!(entry["target"], id.to_string());
        assert_eq!(
            entry["details"]["reason"],
            "idle for 1s with no terminal attached"
        );
        assert_eq!(entry["details"]["owner"], "fay");
    }
}

#[tokio::test]
async fn the_ttl_stops_and_removes_even_persistent_workspaces() {
    let mut brief = plan("brief");
    brief.ttl = Some(Duration::from_secs(1));
    let h = Harness::new(TestPolicy::with([(brief, 0)])).await;
    let gus = user("gus");
    let ws = h
        .manager
        .start(
            &gus,
            "brief",
            &StartOptions {
                persist: Some(true),
                network: None,
            },
        )
        .await
        .unwrap();
    assert!(ws.expires_at.is_some());
    let alive = h.manager.liveness(&ws, h.manager.now());
    assert!(alive.reason.contains("TTL ends in"), "{}", alive.reason);
    assert!(h.manager.sweep().await.unwrap().is_empty(), "not yet");
    h.clock.advance(Duration::from_millis(1500));
    assert_eq!(h.manager.sweep().await.unwrap(), vec![ws.id]);
    let expired = h.manager.get(ws.id).await.unwrap();
    assert_eq!(expired.state, WorkspaceState::Stopped);
    assert!(
        expired.state_reason.starts_with("TTL reached"),
        "{}",
        expired.state_reason
    );
    assert!(h.containers().await.is_empty(), "the container is removed");
    let expiries = h.audit("workspace.expire").await;
    assert_eq!(expiries.len(), 1, "{expiries:?}");
    assert_eq!(expiries[0]["actor"], "(berth)");
    assert!(
        expiries[0]["details"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("TTL reached"),
        "{expiries:?}"
    );
    let _ = std::process::Command::new("docker")
        .args(["volume", "rm", "-f", "berth-gus-brief-data"])
        .output();
}

#[tokio::test]
async fn pool_containers_are_claimed_once_each_and_replaced() {
    let h = Harness::new(TestPolicy::with([(plan("pooled"), 2)])).await;
    h.manager.fill_pools().await.unwrap();
    assert_eq!(h.manager.pool_size("pooled"), 2);
    let fills = h.audit("pool.fill").await;
    assert_eq!(fills.len(), 1, "{fills:?}");
    assert_eq!(
        (
            &fills[0]["actor"],
            &fills[0]["target"],
            &fills[0]["details"]["added"]
        ),
        (
            &serde_json::json!("(berth)"),
            &serde_json::json!("pooled"),
            &serde_json::json!(2)
        )
    );
    h.manager.fill_pools().await.unwrap();
    assert_eq!(
        h.audit("pool.fill").await.len(),
        1,
        "a full pool is not audited again"
    );
    let pooled: HashSet<String> = h
        .containers()
        .await
        .into_iter()
        .map(|c| c.id.as_str().to_owned())
        .collect();
    assert_eq!(pooled.len(), 2);
    for container in &pooled {
        let out = h
            .runtime
            .exec(
                &ContainerId::new(container.clone()),
                berth_runtime::ExecSpec::command([
                    "sh",
                    "-c",
                    "ls -A /data /root | grep -v '^/' | grep -v '^$' | wc -l",
                ]),
            )
            .await
            .unwrap()
            .collect(4096)
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.output).trim().lines().last(),
            Some("2"),
            "only the image's dotfiles in /root; no user data"
        );
    }

    // Five users start at once: each gets a different container, two of them from the pool.
    let starts = (0..5).map(|i| {
        let manager = h.manager.clone();
        async move {
            manager
                .start(&user(&format!("u{i}")), "pooled", &StartOptions::default())
                .await
                .unwrap()
        }
    });
    let started = futures_util::future::join_all(starts).await;
    let ids: HashSet<String> = started
        .iter()
        .map(|w| w.container_id.clone().unwrap())
        .collect();
    assert_eq!(ids.len(), 5, "no container is handed to two users");
    assert_eq!(
        ids.intersection(&pooled).count(),
        2,
        "both pool containers were claimed"
    );

    // The first terminal of a claimed workspace is the pool container's waiting one: it starts
    // with the owner's environment, and the line that carried it is not echoed.
    for workspace in started
        .iter()
        .filter(|w| pooled.contains(w.container_id.as_ref().unwrap()))
    {
        let terminal = h.manager.open_terminal(workspace.id, SIZE).await.unwrap();
        let (mut output, mut input, control) = terminal.session.into_parts();
        input
            .write_all(b"echo \"u=$BERTH_USER w=$BERTH_WORKSPACE cols=$(tput cols)\"\n")
            .await
            .unwrap();
        let seen = read_until(
            &mut output,
            &format!("u={} w={} cols=100", workspace.owner, workspace.id),
        )
        .await;
        assert!(
            !seen.contains("BERTH_USER="),
            "the environment line is not echoed: {seen:?}"
        );
        drop((output, input, control));
    }

    // Replacements start in the background.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while h.manager.pool_size("pooled") < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the pool was not refilled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A persistent start never takes a pool container.
    let persistent = h
        .manager
        .start(
            &user("u9"),
            "pooled",
            &StartOptions {
                persist: Some(true),
                network: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(h.manager.pool_size("pooled"), 2);
    assert_eq!(persistent.state, WorkspaceState::Running);
    h.manager.delete(persistent.id, "cleanup").await.unwrap();
    let _ = std::process::Command::new("docker")
        .args(["volume", "rm", "-f", "berth-u9-pooled-data"])
        .output();

    // Shrinking the pool removes the surplus.
    h.policy
        .templates
        .lock()
        .unwrap()
        .get_mut("pooled")
        .unwrap()
        .1 = 0;
    h.manager.fill_pools().await.unwrap();
    assert_eq!(h.manager.pool_size("pooled"), 0);
    assert_eq!(h.containers().await.len(), 5);
}
