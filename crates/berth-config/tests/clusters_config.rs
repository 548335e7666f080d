//! main.yaml `clusters` and `registration`, and `clusters` in users.yaml: defaults, what is
//! refused and how the errors read.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv6Addr};

use berth_config::{
    ClusterNetwork, ClusterProvider, Clusters, ConfigStore, DEFAULT_CLUSTER_IMAGE, RegistrationMode,
};
use common::{ALICE_ID, BOB_ID, Dir, MAIN, assert_error};

fn with_main(extra: &str) -> Dir {
    let dir = Dir::valid();
    dir.write("main.yaml", &format!("{MAIN}{extra}"));
    dir
}

fn load(dir: &Dir) -> berth_config::Config {
    berth_config::check(dir.path()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn clusters_are_off_by_default_with_the_documented_limits() {
    let config = load(&Dir::valid());
    let c = &config.main.clusters;
    assert!(!c.enabled);
    assert_eq!(c.provider, ClusterProvider::Docker);
    assert_eq!(c.image, DEFAULT_CLUSTER_IMAGE);
    assert_eq!(c.image, "rancher/k3s:v1.34.1-k3s1");
    assert_eq!(c.default_ttl.to_string(), "2h");
    assert_eq!(c.max_ttl.to_string(), "1d");
    assert_eq!(c.max_per_user, 1);
    assert_eq!(c.cpus, Some(2.0));
    assert_eq!(c.memory.bytes(), 2 << 30);
    assert_eq!(c.api_address.to_string(), "127.0.0.1");
    assert_eq!(c.network, ClusterNetwork::Bridge);
    assert_eq!(c.ready_timeout.as_secs(), 300);
    assert_eq!(*c, Clusters::default());
    let r = &config.main.registration;
    assert_eq!(r.mode, RegistrationMode::Off);
    assert!(r.defaults.templates.is_empty() && !r.defaults.clusters);
    assert_eq!(r.invite_ttl.as_secs(), 7 * 86_400);
}

#[test]
fn every_cluster_field_is_read() {
    let dir = with_main(
        "clusters:\n  enabled: true\n  provider: docker\n  image: registry.local:5000/k3s:v1.31.5-k3s1\n  \
         default_ttl: 30m\n  max_ttl: 4h\n  max_per_user: 0\n  cpus: 0.5\n  memory: 512m\n  \
         api_address: \"::1\"\n  network: host\n  ready_timeout: 10s\n",
    );
    let c = load(&dir).main.clusters;
    assert!(c.enabled);
    assert_eq!(c.image, "registry.local:5000/k3s:v1.31.5-k3s1");
    assert_eq!(
        (c.default_ttl.as_secs(), c.max_ttl.as_secs()),
        (1800, 4 * 3600)
    );
    assert_eq!(c.max_per_user, 0);
    assert_eq!(c.cpus, Some(0.5));
    assert_eq!(c.memory.bytes(), 512 << 20);
    assert_eq!(c.api_address, IpAddr::V6(Ipv6Addr::LOCALHOST));
    assert_eq!(c.network, ClusterNetwork::Host);
    assert_eq!(c.ready_timeout.as_secs(), 10);

    let dir = with_main("clusters:\n  cpus: null\n");
    assert_eq!(load(&dir).main.clusters.cpus, None, "null: no CPU limit");
}

#[test]
fn bad_cluster_settings_are_refused_with_file_line_and_field() {
    let dir = with_main(
        "clusters:\n  enabled: true\n  image: \"--privileged\"\n  default_ttl: 30s\n  max_ttl: 45s\n  \
         ready_timeout: 2h\n",
    );
    let errors = dir.errors();
    assert_error(
        &errors,
        &["main.yaml:7: clusters.image:", "\"--privileged\""],
    );
    assert_error(
        &errors,
        &["main.yaml:8: clusters.default_ttl: at least 1m, found 30s"],
    );
    assert_error(
        &errors,
        &["main.yaml:9: clusters.max_ttl: at least 1m, found 45s"],
    );
    assert_error(
        &errors,
        &["main.yaml:10: clusters.ready_timeout: expected 10s to 1h, found 2h"],
    );

    let dir = with_main("clusters:\n  default_ttl: 2d\n  max_ttl: 1d\n  ready_timeout: 9s\n");
    let errors = dir.errors();
    assert_error(
        &errors,
        &["main.yaml:6: clusters.default_ttl: default_ttl (2d) is longer than max_ttl (1d)"],
    );
    assert_error(
        &errors,
        &["main.yaml:8: clusters.ready_timeout: expected 10s to 1h, found 9s"],
    );
}

#[test]
fn cluster_numbers_enums_and_addresses_are_checked_while_reading() {
    for (yaml, parts) in [
        (
            "clusters:\n  max_per_user: 101\n",
            &[
                "main.yaml:6: clusters.max_per_user:",
                "from 0 to 100, found 101",
            ][..],
        ),
        (
            "clusters:\n  cpus: 65\n",
            &["main.yaml:6: clusters.cpus:", "0.01 to 64, found 65"][..],
        ),
        (
            "clusters:\n  cpus: 0\n",
            &["main.yaml:6: clusters.cpus:", "0.01 to 64"][..],
        ),
        (
            "clusters:\n  memory: lots\n",
            &["main.yaml:6: clusters.memory:"][..],
        ),
        (
            "clusters:\n  provider: vcluster\n",
            &[
                "main.yaml:6: clusters.provider:",
                "expected one of",
                "docker",
                "vcluster",
            ][..],
        ),
        (
            "clusters:\n  network: overlay\n",
            &[
                "main.yaml:6: clusters.network:",
                "bridge",
                "host",
                "overlay",
            ][..],
        ),
        (
            "clusters:\n  api_address: localhost\n",
            &["main.yaml:6: clusters.api_address:"][..],
        ),
        (
            "clusters:\n  enabled: yes\n",
            &["main.yaml:6: clusters.enabled: expected true or false"][..],
        ),
        (
            "clusters:\n  ttl: 2h\n",
            &["main.yaml:6: clusters.ttl:", "unknown field"][..],
        ),
    ] {
        assert_error(&with_main(yaml).errors(), parts);
    }
}

#[test]
fn registration_mode_off_works_bare_and_quoted_and_so_do_the_others() {
    for (yaml, mode) in [
        ("off", RegistrationMode::Off),
        ("\"off\"", RegistrationMode::Off),
        ("'off'", RegistrationMode::Off),
        ("invite", RegistrationMode::Invite),
        ("open", RegistrationMode::Open),
        ("\"open\"", RegistrationMode::Open),
    ] {
        let dir = with_main(&format!("registration:\n  mode: {yaml}\n"));
        assert_eq!(load(&dir).main.registration.mode, mode, "mode: {yaml}");
    }
    for bad in ["false", "no", "Off", "closed", "\"\"", "1", "[open]"] {
        let dir = with_main(&format!("registration:\n  mode: {bad}\n"));
        assert_error(
            &dir.errors(),
            &[
                "main.yaml:6: registration.mode:",
                "expected one of",
                "off",
                "invite",
                "open",
            ],
        );
    }
}

#[test]
fn bare_off_survives_a_save_of_main_yaml() {
    let dir = with_main("registration:\n  mode: off\n  invite_ttl: 1d\n");
    let store = ConfigStore::open(dir.path()).unwrap();
    store
        .update_admin(|admin| admin.password_hash = None)
        .unwrap();
    store.issue_metrics_token().unwrap();
    let config = load(&dir);
    assert_eq!(config.main.registration.mode, RegistrationMode::Off);
    assert_eq!(config.main.registration.invite_ttl.as_secs(), 86_400);
}

#[test]
fn registration_defaults_must_name_templates_of_containers_yaml() {
    let dir = with_main(
        "registration:\n  mode: open\n  defaults:\n    templates: [base, pyhton, base]\n    clusters: true\n",
    );
    let errors = dir.errors();
    assert_error(
        &errors,
        &[
            "main.yaml:8: registration.defaults.templates[1]: unknown template \"pyhton\" (did you mean \"python\"?)",
        ],
    );
    assert_error(
        &errors,
        &["main.yaml:8: registration.defaults.templates[2]: template \"base\" is listed twice"],
    );

    let dir = with_main(
        "registration:\n  mode: invite\n  defaults:\n    templates: [base, python]\n    clusters: true\n",
    );
    let r = load(&dir).main.registration;
    assert_eq!(r.mode, RegistrationMode::Invite);
    assert_eq!(r.defaults.templates, ["base", "python"]);
    assert!(r.defaults.clusters);
}

#[test]
fn bad_registration_settings_are_refused() {
    assert_error(
        &with_main("registration:\n  invite_ttl: 30s\n").errors(),
        &["main.yaml:6: registration.invite_ttl: expected 1m to 365d, found 30s"],
    );
    assert_error(
        &with_main("registration:\n  invite_ttl: 366d\n").errors(),
        &["main.yaml:6: registration.invite_ttl:", "1s to 365d"],
    );
    assert_error(
        &with_main("registration:\n  defaults:\n    clusters: 1\n").errors(),
        &["main.yaml:7: registration.defaults.clusters: expected true or false"],
    );
    assert_error(
        &with_main("registration:\n  defaults:\n    role: admin\n").errors(),
        &["main.yaml:7: registration.defaults.role:", "unknown field"],
    );
}

#[test]
fn who_may_use_clusters() {
    let dir = Dir::valid();
    dir.write(
        "users.yaml",
        &format!(
            "users:\n  - username: alice\n    id: {ALICE_ID}\n    clusters: true\n  - username: bob\n    id: {BOB_ID}\n    role: admin\n  \
             - username: carol\n    id: 7d3f9a2b-1c4e-4f5a-8b6c-9d0e1f2a3b4c\n  - username: dave\n    \
             id: 8e4a0b3c-2d5f-4a6b-9c7d-0e1f2a3b4c5d\n    clusters: true\n    disabled: true\n"
        ),
    );
    let config = load(&dir);
    assert!(config.user("alice").unwrap().clusters);
    assert!(!config.user("carol").unwrap().clusters);
    assert!(config.may_use_clusters("alice"), "clusters: true");
    assert!(config.may_use_clusters("bob"), "role: admin");
    assert!(config.may_use_clusters("admin"), "the admin of main.yaml");
    assert!(!config.may_use_clusters("carol"), "not allowed");
    assert!(!config.may_use_clusters("dave"), "disabled");
    assert!(!config.may_use_clusters("nobody"), "unknown");

    dir.write(
        "users.yaml",
        &format!("users:\n  - username: alice\n    id: {ALICE_ID}\n    clusters: sure\n"),
    );
    assert_error(
        &dir.errors(),
        &["users.yaml:4: users[0].clusters: expected true or false"],
    );
}

#[test]
fn clusters_false_is_not_written_and_true_is() {
    let dir = Dir::valid();
    let store = ConfigStore::open(dir.path()).unwrap();
    store.update_user("alice", |u| u.clusters = true).unwrap();
    assert!(dir.read("users.yaml").contains("    clusters: true\n"));
    assert!(load(&dir).user("alice").unwrap().clusters);
    store.update_user("alice", |u| u.clusters = false).unwrap();
    assert!(!dir.read("users.yaml").contains("\n    clusters:"));
    assert!(!load(&dir).user("alice").unwrap().clusters);
}
