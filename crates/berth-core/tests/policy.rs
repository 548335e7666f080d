//! ConfigPolicy: templates and users from YAML files turned into plans. No engine needed.
#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

use std::time::Duration;

use berth_core::{ConfigPolicy, LiveConfig, Persistence, Policy, StartOptions, WorkspaceError};
use berth_runtime::{IDLE_COMMAND, NetworkMode};
use berth_types::Username;

const MAIN: &str = "admin: {username: root_admin}\nruntime:\n  allowed_bind_mounts: [/srv/data]\n  default_memory: 512m\n  default_idle_timeout: 20m\n";
const CONTAINERS: &str = "\
templates:
  - name: base
    image: berth-test/base
  - name: lab
    image: berth-test/base
    command: [sleep, '3600']
    shell: /bin/sh
    env: {COURSE: os101}
    volumes: [{name: home, target: /home/student}]
    bind_mounts: [{source: /srv/data/sets, target: /data, read_only: true}]
    workdir: /home/student
    user: '1000:1000'
    hostname: lab
    network: none
    networks: [host]
    cpus: 1.5
    memory: 2g
    pids_limit: 256
    cap_add: [NET_BIND_SERVICE]
    read_only_root: true
    shared: true
    persist: always
    idle_timeout: 5m
    ttl: 2h
    record: false
    max_per_user: 1
  - name: scratch
    image: berth-test/base
    persist: never
";
const USERS: &str = "\
users:
  - username: alice
    id: 6f1c2a9e-8d4b-4c47-9a53-0b1d2e3f4a5b
    templates: [lab]
  - username: dave
    id: 0b6f3c1e-2f7a-4d8e-9c1b-5a4d3e2f1a0b
    templates: [lab, scratch]
    disabled: true
";

fn policy(overrides: Option<&str>) -> (tempfile::TempDir, ConfigPolicy) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.yaml"), MAIN).unwrap();
    std::fs::write(dir.path().join("containers.yaml"), CONTAINERS).unwrap();
    std::fs::write(dir.path().join("users.yaml"), USERS).unwrap();
    if let Some(text) = overrides {
        std::fs::create_dir(dir.path().join("users.d")).unwrap();
        std::fs::write(dir.path().join("users.d/alice.yaml"), text).unwrap();
    }
    let live = LiveConfig::load(dir.path()).unwrap();
    (dir, ConfigPolicy::new(live))
}

fn user(name: &str) -> Username {
    Username::new(name).unwrap()
}

#[test]
fn every_template_field_reaches_the_plan() {
    let (_dir, policy) = policy(None);
    let plan = policy
        .plan(&user("alice"), "lab", &StartOptions::default())
        .unwrap();
    let spec = &plan.spec;
    assert_eq!(spec.image, "berth-test/base");
    assert_eq!(spec.command.as_deref().unwrap(), ["sleep", "3600"]);
    assert_eq!(spec.env.get("COURSE"), Some("os101"));
    assert_eq!(spec.volumes.len(), 1);
    assert_eq!(
        (
            spec.volumes[0].name.as_str(),
            spec.volumes[0].target.as_str()
        ),
        ("home", "/home/student")
    );
    assert_eq!(spec.binds[0].source, std::path::Path::new("/srv/data/sets"));
    assert!(spec.binds[0].read_only);
    assert_eq!(spec.working_dir.as_deref(), Some("/home/student"));
    assert_eq!(spec.user.as_deref(), Some("1000:1000"));
    assert_eq!(spec.hostname.as_deref(), Some("lab"));
    assert_eq!(spec.limits.nano_cpus, Some(1_500_000_000));
    assert_eq!(spec.limits.memory_bytes, 2 << 30);
    assert_eq!(spec.limits.pids, 256);
    assert_eq!(spec.limits.tmp_bytes, 256 << 20);
    assert_eq!(spec.hardening.cap_add, ["NET_BIND_SERVICE"]);
    assert!(spec.hardening.read_only_root && spec.hardening.init);
    assert_eq!(plan.shell, berth_types::template::Shell::new("/bin/sh"));
    assert!(plan.shared);
    assert_eq!(plan.persistence, Persistence::Persistent, "persist: always");
    assert_eq!(plan.network, NetworkMode::None);
    assert_eq!(plan.idle_timeout, Duration::from_secs(300));
    assert_eq!(plan.ttl, Some(Duration::from_secs(7200)));
    assert!(!plan.record);
    assert_eq!(plan.max_per_user, Some(1));
}

