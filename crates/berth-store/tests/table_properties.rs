//! Property tests of table queries against an in-memory model: a query returns exactly the
//! rows the model's filter selects, in the model's order; pages concatenate to the whole result;
//! and pages stay consistent (no row twice, none of the earlier rows missed) while rows are
//! inserted between fetches. The model covers four tables: `workspaces` (every column kind),
//! `recordings` (the target kind and id, integers), `machines` (tag lists and `has`, scopes
//! by machine selectors, rows put in force by inventory syncs) and `operations` (machine lists
//! in the order given and `has`, nullable UUIDs, the `user` scope). Each case runs on a fresh
//! database, on SQLite and on PostgreSQL (fewer cases there: each one creates a database).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use std::cmp::Ordering;
use std::collections::HashSet;

use berth_store::{
    EnrollmentUpdate, HealthUpdate, MachineSpec, NewOperation, Recording, RecordingId, Store,
    SyncOutcome, TableQuery, TableScope, Workspace, WorkspaceState,
};
use berth_types::operation::OperationStatus;
use berth_types::{
    EnrollmentStatus, HealthStatus, MachineId, MachineSelector, OperationId, SyncChanges,
    SyncResult, SyncTrigger, TerminalTarget, Username, WorkspaceId,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use support::{Backend, TestDb};
use time::macros::{datetime, format_description};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const OWNERS: [&str; 3] = ["alice", "bob", "carol"];
const TEMPLATES: [&str; 3] = ["go", "python", "rust"];
const CONTAINERS: [&str; 2] = ["c1", "c2"];
const NETWORKS: [&str; 2] = ["host", "none"];
const REASONS: [&str; 2] = ["idle for 15m", "ttl reached"];
/// Few distinct times, so sort keys tie and the tie-breaker matters.
const TIMES: i64 = 4;
/// Recording targets: two workspaces and two machines.
const TARGET_WORKSPACES: [&str; 2] = [
    "00000000-0000-0000-0000-00000000000a",
    "f0000000-0000-0000-0000-00000000000b",
];
const TARGET_MACHINES: [&str; 2] = ["db-1", "web-1"];
const BYTES: [u64; 3] = [0, 4096, 1 << 40];

/// Machine ids: few, so syncs replace and keep rows, and the jump hosts name them.
const MACHINE_IDS: [&str; 8] = ["0x", "a", "b-1", "db-1", "m-10", "m-9", "web-1", "web-2"];
/// Tags whose look-alikes would match each other if `_` or a part of a tag matched.
const TAGS: [&str; 6] = ["db", "eu-1", "eu11", "eu_1", "web", "webx"];
const MACHINE_NAMES: [&str; 3] = ["Web 1", "db", "edge"];
const HOSTS: [&str; 3] = ["10.0.0.1", "10.0.0.10", "10.0.0.2"];
const PORTS: [u16; 3] = [22, 2222, 65535];
const LOGINS: [&str; 2] = ["ops", "root"];
const KINDS: [&str; 2] = ["db", "web"];
const CLIENT_IDS: [&str; 2] = ["5de3", "aaaa"];
const DESCRIPTIONS: [&str; 2] = ["", "front end"];
const COMMITS: [&str; 2] = [
    "1111111111111111111111111111111111111111",
    "2222222222222222222222222222222222222222",
];
const LATENCIES: [i64; 3] = [0, 12, 2500];

const SCRIPTS: [&str; 3] = ["deploy", "disk", "uptime"];
const CONCURRENCIES: [u32; 3] = [1, 5, 1000];
const TIMEOUTS: [u64; 3] = [1, 300, 31_536_000];
/// Operations that operations rerun (not among the rows: the rerun may have left the history).
const RERUNS: [&str; 2] = [
    "00000000-0000-4000-8000-00000000000a",
    "f0000000-0000-4000-8000-00000000000b",
];

/// The tables the model knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Table {
    Workspaces,
    Recordings,
    Machines,
    Operations,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Workspaces => "workspaces",
            Table::Recordings => "recordings",
            Table::Machines => "machines",
            Table::Operations => "operations",
        }
    }

    /// The column a user's scope restricts (machines have selectors instead).
    fn owner(self) -> &'static str {
        match self {
            Table::Operations => "user",
            Table::Workspaces | Table::Recordings | Table::Machines => "owner",
        }
    }

    fn sortable(self) -> &'static [&'static str] {
        match self {
            Table::Workspaces => &SORTABLE,
            Table::Recordings => &RECORDING_SORTABLE,
            Table::Machines => &MACHINE_SORTABLE,
            Table::Operations => &OPERATION_SORTABLE,
        }
    }

    fn default_order(self) -> (&'static str, bool) {
        match self {
            Table::Workspaces => ("created_at", true),
            Table::Recordings => ("started_at", true),
            Table::Machines => ("id", false),
            Table::Operations => ("created_at", true),
        }
    }

    fn columns(self) -> Vec<(&'static str, Vec<Value>, &'static [&'static str])> {
        match self {
            Table::Workspaces => columns(),
            Table::Recordings => recording_columns(),
            Table::Machines => machine_columns(),
            Table::Operations => operation_columns(),
        }
    }

    fn item(self) -> BoxedStrategy<Item> {
        match self {
            Table::Workspaces => row_spec()
                .prop_map(|r| Item::Workspace(r.workspace()))
                .boxed(),
            Table::Recordings => recording_spec().boxed(),
            Table::Machines => machine_item().boxed(),
            Table::Operations => operation_item().boxed(),
        }
    }
}

