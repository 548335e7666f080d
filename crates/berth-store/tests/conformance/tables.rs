//! [`berth_store::TableStore`]: filters, sorting, scopes and keyset pages over the `workspaces`
//! table, and hostile queries. (Each other table has its part in its own story: `clients`,
//! `audit`, `recordings`.)

use berth_store::{StoreError, WorkspaceState};
use serde_json::{Value, json};

use crate::support::TestDb;
use crate::{ids, query, scope, workspace};

stories!(
    table_queries_filter_sort_and_scope,
    table_pages_are_stable_while_rows_arrive,
    hostile_input_is_refused,
);

async fn table_queries_filter_sort_and_scope(db: &TestDb) {
    let store = &db.store;
    let mut rows = Vec::new();
    for (i, (owner, template, state, container)) in [
        ("alice", "python", WorkspaceState::Running, Some("c1")),
        ("alice", "rust", WorkspaceState::Stopped, None),
        ("bob", "python", WorkspaceState::Running, Some("c3")),
        ("bob", "go", WorkspaceState::Failed, None),
        ("carol", "python", WorkspaceState::Pending, None),
    ]
    .into_iter()
    .enumerate()
    {
        let mut w = workspace(owner, template, i as i64 * 10);
        w.state = state;
        w.container_id = container.map(str::to_owned);
        w.persistent = i % 2 == 0;
        store.insert_workspace(&w).await.unwrap();
        rows.push(w);
    }

    let page = store
        .query_table(
            &query(json!({
                "table": "workspaces",
                "columns": ["owner", "template"],
                "filters": [
                    {"column": "state", "op": "in", "value": ["running", "pending"]},
                    {"column": "created_at", "op": "gte", "value": "2024-05-01T14:00:10+02:00"}
                ],
                "sort": [{"column": "template"}, {"column": "owner", "desc": true}]
            })),
            None,
        )
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.next_cursor, None);
    assert_eq!(
        page.rows,
        vec![
            json!({"owner": "carol", "template": "python"})
                .as_object()
                .unwrap()
                .clone(),
            json!({"owner": "bob", "template": "python"})
                .as_object()
                .unwrap()
                .clone(),
        ]
    );

    // null finds empty columns; "in" may include null.
    let empty = store
        .query_table(&query(json!({"table": "workspaces", "filters": [{"column": "container_id", "op": "eq", "value": null}]})), None)
        .await
        .unwrap();
    assert_eq!(empty.total, 3);
    let some = store
        .query_table(&query(json!({"table": "workspaces", "filters": [{"column": "container_id", "op": "in", "value": ["c1", null]}]})), None)
        .await
        .unwrap();
    assert_eq!(some.total, 4);
    let persistent = store
        .query_table(&query(json!({"table": "workspaces", "filters": [{"column": "persistent", "op": "eq", "value": true}]})), None)
        .await
        .unwrap();
    assert_eq!(persistent.total, 3);
    assert!(
        persistent
            .rows
            .iter()
            .all(|r| r["persistent"] == json!(true))
    );
    let by_id = store
        .query_table(&query(json!({"table": "workspaces", "filters": [{"column": "id", "op": "eq", "value": rows[3].id.to_string()}]})), None)
        .await
        .unwrap();
    assert_eq!(ids(&by_id.rows), vec![rows[3].id.to_string()]);

    // A user's scope hides everyone else's rows, whatever the filters say.
    let bobs = store
        .query_table(
            &query(json!({"table": "workspaces", "filters": [{"column": "owner", "op": "eq", "value": "alice"}]})),
            Some(&scope("bob")),
        )
        .await
        .unwrap();
    assert_eq!((bobs.total, bobs.rows.len()), (0, 0));
    let bobs = store
        .query_table(&query(json!({"table": "workspaces"})), Some(&scope("bob")))
        .await
        .unwrap();
    assert_eq!(bobs.total, 2);
    // Default order: newest first.
    assert_eq!(
        ids(&bobs.rows),
        vec![rows[3].id.to_string(), rows[2].id.to_string()]
    );
    // All columns by default, typed.
    let row = &bobs.rows[1];
    assert_eq!(row["state"], json!("running"));
    assert_eq!(row["persistent"], json!(true));
    assert_eq!(row["started_at"], Value::Null);
    assert_eq!(row["created_at"], json!("2024-05-01T12:00:20.000000Z"));
    assert_eq!(row.len(), 12);
}

async fn table_pages_are_stable_while_rows_arrive(db: &TestDb) {
    let store = &db.store;
    let mut existing = Vec::new();
    for i in 0..10 {
        // Five distinct creation times: ties are broken by id.
        let w = workspace("alice", "python", i / 2);
        store.insert_workspace(&w).await.unwrap();
        existing.push(w.id.to_string());
    }
    let mut request = query(
        json!({"table": "workspaces", "columns": ["id", "created_at"], "sort": [{"column": "created_at"}], "limit": 3}),
    );
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.query_table(&request, None).await.unwrap();
        pages += 1;
        seen.extend(ids(&page.rows));
        assert!(
            page.rows.iter().all(|r| r.len() == 2),
            "only the asked columns"
        );
        // Rows arrive between pages: some sort before the cursor, some after.
        let early = workspace("alice", "python", -100 - pages);
        let late = workspace("alice", "python", 100 + pages);
        store.insert_workspace(&early).await.unwrap();
        store.insert_workspace(&late).await.unwrap();
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no row twice");
    for id in &existing {
        assert!(seen.contains(id), "every row present throughout is seen");
    }
    assert!(pages >= 4);
}

async fn hostile_input_is_refused(db: &TestDb) {
    let store = &db.store;
    for bad in [
        json!({"table": "login_attempts"}),
        json!({"table": "workspaces", "columns": ["id", "owner FROM workspaces; --"]}),
        json!({"table": "workspaces", "filters": [{"column": "created_at", "op": "gt", "value": "not a time"}]}),
        json!({"table": "workspaces", "cursor": "bm90IGEgY3Vyc29y"}),
        json!({"table": "workspaces", "limit": 100000}),
    ] {
        match store.query_table(&query(bad.clone()), None).await {
            Err(StoreError::InvalidQuery(_)) => {}
            other => panic!("{bad}: expected InvalidQuery, got {other:?}"),
        }
    }
    // Text values are data, never SQL.
    let w = workspace("alice", "x' OR '1'='1", 0);
    store.insert_workspace(&w).await.unwrap();
    let page = store
        .query_table(&query(json!({"table": "workspaces", "filters": [{"column": "template", "op": "eq", "value": "x' OR '1'='1"}]})), None)
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    let none = store
        .query_table(&query(json!({"table": "workspaces", "filters": [{"column": "owner", "op": "eq", "value": "' OR 1=1 --"}]})), None)
        .await
        .unwrap();
    assert_eq!(none.total, 0);
}
