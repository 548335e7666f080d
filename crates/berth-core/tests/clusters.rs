//! The cluster service over a fake provider (the logic above the `ClusterProvider` trait; the
//! real `docker` provider is tested in berth-clusters and end to end in the binary's tests):
//! lifecycle, failures, quotas, names, TTLs and their reaper, extensions, reconciliation,
//! sealed kubeconfigs and account removal.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a panic is the failure report

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use berth_clusters::{
    ClusterProvider, ClusterSpec, Kubeconfig, KubeconfigKey, ProviderCluster, ProviderError,
    ProviderStatus, Provisioned,
};
use berth_core::{
    Actor, ClusterError, ClusterEvent, ClusterFilter, ClusterRecord, Clusters, ClustersSettings,
    ManualClock,
};
use berth_store::Store;
use berth_types::{ClusterId, ClusterName, ClusterState, Username};

const SECRET: &str = "client-key-data: c2VjcmV0LWtleS1tYXRlcmlhbA==";

/// A provider in memory: clusters become ready after `polls_to_ready` status calls; a name
/// listed in `fail_create` fails at create.
#[derive(Debug, Default)]
struct FakeProvider {
    held: Mutex<BTreeMap<ClusterId, (Username, u32)>>,
    polls_to_ready: u32,
    fail_create: Mutex<HashSet<String>>,
    never_ready: bool,
    deletes: Mutex<Vec<ClusterId>>,
    /// Clusters whose server exited (a restarted engine).
    stopped: Mutex<HashSet<ClusterId>>,
}

fn error(message: &str) -> ProviderError {
    ProviderError::Settings(message.to_owned())
}

#[async_trait]
impl ClusterProvider for FakeProvider {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn create(&self, spec: &ClusterSpec) -> Result<Provisioned, ProviderError> {
        if self
            .fail_create
            .lock()
            .unwrap()
            .contains(spec.name.as_str())
        {
            return Err(error("image rancher/k3s:missing is not on the engine"));
        }
        self.held
            .lock()
            .unwrap()
            .entry(spec.id)
            .or_insert((spec.owner.clone(), 0));
        Ok(Provisioned {
            api_url: "https://127.0.0.1:6443".to_owned(),
        })
    }

    async fn status(&self, id: ClusterId) -> Result<ProviderStatus, ProviderError> {
        if self.stopped.lock().unwrap().contains(&id) {
            return Ok(ProviderStatus::Failed {
                reason: "exited with code 137".to_owned(),
            });
        }
        let mut held = self.held.lock().unwrap();
        let Some((_, polls)) = held.get_mut(&id) else {
            return Ok(ProviderStatus::Missing);
        };
        *polls += 1;
        if self.never_ready || *polls <= self.polls_to_ready {
            return Ok(ProviderStatus::Provisioning {
                detail: "waiting for /readyz".to_owned(),
            });
        }
        Ok(ProviderStatus::Ready {
            api_url: "https://127.0.0.1:6443".to_owned(),
        })
    }

    async fn kubeconfig(&self, id: ClusterId) -> Result<Kubeconfig, ProviderError> {
        Ok(Kubeconfig::new(format!(
            "apiVersion: v1\nkind: Config\n# {id}\n{SECRET}\n"
        )))
    }

    async fn delete(&self, id: ClusterId) -> Result<(), ProviderError> {
        self.held.lock().unwrap().remove(&id);
        self.deletes.lock().unwrap().push(id);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ProviderCluster>, ProviderError> {
        Ok(self
            .held
            .lock()
            .unwrap()
            .iter()
            .map(|(id, (owner, _))| ProviderCluster {
                id: *id,
                owner: Some(owner.clone()),
                container: format!("fake-{id}"),
                running: !self.stopped.lock().unwrap().contains(id),
            })
            .collect())
    }
}

struct Harness {
    clusters: Clusters,
    provider: Arc<FakeProvider>,
    store: Arc<dyn Store>,
    clock: ManualClock,
    dir: tempfile::TempDir,
}

async fn harness(provider: FakeProvider, max_per_user: u32) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("berth.db");
    let store = berth_store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let key = KubeconfigKey::load_or_create(&dir.path().join("keys/clusters.key")).unwrap();
    let clock = ManualClock::new();
    let provider = Arc::new(provider);
    let clusters = Clusters::new(
        Arc::clone(&provider) as Arc<dyn ClusterProvider>,
        Arc::clone(&store),
        key,
        ClustersSettings {
            max_per_user,
            ready_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(10),
            clock: Arc::new(clock.clone()),
            ..ClustersSettings::default()
        },
    );
    Harness {
        clusters,
        provider,
        store,
        clock,
        dir,
    }
}

