//! [`berth_store::MemberStore`]: members added, changed, listed, renamed and removed; they go
//! with their workspace.

use berth_store::{Member, MemberRole, StoreError, normalize_time};
use berth_types::WorkspaceId;
use time::macros::datetime;

use crate::support::TestDb;
use crate::{at, running_workspace, user};

stories!(
    members_are_added_changed_listed_and_removed,
    members_go_with_their_workspace,
);

fn member(workspace: WorkspaceId, name: &str, role: MemberRole, seconds: i64) -> Member {
    Member {
        workspace,
        username: user(name),
        role,
        added_by: user("alice"),
        added_at: at(seconds),
    }
}

async fn members_are_added_changed_listed_and_removed(db: &TestDb) {
    let store = &db.store;
    let ws = running_workspace(db, "alice").await;
    let other = running_workspace(db, "alice").await;
    store
        .put_member(&member(ws, "carol", MemberRole::Viewer, 1))
        .await
        .unwrap();
    store
        .put_member(&member(ws, "bob", MemberRole::Peer, 2))
        .await
        .unwrap();
    store
        .put_member(&member(other, "bob", MemberRole::Viewer, 3))
        .await
        .unwrap();

    let listed = store.list_members(ws).await.unwrap();
    assert_eq!(
        listed,
        vec![
            member(ws, "bob", MemberRole::Peer, 2),
            member(ws, "carol", MemberRole::Viewer, 1),
        ],
        "by username, each workspace its own"
    );
    assert_eq!(
        store.member_role(ws, &user("bob")).await.unwrap(),
        Some(MemberRole::Peer)
    );
    assert_eq!(
        store.member_role(other, &user("bob")).await.unwrap(),
        Some(MemberRole::Viewer)
    );
    assert_eq!(store.member_role(ws, &user("dave")).await.unwrap(), None);

    // Adding again changes the role, who added them and when; it never duplicates.
    let mut changed = member(ws, "carol", MemberRole::Peer, 10);
    changed.added_by = user("admin");
    changed.added_at = datetime!(2024-05-01 14:00:10.123456789 +02:00);
    store.put_member(&changed).await.unwrap();
    let listed = store.list_members(ws).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[1],
        Member {
            added_at: normalize_time(changed.added_at),
            ..changed
        }
    );

    store.remove_member(ws, &user("bob")).await.unwrap();
    assert_eq!(store.member_role(ws, &user("bob")).await.unwrap(), None);
    assert!(matches!(
        store.remove_member(ws, &user("bob")).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.member_role(other, &user("bob")).await.unwrap(),
        Some(MemberRole::Viewer),
        "removal is per workspace"
    );
    assert!(
        store
            .list_members(WorkspaceId::random())
            .await
            .unwrap()
            .is_empty()
    );

    // An account renamed keeps its memberships under the new name.
    assert_eq!(
        store
            .rename_member(&user("bob"), &user("robert"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.member_role(other, &user("robert")).await.unwrap(),
        Some(MemberRole::Viewer)
    );
    assert_eq!(
        store
            .rename_member(&user("robert"), &user("bob"))
            .await
            .unwrap(),
        1
    );

    // An account deleted: out of every workspace at once, nobody else touched.
    store
        .put_member(&member(ws, "bob", MemberRole::Peer, 20))
        .await
        .unwrap();
    assert_eq!(store.remove_memberships(&user("bob")).await.unwrap(), 2);
    assert_eq!(store.member_role(ws, &user("bob")).await.unwrap(), None);
    assert_eq!(store.member_role(other, &user("bob")).await.unwrap(), None);
    assert_eq!(
        store.member_role(ws, &user("carol")).await.unwrap(),
        Some(MemberRole::Peer)
    );
    assert_eq!(store.remove_memberships(&user("bob")).await.unwrap(), 0);
}

async fn members_go_with_their_workspace(db: &TestDb) {
    let store = &db.store;
    assert!(
        matches!(
            store
                .put_member(&member(WorkspaceId::random(), "bob", MemberRole::Peer, 0))
                .await,
            Err(StoreError::NotFound)
        ),
        "no members of a workspace that does not exist"
    );
    let ws = running_workspace(db, "alice").await;
    store
        .put_member(&member(ws, "bob", MemberRole::Peer, 0))
        .await
        .unwrap();
    store.delete_workspace(ws).await.unwrap();
    assert!(store.list_members(ws).await.unwrap().is_empty());
    assert_eq!(store.member_role(ws, &user("bob")).await.unwrap(), None);
    // The database itself refuses roles other than peer and viewer (the owner is no member).
    let ws = running_workspace(db, "alice").await;
    let raw = db
        .execute_raw(&format!(
            "INSERT INTO workspace_members (workspace_id, username, role, added_by, added_at) \
             VALUES ('{ws}', 'eve', 'owner', 'eve', '2024-05-01T12:00:00.000000Z')"
        ))
        .await;
    assert!(raw.is_err(), "role 'owner' must be refused: {raw:?}");
}
