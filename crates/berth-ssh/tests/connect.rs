//! Connecting to the real SSH test machines: host key policy, client keys, dead addresses,
//! jump hosts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use berth_ssh::{
    ConnectOptions, ExitStatus, HostKeyPolicy, SshError, UnreachableReason, connect, fingerprint,
    host_keys,
};

fn fingerprint_of(line: &str) -> String {
    fingerprint(&host_keys::parse_public_key(line).unwrap())
}

/// The fingerprint as OpenSSH's own `ssh-keygen -lf` prints it.
fn ssh_keygen_fingerprint(line: &str) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{line}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_unknown_host_key_is_refused_with_its_fingerprint() {
    let Some(lab) = common::lab() else { return };
    let m = lab.plain()[0];
    let dir = tempfile::tempdir().unwrap();
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, "").unwrap();
    let mut target = lab.target(m);
    target.host_key = HostKeyPolicy::KnownHosts {
        path: known_hosts.clone(),
        trust_on_first_use: false,
    };
    let err = connect(&target, &common::options()).await.unwrap_err();
    match &err {
        SshError::HostKeyUnknown {
            fingerprint, key, ..
        } => {
            assert_eq!(fingerprint, &ssh_keygen_fingerprint(&m.host_key));
            assert!(key.starts_with(&m.host_key), "{key}");
        }
        other => panic!("expected HostKeyUnknown, got {other:?}"),
    }
    assert_eq!(err.kind(), "host_key_unknown");
    assert_eq!(
        std::fs::read_to_string(&known_hosts).unwrap(),
        "",
        "nothing recorded"
    );

    // An admin compares the fingerprint and trusts it; then it connects.
    let SshError::HostKeyUnknown { fingerprint, .. } = err else {
        unreachable!()
    };
    let wrong = fingerprint_of(&lab.machine("m2").host_key);
    let refused = berth_ssh::trust_fingerprint(&target, &common::options(), &known_hosts, &wrong)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, SshError::HostKeyChanged { .. }),
        "{refused:?}"
    );
    berth_ssh::trust_fingerprint(&target, &common::options(), &known_hosts, &fingerprint)
        .await
        .unwrap();
    let session = connect(&target, &common::options()).await.unwrap();
    let (out, _, _) = common::run(&session, "cat /etc/berth/client_id").await;
    assert_eq!(out.trim(), m.client_id);
}

#[tokio::test]
async fn a_changed_host_key_is_refused() {
    let Some(lab) = common::lab() else { return };
    let (m1, m2) = (lab.machine("m1"), lab.machine("m2"));
    // Pinned: m2's key for m1.
    let mut target = lab.target(m1);
    target.host_key = HostKeyPolicy::Pinned(m2.host_key.clone());
    match connect(&target, &common::options()).await.unwrap_err() {
        SshError::HostKeyChanged { expected, got, .. } => {
            assert_eq!(expected, fingerprint_of(&m2.host_key));
            assert_eq!(got, fingerprint_of(&m1.host_key));
        }
        other => panic!("expected HostKeyChanged, got {other:?}"),
    }
    // known_hosts: m2's key recorded under m1's address, even with trust on first use.
    let dir = tempfile::tempdir().unwrap();
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, format!("{} {}\n", m1.host, m2.host_key)).unwrap();
    target.host_key = HostKeyPolicy::KnownHosts {
        path: known_hosts,
        trust_on_first_use: true,
    };
    let err = connect(&target, &common::options()).await.unwrap_err();
    assert_eq!(err.kind(), "host_key_changed", "{err}");
}