fn user(name: &str) -> Username {
    Username::new(name).unwrap()
}

fn name(name: &str) -> ClusterName {
    ClusterName::new(name).unwrap()
}

/// Waits until cluster `id` is in `state` (read from the store after each event); a hang
/// guard, not a timing assertion.
async fn until(h: &Harness, id: ClusterId, state: ClusterState) -> ClusterRecord {
    let mut events = h.clusters.subscribe();
    let wait = async {
        loop {
            let now = h.clusters.get(id).await.unwrap();
            if now.state == state {
                return now;
            }
            let _ = events.recv().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .unwrap_or_else(|_| panic!("cluster {id} never reached {state}"))
}

async fn audit_actions(h: &Harness) -> Vec<String> {
    let query: berth_store::TableQuery = serde_json::from_value(serde_json::json!({
        "table": "audit",
        "sort": [{"column": "id"}],
    }))
    .unwrap();
    let rows = h.store.query_table(&query, None).await.unwrap().rows;
    rows.iter()
        .filter_map(|row| {
            row.get("action")
                .and_then(|a| a.as_str())
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn a_cluster_goes_from_provisioning_to_running_with_a_sealed_kubeconfig() {
    let h = harness(
        FakeProvider {
            polls_to_ready: 3,
            ..FakeProvider::default()
        },
        1,
    )
    .await;
    let mut events = h.clusters.subscribe();
    let alice = user("alice");
    let created = h
        .clusters
        .create(&alice, name("dev"), Some(Duration::from_secs(3600)), None)
        .await
        .unwrap();
    assert_eq!(created.state, ClusterState::Provisioning);
    assert_eq!(created.provider, "fake");
    assert_eq!(
        created.expires_at - created.created_at,
        time::Duration::hours(1)
    );
    assert_eq!(
        created.max_expires_at - created.created_at,
        time::Duration::hours(24)
    );
    match events.recv().await.unwrap() {
        ClusterEvent::Changed(record) => assert_eq!(record.state, ClusterState::Provisioning),
        other => panic!("{other:?}"),
    }
    let err = h
        .clusters
        .kubeconfig(created.id, &alice, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClusterError::WrongState {
                state: ClusterState::Provisioning,
                ..
            }
        ),
        "{err:?}"
    );
    let running = until(&h, created.id, ClusterState::Running).await;
    assert_eq!(running.api_url.as_deref(), Some("https://127.0.0.1:6443"));
    assert!(running.running_at.is_some());
    let kubeconfig = h
        .clusters
        .kubeconfig(created.id, &alice, None)
        .await
        .unwrap();
    assert!(kubeconfig.expose().contains(SECRET));
    assert!(
        !format!("{kubeconfig:?}").contains("secret"),
        "Debug redacts"
    );

    // The database holds a ciphertext, never the text.
    let sealed = h.store.kubeconfig(created.id).await.unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains("client-key-data"));
    for entry in std::fs::read_dir(h.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains("c2VjcmV0LWtleS1tYXRlcmlhbA"),
                "{} holds the kubeconfig in clear",
                path.display()
            );
        }
    }
    let actions = audit_actions(&h).await;
    for action in ["cluster.create", "cluster.running", "cluster.kubeconfig"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
}

#[tokio::test]
async fn a_provider_failure_turns_the_cluster_failed_with_the_reason() {
    let provider = FakeProvider::default();
    provider.fail_create.lock().unwrap().insert("broken".into());
    let h = harness(provider, 1).await;
    let alice = user("alice");
    let created = h
        .clusters
        .create(&alice, name("broken"), None, None)
        .await
        .unwrap();
    assert_eq!(created.state, ClusterState::Provisioning, "201 at once");
    let failed = until(&h, created.id, ClusterState::Failed).await;
    assert!(
        failed.state_reason.contains("not on the engine"),
        "{failed:?}"
    );
    assert!(audit_actions(&h).await.iter().any(|a| a == "cluster.fail"));
    // A failed cluster does not count against the quota.
    let next = h
        .clusters
        .create(&alice, name("next"), None, None)
        .await
        .unwrap();
    until(&h, next.id, ClusterState::Running).await;
}

#[tokio::test]
async fn a_cluster_that_never_answers_fails_after_the_ready_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let store = berth_store::open("sqlite::memory:").await.unwrap();
    let provider = Arc::new(FakeProvider {
        never_ready: true,
        ..FakeProvider::default()
    });
    let clusters = Clusters::new(
        Arc::clone(&provider) as Arc<dyn ClusterProvider>,
        store,
        KubeconfigKey::load_or_create(&dir.path().join("k")).unwrap(),
        ClustersSettings {
            ready_timeout: Duration::from_millis(200),
            poll_interval: Duration::from_millis(20),
            ..ClustersSettings::default()
        },
    );
    let created = clusters
        .create(&user("alice"), name("slow"), None, None)
        .await
        .unwrap();
    let mut events = clusters.subscribe();
    let failed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let now = clusters.get(created.id).await.unwrap();
            if now.state == ClusterState::Failed {
                return now;
            }
            let _ = events.recv().await;
        }
    })
    .await
    .unwrap();
    assert!(
        failed.state_reason.contains("not ready after"),
        "{failed:?}"
    );
    assert!(failed.state_reason.contains("waiting for /readyz"));
    assert!(
        provider.held.lock().unwrap().is_empty(),
        "a failed cluster's resources are removed"
    );
}