/// A row of one of the model's tables.
#[derive(Clone, Debug)]
enum Item {
    Workspace(Workspace),
    Recording(Recording),
    Machine(Box<MachineItem>),
    Operation(Box<OperationItem>),
}

impl Item {
    fn id(&self) -> String {
        match self {
            Item::Workspace(w) => w.id.to_string(),
            Item::Recording(r) => r.id.to_string(),
            Item::Machine(m) => m.spec.id.to_string(),
            Item::Operation(o) => o.new.id.to_string(),
        }
    }

    fn model_row(&self) -> Map<String, Value> {
        match self {
            Item::Workspace(w) => model_row(w),
            Item::Recording(r) => recording_model_row(r),
            Item::Machine(m) => m.model_row(),
            Item::Operation(o) => o.model_row(),
        }
    }

    async fn insert(&self, store: &dyn Store) {
        match self {
            Item::Workspace(w) => store.insert_workspace(w).await.unwrap(),
            Item::Recording(r) => store.insert_recording(r).await.unwrap(),
            Item::Machine(m) => m.insert(store).await,
            Item::Operation(o) => o.insert(store).await,
        }
    }
}

/// A machine, and the checks recorded after the sync that added it.
#[derive(Clone, Debug)]
struct MachineItem {
    spec: MachineSpec,
    /// The sync that adds it: its commit and when it ends.
    commit: usize,
    added: i64,
    /// (status, when) of an enrollment check.
    enrollment: Option<(usize, i64)>,
    /// A health check.
    health: Option<HealthSpec>,
}

/// (status, latency, last seen, failures, when) of a health check, as indexes and steps.
type HealthSpec = (usize, Option<usize>, Option<i64>, i64, i64);

fn machine_item() -> impl Strategy<Value = Item> {
    let spec = (
        (0..MACHINE_IDS.len(), 0..MACHINE_NAMES.len(), 0..HOSTS.len()),
        (
            0..PORTS.len(),
            0..LOGINS.len(),
            prop::option::of(0..KINDS.len()),
        ),
        prop::collection::vec(0..TAGS.len(), 0..4),
        (
            prop::option::of(0..MACHINE_IDS.len()),
            prop::option::of(0..CLIENT_IDS.len()),
            0..DESCRIPTIONS.len(),
        ),
    )
        .prop_map(
            |((id, name, host), (port, user, kind), tags, (jump, client, description))| {
                let mut tag_list: Vec<String> = Vec::new();
                for t in tags {
                    if !tag_list.iter().any(|x| x == TAGS[t]) {
                        tag_list.push(TAGS[t].to_owned());
                    }
                }
                MachineSpec {
                    id: MachineId::new(MACHINE_IDS[id]).unwrap(),
                    name: MACHINE_NAMES[name].to_owned(),
                    host: HOSTS[host].to_owned(),
                    port: PORTS[port],
                    user: LOGINS[user].to_owned(),
                    kind: kind.map(|k| KINDS[k].to_owned()),
                    tags: tag_list,
                    key: "ops.key".to_owned(),
                    host_key: None,
                    proxy_jump: jump.map(|j| MachineId::new(MACHINE_IDS[j]).unwrap()),
                    client_id: client.map(|c| CLIENT_IDS[c].to_owned()),
                    description: DESCRIPTIONS[description].to_owned(),
                }
            },
        );
    (
        spec,
        (0..COMMITS.len(), 0..TIMES),
        prop::option::of((0..EnrollmentStatus::ALL.len(), 0..TIMES)),
        prop::option::of((
            0..HealthStatus::ALL.len(),
            prop::option::of(0..LATENCIES.len()),
            prop::option::of(0..TIMES),
            0..3i64,
            0..TIMES,
        )),
    )
        .prop_map(|(spec, (commit, added), enrollment, health)| {
            Item::Machine(Box::new(MachineItem {
                spec,
                commit,
                added,
                enrollment,
                health,
            }))
        })
}

