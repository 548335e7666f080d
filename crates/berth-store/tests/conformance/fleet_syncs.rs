//! [`berth_store::FleetSyncStore`]: the history of inventory syncs, the commit in force, and
//! finishing a sync as one transaction with the machines it puts in force.

use berth_store::{EnrollmentUpdate, SYNC_HISTORY, StoreError, SyncOutcome, SyncRecord};
use berth_types::{Changes, EnrollmentStatus, SyncChanges, SyncFileError, SyncResult, SyncTrigger};

use crate::support::TestDb;
use crate::{at, machine, machine_id, sync_machines};

stories!(
    syncs_begin_finish_and_list,
    the_commit_in_force_is_the_last_to_end_with_an_inventory,
    a_refused_finish_changes_nothing,
    a_failure_inside_the_finish_rolls_it_all_back,
    running_syncs_are_interrupted_at_start_up,
    history_is_bounded,
);

const C1: &str = "1111111111111111111111111111111111111111";
const C2: &str = "2222222222222222222222222222222222222222";

fn outcome(result: SyncResult, commit: Option<&str>, seconds: i64) -> SyncOutcome {
    SyncOutcome {
        result,
        commit: commit.map(str::to_owned),
        errors: Vec::new(),
        changes: SyncChanges::default(),
        at: at(seconds),
    }
}

async fn syncs_begin_finish_and_list(db: &TestDb) {
    let store = &db.store;
    assert!(store.list_syncs(10).await.unwrap().is_empty());
    assert_eq!(store.commit_in_force().await.unwrap(), None);

    let first = store
        .begin_sync(SyncTrigger::Api, "alice", at(0))
        .await
        .unwrap();
    assert_eq!(
        first,
        SyncRecord {
            id: first.id,
            trigger: SyncTrigger::Api,
            actor: "alice".to_owned(),
            started_at: at(0),
            finished_at: None,
            result: SyncResult::Running,
            commit: None,
            errors: Vec::new(),
            changes: SyncChanges::default(),
        }
    );
    assert_eq!(store.list_syncs(10).await.unwrap(), vec![first.clone()]);

    let errors = vec![
        SyncFileError {
            file: Some("links.yaml".to_owned()),
            line: Some(3),
            path: Some("machines[0].host".to_owned()),
            message: "not a host name or address".to_owned(),
        },
        SyncFileError {
            file: None,
            line: None,
            path: None,
            message: "fetch failed: connection refused".to_owned(),
        },
    ];
    let failed = SyncOutcome {
        errors: errors.clone(),
        ..outcome(SyncResult::Failed, Some(C2), 5)
    };
    store.finish_sync(first.id, &failed, None).await.unwrap();
    assert_eq!(store.commit_in_force().await.unwrap(), None, "failed");

    let second = store
        .begin_sync(SyncTrigger::Webhook, "gitea", at(10))
        .await
        .unwrap();
    assert!(second.id > first.id);
    let changes = SyncChanges {
        machines: Changes {
            added: vec!["web-1".to_owned()],
            changed: Vec::new(),
            removed: Vec::new(),
        },
        scripts: Changes {
            added: Vec::new(),
            changed: vec!["uptime".to_owned()],
            removed: vec!["old".to_owned()],
        },
    };
    let succeeded = SyncOutcome {
        changes: changes.clone(),
        ..outcome(SyncResult::Succeeded, Some(C1), 12)
    };
    store
        .finish_sync(second.id, &succeeded, Some(&[machine("web-1", &[])]))
        .await
        .unwrap();
    assert_eq!(store.commit_in_force().await.unwrap().as_deref(), Some(C1));

    let history = store.list_syncs(10).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].id, second.id, "newest first");
    assert_eq!(history[0].result, SyncResult::Succeeded);
    assert_eq!(history[0].trigger, SyncTrigger::Webhook);
    assert_eq!(history[0].finished_at, Some(at(12)));
    assert_eq!(history[0].changes, changes);
    assert_eq!(history[1].result, SyncResult::Failed);
    assert_eq!(history[1].commit.as_deref(), Some(C2));
    assert_eq!(history[1].errors, errors);
    assert_eq!(history[1].finished_at, Some(at(5)));
    assert_eq!(store.list_syncs(1).await.unwrap(), history[..1]);
    assert!(store.list_syncs(0).await.unwrap().is_empty());

    // A fetch that finds the commit in force: unchanged, and still in force; a failed sync
    // after it leaves the machines and the commit as they were.
    let third = store
        .begin_sync(SyncTrigger::Schedule, "(berth)", at(20))
        .await
        .unwrap();
    store
        .finish_sync(
            third.id,
            &outcome(SyncResult::Unchanged, Some(C1), 21),
            None,
        )
        .await
        .unwrap();
    let fourth = store
        .begin_sync(SyncTrigger::Start, "(berth)", at(30))
        .await
        .unwrap();
    store
        .finish_sync(fourth.id, &outcome(SyncResult::Failed, Some(C2), 31), None)
        .await
        .unwrap();
    assert_eq!(store.commit_in_force().await.unwrap().as_deref(), Some(C1));
    assert_eq!(store.list_machines().await.unwrap().len(), 1);
    assert_eq!(
        store
            .list_syncs(10)
            .await
            .unwrap()
            .iter()
            .map(|s| s.trigger)
            .collect::<Vec<_>>(),
        [
            SyncTrigger::Start,
            SyncTrigger::Schedule,
            SyncTrigger::Webhook,
            SyncTrigger::Api
        ]
    );
}

