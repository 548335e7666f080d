//! Enrollment against the real SSH test machines (`scripts/test-machines.sh`): each has its own
//! host key and its own /etc/berth/client_id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The machines' list and keys, shared with berth-ssh's tests.
#[path = "../../berth-ssh/tests/common/mod.rs"]
mod common;

use berth_fleet::{EnrollmentStatus, check_enrollment};
use berth_ssh::{HostKeyPolicy, fingerprint, host_keys};

const CLIENT_ID_PATH: &str = "/etc/berth/client_id";

#[tokio::test]
async fn every_machine_with_its_own_id_is_enrolled_including_through_a_jump_host() {
    let Some(lab) = common::lab() else { return };
    for machine in &lab.machines {
        let check = check_enrollment(
            &lab.target(machine),
            &common::options(),
            CLIENT_ID_PATH,
            &machine.client_id,
        )
        .await;
        assert_eq!(
            check.status,
            EnrollmentStatus::Enrolled,
            "{}: {}",
            machine.name,
            check.message
        );
        assert!(check.latency.is_some());
        assert!(
            check.message.contains(&machine.client_id),
            "{}",
            check.message
        );
    }
    // The hidden machine is reachable only through the jump host: without it, unreachable.
    let hidden = lab.machine("hidden");
    let mut direct = lab.target(hidden);
    direct.jump.clear();
    let mut options = common::options();
    options.connect_timeout = std::time::Duration::from_secs(3);
    let check = check_enrollment(&direct, &options, CLIENT_ID_PATH, &hidden.client_id).await;
    assert_eq!(
        check.status,
        EnrollmentStatus::Unreachable,
        "{}",
        check.message
    );
}

#[tokio::test]
async fn another_machines_id_is_a_mismatch_naming_both() {
    let Some(lab) = common::lab() else { return };
    let m1 = lab.machine("m1");
    let m2 = lab.machine("m2");
    let check = check_enrollment(
        &lab.target(m1),
        &common::options(),
        CLIENT_ID_PATH,
        &m2.client_id,
    )
    .await;
    assert_eq!(
        check.status,
        EnrollmentStatus::Mismatch,
        "{}",
        check.message
    );
    assert!(
        check.message.contains(&m1.client_id) && check.message.contains(&m2.client_id),
        "{}",
        check.message
    );
}

#[tokio::test]
async fn a_missing_or_unreadable_file_is_missing() {
    let Some(lab) = common::lab() else { return };
    let m1 = lab.machine("m1");
    let check = check_enrollment(
        &lab.target(m1),
        &common::options(),
        "/etc/berth/no_such_file",
        &m1.client_id,
    )
    .await;
    assert_eq!(check.status, EnrollmentStatus::Missing, "{}", check.message);
    assert!(
        check.message.contains("berth agent --enroll"),
        "{}",
        check.message
    );
    // A directory cannot be read as a client id.
    let check = check_enrollment(
        &lab.target(m1),
        &common::options(),
        "/etc/berth",
        &m1.client_id,
    )
    .await;
    assert_eq!(check.status, EnrollmentStatus::Missing, "{}", check.message);
    assert!(check.message.contains("cannot read"), "{}", check.message);
    // A path that would break out of the quoting never reaches the machine.
    let check = check_enrollment(
        &lab.target(m1),
        &common::options(),
        "/tmp/x'; touch /tmp/pwned; '",
        &m1.client_id,
    )
    .await;
    assert_eq!(check.status, EnrollmentStatus::Missing);
    assert!(check.latency.is_none());
}

#[tokio::test]
async fn host_key_and_auth_failures_have_their_own_status() {
    let Some(lab) = common::lab() else { return };
    let m1 = lab.machine("m1");
    let options = common::options();

    let dir = tempfile::tempdir().unwrap();
    let mut unknown = lab.target(m1);
    unknown.host_key = HostKeyPolicy::KnownHosts {
        path: dir.path().join("known_hosts"),
        trust_on_first_use: false,
    };
    let check = check_enrollment(&unknown, &options, CLIENT_ID_PATH, &m1.client_id).await;
    assert_eq!(
        check.status,
        EnrollmentStatus::HostKeyUnknown,
        "{}",
        check.message
    );
    let expected = fingerprint(&host_keys::parse_public_key(&m1.host_key).unwrap());
    assert_eq!(check.fingerprint.as_deref(), Some(expected.as_str()));
    assert!(check.message.contains(&expected), "{}", check.message);

    let mut changed = lab.target(m1);
    changed.host_key = HostKeyPolicy::Pinned(lab.machine("m2").host_key.clone());
    let check = check_enrollment(&changed, &options, CLIENT_ID_PATH, &m1.client_id).await;
    assert_eq!(
        check.status,
        EnrollmentStatus::HostKeyChanged,
        "{}",
        check.message
    );
    assert_eq!(check.fingerprint.as_deref(), Some(expected.as_str()));

    let mut stranger = lab.target(m1);
    stranger.key = lab.key("other_ed25519");
    let check = check_enrollment(&stranger, &options, CLIENT_ID_PATH, &m1.client_id).await;
    assert_eq!(
        check.status,
        EnrollmentStatus::AuthFailed,
        "{}",
        check.message
    );

    // Nothing listens on this loopback address.
    let mut dead = lab.target(m1);
    dead.host = "127.0.20.250".to_owned();
    let check = check_enrollment(&dead, &options, CLIENT_ID_PATH, &m1.client_id).await;
    assert_eq!(
        check.status,
        EnrollmentStatus::Unreachable,
        "{}",
        check.message
    );
}