#[tokio::test]
async fn trust_on_first_use_records_the_key_then_holds_to_it() {
    let Some(lab) = common::lab() else { return };
    let m = lab.plain()[1];
    let dir = tempfile::tempdir().unwrap();
    let known_hosts = dir.path().join("fleet/known_hosts");
    let mut target = lab.target(m);
    target.host_key = HostKeyPolicy::KnownHosts {
        path: known_hosts.clone(),
        trust_on_first_use: true,
    };
    connect(&target, &common::options()).await.unwrap();
    let text = std::fs::read_to_string(&known_hosts).unwrap();
    assert_eq!(text, format!("{} {}\n", m.host, m.host_key));
    // Second time: known, nothing appended, and trust on first use no longer needed.
    target.host_key = HostKeyPolicy::KnownHosts {
        path: known_hosts.clone(),
        trust_on_first_use: false,
    };
    connect(&target, &common::options()).await.unwrap();
    assert_eq!(std::fs::read_to_string(&known_hosts).unwrap(), text);
    // The recorded entry is what OpenSSH's own client accepts.
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-F", &m.host, "-f"])
        .arg(&known_hosts)
        .output()
        .unwrap();
    assert!(keygen.status.success(), "ssh-keygen -F finds the entry");
}

#[tokio::test]
async fn hashed_known_hosts_entries_from_ssh_keygen_are_understood() {
    let Some(lab) = common::lab() else { return };
    let m = lab.plain()[0];
    let dir = tempfile::tempdir().unwrap();
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, format!("{} {}\n", m.host, m.host_key)).unwrap();
    let hashed = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&known_hosts)
        .output()
        .unwrap();
    assert!(hashed.status.success());
    let text = std::fs::read_to_string(&known_hosts).unwrap();
    assert!(text.starts_with("|1|"), "{text}");
    let mut target = lab.target(m);
    target.host_key = HostKeyPolicy::KnownHosts {
        path: known_hosts,
        trust_on_first_use: false,
    };
    connect(&target, &common::options()).await.unwrap();
}

#[tokio::test]
async fn a_key_the_machine_does_not_accept_fails_auth() {
    let Some(lab) = common::lab() else { return };
    let mut target = lab.target(lab.plain()[0]);
    target.key = lab.key("other_ed25519");
    let options = ConnectOptions {
        retries: 3,
        ..common::options()
    };
    let started = Instant::now();
    let err = connect(&target, &options).await.unwrap_err();
    assert!(matches!(err, SshError::AuthFailed { .. }), "{err:?}");
    assert_eq!(err.kind(), "auth_failed");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "auth failures are not retried"
    );
}

#[tokio::test]
async fn every_client_key_type_authenticates() {
    // Debian 12's sshd (OpenSSH 9.2) no longer accepts ssh-rsa (SHA-1) signatures, so the RSA
    // login passing means rsa-sha2-256/512 was used.
    let Some(lab) = common::lab() else { return };
    let m = lab.plain()[0];
    for key in [
        lab.key("id_ed25519"),
        lab.key("id_ecdsa"),
        lab.key("id_rsa"),
        lab.encrypted_key(),
    ] {
        let mut target = lab.target(m);
        target.key = key.clone();
        let session = connect(&target, &common::options())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", key.path.display()));
        let (out, _, status) = common::run(&session, "whoami").await;
        assert_eq!((out.trim(), status), ("berth", ExitStatus::Code(0)));
    }
    // An encrypted key without its passphrase is the caller's to fix, before any connection.
    let mut target = lab.target(m);
    target.key = lab.key("id_ed25519_enc");
    let err = connect(&target, &common::options()).await.unwrap_err();
    assert_eq!(err.kind(), "client_key", "{err}");
    assert!(err.to_string().contains("passphrase"), "{err}");
    let debug = format!("{:?}", lab.encrypted_key());
    assert!(
        debug.contains("<secret>") && !debug.contains("berth-test-passphrase"),
        "{debug}"
    );
}

