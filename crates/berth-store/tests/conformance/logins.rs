//! [`berth_store::LoginStore`]: login attempts, the failures that lock an account, pruning.

use std::net::{IpAddr, Ipv4Addr};

use berth_store::StoreError;
use time::Duration;

use crate::at;
use crate::support::TestDb;

stories!(login_failures_lock_and_reset,);

async fn login_failures_lock_and_reset(db: &TestDb) {
    let store = &db.store;
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
    // One old failure, outside the window.
    store
        .record_login_attempt("alice", ip, false, at(-600))
        .await
        .unwrap();
    for i in 0..5 {
        store
            .record_login_attempt("alice", ip, false, at(i * 10))
            .await
            .unwrap();
    }
    store
        .record_login_attempt("bob", ip, false, at(5))
        .await
        .unwrap();
    // Names that are no user are recorded too: attackers type anything.
    store
        .record_login_attempt("Admin'--", ip, false, at(5))
        .await
        .unwrap();
    let window = at(60) - Duration::minutes(5);
    assert_eq!(store.recent_failures("alice", window).await.unwrap(), 5);
    assert_eq!(store.recent_failures("bob", window).await.unwrap(), 1);
    assert_eq!(store.recent_failures("Admin'--", window).await.unwrap(), 1);
    assert_eq!(store.recent_failures("carol", window).await.unwrap(), 0);

    // A successful login clears the failures before it, not those after.
    store
        .record_login_attempt("alice", ip, true, at(45))
        .await
        .unwrap();
    assert_eq!(store.recent_failures("alice", window).await.unwrap(), 0);
    store
        .record_login_attempt("alice", ip, false, at(50))
        .await
        .unwrap();
    assert_eq!(store.recent_failures("alice", window).await.unwrap(), 1);

    assert_eq!(store.prune_login_attempts(at(0)).await.unwrap(), 1);
    assert_eq!(store.prune_login_attempts(at(0)).await.unwrap(), 0);

    assert!(matches!(
        store
            .record_login_attempt(&"a".repeat(257), ip, false, at(0))
            .await,
        Err(StoreError::InvalidInput(_))
    ));
}