#[test]
fn defaults_come_from_main_yaml() {
    let (_dir, policy) = policy(None);
    let plan = policy
        .plan(&user("root_admin"), "base", &StartOptions::default())
        .unwrap();
    assert_eq!(
        plan.spec.command.as_deref().unwrap(),
        IDLE_COMMAND,
        "a main process that stays"
    );
    assert_eq!(plan.spec.limits.memory_bytes, 512 << 20);
    assert_eq!(plan.spec.limits.tmp_bytes, 256 << 20);
    assert_eq!(plan.spec.limits.pids, 512);
    assert_eq!(plan.idle_timeout, Duration::from_secs(20 * 60));
    assert_eq!(
        plan.persistence,
        Persistence::Ephemeral,
        "persist: optional, not asked"
    );
    assert!(plan.record);
}

#[test]
fn access_is_checked_and_options_must_be_allowed() {
    let (_dir, policy) = policy(None);
    let forbidden = |err: WorkspaceError| matches!(err, WorkspaceError::Forbidden(_));
    assert!(forbidden(
        policy
            .plan(&user("alice"), "base", &StartOptions::default())
            .unwrap_err()
    ));
    assert!(forbidden(
        policy
            .plan(&user("alice"), "nope", &StartOptions::default())
            .unwrap_err()
    ));
    assert!(
        forbidden(
            policy
                .plan(&user("dave"), "lab", &StartOptions::default())
                .unwrap_err()
        ),
        "disabled"
    );
    assert!(forbidden(
        policy
            .plan(&user("mallory"), "base", &StartOptions::default())
            .unwrap_err()
    ));

    let host = StartOptions {
        persist: None,
        network: Some("host".into()),
    };
    assert_eq!(
        policy.plan(&user("alice"), "lab", &host).unwrap().network,
        NetworkMode::Host
    );
    let bridge = StartOptions {
        persist: None,
        network: Some("bridge".into()),
    };
    let err = policy.plan(&user("alice"), "lab", &bridge).unwrap_err();
    assert_eq!(
        err.to_string(),
        "network \"bridge\" is not allowed for template \"lab\" (allowed: none, host)"
    );
    let off = StartOptions {
        persist: Some(false),
        network: None,
    };
    assert!(matches!(
        policy.plan(&user("alice"), "lab", &off).unwrap_err(),
        WorkspaceError::InvalidOption(_)
    ));
    let keep = StartOptions {
        persist: Some(true),
        network: None,
    };
    assert!(matches!(
        policy
            .plan(&user("root_admin"), "scratch", &keep)
            .unwrap_err(),
        WorkspaceError::InvalidOption(_)
    ));
    assert_eq!(
        policy
            .plan(&user("root_admin"), "base", &keep)
            .unwrap()
            .persistence,
        Persistence::Persistent
    );
}

#[test]
fn users_d_overrides_apply_to_that_user_only() {
    let (_dir, policy) = policy(Some(
        "templates: [scratch]\nmemory: 3g\ncpus: 0.5\nmax_workspaces: 9\n",
    ));
    let plan = policy
        .plan(&user("alice"), "scratch", &StartOptions::default())
        .unwrap();
    assert_eq!(plan.spec.limits.memory_bytes, 3 << 30);
    assert_eq!(plan.spec.limits.nano_cpus, Some(500_000_000));
    assert_eq!(policy.max_workspaces(&user("alice")), 9);
    assert_eq!(policy.max_workspaces(&user("root_admin")), 3);
    // Pools belong to nobody: no overrides, and only templates that are not always persistent.
    let pools = policy.pools();
    assert!(
        pools.is_empty(),
        "lab is persist: always, so it cannot pool: {pools:?}"
    );
}

#[test]
fn a_reload_applies_to_the_next_plan() {
    let (dir, policy) = policy(None);
    let live = LiveConfig::load(dir.path()).unwrap();
    let policy_live = ConfigPolicy::new(live.clone());
    assert!(
        policy_live
            .plan(&user("alice"), "base", &StartOptions::default())
            .is_err()
    );
    std::fs::write(
        dir.path().join("users.yaml"),
        USERS.replace("templates: [lab]", "templates: [lab, base]"),
    )
    .unwrap();
    live.reload().unwrap();
    assert!(
        policy_live
            .plan(&user("alice"), "base", &StartOptions::default())
            .is_ok()
    );
    drop(policy);
}
