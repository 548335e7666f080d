//! Container lifecycle, hardening, volumes and errors against the real Docker Engine.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use berth_runtime::{
    BindMount, ContainerId, ContainerRuntime, ContainerState, NetworkMode, RuntimeError,
    VolumeMount,
};
use common::{Scope, raw_client};

#[tokio::test]
async fn smoke_echo_ready_in_the_test_image() {
    let scope = Scope::new("smoke").await;
    let id = scope.running(&scope.spec("c")).await;
    assert_eq!(
        scope.run(&id, &["echo", "ready"]).await,
        ("ready\n".to_owned(), 0)
    );
}

#[tokio::test]
async fn created_container_carries_the_hardening_defaults() {
    let scope = Scope::new("harden").await;
    let mut spec = scope.spec("c");
    spec.hostname = Some("box".into());
    spec.labels.insert("berth.owner".into(), "ann".into());
    let id = scope.running(&spec).await;

    let inspected = raw_client(&scope.rt)
        .inspect_container(id.as_str(), None)
        .await
        .unwrap();
    let host = inspected.host_config.unwrap();
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    assert!(host.cap_add.unwrap_or_default().is_empty());
    let security = host.security_opt.unwrap_or_default();
    assert!(
        security.contains(&"no-new-privileges".to_owned()),
        "{security:?}"
    );
    assert!(
        !security.iter().any(|o| o.contains("seccomp")),
        "seccomp must keep the default profile: {security:?}"
    );
    assert_eq!(host.privileged, Some(false));
    assert_eq!(host.memory, Some(1 << 30));
    assert_eq!(host.memory_swap, Some(1 << 30));
    assert_eq!(host.pids_limit, Some(512));
    assert_eq!(host.init, Some(true));
    assert_eq!(host.readonly_rootfs, Some(false));
    let log = host.log_config.clone().expect("a log configuration");
    assert_eq!(log.typ.as_deref(), Some("json-file"));
    let log_options = log.config.expect("log options");
    assert_eq!(
        (
            log_options["max-size"].as_str(),
            log_options["max-file"].as_str()
        ),
        ("10m", "2")
    );
    assert_eq!(host.network_mode.as_deref(), Some("none"));
    let tmp = &host.tmpfs.unwrap()["/tmp"];
    assert!(
        tmp.contains("nosuid") && tmp.contains("nodev") && tmp.contains("size="),
        "{tmp}"
    );
    let config = inspected.config.unwrap();
    assert_eq!(config.hostname.as_deref(), Some("box"));
    let labels = config.labels.unwrap();
    assert_eq!(labels["berth.managed"], "true");
    assert_eq!(labels["berth.owner"], "ann");

    // And as the kernel sees it from inside.
    let (status, _) = scope.run(&id, &["cat", "/proc/self/status"]).await;
    assert!(status.contains("CapEff:\t0000000000000000"), "{status}");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    assert!(
        status.contains("Seccomp:\t2"),
        "seccomp filter not active: {status}"
    );
    let (init, _) = scope.run(&id, &["cat", "/proc/1/cmdline"]).await;
    assert!(init.starts_with("/sbin/docker-init"), "PID 1 is {init:?}");
    let (mounts, _) = scope.run(&id, &["cat", "/proc/mounts"]).await;
    let tmp_line = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some("/tmp"))
        .unwrap();
    assert!(
        tmp_line.starts_with("tmpfs") && tmp_line.contains("nosuid") && tmp_line.contains("nodev"),
        "{tmp_line}"
    );
    assert_eq!(scope.run(&id, &["hostname"]).await.0, "box\n");
}

