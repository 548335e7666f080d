//! `berth cluster …` and `berth users invite …` against a real server on the real Docker
//! Engine: a cluster of the k3s stand-in image (scripts/cluster-image.sh) asked for with
//! `--wait`, listed, its kubeconfig written 0600 and used by the real `kubectl`, extended and
//! removed; the refusals (bad name, unknown name, quota, too long a TTL, no permission,
//! another user's cluster, a server without clusters) said in words with their exit status;
//! invites made by an admin at the CLI and used once through the API client.
//!
//! Needs the test engine with `berth-test/k3s-standin` loaded (`scripts/cluster-image.sh`, run
//! by `make test`) and `kubectl` (Debian's kubernetes-client). `BERTH_TEST_K3S_IMAGE` names a
//! real k3s image to use instead.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use berth_client::api::{RegisterRequest, Secret};
use berth_config::{ConfigStore, NewUser, hash_password};
use berth_types::Username;
use common::{CliHome, Pty, Server, block_on, both, eventually, require_engine, wait_child};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const ADMIN_PASSWORD: &str = "cluster-admin-password";
const ALICE: &str = "alice";
const BOB: &str = "bob";
const CAROL: &str = "carol";
const PASSWORD: &str = "correct horse battery";
/// The exit status when no cluster or invite matches.
const NOT_FOUND: i32 = 4;

/// The image clusters run and whether it must be privileged: the stand-in (which need not be,
/// on an engine that may not start privileged containers), unless a real k3s image is named.
fn cluster_image() -> (String, bool) {
    match std::env::var("BERTH_TEST_K3S_IMAGE") {
        Ok(image) if !image.is_empty() => (image, true),
        _ => ("berth-test/k3s-standin".to_owned(), false),
    }
}

/// A server home with clusters on (host network, API on loopback, one live cluster per user,
/// TTLs up to 4h), sign-up by invite (new accounts may ask for clusters), and three users:
/// alice and bob may ask for clusters, carol may not. `env` is the clusters' `clusters.env`.
fn cluster_home(root: &Path, env: &[&str]) -> PathBuf {
    // The temporary directory itself: its unique name is the server's `berth.instance`, so
    // servers of tests running at once never reconcile away each other's clusters.
    let home = root.to_path_buf();
    let config = home.join("config");
    std::fs::create_dir_all(&config).unwrap();
    let admin_hash = hash_password(ADMIN_PASSWORD).unwrap();
    let (image, privileged) = cluster_image();
    std::fs::write(
        config.join("main.yaml"),
        format!(
            "admin:\n  username: admin\n  password_hash: \"{}\"\n\
             clusters:\n  enabled: true\n  image: {}\n  network: host\n  \
             api_address: 127.0.0.1\n  default_ttl: 1h\n  max_ttl: 4h\n  max_per_user: 1\n  \
             cpus: 1\n  memory: 512m\n  ready_timeout: 3m\n  privileged: {}\n  env: [{}]\n\
             registration:\n  mode: invite\n  defaults:\n    clusters: true\n",
            admin_hash.as_str(),
            image,
            privileged,
            env.join(", ")
        ),
    )
    .unwrap();
    // The other files as a first start writes them (main.yaml exists: no admin is made).
    assert!(berth_config::init(&config).unwrap().is_none());
    let store = ConfigStore::open(&config).unwrap();
    for (name, clusters) in [(ALICE, true), (BOB, true), (CAROL, false)] {
        let mut user = NewUser::new(Username::new(name).unwrap());
        user.password_hash = Some(hash_password(PASSWORD).unwrap());
        store.add_user(user).unwrap();
        store.update_user(name, |u| u.clusters = clusters).unwrap();
    }
    home
}

/// A CLI home logged in to `server` as `user`.
fn logged_in(server: &Server, user: &str, password: &str) -> CliHome {
    let cli = CliHome::new();
    cli.login(server, user, password);
    cli
}