impl MachineItem {
    /// A sync that puts in force the machines stored so far and this one, then its checks.
    async fn insert(&self, store: &dyn Store) {
        let mut specs: Vec<MachineSpec> = store
            .list_machines()
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.spec)
            .collect();
        specs.push(self.spec.clone());
        let sync = store
            .begin_sync(SyncTrigger::Schedule, "(berth)", time(self.added))
            .await
            .unwrap();
        let outcome = SyncOutcome {
            result: SyncResult::Succeeded,
            commit: Some(COMMITS[self.commit].to_owned()),
            errors: Vec::new(),
            changes: SyncChanges::default(),
            at: time(self.added),
        };
        store
            .finish_sync(sync.id, &outcome, Some(&specs))
            .await
            .unwrap();
        if let Some((status, at)) = self.enrollment {
            let update = EnrollmentUpdate {
                status: EnrollmentStatus::ALL[status],
                message: "checked".to_owned(),
                fingerprint: None,
                at: time(at),
            };
            store
                .record_enrollment(&self.spec.id, &update)
                .await
                .unwrap();
        }
        if let Some((status, latency, seen, failures, at)) = self.health {
            let update = HealthUpdate {
                status: HealthStatus::ALL[status],
                latency_ms: latency.map(|l| LATENCIES[l]),
                last_seen: seen.map(time),
                consecutive_failures: failures,
                checked_at: time(at),
                probes: Vec::new(),
            };
            store.record_health(&self.spec.id, &update).await.unwrap();
        }
    }

    /// The machine as a table query should return it, built independently of the store.
    fn model_row(&self) -> Map<String, Value> {
        let s = &self.spec;
        let t = |at: Option<i64>| at.map_or(Value::Null, |at| json!(time_text(time(at))));
        let health = self.health;
        json!({
            "id": s.id.as_str(),
            "name": s.name,
            "host": s.host,
            "port": s.port,
            "user": s.user,
            "type": s.kind,
            "tags": s.tags,
            "enrollment": self.enrollment.map_or("unknown", |(e, _)| EnrollmentStatus::ALL[e].as_str()),
            "health": health.map_or("unknown", |h| HealthStatus::ALL[h.0].as_str()),
            "latency_ms": health.and_then(|h| h.1).map(|l| LATENCIES[l]),
            "last_seen": t(health.and_then(|h| h.2)),
            "consecutive_failures": health.map_or(0, |h| h.3),
            "verified_at": t(self.enrollment.map(|e| e.1)),
            "checked_at": t(health.map(|h| h.4)),
            "client_id": s.client_id,
            "proxy_jump": s.proxy_jump.as_ref().map(MachineId::as_str),
            "description": s.description,
            "commit": COMMITS[self.commit],
            "created_at": t(Some(self.added)),
            "updated_at": t(Some(self.added)),
        })
        .as_object()
        .unwrap()
        .clone()
    }
}

