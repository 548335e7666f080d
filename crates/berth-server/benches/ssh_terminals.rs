//! `make bench`: Berth's SSH-backed terminals against the plain tools, in the same run.
//!
//! - A **machine terminal** (`GET /api/v1/machines/{id}/terminal`, read by a headless
//!   WebSocket client) against `ssh -tt` to the same test machine (m1 of
//!   scripts/test-machines.sh) with the same key and the same pinned host key, its stdin and
//!   stdout pipes.
//! - An **SSH gateway session** (`berth_ssh::gateway::Gateway` over
//!   `berth_core::gateway::SshGateway`, as the server assembles it, sessions recorded) driven by
//!   the real OpenSSH client against `docker exec -it` into the same workspace container; both
//!   clients run on a local PTY of their own, as a terminal emulator runs them.
//!
//! Throughput: `head -c 50M /dev/zero | base64` at an interactive bash prompt, the reader
//! counting every byte until a marker printed after it and checking that every `A` of the
//! encoding arrived. Echo: single keys into the idle prompt. Rounds alternate which of a pair
//! goes first. The server and the gateway run on their own runtime, the clients on another,
//! both in this process. Needs the test Docker Engine, image and SSH machines:
//! `scripts/bench.sh` provides them and collects the Markdown this prints.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the failure report

#[path = "../tests/common/mod.rs"]
mod common;
mod shared;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_core::gateway::SshGateway;
use berth_core::{Recordings, WorkspaceTerminals};
use berth_ssh::gateway::{Gateway, GatewayBackend, GatewayOptions};
use common::machines::inventory::{Repo, install_key, known_hosts, links};
use common::{TestServer, send_json};
use shared::{PROMPT, Session, ms, percentile};

/// What the throughput rounds print, and how many `A`s its base64 has: 50 MiB of zeros are
/// 17476267 groups of four characters, the last one `AAA=`.
const COMMAND: &str = "head -c 50M /dev/zero | base64";
const LETTERS: usize = 52_428_800_usize.div_ceil(3) * 4 - 1;
const THROUGHPUT_ROUNDS: usize = 6;
const ECHO_ROUNDS: usize = 4;
const ECHO_KEYS: usize = 200;
const PASSWORD: &str = "bench-password-1";
const MACHINE: &str = "m1";

impl Session {
    /// Runs [`COMMAND`]: the bytes that arrived until the marker after it, and how long that
    /// took. Fails unless every `A` of the encoding arrived.
    async fn base64(&mut self) -> (usize, Duration) {
        const MARKER: &[u8] = b"DONE-42";
        let command = format!("{COMMAND}; echo DONE-$((40+2))\r");
        let start = Instant::now();
        self.type_(command.as_bytes()).await;
        let mut window: Vec<u8> = Vec::new();
        let (mut bytes, mut letters) = (0, 0);
        let count = |bytes: &[u8]| bytes.iter().filter(|b| **b == b'A').count();
        loop {
            let chunk = self.chunk().await;
            let keep = window.len().min(MARKER.len() - 1);
            window.drain(..window.len() - keep);
            let offset = window.len();
            window.extend_from_slice(&chunk);
            if let Some(at) = window.windows(MARKER.len()).position(|w| w == MARKER) {
                let before = at.saturating_sub(offset);
                letters += count(&chunk[..before]);
                bytes += before;
                self.rest = window[at + MARKER.len()..].to_vec();
                break;
            }
            letters += count(&chunk);
            bytes += chunk.len();
        }
        let elapsed = start.elapsed();
        self.until(PROMPT).await;
        assert_eq!(
            letters, LETTERS,
            "`{COMMAND}` lost output ({bytes} bytes arrived)"
        );
        (bytes, elapsed)
    }
}

/// One way into a place, measured.
struct Way {
    name: &'static str,
    session: Session,
    /// MB/s (10^6 bytes) of each throughput round.
    rates: Vec<f64>,
    echoes: Vec<Duration>,
    /// The p99 of each echo round.
    round_p99: Vec<Duration>,
}

impl Way {
    async fn new(name: &'static str, mut session: Session) -> Self {
        session.prepare().await;
        Self {
            name,
            session,
            rates: Vec::new(),
            echoes: Vec::new(),
            round_p99: Vec::new(),
        }
    }

