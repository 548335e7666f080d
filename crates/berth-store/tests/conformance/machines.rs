//! [`berth_store::MachineStore`]: the machines an inventory sync puts in force, with their
//! enrollment and health kept across syncs (and reset when their SSH settings change), checks
//! recorded, and the `machines` table of table queries (filters, the `has` operator, sorting,
//! pages, selector scopes).

use std::cmp::Ordering;

use berth_store::{EnrollmentUpdate, HealthUpdate, MachineSpec, ProbeRecord, StoreError};
use berth_types::{EnrollmentStatus, HealthStatus, MachineSelector};
use serde_json::{Map, Value, json};
use time::macros::datetime;

use crate::support::TestDb;
use crate::{T0, at, machine, machine_id, query, sync_machines, user};

stories!(
    syncs_replace_machines_and_keep_their_status,
    changed_ssh_settings_reset_enrollment,
    checks_are_recorded_and_missing_machines_refused,
    machines_table_filters_and_tags,
    machines_table_sorts_on_every_column,
    machines_table_pages_are_stable_while_machines_arrive,
    machines_table_is_scoped_by_selectors,
);

const C1: &str = "1111111111111111111111111111111111111111";
const C2: &str = "2222222222222222222222222222222222222222";
const C3: &str = "3333333333333333333333333333333333333333";

fn enrolled(seconds: i64) -> EnrollmentUpdate {
    EnrollmentUpdate {
        status: EnrollmentStatus::Enrolled,
        message: "client id 5de3 matches links.yaml".to_owned(),
        fingerprint: None,
        at: at(seconds),
    }
}

fn online(seconds: i64) -> HealthUpdate {
    HealthUpdate {
        status: HealthStatus::Online,
        latency_ms: Some(12),
        last_seen: Some(at(seconds)),
        consecutive_failures: 0,
        checked_at: at(seconds),
        probes: vec![
            ProbeRecord {
                at: at(seconds - 60),
                latency_ms: None,
            },
            ProbeRecord {
                at: at(seconds),
                latency_ms: Some(12),
            },
        ],
    }
}

async fn syncs_replace_machines_and_keep_their_status(db: &TestDb) {
    let store = &db.store;
    assert!(store.list_machines().await.unwrap().is_empty());
    let mut db1 = machine("db-1", &["db"]);
    db1.kind = Some("db".to_owned());
    db1.proxy_jump = Some(machine_id("web-1"));
    let web1 = machine("web-1", &["web", "eu"]);
    let web3 = machine("web-3", &[]);
    sync_machines(db, &[web1.clone(), db1.clone(), web3.clone()], C1, 0).await;

    let all = store.list_machines().await.unwrap();
    assert_eq!(
        all.iter().map(|m| m.spec.id.as_str()).collect::<Vec<_>>(),
        ["db-1", "web-1", "web-3"],
        "by id"
    );
    assert_eq!(all[0].spec, db1);
    assert_eq!(all[1].spec, web1, "tags keep their order");
    assert_eq!(all[2].spec.tags, Vec::<String>::new());
    for m in &all {
        assert_eq!(m.enrollment, EnrollmentStatus::Unknown);
        assert_eq!(m.enrollment_message, "not verified yet");
        assert_eq!((m.fingerprint.as_deref(), m.verified_at), (None, None));
        assert_eq!(m.health, HealthStatus::Unknown);
        assert_eq!(
            (m.latency_ms, m.last_seen, m.checked_at),
            (None, None, None)
        );
        assert_eq!(m.consecutive_failures, 0);
        assert!(m.probes.is_empty());
        assert_eq!(m.commit, C1);
        assert_eq!((m.created_at, m.updated_at), (T0, T0));
    }

    store
        .record_enrollment(&machine_id("web-1"), &enrolled(10))
        .await
        .unwrap();
    store
        .record_health(&machine_id("web-1"), &online(20))
        .await
        .unwrap();
    store
        .record_enrollment(&machine_id("db-1"), &enrolled(10))
        .await
        .unwrap();

    // Rename web-1 and give it a type (not SSH settings), drop db-1, add new-1, keep web-3.
    let mut renamed = web1.clone();
    renamed.name = "Front end".to_owned();
    renamed.description = "serves the site".to_owned();
    renamed.kind = Some("web".to_owned());
    renamed.tags = vec!["eu".to_owned(), "web".to_owned(), "v2".to_owned()];
    let new1 = machine("new-1", &["web"]);
    sync_machines(db, &[new1.clone(), renamed.clone(), web3.clone()], C2, 100).await;

    assert_eq!(store.machine(&machine_id("db-1")).await.unwrap(), None);
    let web = store.machine(&machine_id("web-1")).await.unwrap().unwrap();
    assert_eq!(web.spec, renamed);
    assert_eq!(web.enrollment, EnrollmentStatus::Enrolled, "status kept");
    assert_eq!(web.enrollment_message, enrolled(10).message);
    assert_eq!(web.verified_at, Some(at(10)));
    assert_eq!(web.health, HealthStatus::Online);
    assert_eq!(web.latency_ms, Some(12));
    assert_eq!(web.probes, online(20).probes);
    assert_eq!(web.commit, C2, "the commit that last wrote the spec");
    assert_eq!((web.created_at, web.updated_at), (T0, at(100)));
    let kept = store.machine(&machine_id("web-3")).await.unwrap().unwrap();
    assert_eq!(kept.commit, C1, "an unchanged spec keeps its commit");
    assert_eq!(kept.updated_at, T0);
    let added = store.machine(&machine_id("new-1")).await.unwrap().unwrap();
    assert_eq!(added.spec, new1);
    assert_eq!(added.enrollment, EnrollmentStatus::Unknown);
    assert_eq!((added.created_at, added.commit.as_str()), (at(100), C2));

    // Machines removed and added back start over.
    sync_machines(db, &[db1.clone()], C3, 200).await;
    let all = store.list_machines().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].enrollment, EnrollmentStatus::Unknown);
    assert_eq!(all[0].created_at, at(200));
    // An inventory without machines empties the table.
    sync_machines(db, &[], C3, 300).await;
    assert!(store.list_machines().await.unwrap().is_empty());
}

