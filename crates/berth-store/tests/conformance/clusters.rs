//! [`berth_store::ClusterStore`]: insert and get, names unique among a user's clusters that are
//! not deleted, list and count, compare-and-set transitions (and their timestamps, each set
//! once), extensions up to the limit, expiry, the sealed kubeconfig (kept apart from every
//! listing), renames and account removal.

use std::sync::Arc;

use berth_store::{
    ClusterFilter, ClusterRecord, ClusterTransition, MAX_KUBECONFIG_BYTES, Store, StoreError,
    normalize_time,
};
use berth_types::{ClusterId, ClusterName, ClusterState};
use serde_json::json;
use time::macros::datetime;

use crate::support::TestDb;
use crate::{at, query, user};

stories!(
    clusters_round_trip,
    names_are_unique_among_clusters_not_deleted,
    clusters_list_and_count,
    transitions_compare_and_set,
    concurrent_transitions_have_one_winner,
    extensions_stop_at_the_limit,
    expired_clusters_are_those_whose_ttl_ran_out,
    kubeconfigs_are_kept_apart,
    clusters_follow_their_owner,
);

/// A provisioning cluster of `owner`'s named `name`, asked for `created` seconds after
/// [`crate::T0`], with a 2 h TTL that may reach 24 h (not stored).
fn cluster(owner: &str, name: &str, created: i64) -> ClusterRecord {
    ClusterRecord {
        id: ClusterId::random(),
        name: ClusterName::new(name).unwrap(),
        owner: user(owner),
        provider: "docker".to_owned(),
        state: ClusterState::Provisioning,
        state_reason: "requested by the owner".to_owned(),
        api_url: None,
        created_at: at(created),
        running_at: None,
        expires_at: at(created + 2 * 3600),
        max_expires_at: at(created + 24 * 3600),
        deleted_at: None,
    }
}

fn to(state: ClusterState, reason: &str, seconds: i64) -> ClusterTransition {
    ClusterTransition {
        state,
        reason: reason.to_owned(),
        at: at(seconds),
        api_url: None,
    }
}

