//! The fleet service end to end: a real inventory repository synced with the `git` binary
//! over file://, the real SSH test machines (`scripts/test-machines.sh`), a SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../berth-ssh/tests/common/mod.rs"]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_core::fleet::{Fleet, FleetError, FleetEvent, FleetSettings};
use berth_core::{Actor, SystemClock};
use berth_fleet::RepositoryUrl;
use berth_ssh::ConnectOptions;
use berth_store::Store;
use berth_types::MachineId;
use berth_types::fleet::{EnrollmentStatus, HealthStatus, SyncResult, SyncTrigger};

use common::inventory::{Repo, known_hosts as known_hosts_of, links};

struct Setup {
    _root: tempfile::TempDir,
    repo: Repo,
    fleet: Fleet,
    store: Arc<dyn Store>,
    keys_dir: PathBuf,
    known_hosts: PathBuf,
    database: PathBuf,
}

async fn setup(lab: &common::Lab) -> Setup {
    setup_with(lab, |_| {}).await
}

async fn setup_with(lab: &common::Lab, adjust: impl FnOnce(&mut FleetSettings)) -> Setup {
    let root = tempfile::tempdir().unwrap();
    let repo = Repo::new(root.path(), "inventory");
    let home = root.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let keys_dir = home.join("fleet/keys");
    common::inventory::install_key(lab, &keys_dir);
    let store = berth_store::open(&home.join("berth.db").display().to_string())
        .await
        .unwrap();
    let settings = FleetSettings {
        repository: RepositoryUrl::parse(&repo.file_url()).unwrap(),
        branch: "main".into(),
        dir: home.join("fleet"),
        keys_dir: keys_dir.clone(),
        sync_interval: Duration::from_secs(3600),
        health_interval: Duration::from_secs(3600),
        connect: ConnectOptions {
            // Generous: parallel tests share two cores with the machines' sshd.
            connect_timeout: Duration::from_secs(20),
            retries: 2,
            ..ConnectOptions::default()
        },
        client_id_path: "/etc/berth/client_id".into(),
        trust_on_first_use: false,
        max_concurrency: 8,
        git_timeout: Duration::from_secs(60),
        clock: Arc::new(SystemClock),
    };
    let mut settings = settings;
    adjust(&mut settings);
    let known_hosts = settings.known_hosts();
    let fleet = Fleet::new(settings, Arc::clone(&store));
    fleet.start().await.unwrap();
    Setup {
        _root: root,
        repo,
        fleet,
        store,
        keys_dir,
        known_hosts,
        database: home.join("berth.db"),
    }
}

fn id(name: &str) -> MachineId {
    MachineId::new(name).unwrap()
}

