//! `berth serve` SIGKILLed at random points during starts and stops, then started again on the
//! same home: after every restart the API and the engine agree (running ⇔ the container runs;
//! stopped ⇔ no container runs; an ephemeral stopped workspace has no container left), and each
//! workspace ends as reconciliation's rulebook says for the row the kill left in the database: a
//! `stopping` one `stopped` (an interrupted stop is finished, never undone), a `starting` one
//! `running` or, undone, `stopped` if it had a container before and `failed` if not; a stopped
//! or failed one stays so.
//!
//! The kill points are random; the seed is printed, and `BERTH_CRASH_SEED=N` replays a run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a panic is the failure report

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_client::api::WorkspaceState;
use berth_client::api::{StartWorkspace, WorkspaceQuery, WorkspaceView};
use berth_client::{Client, Template, WorkspaceId};
use berth_store::WorkspaceFilter;
use common::{Server, block_on, instance_for, remove_instance, require_engine};

const ROUNDS: usize = 50;
/// The kill comes this long (at most) after the request is sent.
const MAX_DELAY_MS: u64 = 150;
/// How long the API and the engine may take to agree after a restart.
const AGREEMENT: Duration = Duration::from_secs(30);
const USER: &str = "rita";
const PASSWORD: &str = "correct horse battery";

/// What a round asks of the server just before it is killed.
#[derive(Debug, Clone)]
enum Request {
    Create { persist: bool },
    Stop(WorkspaceId),
    Start(WorkspaceId),
}

impl Request {
    async fn send(&self, client: &Client) {
        // Killed mid-way, the request fails; what matters is what the restarted server says.
        let _ = match self {
            Self::Create { persist } => {
                let start = StartWorkspace {
                    template: "crash".into(),
                    persist: Some(*persist),
                    network: None,
                };
                client.start_workspace(&start).await.map(drop)
            }
            Self::Stop(id) => client.stop_workspace(*id).await.map(drop),
            Self::Start(id) => client.restart_workspace(*id).await.map(drop),
        };
    }
}

/// The containers of the instance: workspace label → engine states (`running`, `exited`, …).
fn engine(instance: &str) -> BTreeMap<String, Vec<String>> {
    let output = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=berth.instance={instance}"),
            "--format",
            "{{.Label \"berth.workspace\"}}\t{{.State}}",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "docker ps: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut containers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let (workspace, state) = line.split_once('\t').unwrap_or((line, ""));
        containers
            .entry(workspace.to_owned())
            .or_default()
            .push(state.to_owned());
    }
    containers
}

/// Why the API and the engine disagree, or `None` when they agree.
fn disagreement(api: &[WorkspaceView], engine: &BTreeMap<String, Vec<String>>) -> Option<String> {
    for workspace in api {
        let states = engine
            .get(&workspace.id.to_string())
            .cloned()
            .unwrap_or_default();
        let running = states.iter().filter(|s| *s == "running").count();
        let agrees = match workspace.state {
            WorkspaceState::Running => running == 1 && states.len() == 1,
            WorkspaceState::Stopped | WorkspaceState::Failed => {
                running == 0 && (workspace.persistent || states.is_empty())
            }
            _ => false,
        };
        if !agrees {
            return Some(format!(
                "workspace {} ({}) is {:?} ({:?}); its containers: {states:?}",
                workspace.id,
                if workspace.persistent {
                    "persistent"
                } else {
                    "ephemeral"
                },
                workspace.state,
                workspace.state_reason
            ));
        }
    }
    let known: Vec<String> = api.iter().map(|w| w.id.to_string()).collect();
    engine
        .iter()
        .find(|(workspace, _)| !known.contains(workspace))
        .map(|(workspace, states)| format!("containers of no workspace {workspace:?}: {states:?}"))
}

/// A workspace's row as the killed server left it in the database.
#[derive(Debug, Clone)]
struct Row {
    state: berth_store::WorkspaceState,
    had_container: bool,
}

/// The rows of the database in `home` (read while no server runs), by workspace id.
fn rows(home: &std::path::Path) -> BTreeMap<String, Row> {
    block_on(async {
        let location = home.join("berth.db").display().to_string();
        let store = berth_store::open(&location).await.unwrap();
        let rows = store
            .list_workspaces(&WorkspaceFilter::default())
            .await
            .unwrap();
        store.close().await;
        rows.into_iter()
            .map(|w| {
                let row = Row {
                    state: w.state,
                    had_container: w.container_id.is_some(),
                };
                (w.id.to_string(), row)
            })
            .collect()
    })
}

/// Why a workspace did not end as reconciliation's rules say for the row the kill left, or
/// `None` when every one did.
fn broken_rule(before: &BTreeMap<String, Row>, after: &[WorkspaceView]) -> Option<String> {
    use berth_store::WorkspaceState as Stored;
    for workspace in after {
        let Some(row) = before.get(&workspace.id.to_string()) else {
            return Some(format!(
                "workspace {} has no row in the database",
                workspace.id
            ));
        };
        let allowed: &[WorkspaceState] = match row.state {
            Stored::Stopping => &[WorkspaceState::Stopped],
            Stored::Starting | Stored::Pending if row.had_container => {
                &[WorkspaceState::Running, WorkspaceState::Stopped]
            }
            Stored::Starting | Stored::Pending => {
                &[WorkspaceState::Running, WorkspaceState::Failed]
            }
            Stored::Stopped => &[WorkspaceState::Stopped],
            Stored::Failed => &[WorkspaceState::Failed],
            Stored::Running => &[WorkspaceState::Running, WorkspaceState::Stopped],
        };
        if !allowed.contains(&workspace.state) {
            return Some(format!(
                "workspace {} was {:?} in the database when killed (a container before: {}), \
                 and is {:?} ({:?}) after the restart; allowed: {allowed:?}",
                workspace.id, row.state, row.had_container, workspace.state, workspace.state_reason
            ));
        }
    }
    None
}