fn conflict_message<T: std::fmt::Debug>(result: Result<T, StoreError>) -> String {
    match result {
        Err(StoreError::Conflict(message)) => message,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn clusters_round_trip(db: &TestDb) {
    let store = &db.store;
    let mut c = cluster("alice", "demo", 0);
    // Precision finer than microseconds and non-UTC offsets come back normalized.
    c.created_at = datetime!(2024-05-01 14:00:00.123456789 +02:00);
    c.api_url = Some("https://127.0.0.1:40123".to_owned());
    store.insert_cluster(&c).await.unwrap();
    let got = store.cluster(c.id).await.unwrap();
    assert_eq!(got.created_at, datetime!(2024-05-01 12:00:00.123456 UTC));
    assert_eq!(
        got,
        ClusterRecord {
            created_at: normalize_time(c.created_at),
            ..c.clone()
        }
    );

    let message = conflict_message(store.insert_cluster(&c).await);
    assert!(message.contains(&c.id.to_string()), "{message}");
    assert!(matches!(
        store.cluster(ClusterId::random()).await,
        Err(StoreError::NotFound)
    ));

    // An expiry past the limit is refused, and nothing is stored.
    let mut late = cluster("alice", "late", 0);
    late.expires_at = late.max_expires_at + time::Duration::microseconds(1);
    assert!(matches!(
        store.insert_cluster(&late).await,
        Err(StoreError::InvalidInput(_))
    ));
    let mut ancient = cluster("alice", "ancient", 0);
    ancient.created_at = datetime!(-0001-01-01 0:00 UTC);
    assert!(matches!(
        store.insert_cluster(&ancient).await,
        Err(StoreError::InvalidInput(_))
    ));
    for refused in [late.id, ancient.id] {
        assert!(matches!(
            store.cluster(refused).await,
            Err(StoreError::NotFound)
        ));
    }
}

async fn names_are_unique_among_clusters_not_deleted(db: &TestDb) {
    let store = &db.store;
    let first = cluster("alice", "demo", 0);
    store.insert_cluster(&first).await.unwrap();

    let again = cluster("alice", "demo", 10);
    let message = conflict_message(store.insert_cluster(&again).await);
    assert!(
        message.contains("alice") && message.contains("demo"),
        "{message}"
    );
    // Another owner may use the name.
    let bobs = cluster("bob", "demo", 10);
    store.insert_cluster(&bobs).await.unwrap();

    // A failed cluster still holds its name (its row is live until deleted)...
    store
        .transition_cluster(
            first.id,
            &[ClusterState::Provisioning],
            &to(ClusterState::Failed, "image missing", 20),
        )
        .await
        .unwrap();
    conflict_message(store.insert_cluster(&again).await);
    // ...a deleted one does not.
    store
        .transition_cluster(
            first.id,
            &[ClusterState::Failed],
            &to(ClusterState::Deleted, "deleted by alice", 30),
        )
        .await
        .unwrap();
    store.insert_cluster(&again).await.unwrap();
    // The deleted one cannot come back while its name is taken.
    conflict_message(
        store
            .transition_cluster(
                first.id,
                &[ClusterState::Deleted],
                &to(ClusterState::Provisioning, "revived", 40),
            )
            .await,
    );
    assert_eq!(
        store.cluster(first.id).await.unwrap().state,
        ClusterState::Deleted
    );
    // Two deleted clusters may share a name.
    store
        .transition_cluster(
            again.id,
            &[ClusterState::Provisioning],
            &to(ClusterState::Deleted, "deleted by alice", 50),
        )
        .await
        .unwrap();
    let third = cluster("alice", "demo", 60);
    store.insert_cluster(&third).await.unwrap();
    let alices = store
        .list_clusters(&ClusterFilter {
            owner: Some(user("alice")),
            states: vec![],
        })
        .await
        .unwrap();
    assert_eq!(
        alices.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![first.id, again.id, third.id]
    );
}

async fn clusters_list_and_count(db: &TestDb) {
    let store = &db.store;
    let mut all = Vec::new();
    for (i, (owner, state)) in [
        ("alice", ClusterState::Running),
        ("bob", ClusterState::Running),
        ("alice", ClusterState::Deleted),
        ("alice", ClusterState::Provisioning),
        ("bob", ClusterState::Failed),
        ("alice", ClusterState::Deleting),
    ]
    .into_iter()
    .enumerate()
    {
        // Inserted newest first, so "oldest first" is not insertion order.
        let mut c = cluster(owner, &format!("c{i}"), 100 - i as i64);
        c.state = state;
        store.insert_cluster(&c).await.unwrap();
        all.push(c);
    }
    let mut oldest_first = all.clone();
    oldest_first.sort_by_key(|c| c.created_at);
    assert_eq!(
        store
            .list_clusters(&ClusterFilter::default())
            .await
            .unwrap(),
        oldest_first
    );

    let alices = store
        .list_clusters(&ClusterFilter {
            owner: Some(user("alice")),
            states: vec![],
        })
        .await
        .unwrap();
    let expected: Vec<_> = oldest_first
        .iter()
        .filter(|c| c.owner.as_str() == "alice")
        .cloned()
        .collect();
    assert_eq!(alices, expected);

    let running = store
        .list_clusters(&ClusterFilter {
            owner: None,
            states: vec![ClusterState::Running, ClusterState::Failed],
        })
        .await
        .unwrap();
    assert_eq!(
        running.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["c4", "c1", "c0"]
    );
    let alices_live = store
        .list_clusters(&ClusterFilter {
            owner: Some(user("alice")),
            states: ClusterState::LIVE.to_vec(),
        })
        .await
        .unwrap();
    assert_eq!(
        alices_live
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["c5", "c3", "c0"]
    );
    assert!(
        store
            .list_clusters(&ClusterFilter {
                owner: Some(user("carol")),
                states: vec![],
            })
            .await
            .unwrap()
            .is_empty()
    );

    let count = |owner: &'static str, states: &'static [ClusterState]| {
        let store = Arc::clone(store);
        async move { store.count_clusters(&user(owner), states).await.unwrap() }
    };
    assert_eq!(count("alice", &ClusterState::LIVE).await, 3);
    assert_eq!(count("alice", &ClusterState::ALL).await, 4);
    assert_eq!(count("bob", &ClusterState::LIVE).await, 1);
    assert_eq!(count("bob", &[ClusterState::Failed]).await, 1);
    assert_eq!(count("carol", &ClusterState::ALL).await, 0);
    assert_eq!(count("alice", &[]).await, 0, "no states, no clusters");
}

async fn transitions_compare_and_set(db: &TestDb) {
    let store = &db.store;
    let c = cluster("alice", "demo", 0);
    store.insert_cluster(&c).await.unwrap();

    let running = store
        .transition_cluster(
            c.id,
            &[ClusterState::Provisioning],
            &ClusterTransition {
                api_url: Some("https://127.0.0.1:40123".to_owned()),
                ..to(ClusterState::Running, "ready", 30)
            },
        )
        .await
        .unwrap();
    assert_eq!(
        running,
        ClusterRecord {
            state: ClusterState::Running,
            state_reason: "ready".to_owned(),
            api_url: Some("https://127.0.0.1:40123".to_owned()),
            running_at: Some(at(30)),
            ..c.clone()
        }
    );
    assert_eq!(store.cluster(c.id).await.unwrap(), running);

    // The guard no longer holds: nothing changes, and the message says where it is.
    for from in [&[ClusterState::Provisioning][..], &[]] {
        let message = conflict_message(
            store
                .transition_cluster(c.id, from, &to(ClusterState::Failed, "x", 40))
                .await,
        );
        assert!(message.contains("running"), "{message}");
    }
    assert_eq!(store.cluster(c.id).await.unwrap(), running);

    // Running again (a provider that came back) keeps when it first ran, and the address
    // when none is given.
    let again = store
        .transition_cluster(
            c.id,
            &[ClusterState::Running, ClusterState::Failed],
            &to(ClusterState::Running, "ready again", 50),
        )
        .await
        .unwrap();
    assert_eq!(again.running_at, Some(at(30)));
    assert_eq!(again.api_url, running.api_url);
    assert_eq!(again.state_reason, "ready again");

    let deleting = store
        .transition_cluster(
            c.id,
            &ClusterState::LIVE,
            &to(ClusterState::Deleting, "ttl reached", 60),
        )
        .await
        .unwrap();
    assert_eq!(deleting.deleted_at, None);
    let deleted = store
        .transition_cluster(
            c.id,
            &[ClusterState::Deleting],
            &ClusterTransition {
                api_url: Some("https://gone".to_owned()),
                ..to(ClusterState::Deleted, "ttl reached", 70)
            },
        )
        .await
        .unwrap();
    assert_eq!(deleted.deleted_at, Some(at(70)));
    assert_eq!(deleted.running_at, Some(at(30)));
    assert_eq!(deleted.api_url.as_deref(), Some("https://gone"));
    let twice = store
        .transition_cluster(
            c.id,
            &[ClusterState::Deleted],
            &to(ClusterState::Deleted, "deleted twice", 80),
        )
        .await
        .unwrap();
    assert_eq!(twice.deleted_at, Some(at(70)), "set once");

    // A failure from provisioning: never running, never deleted.
    let f = cluster("alice", "broken", 0);
    store.insert_cluster(&f).await.unwrap();
    let failed = store
        .transition_cluster(
            f.id,
            &[ClusterState::Provisioning],
            &to(ClusterState::Failed, "image rancher/k3s:x not found", 5),
        )
        .await
        .unwrap();
    assert_eq!(failed.state_reason, "image rancher/k3s:x not found");
    assert_eq!((failed.running_at, failed.deleted_at), (None, None));

    for from in [&[ClusterState::Provisioning][..], &[]] {
        assert!(matches!(
            store
                .transition_cluster(
                    ClusterId::random(),
                    from,
                    &to(ClusterState::Running, "x", 0)
                )
                .await,
            Err(StoreError::NotFound)
        ));
    }
}

async fn concurrent_transitions_have_one_winner(db: &TestDb) {
    let c = cluster("alice", "demo", 0);
    db.store.insert_cluster(&c).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store: Arc<dyn Store> = Arc::clone(&db.store);
            tokio::spawn(async move {
                store
                    .transition_cluster(
                        c.id,
                        &[ClusterState::Provisioning, ClusterState::Running],
                        &to(ClusterState::Deleting, &format!("deleted by {i}"), i),
                    )
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(c) => winners.push(c.state_reason),
            Err(StoreError::Conflict(message)) => assert!(message.contains("deleting")),
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        db.store.cluster(c.id).await.unwrap().state_reason,
        winners[0]
    );
}

async fn extensions_stop_at_the_limit(db: &TestDb) {
    let store = &db.store;
    let c = cluster("alice", "demo", 0);
    store.insert_cluster(&c).await.unwrap();

    let longer = store.extend_cluster(c.id, at(5 * 3600)).await.unwrap();
    assert_eq!(
        longer,
        ClusterRecord {
            expires_at: at(5 * 3600),
            ..c.clone()
        }
    );
    // One microsecond past the limit is refused and changes nothing; the limit itself is
    // reached.
    let past = c.max_expires_at + time::Duration::microseconds(1);
    match store.extend_cluster(c.id, past).await {
        Err(StoreError::InvalidInput(message)) => {
            assert!(message.contains("2024-05-02T12:00:00.000000Z"), "{message}");
        }
        other => panic!("expected invalid input, got {other:?}"),
    }
    assert_eq!(store.cluster(c.id).await.unwrap().expires_at, at(5 * 3600));

    store
        .transition_cluster(
            c.id,
            &[ClusterState::Provisioning],
            &to(ClusterState::Running, "ready", 30),
        )
        .await
        .unwrap();
    let at_limit = store.extend_cluster(c.id, c.max_expires_at).await.unwrap();
    assert_eq!(at_limit.expires_at, c.max_expires_at);
    assert_eq!(at_limit.state, ClusterState::Running);

    // Only while its TTL runs: not deleting, deleted or failed (whatever the new expiry).
    for (state, seconds) in [
        (ClusterState::Deleting, 40),
        (ClusterState::Deleted, 50),
        (ClusterState::Failed, 60),
    ] {
        let other = cluster("alice", &format!("c-{seconds}"), 0);
        store.insert_cluster(&other).await.unwrap();
        store
            .transition_cluster(
                other.id,
                &[ClusterState::Provisioning],
                &to(state, "x", seconds),
            )
            .await
            .unwrap();
        for expiry in [at(3 * 3600), past] {
            let message = conflict_message(store.extend_cluster(other.id, expiry).await);
            assert!(message.contains(state.as_str()), "{message}");
        }
        assert_eq!(
            store.cluster(other.id).await.unwrap().expires_at,
            other.expires_at
        );
    }
    assert!(matches!(
        store.extend_cluster(ClusterId::random(), at(60)).await,
        Err(StoreError::NotFound)
    ));
}

async fn expired_clusters_are_those_whose_ttl_ran_out(db: &TestDb) {
    let store = &db.store;
    let now = at(10_000);
    let mut expected = Vec::new();
    for (i, (state, expires, is_expired)) in [
        (ClusterState::Provisioning, 9_000, true),
        (ClusterState::Running, 10_000, true), // exactly now: due
        (ClusterState::Running, 10_001, false),
        (ClusterState::Running, 5_000, true),
        (ClusterState::Deleting, 5_000, false), // being deleted already
        (ClusterState::Deleted, 5_000, false),
        (ClusterState::Failed, 5_000, false),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = cluster("alice", &format!("c{i}"), 0);
        c.state = state;
        c.expires_at = at(expires);
        store.insert_cluster(&c).await.unwrap();
        if is_expired {
            expected.push(c);
        }
    }
    expected.sort_by_key(|c| (c.expires_at, c.id));
    assert_eq!(store.expired_clusters(now).await.unwrap(), expected);
    assert!(store.expired_clusters(at(0)).await.unwrap().is_empty());
}

async fn kubeconfigs_are_kept_apart(db: &TestDb) {
    let store = &db.store;
    let c = cluster("alice", "demo", 0);
    store.insert_cluster(&c).await.unwrap();
    assert_eq!(store.kubeconfig(c.id).await.unwrap(), None);

    // Opaque bytes, not text: zeros, invalid UTF-8, every byte value.
    let sealed: Vec<u8> = (0..=255u8).chain([0, 0xff, 0xc3, 0x28]).collect();
    store.store_kubeconfig(c.id, &sealed).await.unwrap();
    assert_eq!(store.kubeconfig(c.id).await.unwrap(), Some(sealed.clone()));
    // The database holds exactly those bytes, in the one kubeconfig column, a blob.
    assert_eq!(
        db.raw_bytes("SELECT kubeconfig FROM clusters").await,
        vec![Some(sealed.clone())]
    );
    let columns = db.raw_columns("clusters").await;
    let kube: Vec<_> = columns
        .iter()
        .filter(|(name, _)| name.contains("kube"))
        .collect();
    let blob = match store.backend() {
        "sqlite" => "blob",
        _ => "bytea",
    };
    assert_eq!(kube, [&("kubeconfig".to_owned(), blob.to_owned())]);

    // Never in a record: not from get, list, expiry or transitions.
    let record = serde_json::to_value(store.cluster(c.id).await.unwrap()).unwrap();
    assert_eq!(
        record.as_object().unwrap().len(),
        columns.len() - 1,
        "every column but the kubeconfig"
    );
    assert!(record.get("kubeconfig").is_none());
    let listed = store
        .list_clusters(&ClusterFilter::default())
        .await
        .unwrap();
    let expired = store.expired_clusters(at(1_000_000)).await.unwrap();
    for text in [
        serde_json::to_string(&listed).unwrap(),
        serde_json::to_string(&expired).unwrap(),
    ] {
        assert!(!text.contains("kube"), "{text}");
    }
    // Nor through table queries: clusters are no table there.
    assert!(matches!(
        store
            .query_table(&query(json!({"table": "clusters"})), None)
            .await,
        Err(StoreError::InvalidQuery(_))
    ));

    // Replaced, not appended; the bounds hold.
    store.store_kubeconfig(c.id, b"second").await.unwrap();
    assert_eq!(
        store.kubeconfig(c.id).await.unwrap().as_deref(),
        Some(&b"second"[..])
    );
    let largest = vec![0x5a; MAX_KUBECONFIG_BYTES];
    store.store_kubeconfig(c.id, &largest).await.unwrap();
    assert_eq!(store.kubeconfig(c.id).await.unwrap(), Some(largest));
    for bad in [Vec::new(), vec![0x5a; MAX_KUBECONFIG_BYTES + 1]] {
        assert!(matches!(
            store.store_kubeconfig(c.id, &bad).await,
            Err(StoreError::InvalidInput(_))
        ));
    }
    assert!(matches!(
        store.store_kubeconfig(ClusterId::random(), b"x").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.kubeconfig(ClusterId::random()).await,
        Err(StoreError::NotFound)
    ));

    // A deleted cluster's kubeconfig goes with it, and none is kept for it afterwards.
    store
        .transition_cluster(
            c.id,
            &[ClusterState::Provisioning],
            &to(ClusterState::Deleted, "deleted by alice", 10),
        )
        .await
        .unwrap();
    assert_eq!(store.kubeconfig(c.id).await.unwrap(), None);
    assert_eq!(
        db.raw_bytes("SELECT kubeconfig FROM clusters").await,
        vec![None]
    );
    let message = conflict_message(store.store_kubeconfig(c.id, &sealed).await);
    assert!(message.contains("deleted"), "{message}");
    assert_eq!(store.kubeconfig(c.id).await.unwrap(), None);
}

async fn clusters_follow_their_owner(db: &TestDb) {
    let store = &db.store;
    let a1 = cluster("alice", "one", 10);
    let a2 = cluster("alice", "two", 0);
    let b1 = cluster("bob", "one", 0);
    for c in [&a1, &a2, &b1] {
        store.insert_cluster(c).await.unwrap();
    }
    store.store_kubeconfig(a1.id, b"sealed").await.unwrap();

    // bob has a live "one": alice cannot become bob, and nothing moves.
    let message = conflict_message(
        store
            .rename_cluster_owner(&user("alice"), &user("bob"))
            .await,
    );
    assert!(message.contains("bob"), "{message}");
    assert_eq!(
        store
            .count_clusters(&user("alice"), &ClusterState::ALL)
            .await
            .unwrap(),
        2
    );

    assert_eq!(
        store
            .rename_cluster_owner(&user("alice"), &user("alicia"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.cluster(a1.id).await.unwrap().owner, user("alicia"));
    assert_eq!(
        store
            .count_clusters(&user("alice"), &ClusterState::ALL)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .rename_cluster_owner(&user("nobody"), &user("somebody"))
            .await
            .unwrap(),
        0
    );

    // The account goes: its clusters go, oldest first, kubeconfigs with them.
    assert_eq!(
        store.delete_clusters_of(&user("alicia")).await.unwrap(),
        vec![a2.id, a1.id]
    );
    for gone in [a1.id, a2.id] {
        assert!(matches!(
            store.cluster(gone).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.kubeconfig(gone).await,
            Err(StoreError::NotFound)
        ));
    }
    assert!(db.raw_bytes("SELECT kubeconfig FROM clusters").await == vec![None]);
    assert_eq!(store.cluster(b1.id).await.unwrap(), b1);
    assert!(
        store
            .delete_clusters_of(&user("alicia"))
            .await
            .unwrap()
            .is_empty()
    );
}