#[tokio::test]
async fn a_synced_inventory_is_verified_over_ssh_and_every_status_is_told_apart() {
    let Some(lab) = common::lab() else { return };
    let s = setup(&lab).await;
    let mut events = s.fleet.subscribe();
    let m2 = lab.machine("m2").client_id.clone();
    let commit = s.repo.commit(
        &[(
            "links.yaml",
            &links(
                &lab,
                &[
                    ("m1", None),
                    ("m3", Some(&m2)),
                    ("jump", None),
                    ("hidden", None),
                ],
            ),
        )],
        "change",
    );
    // m1, jump and hidden are known; m3's key is not: it must stay host_key_unknown.
    std::fs::write(
        &s.known_hosts,
        known_hosts_of(&lab, &["m1", "jump", "hidden"]),
    )
    .unwrap();
    let sync = s
        .fleet
        .sync(SyncTrigger::Api, Actor::named("admin"))
        .await
        .unwrap();
    assert_eq!(sync.result, SyncResult::Succeeded, "{:?}", sync.errors);
    assert_eq!(sync.commit.as_deref(), Some(commit.as_str()));
    assert_eq!(sync.changes.machines.added, ["hidden", "jump", "m1", "m3"]);
    assert_eq!(s.fleet.inventory().commit.as_deref(), Some(commit.as_str()));
    // A sync event was published for the start and the end.
    let mut saw_finished = false;
    while let Ok(event) = events.try_recv() {
        if let FleetEvent::Sync(record) = event {
            saw_finished |= record.result == SyncResult::Succeeded;
        }
    }
    assert!(saw_finished);

    let outcomes = s.fleet.verify_all(&Actor::named("admin")).await.unwrap();
    let status = |name: &str| {
        outcomes
            .iter()
            .find(|o| o.id.as_str() == name)
            .and_then(|o| o.record.clone())
            .unwrap()
    };
    assert_eq!(
        status("m1").enrollment,
        EnrollmentStatus::Enrolled,
        "{}",
        status("m1").enrollment_message
    );
    assert_eq!(
        status("hidden").enrollment,
        EnrollmentStatus::Enrolled,
        "through the jump host: {}",
        status("hidden").enrollment_message
    );
    let m3 = status("m3");
    assert_eq!(
        m3.enrollment,
        EnrollmentStatus::HostKeyUnknown,
        "{}",
        m3.enrollment_message
    );
    let fingerprint = m3
        .fingerprint
        .clone()
        .expect("the unknown key's fingerprint");
    assert!(
        m3.enrollment_message.contains(&fingerprint),
        "{}",
        m3.enrollment_message
    );
    // Online, or degraded when a loaded machine took more than 2 s to log in.
    assert!(matches!(
        status("m1").health,
        HealthStatus::Online | HealthStatus::Degraded
    ));
    assert!(status("m1").latency_ms.is_some() && status("m1").last_seen.is_some());
    // A host key Berth cannot accept is no login: the check counts as failed.
    assert_eq!(m3.health, HealthStatus::Offline);
    assert!(m3.consecutive_failures >= 1 && m3.last_seen.is_none());

    // Trusting a wrong fingerprint is refused; the right one records the key, and m3 then
    // shows that links.yaml expects another machine's id.
    let wrong = s
        .fleet
        .trust(
            &id("m3"),
            "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            &Actor::named("admin"),
        )
        .await;
    assert!(wrong.is_err());
    let trusted = s
        .fleet
        .trust(&id("m3"), &fingerprint, &Actor::named("admin"))
        .await
        .unwrap();
    assert_eq!(
        trusted.enrollment,
        EnrollmentStatus::Mismatch,
        "{}",
        trusted.enrollment_message
    );
    assert!(
        std::fs::read_to_string(&s.known_hosts)
            .unwrap()
            .contains(&lab.machine("m3").host_key)
    );

    // The audit log has the sync, the verifications, the trust and the enrollment changes.
    let query: berth_store::TableQuery = serde_json::from_value(
        serde_json::json!({"table": "audit", "columns": ["action"], "limit": 500}),
    )
    .unwrap();
    let actions: Vec<String> = s
        .store
        .query_table(&query, None)
        .await
        .unwrap()
        .rows
        .into_iter()
        .map(|row| row["action"].as_str().unwrap().to_owned())
        .collect();
    for action in [
        "fleet.sync",
        "machine.verify",
        "machine.trust",
        "machine.enrollment",
        "machine.health",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} missing from {actions:?}"
        );
    }
}