#[tokio::test]
async fn explicit_spec_fields_loosen_or_tighten_the_defaults() {
    let scope = Scope::new("limits").await;
    let mut spec = scope.spec("c");
    spec.limits.memory_bytes = 64 << 20;
    spec.limits.tmp_bytes = 8 << 20;
    spec.limits.pids = 64;
    spec.limits.nano_cpus = Some(500_000_000);
    spec.hardening.cap_add = vec!["CHOWN".into()];
    spec.hardening.read_only_root = true;
    spec.user = Some("nobody".into());
    spec.working_dir = Some("/tmp".into());
    spec.env.insert("GREETING", "hello there");
    spec.network = NetworkMode::Host;
    let id = scope.running(&spec).await;

    let host = raw_client(&scope.rt)
        .inspect_container(id.as_str(), None)
        .await
        .unwrap()
        .host_config
        .unwrap();
    assert_eq!(
        (
            host.memory,
            host.memory_swap,
            host.pids_limit,
            host.nano_cpus
        ),
        (Some(64 << 20), Some(64 << 20), Some(64), Some(500_000_000))
    );
    assert_eq!(host.cap_add, Some(vec!["CHOWN".to_owned()]));
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(host.network_mode.as_deref(), Some("host"));

    assert_eq!(scope.run(&id, &["id", "-un"]).await.0, "nobody\n");
    assert_eq!(scope.run(&id, &["pwd"]).await.0, "/tmp\n");
    assert_eq!(
        scope.run(&id, &["sh", "-c", "echo \"$GREETING\""]).await.0,
        "hello there\n"
    );
    let (out, code) = scope.run(&id, &["touch", "/root-is-read-only"]).await;
    assert_ne!(code, 0, "read-only root accepted a write: {out}");
    assert_eq!(scope.run(&id, &["touch", "/tmp/writable"]).await.1, 0);
}