/// Polls until the API and the engine agree; fails after [`AGREEMENT`] with the last view.
fn until_agreed(client: &Client, instance: &str, round: usize) -> Vec<WorkspaceView> {
    let deadline = Instant::now() + AGREEMENT;
    loop {
        let api = block_on(client.list_workspaces(&WorkspaceQuery::default()))
            .expect("the restarted server lists the workspaces");
        let engine = engine(instance);
        match disagreement(&api, &engine) {
            None => return api,
            Some(why) => assert!(
                Instant::now() < deadline,
                "round {round}: API and engine still disagree after {AGREEMENT:?}: {why}\nAPI: \
                 {api:#?}\nengine: {engine:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Removes the instance's containers however the test ends (crashed servers leave them).
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        remove_instance(&self.0);
    }
}

#[test]
fn a_kill_at_any_point_of_a_start_or_stop_leaves_api_and_engine_agreeing() {
    require_engine();
    let seed = std::env::var("BERTH_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("crash recovery seed {seed} (BERTH_CRASH_SEED={seed} replays this run)");
    let mut rng = fastrand::Rng::with_seed(seed);

    let home = tempfile::tempdir().unwrap();
    let instance = instance_for(home.path());
    let _cleanup = Cleanup(instance.clone());
    let mut server = Server::start(home.path());
    let admin = server.admin();
    admin.create_template(&Template::new("crash", "berth-test/base"));
    // For the last round (see there): a main process that ignores SIGTERM.
    let mut slow = Template::new("crash-slow-stop", "berth-test/base");
    slow.command = Some(vec![
        "/bin/sh".into(),
        "-c".into(),
        "trap '' TERM; while :; do sleep 1; done".into(),
    ]);
    admin.create_template(&slow);
    admin.create_user(USER, PASSWORD, &["crash", "crash-slow-stop"]);
    let login = block_on(Client::new(&server.url()).unwrap().login(USER, PASSWORD)).unwrap();
    // The signing key lives in the home, so the token outlives every restart.
    let token = login.token.expose().to_owned();
    let mut client = Client::new(&server.url()).unwrap().with_token(&token);

    let mut workspaces = Vec::new();
    let mut asked = BTreeMap::<&str, usize>::new();
    // The rows' states the kills left, counted over all rounds.
    let mut killed = BTreeMap::<&str, usize>::new();
    for round in 0..ROUNDS {
        let mut choices: Vec<Request> = workspaces
            .iter()
            .map(|w: &WorkspaceView| match w.state {
                WorkspaceState::Running => Request::Stop(w.id),
                _ => Request::Start(w.id),
            })
            .collect();
        if workspaces.len() < 2 {
            choices.push(Request::Create {
                persist: rng.bool(),
            });
        }
        let request = choices[rng.usize(..choices.len())].clone();
        let delay = Duration::from_millis(rng.u64(..=MAX_DELAY_MS));
        println!("round {round}: {request:?}, SIGKILL {delay:?} after sending it");
        *asked
            .entry(match request {
                Request::Create { .. } => "create",
                Request::Stop(_) => "stop",
                Request::Start(_) => "start",
            })
            .or_default() += 1;

        let sender = {
            let client = client.clone();
            let request = request.clone();
            std::thread::spawn(move || block_on(request.send(&client)))
        };
        std::thread::sleep(delay);
        server.crash();
        sender.join().unwrap();
        let before = rows(home.path());
        for row in before.values() {
            *killed.entry(row.state.as_str()).or_default() += 1;
        }

        server = Server::start(home.path());
        client = Client::new(&server.url()).unwrap().with_token(&token);
        workspaces = until_agreed(&client, &instance, round);
        if let Some(why) = broken_rule(&before, &workspaces) {
            panic!("round {round}: {why}");
        }
        let states: Vec<String> = workspaces
            .iter()
            .map(|w| format!("{:?} {:?}", w.state, w.state_reason))
            .collect();
        println!("  agreed: {states:?}");
    }
    println!("requests: {asked:?}; rows as the kills left them: {killed:?}");
    // Every kind of request was interrupted at least once in 50 rounds.
    assert_eq!(asked.len(), 3, "{asked:?}");

    // The test image stops at once, so the engine has usually finished a stop before the
    // restarted server looks. A container that ignores SIGTERM keeps its stop going for the
    // stop timeout: killed while the row says `stopping`, the restarted server finds the
    // container still running, and must finish the stop, not adopt it.
    let start = StartWorkspace {
        template: "crash-slow-stop".into(),
        persist: Some(false),
        network: None,
    };
    let workspace = block_on(client.start_workspace(&start)).unwrap();
    assert_eq!(workspace.state, WorkspaceState::Running);
    let sender = {
        let client = client.clone();
        std::thread::spawn(move || block_on(Request::Stop(workspace.id).send(&client)))
    };
    let deadline = Instant::now() + AGREEMENT;
    while rows(home.path())[&workspace.id.to_string()].state
        != berth_store::WorkspaceState::Stopping
    {
        assert!(Instant::now() < deadline, "the stop never began");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.crash();
    sender.join().unwrap();
    let before = rows(home.path());
    server = Server::start(home.path());
    client = Client::new(&server.url()).unwrap().with_token(&token);
    let after = until_agreed(&client, &instance, ROUNDS);
    if let Some(why) = broken_rule(&before, &after) {
        panic!("a stop killed with its container still running: {why}");
    }
    let view = after.iter().find(|w| w.id == workspace.id).unwrap();
    assert_eq!(view.state_reason, "stopped by rita; finished at start-up");
    drop(server);
}