#[tokio::test]
async fn quotas_names_and_ttls_are_enforced() {
    let h = harness(FakeProvider::default(), 2).await;
    let alice = user("alice");
    let bob = user("bob");
    let first = h
        .clusters
        .create(&alice, name("one"), None, None)
        .await
        .unwrap();
    assert_eq!(
        first.expires_at - first.created_at,
        time::Duration::hours(2),
        "the default TTL"
    );
    let err = h
        .clusters
        .create(&alice, name("one"), None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::NameTaken(_)), "{err:?}");
    // Another user may use the name.
    h.clusters
        .create(&bob, name("one"), None, None)
        .await
        .unwrap();
    h.clusters
        .create(&alice, name("two"), None, None)
        .await
        .unwrap();
    let err = h
        .clusters
        .create(&alice, name("three"), None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::Quota { max: 2 }), "{err:?}");
    let err = h
        .clusters
        .create(
            &bob,
            name("long"),
            Some(Duration::from_secs(25 * 3600)),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::TtlTooLong(_)), "{err:?}");
    assert!(err.to_string().contains("24h"), "{err}");

    // Deleting frees the quota and, once deleted, the name.
    until(&h, first.id, ClusterState::Running).await;
    let deleting = h
        .clusters
        .delete(
            first.id,
            Actor::User(alice.clone()),
            "deleted by alice",
            None,
        )
        .await
        .unwrap();
    assert_eq!(deleting.state, ClusterState::Deleting);
    let deleted = until(&h, first.id, ClusterState::Deleted).await;
    assert_eq!(deleted.state_reason, "deleted by alice");
    assert!(deleted.deleted_at.is_some());
    assert!(h.provider.deletes.lock().unwrap().contains(&first.id));
    let again = h
        .clusters
        .create(&alice, name("one"), None, None)
        .await
        .unwrap();
    assert_ne!(again.id, first.id);
    // Deleting twice changes nothing.
    let twice = h
        .clusters
        .delete(first.id, Actor::User(alice.clone()), "again", None)
        .await
        .unwrap();
    assert_eq!(twice.state, ClusterState::Deleted);
    assert_eq!(twice.state_reason, "deleted by alice");
}