/// Asserts that `output` failed with `status` and that its stderr says `says`.
fn refused(output: &Output, status: i32, says: &str) {
    assert_eq!(output.status.code(), Some(status), "{}", both(output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(says),
        "expected {says:?} on stderr; {}",
        both(output)
    );
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn at(value: &serde_json::Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().unwrap(), &Rfc3339).unwrap()
}

/// The caller's clusters as `berth cluster ls --json` lists them.
fn clusters(cli: &CliHome) -> Vec<serde_json::Value> {
    cli.json(&["cluster", "ls"]).as_array().unwrap().clone()
}

#[test]
fn a_cluster_is_waited_for_used_extended_and_removed_from_the_cli() {
    require_engine();
    let root = tempfile::tempdir().unwrap();
    let home = cluster_home(root.path(), &[]);
    let server = Server::start(&home);
    let alice = logged_in(&server, ALICE, PASSWORD);

    // Bad input never reaches the server: a usage error, in the words of ClusterName.
    refused(
        &alice.run(&["cluster", "create", "Dev"]),
        2,
        "a cluster name starts with a lowercase letter",
    );
    refused(
        &alice.run(&["cluster", "create", "dev-"]),
        2,
        "does not end with '-'",
    );
    refused(
        &alice.run(&["cluster", "create", "dev", "--ttl", "soon"]),
        2,
        "expected a duration",
    );
    refused(
        &alice.run(&["cluster", "create", "dev", "--timeout", "1m"]),
        2,
        "--wait",
    );
    assert!(
        alice
            .ok(&["cluster", "ls"])
            .contains("No clusters. Ask for one: berth cluster create NAME")
    );
    // More than clusters.max_ttl is refused by the server, saying what to do.
    refused(
        &alice.run(&["cluster", "create", "dev", "--ttl", "5h"]),
        1,
        "clusters.max_ttl",
    );

    // --wait without a terminal: a line per change, then the id on stdout.
    let created = alice.run(&[
        "cluster",
        "create",
        "dev",
        "--ttl",
        "2h",
        "--wait",
        "--timeout",
        "3m",
    ]);
    assert!(created.status.success(), "{}", both(&created));
    let id = String::from_utf8(created.stdout.clone()).unwrap();
    let id: berth_client::ClusterId = id.trim().parse().unwrap();
    let progress = stderr(&created);
    assert!(progress.contains("cluster dev: provisioning"), "{progress}");
    assert!(progress.contains("cluster dev: running"), "{progress}");
    assert!(
        !progress.contains('\r'),
        "no spinner off a terminal: {progress:?}"
    );

    let table = alice.ok(&["cluster", "ls"]);
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("NAME  STATE    TIME LEFT  API"),
        "{table}"
    );
    let row = table.lines().nth(1).unwrap();
    assert!(
        row.starts_with("dev   running  1h5") && row.contains("https://127.0.0.1:"),
        "{table}"
    );
    let listed = clusters(&alice);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id.to_string());
    assert_eq!(listed[0]["state"], "running");

    // One live cluster per user: a second is refused with what to do.
    refused(
        &alice.run(&["cluster", "create", "second"]),
        1,
        "remove one of yours first",
    );

    // The kubeconfig: a 0600 file the real kubectl uses; never replaced without --force.
    let kube = tempfile::tempdir().unwrap();
    // As the README has it: into ~/.kube, which need not exist yet.
    let file = kube.path().join(".kube/dev.yaml");
    let path = file.to_str().unwrap();
    alice.ok(&["cluster", "kubeconfig", "dev", "-o", path]);
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(kube.path().join(".kube")).unwrap().mode() & 0o777,
        0o700
    );
    let readyz = Command::new("kubectl")
        .args(["--kubeconfig", path, "get", "--raw", "/readyz"])
        .output()
        .expect("run kubectl (Debian's kubernetes-client)");
    assert!(readyz.status.success(), "{}", both(&readyz));
    assert_eq!(String::from_utf8_lossy(&readyz.stdout).trim(), "ok");
    refused(
        &alice.run(&["cluster", "kubeconfig", "dev", "-o", path]),
        1,
        "--force",
    );
    alice.ok(&["cluster", "kubeconfig", "dev", "-o", path, "--force"]);
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
    let printed = alice.ok(&["cluster", "kubeconfig", &id.to_string()]);
    assert_eq!(printed, std::fs::read_to_string(&file).unwrap());
    assert!(printed.contains("apiVersion"), "{printed}");

    // Extending adds to the expiry, never past max_expires_at.
    let before = at(&listed[0]["expires_at"]);
    let extended = alice.run(&["cluster", "extend", "dev", "--ttl", "1h"]);
    assert!(extended.status.success(), "{}", both(&extended));
    assert!(
        stderr(&extended).contains("Cluster dev now lives"),
        "{}",
        both(&extended)
    );
    let after = clusters(&alice);
    assert_eq!(
        at(&after[0]["expires_at"]) - before,
        time::Duration::hours(1)
    );
    assert!(at(&after[0]["expires_at"]) <= at(&after[0]["max_expires_at"]));
    refused(&alice.run(&["cluster", "extend", "dev"]), 2, "--ttl");

    // Another user's cluster is not there for bob, by name or by id; carol may not have one.
    let bob = logged_in(&server, BOB, PASSWORD);
    refused(
        &bob.run(&["cluster", "rm", "dev"]),
        NOT_FOUND,
        "you have no cluster named dev",
    );
    refused(
        &bob.run(&["cluster", "kubeconfig", &id.to_string()]),
        NOT_FOUND,
        "berth cluster ls",
    );
    assert!(bob.json(&["cluster", "ls"]).as_array().unwrap().is_empty());
    let bob_api = {
        let client = berth_client::Client::new(&server.url()).unwrap();
        let login = block_on(client.login(BOB, PASSWORD)).unwrap();
        client.with_token(login.token.expose())
    };
    let err = block_on(bob_api.kubeconfig(id)).unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
    let carol = logged_in(&server, CAROL, PASSWORD);
    refused(
        &carol.run(&["cluster", "create", "mine"]),
        1,
        "you may not ask for clusters",
    );
    // The admin sees everyone's, with their owners.
    let admin = logged_in(&server, "admin", ADMIN_PASSWORD);
    let everyone = admin.ok(&["cluster", "ls", "--all"]);
    assert!(
        everyone.contains("OWNER") && everyone.contains("alice"),
        "{everyone}"
    );
    let hers = admin.json(&["cluster", "ls", "--owner", ALICE]);
    assert_eq!(hers.as_array().unwrap().len(), 1, "{hers}");

    // Removal: gone from the list once deleted, still there with --state deleted.
    refused(
        &alice.run(&["cluster", "rm", "nope"]),
        NOT_FOUND,
        "you have no cluster named nope",
    );
    let removed = alice.run(&["cluster", "rm", "dev"]);
    assert!(removed.status.success(), "{}", both(&removed));
    assert!(
        stderr(&removed).contains("Removing cluster dev"),
        "{}",
        both(&removed)
    );
    eventually(Duration::from_secs(120), "the cluster deleted", || {
        clusters(&alice).is_empty()
    });
    let deleted = alice.json(&["cluster", "ls", "--state", "deleted"]);
    assert_eq!(deleted[0]["id"], id.to_string(), "{deleted}");
    refused(
        &alice.run(&["cluster", "kubeconfig", "dev"]),
        NOT_FOUND,
        "you have no cluster named dev",
    );

    // At a terminal, --wait shows a spinner instead of lines (the first look at the cluster
    // comes a second after it was asked for: the spinner shows after 300 ms).
    let mut command = alice.berth();
    command.args(["cluster", "create", "tty", "--wait", "--timeout", "3m"]);
    let (mut child, mut pty) = Pty::spawn(command);
    pty.wait_for(
        "cluster tty: provisioning\u{2026}",
        None,
        Duration::from_secs(60),
    );
    let status = wait_child(&mut child, Duration::from_secs(200));
    let seen = pty.seen();
    assert!(status.success(), "{seen}");
    assert!(seen.contains("\r\x1b[2K"), "{seen:?}");
    assert!(seen.contains("Cluster tty is running"), "{seen}");
    alice.ok(&["cluster", "rm", "tty"]);
}