    async fn throughput(&mut self) {
        let (bytes, elapsed) = self.session.base64().await;
        #[allow(clippy::cast_precision_loss)]
        self.rates.push(bytes as f64 / elapsed.as_secs_f64() / 1e6);
    }

    async fn echo(&mut self) {
        let mut samples = self.session.echoes(ECHO_KEYS).await;
        self.round_p99.push(percentile(&mut samples, 0.99));
        self.echoes.extend(samples);
    }

    fn rate(&self) -> f64 {
        let mut sorted = self.rates.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }

    fn rate_range(&self) -> (f64, f64) {
        let min = self.rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.rates.iter().copied().fold(0.0, f64::max);
        (min, max)
    }
}

/// The OpenSSH client's options: only this key, only this known_hosts, no agent, no config.
fn ssh_options(key: &Path, known_hosts: &Path, port: u16) -> Vec<String> {
    [
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        &format!("UserKnownHostsFile={}", known_hosts.display()),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "IdentityAgent=none",
        "-o",
        "LogLevel=ERROR",
        "-i",
        key.to_str().unwrap(),
        "-p",
        &port.to_string(),
    ]
    .map(str::to_owned)
    .to_vec()
}

struct Setup {
    server: TestServer,
    gateway_port: u16,
    /// The machine's and the gateway's host keys.
    known_hosts: PathBuf,
    /// The machine's client key, as Berth's fleet uses it.
    machine_key: PathBuf,
    /// The bench user's key, registered through the API.
    user_key: PathBuf,
    _root: tempfile::TempDir,
}