async fn changed_ssh_settings_reset_enrollment(db: &TestDb) {
    let store = &db.store;
    let base = machine("web-1", &["web"]);
    let id = machine_id("web-1");
    sync_machines(db, std::slice::from_ref(&base), C1, 0).await;
    let changes: Vec<(&str, MachineSpec)> = vec![
        (
            "host",
            MachineSpec {
                host: "127.0.0.2".to_owned(),
                ..base.clone()
            },
        ),
        (
            "port",
            MachineSpec {
                port: 2222,
                ..base.clone()
            },
        ),
        (
            "user",
            MachineSpec {
                user: "root".to_owned(),
                ..base.clone()
            },
        ),
        (
            "key",
            MachineSpec {
                key: "root.key".to_owned(),
                ..base.clone()
            },
        ),
        (
            "host_key",
            MachineSpec {
                host_key: Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA".to_owned()),
                ..base.clone()
            },
        ),
        (
            "proxy_jump",
            MachineSpec {
                proxy_jump: Some(machine_id("bastion")),
                ..base.clone()
            },
        ),
        (
            "client_id",
            MachineSpec {
                client_id: Some("5de3".to_owned()),
                ..base.clone()
            },
        ),
    ];
    let mut previous = base.clone();
    for (n, (field, changed)) in changes.into_iter().enumerate() {
        let seconds = 100 * (n as i64 + 1);
        // Verified (with a fingerprint to forget) under the previous settings.
        store
            .record_enrollment(
                &id,
                &EnrollmentUpdate {
                    status: EnrollmentStatus::HostKeyUnknown,
                    message: "unknown host key".to_owned(),
                    fingerprint: Some("SHA256:abc".to_owned()),
                    at: at(seconds - 50),
                },
            )
            .await
            .unwrap();
        store
            .record_health(&id, &online(seconds - 40))
            .await
            .unwrap();
        let commit = format!("{n:x}{}", "abcdef0123456789".repeat(3));
        let mut specs = vec![changed.clone()];
        if changed.proxy_jump.is_some() {
            specs.push(machine("bastion", &[]));
        }
        sync_machines(db, &specs, &commit, seconds).await;
        let m = store.machine(&id).await.unwrap().unwrap();
        assert_eq!(m.spec, changed, "{field}");
        assert_eq!(m.enrollment, EnrollmentStatus::Unknown, "{field}");
        assert_eq!(
            m.enrollment_message,
            format!(
                "SSH settings changed in {}; not verified since",
                &commit[..12]
            ),
            "{field}"
        );
        assert_eq!((m.fingerprint, m.verified_at), (None, None), "{field}");
        // Health starts again too: the old address's checks say nothing about the new one.
        assert_eq!(m.health, HealthStatus::Unknown, "{field}");
        assert_eq!(
            (
                m.latency_ms,
                m.last_seen,
                m.consecutive_failures,
                m.checked_at
            ),
            (None, None, 0, None),
            "{field}"
        );
        assert!(m.probes.is_empty(), "{field}");
        assert_eq!(
            (m.commit.as_str(), m.updated_at),
            (commit.as_str(), at(seconds))
        );
        previous = changed;
    }
    // The same spec again changes nothing, not even after a status update.
    store.record_enrollment(&id, &enrolled(5000)).await.unwrap();
    let before = store.machine(&id).await.unwrap().unwrap();
    let mut specs = vec![previous];
    specs.push(machine("bastion", &[]));
    sync_machines(db, &specs, C3, 6000).await;
    assert_eq!(store.machine(&id).await.unwrap().unwrap(), before);
}

