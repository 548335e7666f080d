//! The conformance stories, one module per store trait, each story run against every backend:
//! once on a fresh SQLite file (`<trait>::sqlite::*`) and once on a fresh PostgreSQL database
//! (`<trait>::postgres::*`). The PostgreSQL half needs `BERTH_TEST_POSTGRES_URL` (see
//! `scripts/postgres.sh`) and fails without it, so a missing PostgreSQL is never a silent pass.
//!
//! A new store trait adds its module here with its stories.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

#[path = "../support/mod.rs"]
mod support;

/// Runs each story (an `async fn(&TestDb)` of the invoking module) once per backend.
macro_rules! stories {
    ($($story:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let db = crate::support::TestDb::sqlite().await;
                    super::$story(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let db = crate::support::TestDb::postgres().await;
                    super::$story(&db).await;
                }
            )*
        }
    };
}

mod audit;
mod clients;
mod clusters;
mod fleet_syncs;
mod invites;
mod logins;
mod machines;
mod members;
mod operations;
mod recordings;
mod sessions;
mod store;
mod tables;
mod workspaces;

use berth_store::{MachineSpec, SyncOutcome, TableQuery, TableScope, Workspace, WorkspaceState};
use berth_types::{MachineId, SyncChanges, SyncResult, SyncTrigger, Username, WorkspaceId};
use serde_json::Value;
use support::TestDb;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// The time every story starts at.
const T0: OffsetDateTime = datetime!(2024-05-01 12:00 UTC);

/// `seconds` after [`T0`].
fn at(seconds: i64) -> OffsetDateTime {
    T0 + Duration::seconds(seconds)
}

fn user(name: &str) -> Username {
    Username::new(name).unwrap()
}

/// What `name` may see in table queries: their own rows, and no machines.
fn scope(name: &str) -> TableScope {
    TableScope::new(user(name))
}

/// A pending workspace of `owner`'s, created `created` seconds after [`T0`] (not stored).
fn workspace(owner: &str, template: &str, created: i64) -> Workspace {
    Workspace {
        id: WorkspaceId::random(),
        owner: user(owner),
        template: template.to_owned(),
        state: WorkspaceState::Pending,
        container_id: None,
        persistent: false,
        network: "none".to_owned(),
        created_at: at(created),
        started_at: None,
        last_activity: at(created),
        expires_at: None,
        state_reason: "requested by the owner".to_owned(),
    }
}

/// A running workspace of `owner`'s, stored: what members and recordings hang on.
async fn running_workspace(db: &TestDb, owner: &str) -> WorkspaceId {
    let w = Workspace {
        state: WorkspaceState::Running,
        started_at: Some(T0),
        ..workspace(owner, "shared", 0)
    };
    db.store.insert_workspace(&w).await.unwrap();
    w.id
}

fn query(value: Value) -> TableQuery {
    serde_json::from_value(value).unwrap()
}

fn ids(rows: &[serde_json::Map<String, Value>]) -> Vec<String> {
    rows.iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn machine_id(id: &str) -> MachineId {
    MachineId::new(id).unwrap()
}

/// A machine of links.yaml with `tags` and otherwise plain settings.
fn machine(id: &str, tags: &[&str]) -> MachineSpec {
    MachineSpec {
        id: machine_id(id),
        name: id.to_uppercase(),
        host: "127.0.0.1".to_owned(),
        port: 22,
        user: "ops".to_owned(),
        kind: None,
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        key: "ops.key".to_owned(),
        host_key: None,
        proxy_jump: None,
        client_id: None,
        description: String::new(),
    }
}

/// A sync that succeeds with `commit` at `seconds` after [`T0`] and puts `machines` in force.
async fn sync_machines(db: &TestDb, machines: &[MachineSpec], commit: &str, seconds: i64) -> i64 {
    let sync = db
        .store
        .begin_sync(SyncTrigger::Schedule, "(berth)", at(seconds))
        .await
        .unwrap();
    let outcome = SyncOutcome {
        result: SyncResult::Succeeded,
        commit: Some(commit.to_owned()),
        errors: Vec::new(),
        changes: SyncChanges::default(),
        at: at(seconds),
    };
    db.store
        .finish_sync(sync.id, &outcome, Some(machines))
        .await
        .unwrap();
    sync.id
}