/// The server with m1 enrolled (the bench user may reach it) and the gateway beside it.
async fn setup(lab: &common::machines::Lab) -> Setup {
    let root = tempfile::tempdir().unwrap();
    let repo = Repo::new(root.path(), "inventory");
    // Its host key pinned, as an admin enrolls a machine whose key is known.
    let text = format!(
        "{}    host_key: {}\n",
        links(lab, &[(MACHINE, None)]),
        lab.machine(MACHINE).host_key
    );
    repo.commit(&[("links.yaml", text.as_str())], "the benchmark's machine");
    let keys = root.path().join("keys");
    install_key(lab, &keys);
    let server = TestServer::builder()
        .fleet("repository", repo.file_url())
        .fleet("keys_dir", keys.display().to_string())
        .fleet("connect_timeout", "20s")
        .template("bench", "memory: 1g")
        .user("bench", PASSWORD, &["bench"])
        .machines("bench", &[MACHINE])
        .start()
        .await;
    let admin = server.admin().await;
    for path in [
        "/api/v1/fleet/sync".to_owned(),
        format!("/api/v1/machines/{MACHINE}/verify"),
    ] {
        let answer = send_json(&admin, "POST", &path, "").await;
        assert_eq!(
            answer.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    let view = send_json(&admin, "GET", &format!("/api/v1/machines/{MACHINE}"), "").await;
    let view: serde_json::Value = serde_json::from_slice(&view.body).unwrap();
    assert_eq!(view["enrollment"]["status"], "enrolled", "{view}");

    let user_key = root.path().join("bench_ed25519");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f"])
        .arg(&user_key)
        .status()
        .unwrap();
    assert!(made.success(), "ssh-keygen failed");
    let public = std::fs::read_to_string(user_key.with_extension("pub")).unwrap();
    server
        .login("bench", PASSWORD)
        .await
        .add_ssh_key("bench", public.trim())
        .await
        .unwrap();

    let state = &server.state;
    let backend = SshGateway::new(
        state.config.clone(),
        Arc::new(state.workspaces.clone()),
        Arc::new(WorkspaceTerminals::new(state.workspaces.clone())),
        Arc::clone(&state.store),
        Some(Recordings::new(
            server.home.join("recordings"),
            Arc::clone(&state.store),
        )),
        state.workspaces.clock(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = Gateway::from_listener(
        listener,
        GatewayOptions::new(server.home.join("ssh_host_ed25519_key")),
        Arc::new(backend) as Arc<dyn GatewayBackend>,
    )
    .unwrap();
    let gateway_port = gateway.local_addr().unwrap().port();
    let known = root.path().join("known_hosts");
    std::fs::write(
        &known,
        format!(
            "{}[127.0.0.1]:{gateway_port} {}\n",
            known_hosts(lab, &[MACHINE]),
            gateway.public_key()
        ),
    )
    .unwrap();
    tokio::spawn(gateway.serve(std::future::pending()));
    Setup {
        server,
        gateway_port,
        known_hosts: known,
        machine_key: keys.join("id_ed25519"),
        user_key,
        _root: root,
    }
}

/// The one container of the server's instance: the workspace the gateway started.
fn workspace_container(instance: &str) -> String {
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "-q",
            "--filter",
            &format!("label=berth.instance={instance}"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let containers: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(containers.len(), 1, "workspace containers: {containers:?}");
    containers[0].to_owned()
}

/// The 1-minute load average, from /proc/loadavg.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .next()
        .unwrap_or("unknown")
        .to_owned()
}

fn main() {
    let lab = common::machines::lab().expect("the SSH test machines (scripts/test-machines.sh)");
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let setup = server_runtime.block_on(setup(&lab));
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    client_runtime.block_on(bench(&lab, &setup));
    drop(setup);
}

async fn bench(lab: &common::machines::Lab, setup: &Setup) {
    let server = &setup.server;
    let machine = lab.machine(MACHINE);
    let token = server
        .client()
        .login("bench", PASSWORD)
        .await
        .unwrap()
        .token
        .expose()
        .to_owned();

    let load_before = load_average();
    eprintln!("ssh terminals bench: opening the four terminals");
    let path = format!("/api/v1/machines/{MACHINE}/terminal?cols=80&rows=24");
    let mut berth_machine = Way::new(
        "Berth machine terminal (WebSocket)",
        Session::websocket(server.addr, &path, &token).await,
    )
    .await;
    let mut ssh = tokio::process::Command::new("ssh");
    ssh.arg("-tt")
        .args(ssh_options(
            &setup.machine_key,
            &setup.known_hosts,
            machine.port,
        ))
        .arg(format!("{}@{}", machine.user, machine.host))
        .env_remove("SSH_AUTH_SOCK")
        .env("TERM", "xterm-256color");
    let mut plain_ssh = Way::new("`ssh -tt` (baseline)", Session::piped(ssh)).await;

    let mut argv = vec!["ssh".to_owned(), "-t".to_owned()];
    argv.extend(ssh_options(
        &setup.user_key,
        &setup.known_hosts,
        setup.gateway_port,
    ));
    argv.push("bench+bench@127.0.0.1".to_owned());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut gateway = Way::new("Berth SSH gateway (OpenSSH client)", Session::pty(&argv)).await;
    let container = workspace_container(&server.instance);
    let mut docker = Way::new(
        "`docker exec -it` (baseline)",
        Session::pty(&["docker", "exec", "-it", &container, "bash"]),
    )
    .await;

    eprintln!("ssh terminals bench: throughput, {THROUGHPUT_ROUNDS} rounds");
    // One warm-up round each, then the rounds, each pair alternating which goes first.
    for path in [
        &mut berth_machine,
        &mut plain_ssh,
        &mut gateway,
        &mut docker,
    ] {
        path.session.base64().await;
    }
    for round in 0..THROUGHPUT_ROUNDS {
        for (a, b) in [
            (&mut plain_ssh, &mut berth_machine),
            (&mut docker, &mut gateway),
        ] {
            let (first, second) = if round % 2 == 0 { (a, b) } else { (b, a) };
            first.throughput().await;
            second.throughput().await;
        }
    }

    eprintln!("ssh terminals bench: keystroke echo, {ECHO_ROUNDS} rounds");
    for round in 0..ECHO_ROUNDS {
        for (a, b) in [
            (&mut plain_ssh, &mut berth_machine),
            (&mut docker, &mut gateway),
        ] {
            let (first, second) = if round % 2 == 0 { (a, b) } else { (b, a) };
            first.echo().await;
            second.echo().await;
        }
    }

    print_report(
        [
            ("a machine", &mut plain_ssh, &mut berth_machine),
            ("a workspace", &mut docker, &mut gateway),
        ],
        machine,
    );
    // How busy the machine was: the absolute figures (and the p99s) move with it.
    println!(
        "\nLoad average (1 min) of this machine ({} cores) before the run: {load_before}; \
         after it: {}.",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        load_average()
    );
}

fn print_report(pairs: [(&str, &mut Way, &mut Way); 2], machine: &common::machines::Machine) {
    println!("## SSH terminals: throughput\n");
    println!(
        "An interactive bash on an 80x24 terminal runs `{COMMAND}` ({} characters in lines of \
         76; the terminal turns each `\\n` into `\\r\\n`); the reader counts every byte until a \
         marker printed after it and checks that all {LETTERS} `A`s arrived. Median of \
         {THROUGHPUT_ROUNDS} rounds after a warm-up round, each pair alternating which goes \
         first. The machine is the test machine `{MACHINE}` of scripts/test-machines.sh (an \
         sshd in a container, {}:{}): Berth's machine terminal is read by a headless WebSocket \
         client (`GET /api/v1/machines/{MACHINE}/terminal`, Bearer token), the baseline is \
         `ssh -tt` with the same key and the same pinned host key, its stdin and stdout pipes. \
         The workspace runs on the test Docker Engine: the gateway (`berth_ssh::gateway` over \
         `berth_core::gateway::SshGateway`, sessions recorded) is driven by the OpenSSH client \
         (`ssh -t -p PORT bench+bench@127.0.0.1`), the baseline is `docker exec -it` into the \
         same container, both on a local PTY of their own as a terminal emulator runs them. \
         Server, gateway and clients run in this process and on this machine.\n",
        LETTERS + 1,
        machine.host,
        machine.port
    );
    println!("| into | path | MB/s, median | min–max | ratio to the baseline |");
    println!("|---|---|---:|---:|---:|");
    let mut verdicts = Vec::new();
    for (place, baseline, berth) in &pairs {
        for path in [&**baseline, &**berth] {
            let (min, max) = path.rate_range();
            println!(
                "| {place} | {} | {:.1} | {min:.1}–{max:.1} | {:.2} |",
                path.name,
                path.rate(),
                path.rate() / baseline.rate()
            );
        }
        let ratio = berth.rate() / baseline.rate();
        verdicts.push(format!(
            "{} reaches **{ratio:.2}x** its baseline (target: at least 0.7x, {})",
            berth.name,
            if ratio >= 0.7 { "met" } else { "NOT met" }
        ));
    }
    println!("\n{}.\n", verdicts.join("; "));

    println!("## SSH terminals: keystroke echo\n");
    println!(
        "{ECHO_ROUNDS} rounds of {ECHO_KEYS} keys, one at a time 3 ms apart, alternating `x` and \
         backspace at an idle bash prompt: the time from sending a key to the first output \
         after it. Pairs alternate which goes first; p50 and p99 over all {} keys, and the \
         range of the rounds' p99.\n",
        ECHO_ROUNDS * ECHO_KEYS
    );
    println!("| into | path | p50 | p99 | p99 of a round, min–max |");
    println!("|---|---|---:|---:|---:|");
    let mut verdicts = Vec::new();
    for (place, baseline, berth) in pairs {
        for path in [&mut *baseline, &mut *berth] {
            let p50 = percentile(&mut path.echoes, 0.5);
            let p99 = percentile(&mut path.echoes, 0.99);
            path.round_p99.sort();
            println!(
                "| {place} | {} | {} | {} | {}–{} |",
                path.name,
                ms(p50),
                ms(p99),
                ms(path.round_p99[0]),
                ms(path.round_p99[path.round_p99.len() - 1])
            );
        }
        let p99 = percentile(&mut berth.echoes, 0.99);
        verdicts.push(format!(
            "{}: p99 **{}** (target: under 5 ms, {})",
            berth.name,
            ms(p99),
            if p99 < Duration::from_millis(5) {
                "met"
            } else {
                "NOT met"
            }
        ));
    }
    println!("\nIdle echo {}.", verdicts.join("; "));
}