#[tokio::test]
async fn a_dead_address_is_unreachable_fast_after_the_retries() {
    let Some(lab) = common::lab() else { return };
    let mut target = lab.target(lab.plain()[0]);
    target.host = "127.0.29.254".into();
    let options = ConnectOptions {
        retries: 2,
        backoff: Duration::from_millis(50),
        ..common::options()
    };
    let started = Instant::now();
    let err = connect(&target, &options).await.unwrap_err();
    match &err {
        SshError::Unreachable {
            address,
            reason,
            attempts,
        } => {
            assert_eq!(address, "127.0.29.254:22");
            assert_eq!(reason, &UnreachableReason::Refused);
            assert_eq!(*attempts, 3);
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    // 50ms + 100ms of backoff, no connect timeout waited out.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(started.elapsed() >= Duration::from_millis(150));

    let mut target = lab.target(lab.plain()[0]);
    target.host = "no-such-host.invalid".into();
    let err = connect(&target, &common::options()).await.unwrap_err();
    assert!(
        matches!(
            &err,
            SshError::Unreachable {
                reason: UnreachableReason::Dns(_),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_hidden_machine_is_reachable_through_its_jump_host_only() {
    let Some(lab) = common::lab() else { return };
    let hidden = lab.machine("hidden");
    assert_eq!(hidden.jump.as_deref(), Some("jump"));
    let session = lab.connect(hidden).await;
    let (out, _, _) = common::run(&session, "cat /etc/berth/client_id; hostname").await;
    assert_eq!(out, format!("{}\nhidden\n", hidden.client_id));

    // Directly: no route.
    let mut direct = lab.target(hidden);
    direct.jump.clear();
    let err = connect(&direct, &common::options()).await.unwrap_err();
    assert_eq!(err.kind(), "unreachable", "{err}");

    // Two hops: m1, then jump, then hidden.
    let mut chain = lab.target(hidden);
    chain.jump.insert(0, lab.target(lab.machine("m1")));
    let session = connect(&chain, &common::options()).await.unwrap();
    let (out, _, _) = common::run(&session, "hostname").await;
    assert_eq!(out, "hidden\n");

    // Each hop's host key is checked: a wrong key for the jump host stops the chain there.
    let mut bad = lab.target(hidden);
    bad.jump[0].host_key = HostKeyPolicy::Pinned(lab.machine("m1").host_key.clone());
    match connect(&bad, &common::options()).await.unwrap_err() {
        SshError::HostKeyChanged { address, .. } => assert_eq!(address, "10.217.1.2:22"),
        other => panic!("expected HostKeyChanged for the jump host, got {other:?}"),
    }
    // And the target's own: a wrong key for hidden behind a good jump host.
    let mut bad = lab.target(hidden);
    bad.host_key = HostKeyPolicy::Pinned(lab.machine("jump").host_key.clone());
    match connect(&bad, &common::options()).await.unwrap_err() {
        SshError::HostKeyChanged { address, .. } => assert_eq!(address, "10.217.2.2:22"),
        other => panic!("expected HostKeyChanged for hidden, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_that_never_greets_times_out_and_is_retried() {
    let Some(lab) = common::lab() else { return };
    // A listener on loopback that accepts and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut target = lab.target(lab.plain()[0]);
    target.host = "127.0.0.1".into();
    target.port = port;
    let options = ConnectOptions {
        connect_timeout: Duration::from_millis(300),
        retries: 1,
        backoff: Duration::from_millis(50),
        ..common::options()
    };
    let started = Instant::now();
    match connect(&target, &options).await.unwrap_err() {
        SshError::Unreachable {
            reason, attempts, ..
        } => {
            assert_eq!(reason, UnreachableReason::Timeout);
            assert_eq!(attempts, 2);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(650) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    accepted.abort();
}

#[tokio::test]
async fn a_jump_host_that_cannot_reach_the_next_hop_says_so() {
    let Some(lab) = common::lab() else { return };
    let mut target = lab.target(lab.machine("hidden"));
    target.port = 23; // nothing listens there
    let err = connect(&target, &common::options()).await.unwrap_err();
    match &err {
        SshError::Unreachable {
            address,
            reason: UnreachableReason::Other(why),
            ..
        } => {
            assert_eq!(address, "10.217.2.2:23");
            assert!(why.contains("jump host 10.217.1.2:22"), "{why}");
        }
        other => panic!("expected Unreachable through the jump host, got {other:?}"),
    }
}

#[tokio::test]
async fn forty_connections_to_one_machine_at_once() {
    let Some(lab) = common::lab() else { return };
    let m = lab.plain()[0];
    let connects = (0..40).map(|_| async {
        let session = lab.connect(m).await;
        common::run(&session, "cat /etc/berth/client_id").await.0
    });
    for out in futures_util::future::join_all(connects).await {
        assert_eq!(out.trim(), m.client_id);
    }
}
