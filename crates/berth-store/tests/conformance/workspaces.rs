//! [`berth_store::WorkspaceStore`]: insert, get, list (by owner, state, member), compare-and-set
//! state changes, activity touches, delete and count.

use std::sync::Arc;

use berth_store::{
    Member, MemberRole, StateUpdate, Store, StoreError, Workspace, WorkspaceFilter, WorkspaceState,
    normalize_time,
};
use berth_types::WorkspaceId;
use time::macros::datetime;

use crate::support::TestDb;
use crate::{at, user, workspace};

stories!(
    workspaces_round_trip,
    workspaces_list_and_count,
    state_changes_compare_and_set,
    concurrent_compare_and_set_has_one_winner,
    activity_only_moves_forward,
);

async fn workspaces_round_trip(db: &TestDb) {
    let store = &db.store;
    let mut w = workspace("alice", "python", 0);
    // Precision finer than microseconds and non-UTC offsets come back normalized.
    w.created_at = datetime!(2024-05-01 14:00:00.123456789 +02:00);
    w.expires_at = Some(at(3600));
    w.container_id = Some("c0ffee".into());
    w.persistent = true;
    store.insert_workspace(&w).await.unwrap();

    let got = store.get_workspace(w.id).await.unwrap();
    assert_eq!(got.created_at, datetime!(2024-05-01 12:00:00.123456 UTC));
    assert_eq!(got.created_at.offset(), time::UtcOffset::UTC);
    let expected = Workspace {
        created_at: normalize_time(w.created_at),
        ..w.clone()
    };
    assert_eq!(got, expected);

    assert!(matches!(
        store.insert_workspace(&w).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.get_workspace(WorkspaceId::random()).await,
        Err(StoreError::NotFound)
    ));
    store.delete_workspace(w.id).await.unwrap();
    assert!(matches!(
        store.get_workspace(w.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_workspace(w.id).await,
        Err(StoreError::NotFound)
    ));

    let mut ancient = workspace("alice", "python", 0);
    ancient.created_at = datetime!(-0001-01-01 0:00 UTC);
    assert!(matches!(
        store.insert_workspace(&ancient).await,
        Err(StoreError::InvalidInput(_))
    ));
}

async fn workspaces_list_and_count(db: &TestDb) {
    let store = &db.store;
    let mut all = Vec::new();
    for (i, (owner, state)) in [
        ("alice", WorkspaceState::Running),
        ("bob", WorkspaceState::Running),
        ("alice", WorkspaceState::Stopped),
        ("alice", WorkspaceState::Starting),
        ("bob", WorkspaceState::Failed),
    ]
    .into_iter()
    .enumerate()
    {
        // Inserted newest first, so "oldest first" is not insertion order.
        let mut w = workspace(owner, "python", 100 - i as i64);
        w.state = state;
        store.insert_workspace(&w).await.unwrap();
        all.push(w);
    }
    let listed = store
        .list_workspaces(&WorkspaceFilter::default())
        .await
        .unwrap();
    let mut expected = all.clone();
    expected.sort_by_key(|w| w.created_at);
    assert_eq!(listed, expected);

    let alice = store
        .list_workspaces(&WorkspaceFilter {
            owner: Some(user("alice")),
            states: vec![],
            ..WorkspaceFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(alice.len(), 3);
    assert!(alice.iter().all(|w| w.owner.as_str() == "alice"));

    let running = store
        .list_workspaces(&WorkspaceFilter {
            owner: None,
            states: vec![WorkspaceState::Running, WorkspaceState::Failed],
            ..WorkspaceFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(running.len(), 3);

    // Shared with bob: the workspaces he is a member of, whoever owns them.
    let bobs = |w: &&Workspace| w.owner.as_str() != "bob";
    let shared_with_bob: Vec<Workspace> = all.iter().filter(bobs).take(2).cloned().collect();
    for w in &shared_with_bob {
        store
            .put_member(&Member {
                workspace: w.id,
                username: user("bob"),
                role: MemberRole::Viewer,
                added_by: w.owner.clone(),
                added_at: w.created_at,
            })
            .await
            .unwrap();
    }
    let mut shared = store
        .list_workspaces(&WorkspaceFilter {
            member: Some(user("bob")),
            ..WorkspaceFilter::default()
        })
        .await
        .unwrap();
    shared.sort_by_key(|w| w.id);
    let mut expected: Vec<_> = shared_with_bob.iter().map(|w| w.id).collect();
    expected.sort();
    assert_eq!(shared.iter().map(|w| w.id).collect::<Vec<_>>(), expected);
    let none = store
        .list_workspaces(&WorkspaceFilter {
            member: Some(user("carol")),
            ..WorkspaceFilter::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());

    assert_eq!(
        store
            .count_workspaces(&user("alice"), &WorkspaceState::LIVE)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .count_workspaces(&user("bob"), &[WorkspaceState::Running])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_workspaces(&user("carol"), &WorkspaceState::ALL)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.count_workspaces(&user("alice"), &[]).await.unwrap(),
        0
    );
}

async fn state_changes_compare_and_set(db: &TestDb) {
    let store = &db.store;
    let w = workspace("alice", "python", 0);
    store.insert_workspace(&w).await.unwrap();

    let starting = store
        .update_workspace_state(
            w.id,
            &StateUpdate::to(WorkspaceState::Starting, "creating the container")
                .expecting(WorkspaceState::Pending)
                .with_container("abc123"),
        )
        .await
        .unwrap();
    assert_eq!(starting.state, WorkspaceState::Starting);
    assert_eq!(starting.container_id.as_deref(), Some("abc123"));
    assert_eq!(starting.state_reason, "creating the container");

    // The guard no longer holds: someone else moved it.
    let stale = store
        .update_workspace_state(
            w.id,
            &StateUpdate::to(WorkspaceState::Failed, "x").expecting(WorkspaceState::Pending),
        )
        .await;
    match stale {
        Err(StoreError::Conflict(message)) => assert!(message.contains("starting"), "{message}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        store.get_workspace(w.id).await.unwrap().state,
        WorkspaceState::Starting
    );

    let running = store
        .update_workspace_state(
            w.id,
            &StateUpdate::to(WorkspaceState::Running, "started")
                .expecting(WorkspaceState::Starting)
                .started(at(5))
                .expiring(at(3605)),
        )
        .await
        .unwrap();
    assert_eq!(running.container_id.as_deref(), Some("abc123"), "kept");
    assert_eq!(running.started_at, Some(at(5)));
    assert_eq!(running.expires_at, Some(at(3605)));
    assert_eq!(running, store.get_workspace(w.id).await.unwrap());

    // Unguarded updates always apply.
    let stopped = store
        .update_workspace_state(
            w.id,
            &StateUpdate::to(WorkspaceState::Stopped, "stopped by alice"),
        )
        .await
        .unwrap();
    assert_eq!(stopped.state_reason, "stopped by alice");
    assert_eq!(stopped.started_at, Some(at(5)));

    assert!(matches!(
        store
            .update_workspace_state(
                WorkspaceId::random(),
                &StateUpdate::to(WorkspaceState::Running, "x")
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .update_workspace_state(
                WorkspaceId::random(),
                &StateUpdate::to(WorkspaceState::Running, "x").expecting(WorkspaceState::Pending)
            )
            .await,
        Err(StoreError::NotFound)
    ));
}

async fn concurrent_compare_and_set_has_one_winner(db: &TestDb) {
    let w = workspace("alice", "python", 0);
    db.store.insert_workspace(&w).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store: Arc<dyn Store> = Arc::clone(&db.store);
            tokio::spawn(async move {
                store
                    .update_workspace_state(
                        w.id,
                        &StateUpdate::to(WorkspaceState::Starting, format!("claimed by {i}"))
                            .expecting(WorkspaceState::Pending),
                    )
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(w) => winners.push(w.state_reason),
            Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        db.store.get_workspace(w.id).await.unwrap().state_reason,
        winners[0]
    );
}

async fn activity_only_moves_forward(db: &TestDb) {
    let store = &db.store;
    let a = workspace("alice", "python", 0);
    let b = workspace("bob", "python", 0);
    store.insert_workspace(&a).await.unwrap();
    store.insert_workspace(&b).await.unwrap();
    let changed = store
        .touch_workspaces(&[
            (a.id, at(60)),
            (b.id, at(30)),
            (WorkspaceId::random(), at(90)),
        ])
        .await
        .unwrap();
    assert_eq!(changed, 2, "the unknown id is skipped");
    // An older touch (a late batch) does not move it back.
    assert_eq!(store.touch_workspaces(&[(a.id, at(10))]).await.unwrap(), 0);
    assert_eq!(
        store.get_workspace(a.id).await.unwrap().last_activity,
        at(60)
    );
    assert_eq!(
        store.get_workspace(b.id).await.unwrap().last_activity,
        at(30)
    );
    assert_eq!(store.touch_workspaces(&[]).await.unwrap(), 0);
}