#[tokio::test]
async fn lifecycle_create_start_stop_start_remove() {
    let scope = Scope::new("life").await;
    let rt = &scope.rt;
    let id = rt.create(&scope.spec("c")).await.unwrap();
    assert_eq!(
        rt.inspect(&id).await.unwrap(),
        ContainerState::Stopped { exit_code: None }
    );
    rt.start(&id).await.unwrap();
    rt.start(&id).await.unwrap(); // already running: nothing to do
    assert_eq!(rt.inspect(&id).await.unwrap(), ContainerState::Running);

    rt.stop(&id, Duration::from_secs(10)).await.unwrap();
    // docker-init forwards SIGTERM to sleep, which dies of it: 128 + 15.
    assert_eq!(
        rt.inspect(&id).await.unwrap(),
        ContainerState::Stopped {
            exit_code: Some(143)
        }
    );
    rt.stop(&id, Duration::from_secs(10)).await.unwrap(); // already stopped
    let err = rt
        .exec(&id, berth_runtime::ExecSpec::command(["true"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::ContainerNotRunning { .. }),
        "{err:?}"
    );

    rt.start(&id).await.unwrap();
    assert_eq!(rt.inspect(&id).await.unwrap(), ContainerState::Running);
    rt.remove(&id).await.unwrap(); // running: removed anyway
    assert_eq!(rt.inspect(&id).await.unwrap(), ContainerState::Missing);
    rt.remove(&id).await.unwrap(); // already gone

    let missing = ContainerId::new(scope.name("never-created"));
    assert!(matches!(
        rt.start(&missing).await,
        Err(RuntimeError::ContainerMissing { .. })
    ));
    assert!(matches!(
        rt.stop(&missing, Duration::from_secs(1)).await,
        Err(RuntimeError::ContainerMissing { .. })
    ));
    assert!(matches!(
        rt.exec(&missing, berth_runtime::ExecSpec::command(["true"]))
            .await,
        Err(RuntimeError::ContainerMissing { .. })
    ));
}

#[tokio::test]
async fn list_finds_managed_containers_by_label_with_their_state() {
    let scope = Scope::new("list").await;
    let mut one = scope.spec("one");
    one.labels.insert("berth.workspace".into(), "ws-1".into());
    let mut two = scope.spec("two");
    two.labels.insert("berth.workspace".into(), "ws-2".into());
    let one_id = scope.running(&one).await;
    let two_id = scope.rt.create(&two).await.unwrap();

    let mut all = scope.rt.list(&scope.labels()).await.unwrap();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(
        (&all[0].id, all[0].name.as_str(), all[0].state),
        (&one_id, one.name.as_str(), ContainerState::Running)
    );
    assert_eq!(
        (&all[1].id, all[1].state),
        (&two_id, ContainerState::Stopped { exit_code: None })
    );
    assert_eq!(all[1].labels["berth.managed"], "true");
    assert_eq!(all[1].labels["berth.workspace"], "ws-2");
    assert_eq!(all[1].image, common::IMAGE);

    let mut only_two = scope.labels();
    only_two.insert("berth.workspace".into(), "ws-2".into());
    let found = scope.rt.list(&only_two).await.unwrap();
    assert_eq!(
        found.iter().map(|c| &c.id).collect::<Vec<_>>(),
        vec![&two_id]
    );
    let none = scope
        .rt
        .list(&BTreeMap::from([(
            "berth.test".to_owned(),
            scope.name("nobody"),
        )]))
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
}

#[tokio::test]
async fn second_container_with_the_same_name_is_a_name_conflict() {
    let scope = Scope::new("conflict").await;
    let spec = scope.spec("c");
    scope.rt.create(&spec).await.unwrap();
    let err = scope.rt.create(&spec).await.unwrap_err();
    assert!(
        matches!(&err, RuntimeError::NameConflict { name } if name == &spec.name),
        "{err:?}"
    );
    assert!(err.to_string().contains(&spec.name));
}

#[tokio::test]
async fn missing_image_says_how_to_load_it() {
    let scope = Scope::new("noimage").await;
    let mut spec = scope.spec("c");
    spec.image = "berth-test/no-such-image:1".into();
    let err = scope.rt.create(&spec).await.unwrap_err();
    assert!(matches!(err, RuntimeError::ImageMissing { .. }), "{err:?}");
    let msg = err.to_string();
    for part in [
        "berth-test/no-such-image:1",
        "docker load",
        "docker import",
        "scripts/test-image.sh",
    ] {
        assert!(msg.contains(part), "`{part}` missing from: {msg}");
    }
}

#[tokio::test]
async fn named_networks_must_exist() {
    let scope = Scope::new("net").await;
    let mut spec = scope.spec("missing");
    spec.network = NetworkMode::Named(scope.name("no-such-net"));
    let err = scope.rt.create(&spec).await.unwrap_err();
    assert!(
        matches!(&err, RuntimeError::NetworkMissing { network } if network.ends_with("no-such-net")),
        "{err:?}"
    );
    assert!(err.to_string().contains("docker network create"), "{err}");

    // An existing network by name (the engine's built-in `none`; tests never create networks).
    let mut spec = scope.spec("named");
    spec.network = NetworkMode::Named("none".into());
    let id = scope.running(&spec).await;
    assert_eq!(scope.run(&id, &["echo", "ok"]).await.0, "ok\n");
}

#[tokio::test]
async fn persistent_volume_survives_its_container() {
    let scope = Scope::new("keep").await;
    let volume = VolumeMount {
        name: scope.name("home"),
        target: "/data".into(),
        persistent: true,
        read_only: false,
    };
    let mut first = scope.spec("first");
    first.volumes.push(volume.clone());
    let id = scope.running(&first).await;
    assert_eq!(
        scope
            .run(&id, &["sh", "-c", "echo kept > /data/file"])
            .await
            .1,
        0
    );
    scope.rt.stop(&id, Duration::from_secs(10)).await.unwrap();
    scope.rt.remove(&id).await.unwrap();
    assert_eq!(
        scope.rt.inspect(&id).await.unwrap(),
        ContainerState::Missing
    );

    let mut second = scope.spec("second");
    second.volumes.push(volume);
    let id = scope.running(&second).await;
    assert_eq!(
        scope.run(&id, &["cat", "/data/file"]).await,
        ("kept\n".to_owned(), 0)
    );
}

#[tokio::test]
async fn ephemeral_volume_goes_with_its_container() {
    let scope = Scope::new("ephemeral").await;
    let mut spec = scope.spec("c");
    spec.volumes.push(VolumeMount {
        name: scope.name("scratch"),
        target: "/scratch".into(),
        persistent: false,
        read_only: false,
    });
    let id = scope.running(&spec).await;
    let raw = raw_client(&scope.rt);
    let volume = raw.inspect_volume(&scope.name("scratch")).await.unwrap();
    assert_eq!(volume.labels["berth.persistent"], "false");
    assert_eq!(volume.labels["berth.managed"], "true");
    scope.rt.remove(&id).await.unwrap();
    let gone = raw
        .inspect_volume(&scope.name("scratch"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            gone,
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            }
        ),
        "{gone:?}"
    );
}