#[tokio::test]
async fn a_changed_host_key_and_a_dead_address_are_reported() {
    let Some(lab) = common::lab() else { return };
    let s = setup(&lab).await;
    let mut text = links(&lab, &[("m1", None), ("m2", None)]);
    // A machine on an address nothing listens on.
    text.push_str("  - id: dead\n    name: dead\n    host: 127.0.20.250\n    port: 22\n    user: berth\n    key: id_ed25519\n    client_id: 00000000-0000-4000-8000-000000000000\n");
    s.repo.commit(&[("links.yaml", &text)], "change");
    // m2 recorded with m1's key: the key it presents has changed.
    let m1 = lab.machine("m1");
    let m2 = lab.machine("m2");
    std::fs::write(
        &s.known_hosts,
        format!(
            "{}{} {}\n",
            known_hosts_of(&lab, &["m1"]),
            berth_ssh::host_keys::host_pattern(&m2.host, m2.port),
            m1.host_key
        ),
    )
    .unwrap();
    let sync = s.fleet.sync(SyncTrigger::Api, Actor::System).await.unwrap();
    assert_eq!(sync.result, SyncResult::Succeeded, "{:?}", sync.errors);
    let m2_row = s.fleet.verify(&id("m2"), &Actor::System).await.unwrap();
    assert_eq!(
        m2_row.enrollment,
        EnrollmentStatus::HostKeyChanged,
        "{}",
        m2_row.enrollment_message
    );
    // Trusting a changed key is refused: the old entry stays until an admin removes it.
    let fp = m2_row.fingerprint.clone().unwrap();
    assert!(s.fleet.trust(&id("m2"), &fp, &Actor::System).await.is_err());
    let dead = s.fleet.verify(&id("dead"), &Actor::System).await.unwrap();
    assert_eq!(
        dead.enrollment,
        EnrollmentStatus::Unreachable,
        "{}",
        dead.enrollment_message
    );
    assert_eq!(dead.health, HealthStatus::Offline);
    // The sync verified new machines in the background too: at least this check failed.
    assert!(dead.consecutive_failures >= 1);
    assert!(dead.last_seen.is_none());
    // A wrong or missing client id.
    let mut wrong = links(
        &lab,
        &[("m1", Some("11111111-1111-4111-8111-111111111111"))],
    );
    wrong.push_str(&format!(
        "  - id: noid\n    name: noid\n    host: {}\n    port: {}\n    user: {}\n    key: id_ed25519\n",
        m1.host, m1.port, m1.user
    ));
    s.repo.commit(&[("links.yaml", &wrong)], "change");
    let sync = s.fleet.sync(SyncTrigger::Api, Actor::System).await.unwrap();
    assert_eq!(sync.result, SyncResult::Succeeded, "{:?}", sync.errors);
    assert_eq!(sync.changes.machines.removed, ["dead", "m2"]);
    assert_eq!(sync.changes.machines.changed, ["m1"]);
    let m1_row = s.fleet.verify(&id("m1"), &Actor::System).await.unwrap();
    assert_eq!(
        m1_row.enrollment,
        EnrollmentStatus::Mismatch,
        "{}",
        m1_row.enrollment_message
    );
    let noid = s.fleet.verify(&id("noid"), &Actor::System).await.unwrap();
    assert_eq!(
        noid.enrollment,
        EnrollmentStatus::Missing,
        "{}",
        noid.enrollment_message
    );
    assert!(
        s.fleet.machine(&id("dead")).await.is_err(),
        "removed machines leave the table"
    );
}

