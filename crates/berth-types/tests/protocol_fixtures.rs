//! Every terminal and grid message, as JSON, in `web/test/fixtures/protocol.json`: the web unit
//! tests decode each server message with the browser's decoder and encode each client message
//! with its encoder, so a change here that `web/` does not follow fails `make test` (and so does
//! a stale fixture file, here).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use berth_types::grid::{GridClientMessage, GridServerMessage, PaneSize, PaneState, PaneStatus};
use berth_types::terminal::{ClientMessage, Member, ServerMessage};
use berth_types::{MachineId, SessionRole, TerminalTarget, Username, WorkspaceId};
use serde_json::{Value, json};

fn name(text: &str) -> Username {
    Username::new(text).unwrap()
}

fn terminal_server() -> Vec<ServerMessage> {
    let workspace: WorkspaceId = "0b6c2c1e-0000-4000-8000-000000000001".parse().unwrap();
    let members = vec![
        Member {
            username: name("alice"),
            role: SessionRole::Owner,
        },
        Member {
            username: name("bob"),
            role: SessionRole::Viewer,
        },
    ];
    vec![
        ServerMessage::Hello {
            target: TerminalTarget::Workspace(workspace),
            workspace: Some(workspace),
            you: name("alice"),
            role: SessionRole::Owner,
            members: members.clone(),
        },
        ServerMessage::Hello {
            target: TerminalTarget::Machine(MachineId::new("web-1").unwrap()),
            workspace: None,
            you: name("carol"),
            role: SessionRole::Peer,
            members: vec![Member {
                username: name("carol"),
                role: SessionRole::Peer,
            }],
        },
        ServerMessage::Members { members },
        ServerMessage::Pong,
        ServerMessage::Exit { code: 0 },
        ServerMessage::Exit { code: -1 },
        ServerMessage::Error {
            message: "the workspace was stopped".into(),
        },
    ]
}

fn terminal_client() -> Vec<ClientMessage> {
    vec![
        ClientMessage::Resize {
            cols: 120,
            rows: 40,
        },
        ClientMessage::Ping,
    ]
}

fn grid_server() -> Vec<GridServerMessage> {
    let mut out = vec![GridServerMessage::Output {
        pane: 0,
        data: "aGVsbG8NCg==".into(),
    }];
    for (pane, state) in [
        (1, PaneState::Connecting),
        (2, PaneState::Connected),
        (3, PaneState::Closed),
    ] {
        out.push(GridServerMessage::Status {
            pane,
            data: PaneStatus {
                state,
                title: "alice@base".into(),
            },
        });
    }
    out.extend([
        GridServerMessage::Exit { pane: 1, data: 2 },
        GridServerMessage::Broadcast { data: true },
        GridServerMessage::Error {
            pane: Some(2),
            data: "pane 2 is closed".into(),
        },
        GridServerMessage::Error {
            pane: None,
            data: "no such grid".into(),
        },
    ]);
    out
}

fn grid_client() -> Vec<GridClientMessage> {
    vec![
        GridClientMessage::Input {
            pane: 3,
            data: "bHMNCg==".into(),
        },
        GridClientMessage::Resize {
            pane: 0,
            data: PaneSize { cols: 80, rows: 24 },
        },
        GridClientMessage::Broadcast { data: true },
    ]
}

fn fixtures() -> Value {
    json!({
        "terminal": {"server": terminal_server(), "client": terminal_client()},
        "grid": {"server": grid_server(), "client": grid_client()},
    })
}

/// The `type`s a message enum has, from its JSON Schema.
fn schema_types(schema: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut stack = vec![schema];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let Some(kind) = map
                    .get("properties")
                    .and_then(|p| p.get("type"))
                    .and_then(|t| t.get("const"))
                    .and_then(Value::as_str)
                {
                    found.insert(kind.to_owned());
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    found
}

fn fixture_types(messages: &Value) -> BTreeSet<String> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_message_type_has_a_fixture() {
    let all = fixtures();
    for (side, schema) in [
        ("terminal/server", schemars::schema_for!(ServerMessage)),
        ("terminal/client", schemars::schema_for!(ClientMessage)),
        ("grid/server", schemars::schema_for!(GridServerMessage)),
        ("grid/client", schemars::schema_for!(GridClientMessage)),
    ] {
        let schema = serde_json::to_value(schema).unwrap();
        let (socket, direction) = side.split_once('/').unwrap();
        let wanted = schema_types(&schema);
        assert!(!wanted.is_empty(), "{side}: no types in {schema}");
        assert_eq!(
            fixture_types(&all[socket][direction]),
            wanted,
            "{side}: add a fixture for every message type"
        );
    }
}

#[test]
fn fixtures_read_back_as_the_messages() {
    let all = fixtures();
    let back: Vec<ServerMessage> =
        serde_json::from_value(all["terminal"]["server"].clone()).unwrap();
    assert_eq!(back, terminal_server());
    let back: Vec<ClientMessage> =
        serde_json::from_value(all["terminal"]["client"].clone()).unwrap();
    assert_eq!(back, terminal_client());
    let back: Vec<GridServerMessage> =
        serde_json::from_value(all["grid"]["server"].clone()).unwrap();
    assert_eq!(back, grid_server());
    let back: Vec<GridClientMessage> =
        serde_json::from_value(all["grid"]["client"].clone()).unwrap();
    assert_eq!(back, grid_client());
}

#[test]
fn the_fixtures_for_web_are_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/test/fixtures/protocol.json");
    let current = serde_json::to_string_pretty(&fixtures()).unwrap() + "\n";
    if std::env::var_os("BERTH_UPDATE_FIXTURES").is_some() {
        std::fs::write(&path, &current).unwrap();
    }
    let saved = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        saved == current,
        "web/test/fixtures/protocol.json is stale or missing; regenerate it with \
         `BERTH_UPDATE_FIXTURES=1 cargo test -p berth-types --test protocol_fixtures`, \
         make web/ follow it (scripts/web-build.sh) and commit both"
    );
}