#[test]
fn an_invite_made_at_the_cli_admits_one_sign_up() {
    require_engine();
    let root = tempfile::tempdir().unwrap();
    let home = cluster_home(root.path(), &[]);
    let server = Server::start(&home);
    let admin = logged_in(&server, "admin", ADMIN_PASSWORD);

    assert!(admin.ok(&["users", "invites"]).contains("No invites"));
    refused(
        &admin.run(&["users", "invite", "--expires", "soon"]),
        2,
        "expected a duration",
    );
    refused(
        &admin.run(&["users", "invite", "--note", "two\nlines"]),
        2,
        "control characters",
    );
    let made = admin.json(&["users", "invite", "--expires", "2d", "--note", "course A"]);
    let code = made["code"].as_str().unwrap().to_owned();
    assert!(
        made["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/register?invite={code}")),
        "{made}"
    );
    let left = at(&made["expires_at"]) - at(&made["created_at"]);
    assert_eq!(left, time::Duration::days(2), "{made}");
    // In words: the code and the URL on stdout, the rest on stderr.
    let second = admin.run(&["users", "invite"]);
    assert!(second.status.success(), "{}", both(&second));
    let shown = String::from_utf8(second.stdout.clone()).unwrap();
    let second_code = shown
        .lines()
        .find_map(|l| l.strip_prefix("code: "))
        .unwrap_or_else(|| panic!("{}", both(&second)))
        .to_owned();
    assert!(
        shown.contains(&format!("/register?invite={second_code}\n")),
        "{}",
        both(&second)
    );
    assert!(stderr(&second).contains("for 7d"), "{}", both(&second));
    assert!(
        stderr(&second).contains("shown this once"),
        "{}",
        both(&second)
    );
    let table = admin.ok(&["users", "invites"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains("course A") && table.contains("open, 1d23h left"),
        "{table}"
    );

    // The code admits one account, once; the new account may ask for clusters.
    let anonymous = berth_client::Client::new(&server.url()).unwrap();
    let sign_up = |name: &str, code: &str| {
        block_on(anonymous.register(&RegisterRequest {
            username: Username::new(name).unwrap(),
            password: Secret::new(PASSWORD),
            invite: Some(Secret::new(code)),
        }))
    };
    let dave = sign_up("dave", &code).unwrap();
    assert_eq!(dave.username.as_str(), "dave");
    assert!(dave.clusters, "{dave:?}");
    assert!(sign_up("erin", &code).is_err(), "an invite is used once");
    let used = admin.json(&["users", "invites"]);
    let first = used
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == made["id"])
        .unwrap();
    assert_eq!(first["used_by"], "dave", "{used}");
    assert!(admin.ok(&["users", "invites"]).contains("used by dave"));
    logged_in(&server, "dave", PASSWORD);

    // Withdrawn by a start of its id: the code no longer works.
    let second_id = used
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] != made["id"])
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    admin.ok(&["users", "invite", "rm", &second_id[..8]]);
    assert!(sign_up("erin", &second_code).is_err(), "a withdrawn invite");
    refused(
        &admin.run(&["users", "invite", "rm", "ffffffff"]),
        NOT_FOUND,
        "no invite has the id",
    );

    // Invites are for admins.
    let alice = logged_in(&server, ALICE, PASSWORD);
    refused(
        &alice.run(&["users", "invites"]),
        1,
        "invites are for admins",
    );
    refused(
        &alice.run(&["users", "invite"]),
        1,
        "invites are for admins",
    );
}