#[tokio::test]
async fn an_invalid_repository_never_replaces_the_inventory_in_force() {
    let Some(lab) = common::lab() else { return };
    let s = setup(&lab).await;
    let good = s.repo.commit(
        &[
            ("links.yaml", &links(&lab, &[("m1", None)])),
            (
                "scripts.yaml",
                "scripts:\n  - name: uptime\n    file: scripts/uptime.sh\n",
            ),
            ("scripts/uptime.sh", "#!/bin/bash\nuptime\n"),
        ],
        "change",
    );
    let first = s.fleet.sync(SyncTrigger::Api, Actor::System).await.unwrap();
    assert_eq!(first.result, SyncResult::Succeeded, "{:?}", first.errors);
    assert_eq!(s.fleet.inventory().scripts.len(), 1);

    // Each bad commit fails the sync with the file (and line) and keeps `good` in force:
    // (files, the file blamed, a word of the message, whether a line is known).
    type Case<'a> = (Vec<(&'a str, String)>, &'a str, &'a str, bool);
    let cases: Vec<Case> = vec![
        (vec![("links.yaml", "machines:\n  - id: m1\n    name: [unclosed\n".into())], "links.yaml", "", true),
        (vec![("links.yaml", "machines:\n  - id: m1\n    name: m1\n    host: h\n    user: u\n    key: id_ed25519\n    colour: red\n".into())], "links.yaml", "colour", true),
        (vec![("links.yaml", "machines:\n  - id: m1\n    name: m1\n".into())], "links.yaml", "host", true),
        (vec![("links.yaml", links(&lab, &[("m1", None)])), ("scripts/uptime.sh", "#!/usr/bin/python3\nprint(1)\n".into())], "scripts/uptime.sh", "bash", false),
        (vec![("scripts/uptime.sh", "#!/bin/bash\nif true; then\n  echo\n".into())], "scripts/uptime.sh", "", true),
        (vec![("scripts/uptime.sh", "#!/bin/bash\nuptime\n".into()), ("secrets.ini", "[env]\nTOKEN = plain\n".into())], "secrets.ini", "not encrypted", false),
    ];
    let failures = cases.len();
    for (files, file, word, with_line) in cases {
        let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
        s.repo.commit(&files, "change");
        let sync = s.fleet.sync(SyncTrigger::Api, Actor::System).await.unwrap();
        assert_eq!(sync.result, SyncResult::Failed, "{file} {word}");
        assert!(
            sync.errors.iter().any(|e| e.file.as_deref() == Some(file)
                && e.message.contains(word)
                && (!with_line || e.line.is_some())),
            "no error in {file} with {word:?} (line: {with_line}) in {:#?}",
            sync.errors
        );
        assert!(
            !format!("{:?}", sync.errors).contains("TOKEN = plain"),
            "a secret's value reached the errors"
        );
        assert_eq!(s.fleet.inventory().commit.as_deref(), Some(good.as_str()));
        assert_eq!(
            s.store.commit_in_force().await.unwrap().as_deref(),
            Some(good.as_str())
        );
        assert!(s.fleet.machine(&id("m1")).await.is_ok());
        assert_eq!(s.fleet.inventory().scripts.len(), 1);
    }
    // A line number comes with a YAML error.
    s.repo.commit(&[
        ("secrets.ini", ""),
        ("links.yaml", "machines:\n  - id: m1\n    name: m1\n    host: h\n    port: 99999\n    user: u\n    key: id_ed25519\n"),
    ], "change");
    std::fs::remove_file(s.repo.dir.join("secrets.ini")).unwrap();
    s.repo.commit(&[], "change");
    let sync = s.fleet.sync(SyncTrigger::Api, Actor::System).await.unwrap();
    assert_eq!(sync.result, SyncResult::Failed);
    let port = sync
        .errors
        .iter()
        .find(|e| {
            e.message.contains("port") || e.path.as_deref().is_some_and(|p| p.contains("port"))
        })
        .unwrap();
    assert_eq!(
        (port.file.as_deref(), port.line),
        (Some("links.yaml"), Some(5)),
        "{port:?}"
    );

    // A world-readable key fails the sync with the file and its mode.
    s.repo
        .commit(&[("links.yaml", &links(&lab, &[("m1", None)]))], "change");
    let key = s.keys_dir.join("id_ed25519");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let sync = s.fleet.sync(SyncTrigger::Api, Actor::System).await.unwrap();
    assert_eq!(sync.result, SyncResult::Failed);
    let text = format!("{:?}", sync.errors);
    assert!(
        text.contains("0644") && text.contains("id_ed25519"),
        "{text}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let sync = s.fleet.sync(SyncTrigger::Api, Actor::System).await.unwrap();
    assert_eq!(sync.result, SyncResult::Succeeded, "{:?}", sync.errors);
    // The same commit again is `unchanged`.
    let again = s
        .fleet
        .sync(SyncTrigger::Schedule, Actor::System)
        .await
        .unwrap();
    assert_eq!(again.result, SyncResult::Unchanged);
    let history = s.fleet.status().await.unwrap().history;
    assert_eq!(history.first().map(|h| h.id), Some(again.id));
    // The cases above, the bad port and the world-readable key.
    assert_eq!(
        history
            .iter()
            .filter(|h| h.result == SyncResult::Failed)
            .count(),
        failures + 2
    );
}

