//! The terminal seam: the terminal service over a second source that is not a workspace's,
//! an in-memory one serving machine targets. A bridge (attach, echo, presence, revocation,
//! audit) and a grid pane run on it exactly as on a workspace, so the fleet's SSH source is one
//! more `TerminalSource`, not a special case.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use berth_core::bridge::{BridgeEnd, GridRequest, Layout, Message, Revocation, TerminalSettings};
use berth_core::{AttachRequest, Audit, Recordings, SessionRole, Terminals};
use berth_terminal::{
    Activity, Caller, Grant, OpenError, Opened, TargetKind, TerminalSource, TerminalTarget, TtySize,
};
use berth_types::{MachineId, Role, WorkspaceId};
use common::fake::echo;
use common::wire::socket;
use common::{audit_entries, user};
use serde_json::{Value, json};

/// Machines in memory: `web-1` exists; alice owns it, bob may watch it, nobody else sees it.
#[derive(Debug, Default)]
struct MemoryMachines {
    opened: AtomicUsize,
    touched: Arc<Touches>,
    /// Users who lost their access (as a reload of users.yaml would take it away).
    denied: std::sync::Mutex<Vec<String>>,
}

#[derive(Debug, Default)]
struct Touches(AtomicUsize);

impl Activity for Touches {
    fn touch(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn web1() -> TerminalTarget {
    TerminalTarget::Machine(MachineId::new("web-1").unwrap())
}

#[async_trait]
impl TerminalSource for MemoryMachines {
    fn kind(&self) -> TargetKind {
        TargetKind::Machine
    }

    async fn authorize(
        &self,
        target: &TerminalTarget,
        caller: &Caller,
    ) -> Result<Option<Grant>, OpenError> {
        if *target != web1() {
            return Err(OpenError::NotFound(TargetKind::Machine));
        }
        if self
            .denied
            .lock()
            .unwrap()
            .iter()
            .any(|d| d == caller.username.as_str())
        {
            return Ok(None);
        }
        let role = match caller.username.as_str() {
            "alice" => SessionRole::Owner,
            "bob" => SessionRole::Viewer,
            _ => return Ok(None),
        };
        Ok(Some(Grant {
            target: target.clone(),
            role,
            owner: user("alice"),
            title: "web-1".into(),
            label: "machine web-1".into(),
            record: true,
            shared: true,
            unavailable: None,
        }))
    }

    async fn open(
        &self,
        _grant: &Grant,
        _role: SessionRole,
        _size: TtySize,
    ) -> Result<Opened, OpenError> {
        self.opened.fetch_add(1, Ordering::Relaxed);
        let (pty, _control) = echo(0);
        Ok(Opened {
            pty,
            activity: Some(self.touched.clone()),
            hold: None,
        })
    }
}

struct Setup {
    terminals: Terminals,
    machines: Arc<MemoryMachines>,
    store: Arc<dyn berth_store::Store>,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    setup_with(TerminalSettings::default()).await
}

async fn setup_with(settings: TerminalSettings) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = berth_store::open("sqlite::memory:").await.unwrap();
    let machines = Arc::new(MemoryMachines::default());
    let source: Arc<dyn TerminalSource> = machines.clone();
    let terminals = Terminals::new(
        [source],
        Recordings::new(dir.path().join("recordings"), Arc::clone(&store)),
        Audit::new(Arc::clone(&store)),
        settings,
    );
    Setup {
        terminals,
        machines,
        store,
        _dir: dir,
    }
}

#[tokio::test]
async fn a_bridge_runs_on_a_source_that_is_not_a_workspace() {
    let s = setup().await;
    let session = s
        .terminals
        .attach(AttachRequest::new(web1(), user("alice"), Role::User))
        .await
        .unwrap();
    assert_eq!(
        (session.role(), session.title()),
        (SessionRole::Owner, "web-1")
    );
    let (mut alice, sink, stream) = socket();
    let run = tokio::spawn(session.run(sink, stream));
    let hello = alice.next_json().await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["target"], json!({"kind": "machine", "id": "web-1"}));
    assert!(hello.get("workspace").is_none(), "{hello}");
    alice.type_text("uname\n").await;
    alice.read_until("uname").await;
    assert!(
        s.machines.touched.0.load(Ordering::Relaxed) > 0,
        "the source's clock was touched"
    );