fn machine_columns() -> Vec<(&'static str, Vec<Value>, &'static [&'static str])> {
    const ALL: &[&str] = &["eq", "in", "gt", "lt", "gte", "lte"];
    const EQ: &[&str] = &["eq", "in"];
    const HAS: &[&str] = &["has"];
    let strings = |v: &[&str]| v.iter().map(|s| json!(s)).collect::<Vec<_>>();
    let with_null = |mut v: Vec<Value>| {
        v.push(Value::Null);
        v
    };
    let times: Vec<Value> = (-1..=TIMES).map(|i| json!(time_text(time(i)))).collect();
    let mut ids = strings(&MACHINE_IDS);
    ids.push(json!("c"));
    vec![
        ("id", ids.clone(), ALL),
        ("name", strings(&MACHINE_NAMES), ALL),
        ("host", strings(&HOSTS), ALL),
        ("port", PORTS.iter().map(|p| json!(p)).collect(), ALL),
        ("user", strings(&LOGINS), ALL),
        ("type", with_null(strings(&KINDS)), ALL),
        (
            "tags",
            strings(&["db", "eu-1", "eu11", "eu_1", "web", "webx", "eu", "e"]),
            HAS,
        ),
        ("enrollment", strings(&EnrollmentStatus::NAMES), EQ),
        ("health", strings(&HealthStatus::NAMES), EQ),
        (
            "latency_ms",
            with_null(LATENCIES.iter().map(|l| json!(l)).collect()),
            ALL,
        ),
        ("last_seen", with_null(times.clone()), ALL),
        (
            "consecutive_failures",
            vec![json!(0), json!(1), json!(2)],
            ALL,
        ),
        ("verified_at", with_null(times.clone()), ALL),
        ("checked_at", with_null(times.clone()), ALL),
        ("client_id", with_null(strings(&CLIENT_IDS)), ALL),
        ("proxy_jump", with_null(ids), ALL),
        ("description", strings(&DESCRIPTIONS), ALL),
        ("commit", strings(&COMMITS), ALL),
        ("created_at", times.clone(), ALL),
        ("updated_at", times, ALL),
    ]
}

const MACHINE_SORTABLE: [&str; 20] = [
    "id",
    "name",
    "host",
    "port",
    "user",
    "type",
    "tags",
    "enrollment",
    "health",
    "latency_ms",
    "last_seen",
    "consecutive_failures",
    "verified_at",
    "checked_at",
    "client_id",
    "proxy_jump",
    "description",
    "commit",
    "created_at",
    "updated_at",
];

/// Selectors a scope draws from: ids (some of no machine) and tags (some look-alikes).
fn selector(index: usize) -> MachineSelector {
    const SELECTORS: [&str; 10] = [
        "a", "web-1", "m-9", "zz", "tag:web", "tag:eu_1", "tag:eu11", "tag:eu", "tag:db",
        "tag:webx",
    ];
    SELECTORS[index % SELECTORS.len()].parse().unwrap()
}

/// An operation, and where it stands after it was created.
#[derive(Clone, Debug)]
struct OperationItem {
    new: NewOperation,
    status: OperationStatus,
    /// When it finished: exactly for a finished status.
    finished: Option<i64>,
}

fn operation_item() -> impl Strategy<Value = Item> {
    (
        any::<u128>(),
        (
            0..SCRIPTS.len(),
            0..OWNERS.len(),
            0..OperationStatus::ALL.len(),
            0..COMMITS.len(),
        ),
        (
            0..CONCURRENCIES.len(),
            0..TIMEOUTS.len(),
            prop::option::of(0..RERUNS.len()),
        ),
        (0..TIMES, 0..TIMES),
        prop::collection::vec(0..MACHINE_IDS.len(), 1..4),
    )
        .prop_map(
            |(
                id,
                (script, owner, status, commit),
                (concurrency, timeout, rerun),
                (created, finished),
                picks,
            )| {
                let mut machines: Vec<MachineId> = Vec::new();
                for m in picks {
                    let machine = MachineId::new(MACHINE_IDS[m]).unwrap();
                    if !machines.contains(&machine) {
                        machines.push(machine);
                    }
                }
                let status = OperationStatus::ALL[status];
                Item::Operation(Box::new(OperationItem {
                    new: NewOperation {
                        id: OperationId::from(Uuid::from_u128(id)),
                        script: SCRIPTS[script].to_owned(),
                        commit: COMMITS[commit].to_owned(),
                        user: Username::new(OWNERS[owner]).unwrap(),
                        concurrency: CONCURRENCIES[concurrency],
                        timeout_seconds: TIMEOUTS[timeout],
                        rerun_of: rerun.map(|r| RERUNS[r].parse().unwrap()),
                        machines,
                        created_at: time(created),
                    },
                    status,
                    finished: status.is_finished().then_some(finished),
                }))
            },
        )
}

impl OperationItem {
    async fn insert(&self, store: &dyn Store) {
        store.create_operation(&self.new).await.unwrap();
        if self.status != OperationStatus::Queued {
            store
                .set_operation_status(self.new.id, self.status, self.finished.map(time))
                .await
                .unwrap();
        }
    }

    /// The operation as a table query should return it, built independently of the store.
    fn model_row(&self) -> Map<String, Value> {
        let n = &self.new;
        json!({
            "id": n.id.to_string(),
            "script": n.script,
            "user": n.user.as_str(),
            "status": self.status.as_str(),
            "commit": n.commit,
            "concurrency": n.concurrency,
            "timeout_seconds": n.timeout_seconds,
            "rerun_of": n.rerun_of.map(|r| r.to_string()),
            "created_at": time_text(n.created_at),
            "finished_at": self.finished.map(|f| time_text(time(f))),
            "machines": n.machines.iter().map(MachineId::as_str).collect::<Vec<_>>(),
        })
        .as_object()
        .unwrap()
        .clone()
    }
}

fn operation_columns() -> Vec<(&'static str, Vec<Value>, &'static [&'static str])> {
    const ALL: &[&str] = &["eq", "in", "gt", "lt", "gte", "lte"];
    const EQ: &[&str] = &["eq", "in"];
    const HAS: &[&str] = &["has"];
    let strings = |v: &[&str]| v.iter().map(|s| json!(s)).collect::<Vec<_>>();
    let with_null = |mut v: Vec<Value>| {
        v.push(Value::Null);
        v
    };
    let times: Vec<Value> = (-1..=TIMES).map(|i| json!(time_text(time(i)))).collect();
    let mut scripts = strings(&SCRIPTS);
    scripts.push(json!("e"));
    let mut machines = strings(&MACHINE_IDS);
    // Look-alikes: a prefix of m-10, and a part of web-1.
    machines.extend([json!("m-1"), json!("web")]);
    let mut owners = strings(&OWNERS);
    owners.push(json!("bobby"));
    vec![
        (
            "id",
            strings(&[
                "00000000-0000-0000-0000-000000000000",
                "80000000-0000-0000-0000-000000000000",
            ]),
            ALL,
        ),
        ("script", scripts, ALL),
        ("user", owners, ALL),
        ("status", strings(&OperationStatus::NAMES), EQ),
        ("commit", strings(&COMMITS), ALL),
        (
            "concurrency",
            CONCURRENCIES.iter().map(|c| json!(c)).collect(),
            ALL,
        ),
        (
            "timeout_seconds",
            TIMEOUTS.iter().map(|t| json!(t)).collect(),
            ALL,
        ),
        ("rerun_of", with_null(strings(&RERUNS)), ALL),
        ("created_at", times.clone(), ALL),
        ("finished_at", with_null(times), ALL),
        ("machines", machines, HAS),
    ]
}

const OPERATION_SORTABLE: [&str; 11] = [
    "id",
    "script",
    "user",
    "status",
    "commit",
    "concurrency",
    "timeout_seconds",
    "rerun_of",
    "created_at",
    "finished_at",
    "machines",
];

/// A recording drawn from small vocabularies.
fn recording_spec() -> impl Strategy<Value = Item> {
    (
        any::<u128>(),
        (any::<bool>(), 0..2usize),
        (0..OWNERS.len(), 0..OWNERS.len()),
        (0..TIMES, prop::option::of(0..TIMES)),
        0..BYTES.len(),
    )
        .prop_map(
            |(id, (machine, target), (owner, username), (started, ended), bytes)| {
                let target = if machine {
                    TerminalTarget::Machine(MachineId::new(TARGET_MACHINES[target]).unwrap())
                } else {
                    TerminalTarget::Workspace(TARGET_WORKSPACES[target].parse().unwrap())
                };
                let id = RecordingId::from(Uuid::from_u128(id));
                Item::Recording(Recording {
                    path: format!("{}/{id}.cast", target.id_string()),
                    id,
                    target,
                    owner: Username::new(OWNERS[owner]).unwrap(),
                    username: Username::new(OWNERS[username]).unwrap(),
                    started_at: time(started),
                    ended_at: ended.map(time),
                    bytes: BYTES[bytes],
                    width: 80,
                    height: 24,
                })
            },
        )
}

/// The recording as a table query should return it, built independently of the store.
fn recording_model_row(r: &Recording) -> Map<String, Value> {
    json!({
        "id": r.id.to_string(),
        "target_kind": r.target.kind().as_str(),
        "target_id": r.target.id_string(),
        "workspace_id": r.target.workspace().map(|w| w.to_string()),
        "owner": r.owner.as_str(),
        "username": r.username.as_str(),
        "started_at": time_text(r.started_at),
        "ended_at": r.ended_at.map(time_text),
        "bytes": r.bytes,
    })
    .as_object()
    .unwrap()
    .clone()
}

fn recording_columns() -> Vec<(&'static str, Vec<Value>, &'static [&'static str])> {
    const ALL: &[&str] = &["eq", "in", "gt", "lt", "gte", "lte"];
    const EQ: &[&str] = &["eq", "in"];
    let strings = |v: &[&str]| v.iter().map(|s| json!(s)).collect::<Vec<_>>();
    let mut targets = strings(&TARGET_WORKSPACES);
    targets.extend(strings(&TARGET_MACHINES));
    targets.push(json!("e"));
    let times: Vec<Value> = (-1..=TIMES).map(|i| json!(time_text(time(i)))).collect();
    let mut ended = times.clone();
    ended.push(Value::Null);
    vec![
        ("target_kind", strings(&["workspace", "machine"]), EQ),
        ("target_id", targets, ALL),
        ("owner", strings(&OWNERS), ALL),
        ("username", strings(&OWNERS), ALL),
        ("started_at", times, ALL),
        ("ended_at", ended, ALL),
        ("bytes", vec![json!(0), json!(4096), json!(1u64 << 40)], ALL),
        (
            "id",
            strings(&[
                "00000000-0000-0000-0000-000000000000",
                "80000000-0000-0000-0000-000000000000",
            ]),
            ALL,
        ),
    ]
}

const RECORDING_SORTABLE: [&str; 8] = [
    "id",
    "target_kind",
    "target_id",
    "owner",
    "username",
    "started_at",
    "ended_at",
    "bytes",
];

fn time(step: i64) -> OffsetDateTime {
    datetime!(2024-05-01 12:00 UTC) + Duration::minutes(step)
}

fn time_text(at: OffsetDateTime) -> String {
    at.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    ))
    .unwrap()
}

/// A workspace drawn from small vocabularies.
#[derive(Clone, Debug)]
struct RowSpec {
    id: u128,
    owner: usize,
    template: usize,
    state: usize,
    container: Option<usize>,
    persistent: bool,
    network: usize,
    created: i64,
    started: Option<i64>,
    activity: i64,
    expires: Option<i64>,
    reason: usize,
}

fn row_spec() -> impl Strategy<Value = RowSpec> {
    (
        any::<u128>(),
        (0..OWNERS.len(), 0..TEMPLATES.len(), 0..6usize),
        (
            prop::option::of(0..CONTAINERS.len()),
            any::<bool>(),
            0..NETWORKS.len(),
        ),
        (
            0..TIMES,
            prop::option::of(0..TIMES),
            0..TIMES,
            prop::option::of(0..TIMES),
        ),
        0..REASONS.len(),
    )
        .prop_map(
            |(
                id,
                (owner, template, state),
                (container, persistent, network),
                (created, started, activity, expires),
                reason,
            )| RowSpec {
                id,
                owner,
                template,
                state,
                container,
                persistent,
                network,
                created,
                started,
                activity,
                expires,
                reason,
            },
        )
}

impl RowSpec {
    fn workspace(&self) -> Workspace {
        Workspace {
            id: WorkspaceId::from(Uuid::from_u128(self.id)),
            owner: Username::new(OWNERS[self.owner]).unwrap(),
            template: TEMPLATES[self.template].to_owned(),
            state: WorkspaceState::ALL[self.state],
            container_id: self.container.map(|c| CONTAINERS[c].to_owned()),
            persistent: self.persistent,
            network: NETWORKS[self.network].to_owned(),
            created_at: time(self.created),
            started_at: self.started.map(time),
            last_activity: time(self.activity),
            expires_at: self.expires.map(time),
            state_reason: REASONS[self.reason].to_owned(),
        }
    }
}

/// The row as a table query should return it, built independently of the store.
fn model_row(w: &Workspace) -> Map<String, Value> {
    let t = |at: Option<OffsetDateTime>| at.map_or(Value::Null, |at| json!(time_text(at)));
    json!({
        "id": w.id.to_string(),
        "owner": w.owner.as_str(),
        "template": w.template,
        "state": w.state.as_str(),
        "container_id": w.container_id,
        "persistent": w.persistent,
        "network": w.network,
        "created_at": t(Some(w.created_at)),
        "started_at": t(w.started_at),
        "last_activity": t(Some(w.last_activity)),
        "expires_at": t(w.expires_at),
        "state_reason": w.state_reason,
    })
    .as_object()
    .unwrap()
    .clone()
}

/// Every filterable column with the values a filter may use and the operators it accepts.
fn columns() -> Vec<(&'static str, Vec<Value>, &'static [&'static str])> {
    const ALL: &[&str] = &["eq", "in", "gt", "lt", "gte", "lte"];
    const EQ: &[&str] = &["eq", "in"];
    let strings = |v: &[&str]| v.iter().map(|s| json!(s)).collect::<Vec<_>>();
    let mut owners = strings(&OWNERS);
    owners.push(json!("bobby"));
    let times: Vec<Value> = (-1..=TIMES).map(|i| json!(time_text(time(i)))).collect();
    let with_null = |mut v: Vec<Value>| {
        v.push(Value::Null);
        v
    };
    vec![
        ("owner", owners, ALL),
        ("template", strings(&TEMPLATES), ALL),
        (
            "state",
            strings(&[
                "pending", "starting", "running", "stopping", "stopped", "failed",
            ]),
            EQ,
        ),
        ("container_id", with_null(strings(&CONTAINERS)), ALL),
        ("persistent", vec![json!(true), json!(false)], EQ),
        ("network", strings(&NETWORKS), ALL),
        ("created_at", times.clone(), ALL),
        ("started_at", with_null(times.clone()), ALL),
        ("last_activity", times.clone(), ALL),
        ("expires_at", with_null(times), ALL),
        ("state_reason", strings(&REASONS), ALL),
        (
            "id",
            strings(&[
                "00000000-0000-0000-0000-000000000000",
                "80000000-0000-0000-0000-000000000000",
            ]),
            ALL,
        ),
    ]
}

const SORTABLE: [&str; 12] = [
    "id",
    "owner",
    "template",
    "state",
    "container_id",
    "persistent",
    "network",
    "created_at",
    "started_at",
    "last_activity",
    "expires_at",
    "state_reason",
];

/// A filter drawn as raw numbers, resolved against [`columns`] (shrinks well).
#[derive(Clone, Debug)]
struct FilterSpec {
    column: usize,
    op: usize,
    value: usize,
    in_mask: u16,
}

fn filter(table: Table, spec: &FilterSpec) -> Value {
    let columns = table.columns();
    let (name, values, ops) = &columns[spec.column % columns.len()];
    let op = ops[spec.op % ops.len()];
    let value = match op {
        "in" => Value::Array(
            values
                .iter()
                .enumerate()
                .filter(|(i, _)| {
                    spec.in_mask
                        .checked_shr(*i as u32)
                        .is_some_and(|m| m & 1 != 0)
                })
                .map(|(_, v)| v.clone())
                .collect(),
        ),
        "eq" => values[spec.value % values.len()].clone(),
        _ => {
            let non_null: Vec<_> = values.iter().filter(|v| !v.is_null()).collect();
            non_null[spec.value % non_null.len()].clone()
        }
    };
    json!({"column": name, "op": op, "value": value})
}

#[derive(Clone, Debug)]
struct QuerySpec {
    table: Table,
    filters: Vec<FilterSpec>,
    sort: Vec<(usize, bool)>,
    limit: u32,
    scope: Option<usize>,
    /// The scope's machine selectors (see [`selector`]).
    selectors: Vec<usize>,
}

fn query_spec(table: Table) -> impl Strategy<Value = QuerySpec> {
    let filter = (any::<usize>(), any::<usize>(), any::<usize>(), any::<u16>()).prop_map(
        |(column, op, value, in_mask)| FilterSpec {
            column,
            op,
            value,
            in_mask,
        },
    );
    (
        prop::collection::vec(filter, 0..3),
        prop::collection::vec((0..table.sortable().len(), any::<bool>()), 0..4),
        1..8u32,
        prop::option::of(0..OWNERS.len()),
        prop::collection::vec(any::<usize>(), 0..4),
    )
        .prop_map(move |(filters, sort, limit, scope, selectors)| QuerySpec {
            table,
            filters,
            sort,
            limit,
            scope,
            selectors,
        })
}

impl QuerySpec {
    fn sort_keys(&self) -> Vec<(&'static str, bool)> {
        let mut keys: Vec<(&'static str, bool)> = Vec::new();
        let sortable = self.table.sortable();
        for &(column, desc) in &self.sort {
            if !keys.iter().any(|(c, _)| *c == sortable[column]) {
                keys.push((sortable[column], desc));
            }
        }
        keys
    }

    fn request(&self) -> TableQuery {
        let sort: Vec<Value> = self
            .sort_keys()
            .iter()
            .map(|(c, d)| json!({"column": c, "desc": d}))
            .collect();
        serde_json::from_value(json!({
            "table": self.table.name(),
            "filters": self.filters.iter().map(|f| filter(self.table, f)).collect::<Vec<_>>(),
            "sort": sort,
            "limit": self.limit,
        }))
        .unwrap()
    }

    fn scope(&self) -> Option<TableScope> {
        self.scope.map(|i| TableScope {
            user: Username::new(OWNERS[i]).unwrap(),
            machines: self.selectors.iter().map(|&s| selector(s)).collect(),
        })
    }

    /// The full order the store must follow: the sort (or the default, newest first), then id.
    fn order(&self) -> Vec<(&'static str, bool)> {
        let mut keys = self.sort_keys();
        if keys.is_empty() {
            keys.push(self.table.default_order());
        }
        if !keys.iter().any(|(c, _)| *c == "id") {
            keys.push(("id", false));
        }
        keys
    }

    /// Whether the scope lets its user see `row`: their own, or for machines, a plain Rust
    /// reading of the selectors.
    fn visible(&self, row: &Map<String, Value>) -> bool {
        let Some(scope) = self.scope() else {
            return true;
        };
        if self.table != Table::Machines {
            return row[self.table.owner()] == json!(scope.user.as_str());
        }
        let id = MachineId::new(row["id"].as_str().unwrap()).unwrap();
        let tags: Vec<String> = row["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        scope.machines.iter().any(|s| s.matches(&id, &tags))
    }

    fn matches(&self, row: &Map<String, Value>) -> bool {
        let scoped = self.visible(row);
        scoped
            && self
                .filters
                .iter()
                .map(|f| filter(self.table, f))
                .all(|f| filter_matches(&f, row))
    }

    fn compare(&self, a: &Map<String, Value>, b: &Map<String, Value>) -> Ordering {
        for (column, desc) in self.order() {
            let o = compare_values(&a[column], &b[column]);
            let o = if desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }
}

/// SQL order as the store defines it: null lowest, text by bytes (times are fixed-width text,
/// so text order is time order), false before true.
fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::String(a), Value::String(b)) => a.as_bytes().cmp(b.as_bytes()),
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        (Value::Number(a), Value::Number(b)) => a.as_i64().cmp(&b.as_i64()),
        // Tag lists sort as their stored text, `,a,b,` (empty for none).
        (Value::Array(a), Value::Array(b)) => tags_text(a).cmp(&tags_text(b)),
        _ => panic!("mixed types {a} {b}"),
    }
}

fn tags_text(tags: &[Value]) -> Vec<u8> {
    if tags.is_empty() {
        return Vec::new();
    }
    let tags: Vec<&str> = tags.iter().map(|t| t.as_str().unwrap()).collect();
    format!(",{},", tags.join(",")).into_bytes()
}

fn filter_matches(filter: &Value, row: &Map<String, Value>) -> bool {
    let cell = &row[filter["column"].as_str().unwrap()];
    let value = &filter["value"];
    let eq = |v: &Value| {
        if v.is_null() {
            cell.is_null()
        } else {
            !cell.is_null() && compare_values(cell, v) == Ordering::Equal
        }
    };
    if cell.is_null() && !matches!(filter["op"].as_str(), Some("eq" | "in")) {
        return false; // SQL: a comparison with NULL is not true
    }
    match filter["op"].as_str().unwrap() {
        "has" => cell.as_array().unwrap().contains(value),
        "eq" => eq(value),
        "in" => value.as_array().unwrap().iter().any(eq),
        "gt" => compare_values(cell, value) == Ordering::Greater,
        "lt" => compare_values(cell, value) == Ordering::Less,
        "gte" => compare_values(cell, value) != Ordering::Less,
        "lte" => compare_values(cell, value) != Ordering::Greater,
        op => panic!("op {op}"),
    }
}

fn unique(rows: Vec<Item>) -> Vec<Item> {
    let mut seen = HashSet::new();
    rows.into_iter().filter(|r| seen.insert(r.id())).collect()
}

fn check(ok: bool, message: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if ok {
        Ok(())
    } else {
        Err(TestCaseError::fail(message()))
    }
}

/// Without writes between pages, the pages concatenate to exactly the model's answer.
async fn pages_concatenate(
    store: &dyn Store,
    rows: &[Item],
    spec: &QuerySpec,
) -> Result<(), TestCaseError> {
    for row in rows {
        row.insert(store).await;
    }
    let mut expected: Vec<Map<String, Value>> = rows
        .iter()
        .map(Item::model_row)
        .filter(|r| spec.matches(r))
        .collect();
    expected.sort_by(|a, b| spec.compare(a, b));

    let mut request = spec.request();
    let scope = spec.scope();
    let mut got = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.query_table(&request, scope.as_ref()).await.unwrap();
        pages += 1;
        check(page.total == expected.len() as u64, || {
            format!("total {} != {}", page.total, expected.len())
        })?;
        check(page.rows.len() <= spec.limit as usize, || {
            "page too long".into()
        })?;
        got.extend(page.rows);
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
        check(pages <= rows.len() + 1, || "pagination does not end".into())?;
    }
    check(got == expected, || {
        format!(
            "query {:?}\n got {:#?}\n expected {:#?}",
            spec.request(),
            got.iter().map(|r| &r["id"]).collect::<Vec<_>>(),
            expected.iter().map(|r| &r["id"]).collect::<Vec<_>>()
        )
    })?;
    let full_pages = expected.len().div_ceil(spec.limit as usize).max(1);
    check(pages == full_pages || pages == full_pages + 1, || {
        format!("{pages} pages for {} rows", expected.len())
    })
}

/// With rows inserted between pages: no row twice, every row present from the start and
/// matching is seen, every row seen matches, and the concatenation is in order.
async fn pages_stay_consistent(
    store: &dyn Store,
    rows: &[Item],
    arriving: &[Item],
    spec: &QuerySpec,
) -> Result<(), TestCaseError> {
    for row in rows {
        row.insert(store).await;
    }
    let mut request = spec.request();
    let scope = spec.scope();
    let mut arriving_rows = arriving.iter();
    let mut got: Vec<Map<String, Value>> = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.query_table(&request, scope.as_ref()).await.unwrap();
        pages += 1;
        check(pages <= rows.len() + arriving.len() + 1, || {
            "pagination does not end".into()
        })?;
        got.extend(page.rows);
        for row in arriving_rows.by_ref().take(2) {
            row.insert(store).await;
        }
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    let ids: Vec<&Value> = got.iter().map(|r| &r["id"]).collect();
    check(
        ids.iter().collect::<HashSet<_>>().len() == ids.len(),
        || format!("a row was returned twice: {ids:?}"),
    )?;
    for row in rows.iter().map(Item::model_row).filter(|r| spec.matches(r)) {
        check(ids.contains(&&row["id"]), || {
            format!("missed {}", row["id"])
        })?;
    }
    for row in &got {
        check(spec.matches(row), || {
            format!("{} does not match", row["id"])
        })?;
    }
    for pair in got.windows(2) {
        check(spec.compare(&pair[0], &pair[1]) == Ordering::Less, || {
            format!("out of order: {} then {}", pair[0]["id"], pair[1]["id"])
        })?;
    }
    Ok(())
}

fn run_cases(backend: Backend, table: Table, cases: u32, stable: bool) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        prop::collection::vec(table.item(), 0..16),
        prop::collection::vec(table.item(), 0..8),
        query_spec(table),
    );
    let result = runner.run(&strategy, |(rows, arriving, spec)| {
        let mut all = unique(rows.into_iter().chain(arriving.clone()).collect());
        let arriving = all.split_off(all.len().saturating_sub(arriving.len()));
        runtime.block_on(async {
            let db = TestDb::new(backend).await;
            let outcome = if stable {
                pages_stay_consistent(db.store.as_ref(), &all, &arriving, &spec).await
            } else {
                pages_concatenate(db.store.as_ref(), &all, &spec).await
            };
            db.store.close().await;
            outcome
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[test]
fn sqlite_pages_concatenate_to_the_filtered_sorted_rows() {
    run_cases(Backend::Sqlite, Table::Workspaces, 64, false);
}

#[test]
fn sqlite_pages_stay_consistent_while_rows_arrive() {
    run_cases(Backend::Sqlite, Table::Workspaces, 48, true);
}

#[test]
fn postgres_pages_concatenate_to_the_filtered_sorted_rows() {
    run_cases(Backend::Postgres, Table::Workspaces, 24, false);
}

#[test]
fn postgres_pages_stay_consistent_while_rows_arrive() {
    run_cases(Backend::Postgres, Table::Workspaces, 16, true);
}

#[test]
fn sqlite_recording_pages_concatenate_to_the_filtered_sorted_rows() {
    run_cases(Backend::Sqlite, Table::Recordings, 48, false);
}

#[test]
fn sqlite_recording_pages_stay_consistent_while_rows_arrive() {
    run_cases(Backend::Sqlite, Table::Recordings, 32, true);
}

#[test]
fn postgres_recording_pages_concatenate_to_the_filtered_sorted_rows() {
    run_cases(Backend::Postgres, Table::Recordings, 16, false);
}

#[test]
fn postgres_recording_pages_stay_consistent_while_rows_arrive() {
    run_cases(Backend::Postgres, Table::Recordings, 12, true);
}

#[test]
fn sqlite_machine_pages_concatenate_to_the_filtered_sorted_rows() {
    run_cases(Backend::Sqlite, Table::Machines, 48, false);
}

#[test]
fn sqlite_machine_pages_stay_consistent_while_machines_arrive() {
    run_cases(Backend::Sqlite, Table::Machines, 32, true);
}

#[test]
fn postgres_machine_pages_concatenate_to_the_filtered_sorted_rows() {
    run_cases(Backend::Postgres, Table::Machines, 16, false);
}

#[test]
fn postgres_machine_pages_stay_consistent_while_machines_arrive() {
    run_cases(Backend::Postgres, Table::Machines, 12, true);
}

#[test]
fn sqlite_operation_pages_concatenate_to_the_filtered_sorted_rows() {
    run_cases(Backend::Sqlite, Table::Operations, 48, false);
}

#[test]
fn sqlite_operation_pages_stay_consistent_while_operations_arrive() {
    run_cases(Backend::Sqlite, Table::Operations, 32, true);
}

#[test]
fn postgres_operation_pages_concatenate_to_the_filtered_sorted_rows() {
    run_cases(Backend::Postgres, Table::Operations, 16, false);
}

#[test]
fn postgres_operation_pages_stay_consistent_while_operations_arrive() {
    run_cases(Backend::Postgres, Table::Operations, 12, true);
}