async fn checks_are_recorded_and_missing_machines_refused(db: &TestDb) {
    let store = &db.store;
    let id = machine_id("web-1");
    let ghost = machine_id("ghost");
    sync_machines(db, &[machine("web-1", &[])], C1, 0).await;

    let offline = HealthUpdate {
        status: HealthStatus::Offline,
        latency_ms: None,
        last_seen: None,
        consecutive_failures: 3,
        checked_at: datetime!(2024-05-01 14:00:00.123456789 +02:00),
        probes: vec![ProbeRecord {
            at: datetime!(2024-05-01 14:00:00.123456789 +02:00),
            latency_ms: None,
        }],
    };
    store.record_health(&id, &offline).await.unwrap();
    let m = store.machine(&id).await.unwrap().unwrap();
    assert_eq!(m.health, HealthStatus::Offline);
    assert_eq!(m.consecutive_failures, 3);
    assert_eq!((m.latency_ms, m.last_seen), (None, None));
    // Times, in the probes too, come back in UTC to the microsecond.
    let normalized = datetime!(2024-05-01 12:00:00.123456 UTC);
    assert_eq!(m.checked_at, Some(normalized));
    assert_eq!(m.probes[0].at, normalized);
    assert_eq!(
        m.enrollment,
        EnrollmentStatus::Unknown,
        "health leaves enrollment alone"
    );

    let changed = EnrollmentUpdate {
        status: EnrollmentStatus::HostKeyChanged,
        message: "the host key changed: SHA256:xyz".to_owned(),
        fingerprint: Some("SHA256:xyz".to_owned()),
        at: at(30),
    };
    store.record_enrollment(&id, &changed).await.unwrap();
    let m = store.machine(&id).await.unwrap().unwrap();
    assert_eq!(m.enrollment, EnrollmentStatus::HostKeyChanged);
    assert_eq!(m.enrollment_message, changed.message);
    assert_eq!(m.fingerprint.as_deref(), Some("SHA256:xyz"));
    assert_eq!(m.verified_at, Some(at(30)));
    assert_eq!(
        m.health,
        HealthStatus::Offline,
        "enrollment leaves health alone"
    );
    // Every status is kept as it is.
    for status in EnrollmentStatus::ALL {
        let update = EnrollmentUpdate {
            status,
            ..changed.clone()
        };
        store.record_enrollment(&id, &update).await.unwrap();
        assert_eq!(
            store.machine(&id).await.unwrap().unwrap().enrollment,
            status
        );
    }
    for status in HealthStatus::ALL {
        let update = HealthUpdate {
            status,
            ..offline.clone()
        };
        store.record_health(&id, &update).await.unwrap();
        assert_eq!(store.machine(&id).await.unwrap().unwrap().health, status);
    }

    assert!(matches!(
        store.record_enrollment(&ghost, &changed).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.record_health(&ghost, &offline).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.machine(&ghost).await.unwrap(), None);
    let negative = HealthUpdate {
        consecutive_failures: -1,
        ..offline.clone()
    };
    assert!(matches!(
        store.record_health(&id, &negative).await,
        Err(StoreError::InvalidInput(_))
    ));
    // A machine the next sync removes is gone for checks too.
    sync_machines(db, &[], C2, 100).await;
    assert!(matches!(
        store.record_enrollment(&id, &changed).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.record_health(&id, &offline).await,
        Err(StoreError::NotFound)
    ));
}

/// A small fleet for table queries: types, tags with `_` and look-alikes, statuses.
async fn fleet(db: &TestDb) -> Vec<MachineSpec> {
    let mut specs = vec![
        machine("web-1", &["web", "eu_1"]),
        machine("web-2", &["web", "eu11"]),
        machine("web-3", &["webserver", "eu-1"]),
        machine("db-1", &["db", "eu_1"]),
        machine("db-2", &[]),
        machine("bastion", &["edge"]),
    ];
    for spec in &mut specs {
        spec.kind = match spec.id.as_str() {
            "bastion" => None,
            id if id.starts_with("web") => Some("web".to_owned()),
            _ => Some("db".to_owned()),
        };
    }
    specs[1].port = 2222;
    specs[3].proxy_jump = Some(machine_id("bastion"));
    specs[3].client_id = Some("5de3".to_owned());
    sync_machines(db, &specs, C1, 0).await;
    let store = &db.store;
    store
        .record_enrollment(&machine_id("web-1"), &enrolled(10))
        .await
        .unwrap();
    store
        .record_enrollment(&machine_id("db-1"), &enrolled(11))
        .await
        .unwrap();
    store
        .record_health(&machine_id("web-1"), &online(20))
        .await
        .unwrap();
    let slow = HealthUpdate {
        status: HealthStatus::Degraded,
        latency_ms: Some(2500),
        ..online(21)
    };
    store
        .record_health(&machine_id("db-1"), &slow)
        .await
        .unwrap();
    specs
}

fn page_ids(rows: &[Map<String, Value>]) -> Vec<&str> {
    rows.iter().map(|r| r["id"].as_str().unwrap()).collect()
}

async fn machines_table_filters_and_tags(db: &TestDb) {
    let store = &db.store;
    fleet(db).await;
    let ids_of = |filters: Value| {
        let request = query(json!({"table": "machines", "filters": filters}));
        async move {
            let page = store.query_table(&request, None).await.unwrap();
            assert_eq!(page.total, page.rows.len() as u64);
            page_ids(&page.rows)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        }
    };
    // Default order: by id.
    assert_eq!(
        ids_of(json!([])).await,
        ["bastion", "db-1", "db-2", "web-1", "web-2", "web-3"]
    );
    assert_eq!(
        ids_of(json!([{"column": "type", "op": "eq", "value": "db"}])).await,
        ["db-1", "db-2"]
    );
    assert_eq!(
        ids_of(json!([{"column": "type", "op": "eq", "value": null}])).await,
        ["bastion"]
    );
    assert_eq!(
        ids_of(json!([{"column": "enrollment", "op": "eq", "value": "enrolled"}])).await,
        ["db-1", "web-1"]
    );
    assert_eq!(
        ids_of(json!([{"column": "enrollment", "op": "in", "value": ["unknown"]}])).await,
        ["bastion", "db-2", "web-2", "web-3"]
    );
    assert_eq!(
        ids_of(json!([{"column": "health", "op": "in", "value": ["online", "degraded"]}])).await,
        ["db-1", "web-1"]
    );
    assert_eq!(
        ids_of(json!([{"column": "latency_ms", "op": "gt", "value": 100}])).await,
        ["db-1"]
    );
    assert_eq!(
        ids_of(json!([{"column": "port", "op": "eq", "value": 2222}])).await,
        ["web-2"]
    );
    assert_eq!(
        ids_of(json!([{"column": "proxy_jump", "op": "eq", "value": "bastion"}])).await,
        ["db-1"]
    );
    // Tags: whole tags only, and `_` is a character, not a wildcard.
    assert_eq!(
        ids_of(json!([{"column": "tags", "op": "has", "value": "web"}])).await,
        ["web-1", "web-2"]
    );
    assert_eq!(
        ids_of(json!([{"column": "tags", "op": "has", "value": "eu_1"}])).await,
        ["db-1", "web-1"]
    );
    assert_eq!(
        ids_of(json!([{"column": "tags", "op": "has", "value": "eu"}])).await,
        Vec::<String>::new()
    );
    assert_eq!(
        ids_of(json!([
            {"column": "tags", "op": "has", "value": "web"},
            {"column": "tags", "op": "has", "value": "eu11"}
        ]))
        .await,
        ["web-2"]
    );
    assert_eq!(
        ids_of(json!([
            {"column": "tags", "op": "has", "value": "eu_1"},
            {"column": "type", "op": "eq", "value": "web"},
            {"column": "health", "op": "eq", "value": "online"}
        ]))
        .await,
        ["web-1"]
    );
    // `%` is no tag: refused, never a wildcard; so are other operators on tags.
    for bad in [
        json!({"column": "tags", "op": "has", "value": "%"}),
        json!({"column": "tags", "op": "has", "value": "e%"}),
        json!({"column": "tags", "op": "has", "value": "_"}),
        json!({"column": "tags", "op": "has", "value": "WEB"}),
        json!({"column": "tags", "op": "eq", "value": ",web,"}),
        json!({"column": "tags", "op": "gte", "value": ""}),
        json!({"column": "name", "op": "has", "value": "web"}),
        json!({"column": "enrollment", "op": "eq", "value": "bogus"}),
    ] {
        match store
            .query_table(&query(json!({"table": "machines", "filters": [bad]})), None)
            .await
        {
            Err(StoreError::InvalidQuery(_)) => {}
            other => panic!("{bad}: expected InvalidQuery, got {other:?}"),
        }
    }

    // Every column, typed.
    let page = store
        .query_table(
            &query(json!({"table": "machines", "filters": [{"column": "id", "op": "eq", "value": "db-1"}]})),
            None,
        )
        .await
        .unwrap();
    let row = &page.rows[0];
    assert_eq!(row.len(), 20);
    assert_eq!(row["tags"], json!(["db", "eu_1"]));
    assert_eq!(row["user"], json!("ops"));
    assert_eq!(row["type"], json!("db"));
    assert_eq!(row["port"], json!(22));
    assert_eq!(row["enrollment"], json!("enrolled"));
    assert_eq!(row["health"], json!("degraded"));
    assert_eq!(row["latency_ms"], json!(2500));
    assert_eq!(row["last_seen"], json!("2024-05-01T12:00:21.000000Z"));
    assert_eq!(row["verified_at"], json!("2024-05-01T12:00:11.000000Z"));
    assert_eq!(row["consecutive_failures"], json!(0));
    assert_eq!(row["client_id"], json!("5de3"));
    assert_eq!(row["proxy_jump"], json!("bastion"));
    assert_eq!(row["commit"], json!(C1));
    assert_eq!(row["name"], json!("DB-1"));
    let bare = store
        .query_table(
            &query(
                json!({"table": "machines", "columns": ["tags", "type", "latency_ms"],
                "filters": [{"column": "id", "op": "eq", "value": "db-2"}]}),
            ),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        bare.rows[0],
        json!({"tags": [], "type": "db", "latency_ms": null})
            .as_object()
            .unwrap()
            .clone()
    );
}

/// SQL order as the store defines it: null lowest, text by bytes, tag lists as their stored
/// text (`,a,b,`).
fn compare(a: &Value, b: &Value) -> Ordering {
    let text = |v: &Value| match v {
        Value::Array(tags) => {
            if tags.is_empty() {
                String::new()
            } else {
                let tags: Vec<&str> = tags.iter().map(|t| t.as_str().unwrap()).collect();
                format!(",{},", tags.join(","))
            }
        }
        other => other.as_str().unwrap().to_owned(),
    };
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(a), Value::Number(b)) => a.as_i64().cmp(&b.as_i64()),
        _ => text(a).as_bytes().cmp(text(b).as_bytes()),
    }
}