    // A second user, as the source allows: a viewer, listed to everyone on the target.
    let viewer = s
        .terminals
        .attach(AttachRequest::new(web1(), user("bob"), Role::User))
        .await
        .unwrap();
    assert_eq!(viewer.role(), SessionRole::Viewer);
    let (mut bob, sink, stream) = socket();
    let bob_run = tokio::spawn(viewer.run(sink, stream));
    bob.next_of("hello").await;
    let members = alice.next_of("members").await;
    assert_eq!(
        members["members"],
        json!([{"username": "alice", "role": "owner"}, {"username": "bob", "role": "viewer"}])
    );
    let connected: Vec<String> = s
        .terminals
        .connected(&web1())
        .iter()
        .map(|c| c.username.to_string())
        .collect();
    assert_eq!(connected, ["alice", "bob"]);

    // Revocation reaches sessions on this target as it does workspaces'.
    let told = s.terminals.revoke(
        Some(&web1()),
        &user("bob"),
        &Revocation {
            code: 4403,
            message: "no longer allowed on web-1".into(),
        },
    );
    assert_eq!(told, 1);
    assert_eq!(bob_run.await.unwrap().end, BridgeEnd::Revoked);
    let (_, texts, closed) = bob.drain().await;
    assert!(
        texts
            .iter()
            .any(|t| t["message"] == "no longer allowed on web-1"),
        "{texts:?}"
    );
    assert_eq!(closed.map(|c| c.0), Some(4403));

    alice.send(Message::Close(1000, String::new())).await;
    let ended = run.await.unwrap();
    assert_eq!(ended.end, BridgeEnd::ClientGone);
    assert!(s.terminals.connected(&web1()).is_empty());

    // Recorded like a workspace's session, filed under the machine.
    let recording = ended.recording.expect("the source records");
    assert_eq!(recording.target, web1());
    assert_eq!(recording.owner, user("alice"));
    assert!(
        recording.path.starts_with("machines/web-1/"),
        "{}",
        recording.path
    );
    let listed = s
        .terminals
        .recordings()
        .recordings_for(&web1())
        .await
        .unwrap();
    assert_eq!(listed.len(), 2, "alice's and bob's sessions");
    let cast =
        std::fs::read_to_string(s.terminals.recordings().dir().join(&recording.path)).unwrap();
    assert!(cast.contains("uname"), "{cast}");