#[tokio::test]
async fn a_restart_keeps_the_inventory_and_interrupts_a_running_sync() {
    let Some(lab) = common::lab() else { return };
    let s = setup(&lab).await;
    let good = s.repo.commit(
        &[
            ("links.yaml", &links(&lab, &[("m1", None)])),
            (
                "scripts.yaml",
                "scripts:\n  - name: uptime\n    file: uptime.sh\n",
            ),
            ("uptime.sh", "uptime\n"),
        ],
        "change",
    );
    s.fleet.sync(SyncTrigger::Api, Actor::System).await.unwrap();
    let running = s
        .store
        .begin_sync(
            SyncTrigger::Schedule,
            "(berth)",
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    // A second service over the same home, as after a restart.
    let again = Fleet::new(s.fleet.settings().clone(), Arc::clone(&s.store));
    again.start().await.unwrap();
    let inventory = again.inventory();
    assert_eq!(inventory.commit.as_deref(), Some(good.as_str()));
    assert_eq!(inventory.scripts.len(), 1);
    assert_eq!(inventory.scripts[0].content, b"uptime\n");
    assert!(inventory.machines.contains_key(&id("m1")));
    let history = again.status().await.unwrap().history;
    let interrupted = history.iter().find(|h| h.id == running.id).unwrap();
    assert_eq!(interrupted.result, SyncResult::Interrupted);
}

#[tokio::test]
async fn a_check_made_with_replaced_settings_never_lands_on_the_new_row() {
    let Some(lab) = common::lab() else { return };
    let s = setup_with(&lab, |settings| {
        // Long enough that only the test ends a check of the silent server.
        settings.connect.connect_timeout = Duration::from_secs(120);
        settings.connect.retries = 0;
    })
    .await;
    // A server that accepts connections and says nothing: a check of it waits until the test
    // closes the connection, then fails as unreachable.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let accept = || async {
        tokio::time::timeout(Duration::from_secs(60), silent.accept())
            .await
            .expect("no check connected")
            .unwrap()
            .0
    };
    let m2 = lab.machine("m2");
    let entry = |host: &str, port: u16| {
        format!(
            "machines:\n  - id: moved\n    name: moved\n    host: {host}\n    port: {port}\n    user: {}\n    key: id_ed25519\n    client_id: {}\n",
            m2.user, m2.client_id
        )
    };
    let moved = id("moved");
    let checked = |min_failures: i64| {
        let (fleet, moved) = (s.fleet.clone(), moved.clone());
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                let row = fleet.machine(&moved).await.unwrap();
                if (row.checked_at.is_some() && row.consecutive_failures >= min_failures)
                    || std::time::Instant::now() > deadline
                {
                    return row;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    std::fs::write(&s.known_hosts, known_hosts_of(&lab, &["m2"])).unwrap();
    s.repo.commit(
        &[("links.yaml", &entry("127.0.0.1", silent_port))],
        "silent",
    );
    let first = s.fleet.sync(SyncTrigger::Api, Actor::System).await.unwrap();
    assert_eq!(first.result, SyncResult::Succeeded, "{:?}", first.errors);
    // The sync's own check of the new machine fails: recorded with the old settings.
    drop(accept().await);
    let failed = checked(1).await;
    assert_eq!(failed.enrollment, EnrollmentStatus::Unreachable);
    assert_eq!(failed.consecutive_failures, 1);
    // An admin's check hangs on the silent server while the machine moves to m2.
    let fleet = s.fleet.clone();
    let old_check = tokio::spawn(async move { fleet.verify(&id("moved"), &Actor::System).await });
    let held = accept().await;
    s.repo
        .commit(&[("links.yaml", &entry(&m2.host, m2.port))], "moved");
    let second = s.fleet.sync(SyncTrigger::Api, Actor::System).await.unwrap();
    assert_eq!(second.changes.machines.changed, ["moved"]);
    // The sync verifies the new settings; only then does the old check end, last.
    let row = checked(0).await;
    assert_eq!(
        row.enrollment,
        EnrollmentStatus::Enrolled,
        "{}",
        row.enrollment_message
    );
    drop(held);
    let answered = old_check.await.unwrap().unwrap();
    assert_eq!(
        answered.enrollment,
        EnrollmentStatus::Enrolled,
        "the old check's result landed: {}",
        answered.enrollment_message
    );
    let row = s.fleet.machine(&moved).await.unwrap();
    assert_eq!(row.enrollment, EnrollmentStatus::Enrolled);
    // The old address's failure does not count against the new one.
    assert_eq!(row.consecutive_failures, 0);
    assert!(matches!(
        row.health,
        HealthStatus::Online | HealthStatus::Degraded
    ));
}

#[tokio::test]
async fn a_sync_the_store_refuses_is_recorded_failed_and_changes_nothing() {
    let Some(lab) = common::lab() else { return };
    let s = setup(&lab).await;
    let good = s
        .repo
        .commit(&[("links.yaml", &links(&lab, &[("m1", None)]))], "good");
    let first = s.fleet.sync(SyncTrigger::Api, Actor::System).await.unwrap();
    assert_eq!(first.result, SyncResult::Succeeded, "{:?}", first.errors);
    // From now on the database refuses to record a sync that puts an inventory in force.
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", s.database.display()))
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_inventory BEFORE UPDATE ON fleet_syncs \
         WHEN NEW.result IN ('succeeded', 'unchanged') \
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    )
    .execute(&db)
    .await
    .unwrap();
    s.repo.commit(
        &[("links.yaml", &links(&lab, &[("m1", None), ("m2", None)]))],
        "more",
    );
    let err = s
        .fleet
        .sync(SyncTrigger::Api, Actor::named("admin"))
        .await
        .unwrap_err();
    assert!(matches!(err, FleetError::Store(_)), "{err}");
    // The sync is recorded failed with the reason, not left running; nothing changed.
    let status = s.fleet.status().await.unwrap();
    assert!(!status.syncing);
    let last = &status.history[0];
    assert_eq!(last.result, SyncResult::Failed);
    assert!(
        last.errors
            .iter()
            .any(|e| e.message.contains("refused by the test")),
        "{:?}",
        last.errors
    );
    assert_eq!(s.fleet.inventory().commit.as_deref(), Some(good.as_str()));
    assert_eq!(
        s.store.commit_in_force().await.unwrap().as_deref(),
        Some(good.as_str())
    );
    assert!(s.fleet.machine(&id("m2")).await.is_err());
    assert!(!s.fleet.inventory().machines.contains_key(&id("m2")));
    let query = serde_json::from_value(serde_json::json!({
        "table": "audit",
        "columns": ["action", "outcome"],
        "filters": [{"column": "action", "op": "eq", "value": "fleet.sync"}],
        "limit": 10
    }))
    .unwrap();
    let rows = s.store.query_table(&query, None).await.unwrap().rows;
    assert!(
        rows.iter().any(|r| r["outcome"] == "failure"),
        "no failed fleet.sync in {rows:?}"
    );
    // A database that refuses even the failure leaves the row running, until the next sync
    // (one at a time) marks it interrupted.
    sqlx::query(
        "CREATE TRIGGER refuse_all BEFORE UPDATE ON fleet_syncs \
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    )
    .execute(&db)
    .await
    .unwrap();
    assert!(s.fleet.sync(SyncTrigger::Api, Actor::System).await.is_err());
    let stuck = s.fleet.status().await.unwrap().history[0].clone();
    assert_eq!(stuck.result, SyncResult::Running);
    for drop in ["DROP TRIGGER refuse_all", "DROP TRIGGER refuse_inventory"] {
        sqlx::query(drop).execute(&db).await.unwrap();
    }
    let healed = s.fleet.sync(SyncTrigger::Api, Actor::System).await.unwrap();
    assert_eq!(healed.result, SyncResult::Succeeded, "{:?}", healed.errors);
    let history = s.fleet.status().await.unwrap().history;
    let stuck = history.iter().find(|h| h.id == stuck.id).unwrap();
    assert_eq!(stuck.result, SyncResult::Interrupted);
    assert!(s.fleet.machine(&id("m2")).await.is_ok());
}