#[tokio::test]
async fn bind_mounts_reach_the_container_and_docker_sockets_never_do() {
    let scope = Scope::new("bind").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("note"), "from the host").unwrap();
    let mut spec = scope.spec("c");
    spec.binds.push(BindMount {
        source: dir.path().to_owned(),
        target: "/mnt/host".into(),
        read_only: true,
    });
    let id = scope.running(&spec).await;
    assert_eq!(
        scope.run(&id, &["cat", "/mnt/host/note"]).await.0,
        "from the host"
    );
    assert_ne!(
        scope.run(&id, &["touch", "/mnt/host/new"]).await.1,
        0,
        "read-only bind accepted a write"
    );

    let engine_socket = scope.rt.socket().to_owned();
    let engine_dir = engine_socket.parent().unwrap().to_owned();
    for source in [
        engine_socket,
        engine_dir,
        PathBuf::from("/var/run/docker.sock"),
        PathBuf::from("/var/run"),
    ] {
        let mut spec = scope.spec("sock");
        spec.binds.push(BindMount {
            source: source.clone(),
            target: "/mnt/sock".into(),
            read_only: true,
        });
        let err = scope.rt.create(&spec).await.unwrap_err();
        assert!(
            matches!(err, RuntimeError::DockerSocketMount { .. }),
            "{}: {err:?}",
            source.display()
        );
    }
    assert!(
        scope
            .rt
            .list(&scope.labels())
            .await
            .unwrap()
            .iter()
            .all(|c| !c.name.ends_with("-sock"))
    );
}

#[tokio::test]
async fn invalid_spec_is_refused_before_the_engine() {
    let scope = Scope::new("invalid").await;
    let mut spec = scope.spec("c");
    spec.limits.pids = 0;
    let err = scope.rt.create(&spec).await.unwrap_err();
    assert!(matches!(err, RuntimeError::InvalidSpec(_)), "{err:?}");
    assert!(scope.rt.list(&scope.labels()).await.unwrap().is_empty());
}

/// The next event, failing the test when none comes within [`common::PATIENCE`].
#[allow(clippy::unwrap_used, clippy::expect_used)] // a test helper: a panic is the failure report
async fn next_event(events: &mut berth_runtime::ContainerEvents) -> berth_runtime::ContainerEvent {
    use futures_util::StreamExt;
    tokio::time::timeout(common::PATIENCE, events.next())
        .await
        .expect("an event within the deadline")
        .expect("the stream goes on")
        .unwrap()
}

#[tokio::test]
async fn events_report_a_create_start_kill_and_removal() {
    use berth_runtime::ContainerEventKind;

    let scope = Scope::new("events").await;
    let since = std::time::SystemTime::now();
    let id = scope.running(&scope.spec("c")).await;
    let other = Scope::new("events-other").await;
    let unrelated = other.running(&other.spec("c")).await;
    // Created after the container, the stream still sees what happens from `since` on.
    let mut events = scope.rt.events(&scope.labels(), Some(since));
    let raw = raw_client(&scope.rt);
    raw.kill_container(
        id.as_str(),
        None::<bollard::query_parameters::KillContainerOptions>,
    )
    .await
    .unwrap();
    raw.kill_container(
        unrelated.as_str(),
        None::<bollard::query_parameters::KillContainerOptions>,
    )
    .await
    .unwrap();
    // From `since` on: the container's create and start (replayed), then the kill.
    let mut kinds = Vec::new();
    loop {
        let event = next_event(&mut events).await;
        assert_eq!(event.id, id, "only this scope's containers: {event:?}");
        assert_eq!(event.labels["berth.test"], scope.prefix);
        kinds.push(event.kind);
        if matches!(event.kind, ContainerEventKind::Died { .. }) {
            break;
        }
    }
    assert_eq!(
        kinds,
        [
            ContainerEventKind::Created,
            ContainerEventKind::Started,
            ContainerEventKind::Died {
                exit_code: Some(137)
            }
        ]
    );
    raw.remove_container(
        id.as_str(),
        None::<bollard::query_parameters::RemoveContainerOptions>,
    )
    .await
    .unwrap();
    let destroyed = next_event(&mut events).await;
    assert_eq!(
        (destroyed.id, destroyed.kind),
        (id, ContainerEventKind::Destroyed)
    );
}