async fn machines_table_sorts_on_every_column(db: &TestDb) {
    let store = &db.store;
    fleet(db).await;
    let columns = [
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
    for column in columns {
        for desc in [false, true] {
            // Small pages: the cursor carries the sort values, a tag list among them.
            let mut request = query(json!({"table": "machines", "columns": [column],
                "sort": [{"column": column, "desc": desc}], "limit": 2}));
            let mut rows = Vec::new();
            loop {
                let page = store.query_table(&request, None).await.unwrap();
                rows.extend(page.rows);
                match page.next_cursor {
                    Some(cursor) => request.cursor = Some(cursor),
                    None => break,
                }
            }
            assert_eq!(rows.len(), 6, "{column}");
            for pair in rows.windows(2) {
                let mut o = compare(&pair[0][column], &pair[1][column]);
                if desc {
                    o = o.reverse();
                }
                assert_ne!(o, Ordering::Greater, "{column} desc={desc}: {rows:?}");
            }
        }
    }
    // Tag lists sort as text: none first, then ",db,eu_1," ...
    let page = store
        .query_table(
            &query(json!({"table": "machines", "columns": ["id", "tags"], "sort": [{"column": "tags"}]})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        page_ids(&page.rows),
        ["db-2", "db-1", "bastion", "web-2", "web-1", "web-3"],
        "'1' sorts before '_', ',' before 's'"
    );
}

async fn machines_table_pages_are_stable_while_machines_arrive(db: &TestDb) {
    let store = &db.store;
    let mut specs = fleet(db).await;
    let existing: Vec<String> = specs.iter().map(|s| s.id.to_string()).collect();
    let mut request = query(json!({"table": "machines", "columns": ["id"], "limit": 2}));
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.query_table(&request, None).await.unwrap();
        pages += 1;
        seen.extend(page_ids(&page.rows).into_iter().map(str::to_owned));
        // Machines arrive between pages, sorting before and after the cursor.
        specs.push(machine(&format!("a{pages}"), &["web"]));
        specs.push(machine(&format!("z{pages}"), &["web"]));
        sync_machines(db, &specs, C2, 100 + pages).await;
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no machine twice: {seen:?}");
    for id in &existing {
        assert!(seen.contains(id), "{id} was there throughout: {seen:?}");
    }
    assert!(seen.windows(2).all(|p| p[0] < p[1]), "in order: {seen:?}");
    assert!(pages >= 3);
}

async fn machines_table_is_scoped_by_selectors(db: &TestDb) {
    let store = &db.store;
    fleet(db).await;
    let visible = |selectors: &[&str]| {
        let scope = berth_store::TableScope {
            user: user("alice"),
            machines: selectors
                .iter()
                .map(|s| s.parse::<MachineSelector>().unwrap())
                .collect(),
        };
        async move {
            let page = store
                .query_table(&query(json!({"table": "machines"})), Some(&scope))
                .await
                .unwrap();
            assert_eq!(page.total, page.rows.len() as u64);
            page_ids(&page.rows)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(visible(&[]).await, Vec::<String>::new(), "none by default");
    assert_eq!(visible(&["db-2"]).await, ["db-2"]);
    assert_eq!(visible(&["tag:web"]).await, ["web-1", "web-2"]);
    assert_eq!(
        visible(&["tag:eu_1"]).await,
        ["db-1", "web-1"],
        "`_` is no wildcard"
    );
    assert_eq!(
        visible(&["tag:edge", "web-3", "tag:eu11", "ghost"]).await,
        ["bastion", "web-2", "web-3"]
    );
    assert_eq!(visible(&["tag:eu"]).await, Vec::<String>::new());
    // Filters narrow the scope, never widen it.
    let scope = berth_store::TableScope {
        user: user("alice"),
        machines: vec!["tag:web".parse().unwrap()],
    };
    let page = store
        .query_table(
            &query(json!({"table": "machines", "filters": [{"column": "id", "op": "in", "value": ["db-1", "web-2"]}]})),
            Some(&scope),
        )
        .await
        .unwrap();
    assert_eq!(page_ids(&page.rows), ["web-2"]);
    // The selectors leave owner tables alone: alice sees her own audit entries, not machines'.
    let audit = store
        .query_table(&query(json!({"table": "audit"})), Some(&scope))
        .await
        .unwrap();
    assert_eq!(audit.total, 0);
}