#[test]
fn a_server_without_clusters_or_sign_up_says_so() {
    require_engine();
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let password = server.printed_password().unwrap();
    let admin = logged_in(&server, "admin", &password);
    refused(
        &admin.run(&["cluster", "create", "dev"]),
        1,
        "this Berth has no clusters",
    );
    let err = block_on(berth_client::Client::new(&server.url()).unwrap().register(
        &RegisterRequest {
            username: Username::new("dave").unwrap(),
            password: Secret::new(PASSWORD),
            invite: None,
        },
    ))
    .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some("registration_disabled")),
        "{err}"
    );
    // Every new command explains itself with examples.
    for args in [
        &["cluster", "--help"][..],
        &["cluster", "ls", "--help"],
        &["cluster", "create", "--help"],
        &["cluster", "rm", "--help"],
        &["cluster", "extend", "--help"],
        &["cluster", "kubeconfig", "--help"],
        &["users", "--help"],
        &["users", "invite", "--help"],
        &["users", "invites", "--help"],
        &["users", "invite", "rm", "--help"],
    ] {
        let help = admin.ok(args);
        assert!(help.contains("Examples:"), "{args:?}:\n{help}");
    }
}

#[test]
fn a_cluster_that_fails_is_reported_with_its_reason() {
    require_engine();
    let root = tempfile::tempdir().unwrap();
    // The stand-in exits at once, as a k3s server that cannot start would.
    let home = cluster_home(root.path(), &["STANDIN_FAIL=1"]);
    let server = Server::start(&home);
    let alice = logged_in(&server, ALICE, PASSWORD);
    let failed = alice.run(&["cluster", "create", "broken", "--wait", "--timeout", "3m"]);
    refused(&failed, 1, "berth: cluster broken failed: ");
    refused(&failed, 1, "remove it with `berth cluster rm broken`");
    assert!(
        String::from_utf8_lossy(&failed.stdout)
            .trim()
            .parse::<berth_client::ClusterId>()
            .is_ok(),
        "the id is printed before the wait: {}",
        both(&failed)
    );
    let listed = clusters(&alice);
    assert_eq!(listed[0]["state"], "failed", "{listed:?}");
    let reason = listed[0]["state_reason"].as_str().unwrap().to_owned();
    assert!(!reason.is_empty());
    let table = alice.ok(&["cluster", "ls"]);
    assert!(
        // The reason as the server gave it, its line breaks shown as spaces.
        table.contains("broken  failed  -") && table.contains(&reason.replace('\n', " ")),
        "{table}"
    );
    // No kubeconfig of a cluster that does not run: the server's words and where to look.
    refused(
        &alice.run(&["cluster", "kubeconfig", "broken"]),
        1,
        "`berth cluster ls` shows its state",
    );
    alice.ok(&["cluster", "rm", "broken"]);
}