#[tokio::test]
async fn extensions_stop_at_the_max_ttl_and_the_reaper_deletes_expired_clusters() {
    let h = harness(FakeProvider::default(), 3).await;
    let alice = user("alice");
    let short = h
        .clusters
        .create(&alice, name("short"), Some(Duration::from_secs(60)), None)
        .await
        .unwrap();
    let long = h
        .clusters
        .create(&alice, name("long"), Some(Duration::from_secs(3600)), None)
        .await
        .unwrap();
    until(&h, short.id, ClusterState::Running).await;
    until(&h, long.id, ClusterState::Running).await;

    let extended = h
        .clusters
        .extend(long.id, Duration::from_secs(3600), &alice, None)
        .await
        .unwrap();
    assert_eq!(
        extended.expires_at - long.expires_at,
        time::Duration::hours(1)
    );
    let err = h
        .clusters
        .extend(long.id, Duration::from_secs(23 * 3600), &alice, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::TtlTooLong(_)), "{err:?}");
    assert!(
        err.to_string().contains("22h"),
        "says how much is left: {err}"
    );
    assert!(
        audit_actions(&h)
            .await
            .iter()
            .any(|a| a == "cluster.extend")
    );

    // Nothing has expired yet.
    assert_eq!(h.clusters.reap().await.unwrap(), 0);
    h.clock.advance(Duration::from_secs(61));
    assert_eq!(h.clusters.reap().await.unwrap(), 1);
    let reaped = until(&h, short.id, ClusterState::Deleted).await;
    assert_eq!(reaped.state_reason, "ttl reached");
    assert_eq!(
        h.clusters.get(long.id).await.unwrap().state,
        ClusterState::Running
    );
    assert!(
        audit_actions(&h)
            .await
            .iter()
            .any(|a| a == "cluster.expire")
    );
    let err = h
        .clusters
        .extend(short.id, Duration::from_secs(60), &alice, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::WrongState { .. }), "{err:?}");
}

#[tokio::test]
async fn reconcile_removes_orphans_fails_rows_without_resources_and_resumes_provisioning() {
    let h = harness(FakeProvider::default(), 5).await;
    let alice = user("alice");
    let kept = h
        .clusters
        .create(&alice, name("kept"), None, None)
        .await
        .unwrap();
    let lost = h
        .clusters
        .create(&alice, name("lost"), None, None)
        .await
        .unwrap();
    until(&h, kept.id, ClusterState::Running).await;
    until(&h, lost.id, ClusterState::Running).await;
    // What a killed Berth leaves: a container whose row never got written, a row whose
    // container was removed behind Berth's back, a row still provisioning.
    let orphan = ClusterId::random();
    h.provider
        .held
        .lock()
        .unwrap()
        .insert(orphan, (alice.clone(), 0));
    h.provider.held.lock().unwrap().remove(&lost.id);
    let stalled = ClusterRecord {
        id: ClusterId::random(),
        name: name("stalled"),
        owner: alice.clone(),
        provider: "fake".into(),
        state: ClusterState::Provisioning,
        state_reason: "provisioning".into(),
        api_url: None,
        created_at: time::OffsetDateTime::now_utc(),
        running_at: None,
        expires_at: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        max_expires_at: time::OffsetDateTime::now_utc() + time::Duration::hours(24),
        deleted_at: None,
    };
    h.store.insert_cluster(&stalled).await.unwrap();

    let report = h.clusters.reconcile().await.unwrap();
    assert_eq!(report.removed, vec![orphan]);
    assert_eq!(report.failed, vec![lost.id]);
    assert_eq!(report.resumed, vec![stalled.id]);
    assert!(!h.provider.held.lock().unwrap().contains_key(&orphan));
    let failed = h.clusters.get(lost.id).await.unwrap();
    assert_eq!(failed.state, ClusterState::Failed);
    assert!(failed.state_reason.contains("gone"), "{failed:?}");
    until(&h, stalled.id, ClusterState::Running).await;
    assert_eq!(
        h.clusters.get(kept.id).await.unwrap().state,
        ClusterState::Running
    );
}

