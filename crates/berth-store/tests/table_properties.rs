//! Property tests of table queries against an in-memory model: a query returns exactly the
//! rows the model's filter selects, in the model's order; pages concatenate to the whole result;
//! and pages stay consistent (no row twice, none of the earlier rows missed) while rows are
//! inserted between fetches. The model covers two tables: `workspaces` (every column kind) and
//! `recordings` (the target kind and id, integers). Each case runs on a fresh database, on
//! SQLite and on PostgreSQL (fewer cases there: each one creates a database).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use std::cmp::Ordering;
use std::collections::HashSet;

use berth_store::{Recording, RecordingId, Store, TableQuery, Workspace, WorkspaceState};
use berth_types::{MachineId, TerminalTarget, Username, WorkspaceId};
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

/// The tables the model knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Table {
    Workspaces,
    Recordings,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Workspaces => "workspaces",
            Table::Recordings => "recordings",
        }
    }

    fn sortable(self) -> &'static [&'static str] {
        match self {
            Table::Workspaces => &SORTABLE,
            Table::Recordings => &RECORDING_SORTABLE,
        }
    }

    fn default_order(self) -> (&'static str, bool) {
        match self {
            Table::Workspaces => ("created_at", true),
            Table::Recordings => ("started_at", true),
        }
    }

    fn columns(self) -> Vec<(&'static str, Vec<Value>, &'static [&'static str])> {
        match self {
            Table::Workspaces => columns(),
            Table::Recordings => recording_columns(),
        }
    }

    fn item(self) -> BoxedStrategy<Item> {
        match self {
            Table::Workspaces => row_spec()
                .prop_map(|r| Item::Workspace(r.workspace()))
                .boxed(),
            Table::Recordings => recording_spec().boxed(),
        }
    }
}

/// A row of one of the model's tables.
#[derive(Clone, Debug)]
enum Item {
    Workspace(Workspace),
    Recording(Recording),
}

impl Item {
    fn id(&self) -> Uuid {
        match self {
            Item::Workspace(w) => w.id.as_uuid(),
            Item::Recording(r) => r.id.as_uuid(),
        }
    }

    fn model_row(&self) -> Map<String, Value> {
        match self {
            Item::Workspace(w) => model_row(w),
            Item::Recording(r) => recording_model_row(r),
        }
    }

    async fn insert(&self, store: &dyn Store) {
        match self {
            Item::Workspace(w) => store.insert_workspace(w).await.unwrap(),
            Item::Recording(r) => store.insert_recording(r).await.unwrap(),
        }
    }
}

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
    in_mask: u8,
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
                .filter(|(i, _)| spec.in_mask & (1 << i) != 0)
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
}

fn query_spec(table: Table) -> impl Strategy<Value = QuerySpec> {
    let filter = (any::<usize>(), any::<usize>(), any::<usize>(), any::<u8>()).prop_map(
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
    )
        .prop_map(move |(filters, sort, limit, scope)| QuerySpec {
            table,
            filters,
            sort,
            limit,
            scope,
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

    fn scope(&self) -> Option<Username> {
        self.scope.map(|i| Username::new(OWNERS[i]).unwrap())
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

    fn matches(&self, row: &Map<String, Value>) -> bool {
        let scoped = self.scope.is_none_or(|i| row["owner"] == json!(OWNERS[i]));
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
        _ => panic!("mixed types {a} {b}"),
    }
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