async fn the_commit_in_force_is_the_last_to_end_with_an_inventory(db: &TestDb) {
    let store = &db.store;
    // Two overlapping syncs: the one that finishes last is what the machines table holds.
    let early = store
        .begin_sync(SyncTrigger::Schedule, "(berth)", at(0))
        .await
        .unwrap();
    let late = store
        .begin_sync(SyncTrigger::Api, "alice", at(1))
        .await
        .unwrap();
    store
        .finish_sync(
            late.id,
            &outcome(SyncResult::Succeeded, Some(C2), 2),
            Some(&[machine("two", &[])]),
        )
        .await
        .unwrap();
    assert_eq!(store.commit_in_force().await.unwrap().as_deref(), Some(C2));
    store
        .finish_sync(
            early.id,
            &outcome(SyncResult::Succeeded, Some(C1), 3),
            Some(&[machine("one", &[])]),
        )
        .await
        .unwrap();
    assert_eq!(store.commit_in_force().await.unwrap().as_deref(), Some(C1));
    let machines = store.list_machines().await.unwrap();
    assert_eq!(machines.len(), 1);
    assert_eq!(machines[0].spec.id, machine_id("one"));
    assert_eq!(machines[0].commit, C1);
}

async fn a_refused_finish_changes_nothing(db: &TestDb) {
    let store = &db.store;
    let id = machine_id("web-1");
    sync_machines(db, &[machine("web-1", &["web"])], C1, 0).await;
    let verified = EnrollmentUpdate {
        status: EnrollmentStatus::Enrolled,
        message: "matches".to_owned(),
        fingerprint: None,
        at: at(5),
    };
    store.record_enrollment(&id, &verified).await.unwrap();
    let machines = store.list_machines().await.unwrap();

    let sync = store
        .begin_sync(SyncTrigger::Schedule, "(berth)", at(10))
        .await
        .unwrap();
    store
        .finish_sync(sync.id, &outcome(SyncResult::Failed, None, 11), None)
        .await
        .unwrap();
    let history = store.list_syncs(10).await.unwrap();

    // Finishing it again, with an inventory this time: a conflict, and nothing moves.
    let again = store
        .finish_sync(
            sync.id,
            &outcome(SyncResult::Succeeded, Some(C2), 12),
            Some(&[machine("db-1", &[])]),
        )
        .await;
    match again {
        Err(StoreError::Conflict(message)) => {
            assert!(message.contains("failed, not running"), "{message}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.list_machines().await.unwrap(), machines);
    assert_eq!(store.list_syncs(10).await.unwrap(), history);
    assert_eq!(store.commit_in_force().await.unwrap().as_deref(), Some(C1));

    assert!(matches!(
        store
            .finish_sync(
                sync.id + 1000,
                &outcome(SyncResult::Succeeded, Some(C2), 12),
                Some(&[])
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.list_machines().await.unwrap(), machines);

    // Outcomes and machines the store cannot record are refused before anything is written.
    let running = store
        .begin_sync(SyncTrigger::Api, "alice", at(20))
        .await
        .unwrap();
    let duplicate = vec![machine("a", &[]), machine("b", &[]), machine("a", &[])];
    let bad_tag = vec![machine("a", &["Web"])];
    let comma = vec![machine("a", &["web,db"])];
    let mut no_port = vec![machine("a", &[])];
    no_port[0].port = 0;
    for (what, result, commit, specs) in [
        ("still running", SyncResult::Running, Some(C2), None),
        (
            "succeeded without a commit",
            SyncResult::Succeeded,
            None,
            None,
        ),
        (
            "unchanged without a commit",
            SyncResult::Unchanged,
            None,
            None,
        ),
        (
            "machines without a commit",
            SyncResult::Failed,
            None,
            Some(&duplicate),
        ),
        (
            "a machine twice",
            SyncResult::Succeeded,
            Some(C2),
            Some(&duplicate),
        ),
        (
            "an upper-case tag",
            SyncResult::Succeeded,
            Some(C2),
            Some(&bad_tag),
        ),
        (
            "a comma in a tag",
            SyncResult::Succeeded,
            Some(C2),
            Some(&comma),
        ),
        ("port 0", SyncResult::Succeeded, Some(C2), Some(&no_port)),
    ] {
        let finished = store
            .finish_sync(
                running.id,
                &outcome(result, commit, 21),
                specs.map(Vec::as_slice),
            )
            .await;
        assert!(
            matches!(finished, Err(StoreError::InvalidInput(_))),
            "{what}: {finished:?}"
        );
    }
    assert_eq!(store.list_machines().await.unwrap(), machines);
    assert_eq!(
        store.list_syncs(1).await.unwrap()[0].result,
        SyncResult::Running
    );
    // It can still finish properly.
    store
        .finish_sync(
            running.id,
            &outcome(SyncResult::Succeeded, Some(C2), 22),
            Some(&[]),
        )
        .await
        .unwrap();
    assert!(store.list_machines().await.unwrap().is_empty());
    assert_eq!(store.commit_in_force().await.unwrap().as_deref(), Some(C2));
}

async fn a_failure_inside_the_finish_rolls_it_all_back(db: &TestDb) {
    let store = &db.store;
    sync_machines(
        db,
        &[machine("web-1", &["web"]), machine("web-2", &[])],
        C1,
        0,
    )
    .await;
    let before = store.list_machines().await.unwrap();
    // The database refuses one machine, after the sync row and other machines were written.
    if store.backend() == "sqlite" {
        db.execute_raw(
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON machines WHEN NEW.id = 'zz-boom' \
             BEGIN SELECT RAISE(ABORT, 'boom'); END",
        )
        .await
        .unwrap();
    } else {
        db.execute_raw(
            "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'boom'; END $$",
        )
        .await
        .unwrap();
        db.execute_raw(
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON machines FOR EACH ROW \
             WHEN (NEW.id = 'zz-boom') EXECUTE FUNCTION refuse_boom()",
        )
        .await
        .unwrap();
    }
    let sync = store
        .begin_sync(SyncTrigger::Schedule, "(berth)", at(10))
        .await
        .unwrap();
    let mut renamed = machine("web-1", &["web"]);
    renamed.host = "127.0.0.9".to_owned();
    let finished = store
        .finish_sync(
            sync.id,
            &outcome(SyncResult::Succeeded, Some(C2), 11),
            Some(&[machine("new-1", &[]), renamed, machine("zz-boom", &[])]),
        )
        .await;
    assert!(
        matches!(finished, Err(StoreError::Database(_))),
        "{finished:?}"
    );
    assert_eq!(store.list_machines().await.unwrap(), before);
    assert_eq!(store.commit_in_force().await.unwrap().as_deref(), Some(C1));
    let row = &store.list_syncs(1).await.unwrap()[0];
    assert_eq!((row.id, row.result), (sync.id, SyncResult::Running));
    assert_eq!(row.finished_at, None);
}

async fn running_syncs_are_interrupted_at_start_up(db: &TestDb) {
    let store = &db.store;
    assert_eq!(store.interrupt_running_syncs(at(0)).await.unwrap(), 0);
    let a = store
        .begin_sync(SyncTrigger::Start, "(berth)", at(0))
        .await
        .unwrap();
    let done = store
        .begin_sync(SyncTrigger::Api, "alice", at(1))
        .await
        .unwrap();
    store
        .finish_sync(done.id, &outcome(SyncResult::Unchanged, Some(C1), 2), None)
        .await
        .unwrap();
    let b = store
        .begin_sync(SyncTrigger::Schedule, "(berth)", at(3))
        .await
        .unwrap();
    assert_eq!(store.interrupt_running_syncs(at(100)).await.unwrap(), 2);
    assert_eq!(store.interrupt_running_syncs(at(101)).await.unwrap(), 0);
    let history = store.list_syncs(10).await.unwrap();
    for sync in &history {
        if sync.id == done.id {
            assert_eq!(sync.result, SyncResult::Unchanged);
            assert_eq!(sync.finished_at, Some(at(2)));
        } else {
            assert!(sync.id == a.id || sync.id == b.id);
            assert_eq!(sync.result, SyncResult::Interrupted);
            assert_eq!(sync.finished_at, Some(at(100)));
            assert_eq!(sync.commit, None);
        }
    }
    assert!(matches!(
        store
            .finish_sync(
                a.id,
                &outcome(SyncResult::Succeeded, Some(C2), 102),
                Some(&[])
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.commit_in_force().await.unwrap().as_deref(), Some(C1));
}

async fn history_is_bounded(db: &TestDb) {
    let store = &db.store;
    // A sync that never ends (until start-up interrupts it), then the inventory in force, then
    // more failures than the history keeps.
    let stuck = store
        .begin_sync(SyncTrigger::Start, "(berth)", at(0))
        .await
        .unwrap();
    let in_force = sync_machines(db, &[machine("web-1", &[])], C1, 1).await;
    let failures = i64::from(SYNC_HISTORY) + 5;
    let mut ids = Vec::new();
    for i in 0..failures {
        let sync = store
            .begin_sync(SyncTrigger::Schedule, "(berth)", at(10 + i))
            .await
            .unwrap();
        store
            .finish_sync(
                sync.id,
                &outcome(SyncResult::Failed, Some(C2), 10 + i),
                None,
            )
            .await
            .unwrap();
        ids.push(sync.id);
    }
    let kept: Vec<i64> = store
        .list_syncs(SYNC_HISTORY * 2)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    let newest: Vec<i64> = ids
        .iter()
        .rev()
        .take(SYNC_HISTORY as usize)
        .copied()
        .collect();
    assert_eq!(
        kept.len(),
        SYNC_HISTORY as usize + 2,
        "the newest, in force, running"
    );
    assert_eq!(kept[..SYNC_HISTORY as usize], newest[..]);
    assert_eq!(kept[SYNC_HISTORY as usize..], [in_force, stuck.id]);
    assert_eq!(store.commit_in_force().await.unwrap().as_deref(), Some(C1));
    assert_eq!(store.list_machines().await.unwrap().len(), 1);

    // Once interrupted, the stuck sync is history like any other and goes at the next finish.
    assert_eq!(store.interrupt_running_syncs(at(5000)).await.unwrap(), 1);
    let sync = store
        .begin_sync(SyncTrigger::Schedule, "(berth)", at(5001))
        .await
        .unwrap();
    store
        .finish_sync(sync.id, &outcome(SyncResult::Failed, None, 5002), None)
        .await
        .unwrap();
    let kept: Vec<i64> = store
        .list_syncs(SYNC_HISTORY * 2)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(kept.len(), SYNC_HISTORY as usize + 1);
    assert_eq!(kept[0], sync.id);
    assert_eq!(kept.last(), Some(&in_force));
    // A new inventory in force lets the old one go.
    let newer = sync_machines(db, &[], C2, 6000).await;
    let kept = store.list_syncs(SYNC_HISTORY * 2).await.unwrap();
    assert_eq!(kept.len(), SYNC_HISTORY as usize);
    assert_eq!(kept[0].id, newer);
    assert!(kept.iter().all(|s| s.id != in_force));
    assert_eq!(store.commit_in_force().await.unwrap().as_deref(), Some(C2));
}
