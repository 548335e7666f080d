//! [`berth_store::Store`] as a whole: its parts are reachable by upcasting an `Arc<dyn Store>`,
//! and they share one database.

use std::sync::Arc;

use berth_store::{
    AuditStore, ClientStore, ClusterFilter, ClusterStore, FleetSyncStore, InviteStore, LoginStore,
    MachineStore, MemberStore, OperationStore, RecordingStore, Store, TableStore, WebSessionStore,
    WorkspaceStore,
};

use crate::support::TestDb;
use crate::workspace;

stories!(a_store_upcasts_to_each_of_its_parts);

async fn a_store_upcasts_to_each_of_its_parts(db: &TestDb) {
    let store: Arc<dyn Store> = Arc::clone(&db.store);
    let workspaces: Arc<dyn WorkspaceStore> = store.clone();
    let w = workspace("alice", "python", 0);
    workspaces.insert_workspace(&w).await.unwrap();
    // Another part of the same store sees the same rows.
    let members: Arc<dyn MemberStore> = store.clone();
    assert!(members.list_members(w.id).await.unwrap().is_empty());
    assert_eq!(store.get_workspace(w.id).await.unwrap(), w);
    let recordings: Arc<dyn RecordingStore> = store.clone();
    assert!(recordings.list_all_recordings().await.unwrap().is_empty());
    let clients: Arc<dyn ClientStore> = store.clone();
    assert!(clients.list_clients(None).await.unwrap().is_empty());
    let logins: Arc<dyn LoginStore> = store.clone();
    assert_eq!(
        logins
            .prune_login_attempts(w.created_at, w.created_at)
            .await
            .unwrap(),
        0
    );
    let sessions: Arc<dyn WebSessionStore> = store.clone();
    assert!(sessions.list_sessions().await.unwrap().is_empty());
    let machines: Arc<dyn MachineStore> = store.clone();
    assert!(machines.list_machines().await.unwrap().is_empty());
    let syncs: Arc<dyn FleetSyncStore> = store.clone();
    assert!(syncs.list_syncs(1).await.unwrap().is_empty());
    let operations: Arc<dyn OperationStore> = store.clone();
    assert!(
        operations
            .operation(berth_types::OperationId::random())
            .await
            .unwrap()
            .is_none()
    );
    let clusters: Arc<dyn ClusterStore> = store.clone();
    assert!(
        clusters
            .list_clusters(&ClusterFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    let invites: Arc<dyn InviteStore> = store.clone();
    assert!(invites.list_invites().await.unwrap().is_empty());
    let audit: Arc<dyn AuditStore> = store.clone();
    let tables: Arc<dyn TableStore> = store.clone();
    drop((audit, tables));
    assert!(["sqlite", "postgres"].contains(&store.backend()));
}
