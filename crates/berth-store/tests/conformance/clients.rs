//! [`berth_store::ClientStore`]: batched pings where the latest wins, and the clients list.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use berth_store::ClientPing;
use berth_types::ClientId;
use serde_json::json;

use crate::support::TestDb;
use crate::{at, query, scope, user};

stories!(pings_upsert_latest_wins,);

fn ping(client: ClientId, owner: &str, seconds: i64, version: &str) -> ClientPing {
    ClientPing {
        client_id: client,
        username: user(owner),
        hostname: "laptop".into(),
        version: version.into(),
        at: at(seconds),
        ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
        local_workspaces: json!([{"template": "python", "state": "running"}]),
    }
}

async fn pings_upsert_latest_wins(db: &TestDb) {
    let store = &db.store;
    let laptop = ClientId::random();
    let desktop = ClientId::random();
    store.record_pings(&[]).await.unwrap();
    // Newest first inside one batch: the newer ping still wins.
    let mut newest = ping(laptop, "alice", 20, "0.2.0");
    newest.ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
    store
        .record_pings(&[
            newest.clone(),
            ping(laptop, "alice", 10, "0.1.0"),
            ping(desktop, "bob", 15, "0.1.0"),
        ])
        .await
        .unwrap();
    // A late batch with an older ping does not regress it.
    store
        .record_pings(&[ping(laptop, "alice", 5, "0.0.1")])
        .await
        .unwrap();

    let clients = store.list_clients(None).await.unwrap();
    assert_eq!(clients.len(), 2);
    let first = &clients[0];
    assert_eq!(first.client_id, laptop, "most recently seen first");
    assert_eq!(first.version, "0.2.0");
    assert_eq!(first.last_seen, at(20));
    assert_eq!(first.first_seen, at(20));
    assert_eq!(first.last_ip, IpAddr::V6(Ipv6Addr::LOCALHOST));
    assert_eq!(first.local_workspaces, newest.local_workspaces);

    store
        .record_pings(&[ping(laptop, "alice", 40, "0.3.0")])
        .await
        .unwrap();
    let alice = store.list_clients(Some(&user("alice"))).await.unwrap();
    assert_eq!(alice.len(), 1);
    assert_eq!((alice[0].first_seen, alice[0].last_seen), (at(20), at(40)));
    assert!(
        store
            .list_clients(Some(&user("carol")))
            .await
            .unwrap()
            .is_empty()
    );

    // Clients are a table too.
    let page = store
        .query_table(&query(json!({"table": "clients", "columns": ["client_id", "local_workspaces", "last_seen"]})), Some(&scope("bob")))
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.rows[0]["client_id"], json!(desktop.to_string()));
    assert_eq!(
        page.rows[0]["local_workspaces"][0]["template"],
        json!("python")
    );
    assert_eq!(
        page.rows[0]["last_seen"],
        json!("2024-05-01T12:00:15.000000Z")
    );
}
