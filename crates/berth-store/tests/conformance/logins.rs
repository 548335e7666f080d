//! [`berth_store::LoginStore`]: login attempts, the failures of an address and of an account,
//! the addresses an account logged in from, pruning.

use std::net::{IpAddr, Ipv4Addr};

use berth_store::{LoginPressure, StoreError};
use time::Duration;

use crate::at;
use crate::support::TestDb;

stories!(
    failures_count_per_address_and_per_account,
    known_addresses_and_pruning,
    ipv6_addresses_are_told_apart_and_matched_as_text,
);

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

async fn failures_count_per_address_and_per_account(db: &TestDb) {
    let store = &db.store;
    let (attacker, user, other) = (ip(9), ip(10), ip(11));
    let window = at(60) - Duration::minutes(5);
    let long_ago = at(0) - Duration::days(30);
    // One old failure, outside the window.
    store
        .record_login_attempt("alice", attacker, false, at(-600))
        .await
        .unwrap();
    for i in 0..5 {
        store
            .record_login_attempt("alice", attacker, false, at(i * 10))
            .await
            .unwrap();
    }
    store
        .record_login_attempt("bob", attacker, false, at(5))
        .await
        .unwrap();
    // Names that are no user are recorded too: attackers type anything.
    store
        .record_login_attempt("Admin'--", attacker, false, at(5))
        .await
        .unwrap();
    let pressure = |name: &'static str, from: IpAddr| async move {
        store
            .login_pressure(name, from, window, long_ago)
            .await
            .unwrap()
    };
    assert_eq!(
        pressure("alice", attacker).await,
        LoginPressure {
            address_failures: 5,
            account_failures: 5,
            failing_addresses: 1,
            last_failure: Some(at(40)),
            known_address: false,
        }
    );
    // Another address of the same account has no failures of its own.
    assert_eq!(
        pressure("alice", user).await,
        LoginPressure {
            address_failures: 0,
            account_failures: 5,
            failing_addresses: 1,
            last_failure: Some(at(40)),
            known_address: false,
        }
    );
    assert_eq!(pressure("bob", attacker).await.address_failures, 1);
    assert_eq!(pressure("Admin'--", attacker).await.account_failures, 1);
    assert_eq!(pressure("carol", attacker).await, LoginPressure::default());

    // A success clears the failures of its own address before it, not those after it, and
    // not another address's.
    store
        .record_login_attempt("alice", user, false, at(41))
        .await
        .unwrap();
    store
        .record_login_attempt("alice", user, true, at(45))
        .await
        .unwrap();
    store
        .record_login_attempt("alice", other, false, at(46))
        .await
        .unwrap();
    let from_user = pressure("alice", user).await;
    assert_eq!(from_user.address_failures, 0);
    assert!(from_user.known_address);
    let from_attacker = pressure("alice", attacker).await;
    assert_eq!(
        (from_attacker.address_failures, from_attacker.known_address),
        (5, false)
    );
    store
        .record_login_attempt("alice", user, false, at(50))
        .await
        .unwrap();
    let from_user = pressure("alice", user).await;
    assert_eq!(from_user.address_failures, 1);
    // The account's failures, cleared or not, from three addresses.
    assert_eq!(
        (
            from_user.account_failures,
            from_user.failing_addresses,
            from_user.last_failure
        ),
        (8, 3, Some(at(50)))
    );

    assert!(matches!(
        store
            .record_login_attempt(&"a".repeat(257), attacker, false, at(0))
            .await,
        Err(StoreError::InvalidInput(_))
    ));
}

async fn known_addresses_and_pruning(db: &TestDb) {
    let store = &db.store;
    let (home, cafe) = (ip(20), ip(21));
    store
        .record_login_attempt("alice", home, true, at(-20 * 86_400))
        .await
        .unwrap();
    store
        .record_login_attempt("alice", cafe, false, at(-2 * 86_400))
        .await
        .unwrap();
    store
        .record_login_attempt("alice", cafe, true, at(-40 * 86_400))
        .await
        .unwrap();
    let known = |from: IpAddr| async move {
        store
            .login_pressure("alice", from, at(-300), at(-30 * 86_400))
            .await
            .unwrap()
            .known_address
    };
    assert!(known(home).await, "a success 20 days ago");
    assert!(!known(cafe).await, "a success 40 days ago is too old");
    assert!(
        !store
            .login_pressure("bob", home, at(-300), at(-30 * 86_400))
            .await
            .unwrap()
            .known_address,
        "another account's address"
    );
    // Failures older than a day go, successes only after thirty days.
    let pruned = store
        .prune_login_attempts(at(-86_400), at(-30 * 86_400))
        .await
        .unwrap();
    assert_eq!(pruned, 2);
    assert!(known(home).await);
    assert_eq!(
        store
            .prune_login_attempts(at(-86_400), at(-30 * 86_400))
            .await
            .unwrap(),
        0
    );
}

/// The server records an IPv6 client as the first address of its /64; the store matches the
/// text exactly, on every backend.
async fn ipv6_addresses_are_told_apart_and_matched_as_text(db: &TestDb) {
    let store = &db.store;
    let v6 = |t: &str| t.parse::<IpAddr>().unwrap();
    let (block, next, home) = (
        v6("2001:db8:1:2::"),
        v6("2001:db8:1:3::"),
        v6("2001:db8:ffff::"),
    );
    for i in 0..3 {
        store
            .record_login_attempt("alice", block, false, at(i))
            .await
            .unwrap();
    }
    store
        .record_login_attempt("alice", next, false, at(5))
        .await
        .unwrap();
    store
        .record_login_attempt("alice", home, true, at(-86_400))
        .await
        .unwrap();
    let pressure = |from: IpAddr| async move {
        store
            .login_pressure("alice", from, at(-300), at(-30 * 86_400))
            .await
            .unwrap()
    };
    assert_eq!(
        pressure(block).await,
        LoginPressure {
            address_failures: 3,
            account_failures: 4,
            failing_addresses: 2,
            last_failure: Some(at(5)),
            known_address: false,
        }
    );
    assert_eq!(pressure(next).await.address_failures, 1);
    let from_home = pressure(home).await;
    assert_eq!(
        (from_home.address_failures, from_home.known_address),
        (0, true)
    );
    // A full address in a recorded block is another text: the server groups before asking.
    assert_eq!(pressure(v6("2001:db8:1:2::1")).await.address_failures, 0);
}