#[tokio::test]
async fn a_removed_account_takes_its_clusters_with_it() {
    let h = harness(FakeProvider::default(), 2).await;
    let alice = user("alice");
    let carol = user("carol");
    let mine = h
        .clusters
        .create(&alice, name("mine"), None, None)
        .await
        .unwrap();
    let other = h
        .clusters
        .create(&carol, name("other"), None, None)
        .await
        .unwrap();
    until(&h, mine.id, ClusterState::Running).await;
    let renamed = user("alicia");
    assert_eq!(h.clusters.rename_owner(&alice, &renamed).await.unwrap(), 1);
    assert_eq!(h.clusters.get(mine.id).await.unwrap().owner, renamed);
    let removed = h.clusters.remove_owner(&renamed).await.unwrap();
    assert_eq!(removed, vec![mine.id]);
    assert!(matches!(
        h.clusters.get(mine.id).await,
        Err(ClusterError::NotFound)
    ));
    assert!(!h.provider.held.lock().unwrap().contains_key(&mine.id));
    let left = h.clusters.list(&ClusterFilter::default()).await.unwrap();
    assert_eq!(
        left.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![other.id]
    );
}

#[tokio::test]
async fn the_reaper_fails_a_running_cluster_whose_server_stopped_and_deletes_expired_failed_ones() {
    let h = harness(FakeProvider::default(), 3).await;
    let alice = user("alice");
    let dead = h
        .clusters
        .create(&alice, name("dead"), Some(Duration::from_secs(600)), None)
        .await
        .unwrap();
    let alive = h
        .clusters
        .create(&alice, name("alive"), Some(Duration::from_secs(3600)), None)
        .await
        .unwrap();
    until(&h, dead.id, ClusterState::Running).await;
    until(&h, alive.id, ClusterState::Running).await;
    h.provider.stopped.lock().unwrap().insert(dead.id);
    h.clusters.reap().await.unwrap();
    let failed = h.clusters.get(dead.id).await.unwrap();
    assert_eq!(failed.state, ClusterState::Failed, "{failed:?}");
    assert!(
        failed.state_reason.contains("exited with code 137"),
        "{failed:?}"
    );
    assert!(h.provider.deletes.lock().unwrap().contains(&dead.id));
    assert_eq!(
        h.clusters.get(alive.id).await.unwrap().state,
        ClusterState::Running
    );
    // Its name stays taken until it expires; then the reaper deletes it and frees the name.
    let err = h
        .clusters
        .create(&alice, name("dead"), None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::NameTaken(_)), "{err:?}");
    h.clock.advance(Duration::from_secs(601));
    assert_eq!(h.clusters.reap().await.unwrap(), 1);
    until(&h, dead.id, ClusterState::Deleted).await;
    h.clusters
        .create(&alice, name("dead"), None, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_disabled_account_loses_its_clusters() {
    let h = harness(FakeProvider::default(), 2).await;
    let alice = user("alice");
    let one = h
        .clusters
        .create(&alice, name("one"), None, None)
        .await
        .unwrap();
    until(&h, one.id, ClusterState::Running).await;
    let other = h
        .clusters
        .create(&user("bob"), name("two"), None, None)
        .await
        .unwrap();
    assert_eq!(
        h.clusters
            .delete_owned(&alice, "its owner's account was disabled")
            .await
            .unwrap(),
        1
    );
    let gone = until(&h, one.id, ClusterState::Deleted).await;
    assert_eq!(gone.state_reason, "its owner's account was disabled");
    assert_ne!(
        h.clusters.get(other.id).await.unwrap().state,
        ClusterState::Deleted
    );
}