    // Attach and detach are audited with the target's kind, for both users.
    let attaches = audit_entries(s.store.as_ref(), "terminal.attach").await;
    assert_eq!(attaches.len(), 2, "{attaches:?}");
    assert!(attaches.iter().all(|a| a["target"] == "machine:web-1"));
    assert_eq!(attaches[0]["details"]["kind"], "machine", "{attaches:?}");
    assert_eq!(
        audit_entries(s.store.as_ref(), "terminal.detach")
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn a_recheck_ends_only_the_sessions_of_users_who_lost_their_access() {
    let s = setup().await;
    let mut clients = Vec::new();
    let mut runs = Vec::new();
    for name in ["alice", "bob"] {
        let session = s
            .terminals
            .attach(AttachRequest::new(web1(), user(name), Role::User))
            .await
            .unwrap();
        let (mut client, sink, stream) = socket();
        runs.push(tokio::spawn(session.run(sink, stream)));
        client.next_of("hello").await;
        clients.push(client);
    }
    // Nothing changed: nobody is told.
    assert_eq!(
        s.terminals
            .recheck(TargetKind::Machine, |_| Ok(Role::User))
            .await,
        0
    );
    // Workspace targets have no source here: a recheck of them tells nobody either.
    assert_eq!(
        s.terminals
            .recheck(TargetKind::Workspace, |_| Ok(Role::User))
            .await,
        0
    );
    s.machines.denied.lock().unwrap().push("bob".into());
    assert_eq!(
        s.terminals
            .recheck(TargetKind::Machine, |_| Ok(Role::User))
            .await,
        1
    );
    let mut bob = clients.pop().unwrap();
    let bob_run = runs.pop().unwrap();
    assert_eq!(bob_run.await.unwrap().end, BridgeEnd::Revoked);
    let (_, texts, closed) = bob.drain().await;
    assert!(
        texts.iter().any(|t| t["message"]
            .as_str()
            .unwrap_or("")
            .contains("machine:web-1")),
        "{texts:?}"
    );
    assert_eq!(closed.map(|c| c.0), Some(4403));
    // alice's session goes on...
    let mut alice = clients.pop().unwrap();
    alice.type_text("still here\n").await;
    alice.read_until("still here").await;
    // ...until her account is disabled or removed (the lookup knows her no more): 4401.
    assert_eq!(
        s.terminals
            .recheck(TargetKind::Machine, |u| {
                if u.as_str() == "alice" {
                    Err("Your account was disabled.")
                } else {
                    Ok(Role::User)
                }
            })
            .await,
        1
    );
    assert_eq!(runs.pop().unwrap().await.unwrap().end, BridgeEnd::Revoked);
    let (_, texts, closed) = alice.drain().await;
    assert_eq!(closed.map(|c| c.0), Some(4401));
    assert!(
        texts
            .iter()
            .any(|t| t["message"] == "Your account was disabled."),
        "{texts:?}"
    );
}

#[tokio::test]
async fn unknown_targets_kinds_without_a_source_and_strangers_are_all_not_found() {
    let s = setup().await;
    let gone = TerminalTarget::Machine(MachineId::new("gone").unwrap());
    let err = s
        .terminals
        .attach(AttachRequest::new(gone, user("alice"), Role::User))
        .await
        .unwrap_err();
    assert!(
        matches!(err, OpenError::NotFound(TargetKind::Machine)),
        "{err}"
    );
    // No workspace source here: a workspace target is not found, never a panic.
    let err = s
        .terminals
        .attach(AttachRequest::new(
            WorkspaceId::random(),
            user("alice"),
            Role::User,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, OpenError::NotFound(TargetKind::Workspace)),
        "{err}"
    );
    // A caller the source gives no role: not found too, and the denial is audited.
    let err = s
        .terminals
        .attach(AttachRequest::new(web1(), user("mallory"), Role::User))
        .await
        .unwrap_err();
    assert!(
        matches!(err, OpenError::NotFound(TargetKind::Machine)),
        "{err}"
    );
    let denied = audit_entries(s.store.as_ref(), "terminal.attach").await;
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["outcome"], "denied");
    assert_eq!(denied[0]["actor"], "mallory");
    assert_eq!(
        s.machines.opened.load(Ordering::Relaxed),
        0,
        "nothing was opened"
    );
}

#[tokio::test]
async fn a_grid_pane_runs_on_the_other_source() {
    let s = setup().await;
    let grid = s
        .terminals
        .grids()
        .create_grid(
            &user("alice"),
            Layout::Grid2x1,
            vec![
                web1(),
                TerminalTarget::Machine(MachineId::new("gone").unwrap()),
            ],
        )
        .unwrap();
    let session = s
        .terminals
        .open_grid(
            grid.id,
            GridRequest {
                user: user("alice"),
                account: Role::User,
                ip: None,
            },
        )
        .await
        .unwrap();
    let (mut client, sink, stream) = socket();
    let run = tokio::spawn(session.run(sink, stream));
    let mut status = Vec::new();
    let mut output = Vec::new();
    let mut sent = false;
    while !String::from_utf8_lossy(&output).contains("hello pane") {
        let Some(Message::Text(text)) = client.next().await else {
            panic!("the grid closed early");
        };
        let value: Value = serde_json::from_str(&text).unwrap();
        match value["type"].as_str().unwrap() {
            "status" => status.push(value.clone()),
            "output" if value["pane"] == 0 => {
                output.extend(BASE64.decode(value["data"].as_str().unwrap()).unwrap());
            }
            _ => {}
        }
        if !sent && status.iter().any(|v| v["pane"] == 0) {
            let input = json!({"pane": 0, "type": "input", "data": BASE64.encode("hello pane\n")});
            client.send(Message::Text(input.to_string())).await;
            sent = true;
        }
    }
    assert!(
        status
            .iter()
            .any(|v| v["pane"] == 0 && v["data"]["title"] == "web-1"),
        "{status:?}"
    );
    assert!(
        status.iter().any(|v| v["pane"] == 1),
        "the missing machine's pane says so: {status:?}"
    );
    client.send(Message::Close(1000, String::new())).await;
    run.await.unwrap();
    assert_eq!(s.machines.opened.load(Ordering::Relaxed), 1);
}

fn alice_grid() -> GridRequest {
    GridRequest {
        user: user("alice"),
        account: Role::User,
        ip: None,
    }
}

#[tokio::test]
async fn connect_all_opens_every_pane_and_the_grid_socket_takes_what_it_holds() {
    let s = setup().await;
    let gone = TerminalTarget::Machine(MachineId::new("gone").unwrap());
    let grid = s
        .terminals
        .grids()
        .create_grid(&user("alice"), Layout::Grid2x1, vec![web1(), gone])
        .unwrap();
    let report = s
        .terminals
        .connect_all(grid.id, alice_grid())
        .await
        .unwrap();
    assert_eq!(report.len(), 2);
    assert_eq!((report[0].pane, report[0].title.as_str()), (0, "web-1"));
    assert!(report[0].outcome.is_ok());
    assert!(matches!(
        report[1].outcome,
        Err(OpenError::NotFound(TargetKind::Machine))
    ));
    assert_eq!(report[1].title, "");
    assert_eq!(s.terminals.held(grid.id), 1);
    assert_eq!(s.machines.opened.load(Ordering::Relaxed), 1);
    // Another user's grid: not theirs to connect.
    let bob = GridRequest {
        user: user("bob"),
        ..alice_grid()
    };
    assert!(s.terminals.connect_all(grid.id, bob).await.is_err());
    // The socket takes the held session: nothing is opened again.
    let session = s.terminals.open_grid(grid.id, alice_grid()).await.unwrap();
    assert_eq!(s.terminals.held(grid.id), 0);
    assert_eq!(s.machines.opened.load(Ordering::Relaxed), 1);
    let (mut client, sink, stream) = socket();
    let run = tokio::spawn(session.run(sink, stream));
    let input = json!({"pane": 0, "type": "input", "data": BASE64.encode("held pane\n")});
    client.send(Message::Text(input.to_string())).await;
    let mut output = Vec::new();
    while !String::from_utf8_lossy(&output).contains("held pane") {
        let Some(Message::Text(text)) = client.next().await else {
            panic!("the grid closed early");
        };
        let value: Value = serde_json::from_str(&text).unwrap();
        if value["type"] == "output" && value["pane"] == 0 {
            output.extend(BASE64.decode(value["data"].as_str().unwrap()).unwrap());
        }
    }
    client.send(Message::Close(1000, String::new())).await;
    run.await.unwrap();
    // A second connect-all replaces the first's sessions (they close).
    s.terminals
        .connect_all(grid.id, alice_grid())
        .await
        .unwrap();
    s.terminals
        .connect_all(grid.id, alice_grid())
        .await
        .unwrap();
    assert_eq!(s.terminals.held(grid.id), 1);
    assert!(s.terminals.connected(&web1()).len() <= 1);
}

#[tokio::test]
async fn sessions_connect_all_held_close_when_no_socket_takes_them() {
    let s = setup_with(TerminalSettings {
        connect_hold: std::time::Duration::from_millis(20),
        ..TerminalSettings::default()
    })
    .await;
    let grid = s
        .terminals
        .grids()
        .create_grid(&user("alice"), Layout::Single, vec![web1()])
        .unwrap();
    s.terminals
        .connect_all(grid.id, alice_grid())
        .await
        .unwrap();
    assert_eq!(s.terminals.connected(&web1()).len(), 1, "held, attached");
    // Polled, not timed: the hold ends by itself.
    for _ in 0..500 {
        if s.terminals.held(grid.id) == 0 && s.terminals.connected(&web1()).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(s.terminals.held(grid.id), 0);
    assert!(s.terminals.connected(&web1()).is_empty(), "closed");
    // Its detach is audited, as for any session that never ran.
    for _ in 0..500 {
        if !audit_entries(s.store.as_ref(), "terminal.detach")
            .await
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        audit_entries(s.store.as_ref(), "terminal.detach")
            .await
            .len(),
        1
    );
}
