//! `make bench`: the terminal bridge against a local PTY, in the same run.
//!
//! - Throughput: an interactive bash runs `cat` of the same 100 MiB text file (a) on a PTY of
//!   this machine, read straight from the PTY (the baseline), (b) in a workspace through
//!   `docker exec -t` and the docker CLI, (c) in a workspace through Berth's terminal socket,
//!   read by a headless WebSocket client, with recording on (the default) and off.
//! - Keystroke echo: one key at a time into an idle bash prompt, the time until its echo
//!   arrives; idle, and while another terminal of the same machine or workspace floods `yes`
//!   as fast as its reader drains it.
//! - Ctrl-C during `yes` in the same terminal: the time until the prompt is back and the bytes
//!   that were still on the way (what the bounded queues hold).
//!
//! The server runs on its own runtime, the clients on another, both in this process; the local
//! PTY's reader is a thread. Needs the test Docker Engine and image: `scripts/bench.sh` provides
//! them and collects the Markdown this prints.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the failure report

#[path = "../tests/common/mod.rs"]
mod common;
mod shared;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_types::WorkspaceId;
use berth_types::api::StartWorkspace;
use common::TestServer;
use shared::{PROMPT, Session, ms, percentile};
use tokio::io::AsyncReadExt;

/// The file `cat` prints: `LINE` repeated to exactly 100 MiB.
const FILE_BYTES: usize = 100 * 1024 * 1024;
const LINE: &str = "the quick brown fox jumps over the lazy dog 0123456789 ABCDEFGH\n";
const THROUGHPUT_ROUNDS: usize = 5;
const ECHO_KEYS: usize = 400;
const INTERRUPTS: usize = 20;
const PASSWORD: &str = "bench-password-1";

impl Session {
    /// Runs `cat path` and returns the bytes it delivered and how long that took.
    async fn cat(&mut self, path: &str) -> (usize, Duration) {
        let command = format!("cat {path}; echo DONE-$((40+2))\r");
        let start = Instant::now();
        self.type_(command.as_bytes()).await;
        let bytes = self.until(b"DONE-42").await;
        let elapsed = start.elapsed();
        self.until(PROMPT).await;
        (bytes, elapsed)
    }

    /// Starts `yes`, lets it run, presses Ctrl-C: the time until the prompt is back and the
    /// bytes that arrived after the key.
    async fn interrupt(&mut self) -> (Duration, usize) {
        self.type_(b"yes\r").await;
        let mut flowed = 0;
        while flowed < 4 * 1024 * 1024 {
            flowed += self.chunk().await.len();
        }
        let sent = Instant::now();
        self.type_(b"\x03").await;
        let after = self.until(PROMPT).await;
        let elapsed = sent.elapsed();
        self.settle().await;
        (elapsed, after)
    }
}

/// A terminal running `yes`, drained as fast as it comes, until dropped.
struct Flood {
    stop: tokio::sync::oneshot::Sender<()>,
    drained: tokio::task::JoinHandle<usize>,
}

impl Flood {
    async fn start(mut session: Session) -> Self {
        session.type_(b"yes\r").await;
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let drained = tokio::spawn(async move {
            let mut total = 0;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    chunk = session.output.recv() => match chunk {
                        Some(chunk) => total += chunk.len(),
                        None => break,
                    },
                }
            }
            let _ = session.input.send(b"\x03".to_vec()).await;
            total
        });
        // Let it reach full speed.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Self { stop, drained }
    }

    async fn stop(self) -> usize {
        let _ = self.stop.send(());
        self.drained.await.unwrap()
    }
}

/// `docker exec -t <container> cat path`, read from the docker CLI's stdout.
async fn docker_cat(container: &str, path: &str) -> (usize, Duration) {
    let start = Instant::now();
    let mut child = tokio::process::Command::new("docker")
        .args(["exec", "-t", container, "cat", path])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = vec![0_u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = stdout.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert!(child.wait().await.unwrap().success(), "docker exec failed");
    (total, start.elapsed())
}

/// A workspace's terminal socket, as the CLI opens it.
async fn workspace_session(server: &TestServer, token: &str, id: WorkspaceId) -> Session {
    let path = format!("/api/v1/workspaces/{id}/terminal?cols=80&rows=24");
    Session::websocket(server.addr, &path, token).await
}

fn container_of(id: WorkspaceId) -> String {
    let out = Command::new("docker")
        .args([
            "ps",
            "-q",
            "--filter",
            &format!("label=berth.workspace={id}"),
        ])
        .output()
        .unwrap();
    let container = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(!container.is_empty(), "no container for workspace {id}");
    container
}

fn write_file(path: &Path) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for _ in 0..FILE_BYTES / LINE.len() {
        file.write_all(LINE.as_bytes()).unwrap();
    }
    file.flush().unwrap();
}

/// Throughput rounds of one path: MB/s (10^6 bytes) of each round.
#[derive(Default)]
struct Rates(Vec<f64>);

impl Rates {
    fn add(&mut self, (bytes, elapsed): (usize, Duration)) {
        assert!(
            bytes >= FILE_BYTES,
            "only {bytes} bytes arrived of {FILE_BYTES}"
        );
        #[allow(clippy::cast_precision_loss)]
        self.0.push(bytes as f64 / elapsed.as_secs_f64() / 1e6);
    }

    fn median(&self) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }
}

struct Workspace {
    id: WorkspaceId,
    session: Session,
}

async fn start_workspace(server: &TestServer, token: &str, template: &str) -> Workspace {
    let client = server.client().with_token(token);
    let view = client
        .start_workspace(&StartWorkspace {
            template: template.into(),
            persist: None,
            network: None,
        })
        .await
        .unwrap();
    let mut session = workspace_session(server, token, view.id).await;
    session.prepare().await;
    // The same file as the local one, made in the workspace's /tmp (a tmpfs).
    let make = format!(
        "yes '{}' | head -c {FILE_BYTES} > /tmp/big; echo MADE-$((1+1))\r",
        LINE.trim_end()
    );
    session.type_(make.as_bytes()).await;
    session.until(b"MADE-2").await;
    session.until(PROMPT).await;
    session.settle().await;
    Workspace {
        id: view.id,
        session,
    }
}

fn main() {
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = server_runtime.block_on(
        TestServer::builder()
            .template("bench", "memory: 1g")
            .template("bench-unrecorded", "memory: 1g\nrecord: false")
            .user("bench", PASSWORD, &["bench", "bench-unrecorded"])
            .start(),
    );
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    client_runtime.block_on(bench(&server));
    drop(server);
}

async fn bench(server: &TestServer) {
    let login = server.client().login("bench", PASSWORD).await.unwrap();
    let token = login.token.expose().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big");
    write_file(&file);
    let file = file.to_str().unwrap().to_owned();

    eprintln!("terminal bench: starting the local shell and two workspaces");
    let mut local = Session::local();
    local.prepare().await;
    let mut recorded = start_workspace(server, &token, "bench").await;
    let mut unrecorded = start_workspace(server, &token, "bench-unrecorded").await;
    let container = container_of(unrecorded.id);

    eprintln!("terminal bench: throughput, {THROUGHPUT_ROUNDS} rounds");
    // Throughput, interleaved, after one warm-up round each.
    let _ = local.cat(&file).await;
    let _ = recorded.session.cat("/tmp/big").await;
    let _ = unrecorded.session.cat("/tmp/big").await;
    let _ = docker_cat(&container, "/tmp/big").await;
    let (mut pty, mut docker) = (Rates::default(), Rates::default());
    let (mut with_recording, mut without_recording) = (Rates::default(), Rates::default());
    for _ in 0..THROUGHPUT_ROUNDS {
        pty.add(local.cat(&file).await);
        docker.add(docker_cat(&container, "/tmp/big").await);
        with_recording.add(recorded.session.cat("/tmp/big").await);
        without_recording.add(unrecorded.session.cat("/tmp/big").await);
    }

    eprintln!("terminal bench: keystroke echo");
    // Echo, idle and during a flood in another terminal of the same place.
    let mut local_idle = local.echoes(ECHO_KEYS).await;
    let mut berth_idle = recorded.session.echoes(ECHO_KEYS).await;
    let flood = Flood::start(Session::local()).await;
    let mut local_flood = local.echoes(ECHO_KEYS).await;
    let local_flooded = flood.stop().await;
    let flood = Flood::start(workspace_session(server, &token, recorded.id).await).await;
    let mut berth_flood = recorded.session.echoes(ECHO_KEYS).await;
    let berth_flooded = flood.stop().await;
    assert!(
        local_flooded > 0 && berth_flooded > 0,
        "a flood sent nothing"
    );

    eprintln!("terminal bench: Ctrl-C during yes");
    // Ctrl-C during `yes`, interleaved.
    let (mut local_interrupts, mut berth_interrupts) = (Vec::new(), Vec::new());
    for _ in 0..INTERRUPTS {
        local_interrupts.push(local.interrupt().await);
        berth_interrupts.push(recorded.session.interrupt().await);
    }

    print_report(
        [
            ("local PTY (baseline)", &pty),
            ("`docker exec -t` (docker CLI)", &docker),
            ("Berth, recording on (the default)", &with_recording),
            ("Berth, `record: false`", &without_recording),
        ],
        [
            ("local PTY", &mut local_idle, &mut local_flood),
            ("Berth", &mut berth_idle, &mut berth_flood),
        ],
        [
            ("local PTY", &mut local_interrupts),
            ("Berth", &mut berth_interrupts),
        ],
    );
}

type Interrupts = Vec<(Duration, usize)>;

fn print_report(
    rates: [(&str, &Rates); 4],
    echoes: [(&str, &mut Vec<Duration>, &mut Vec<Duration>); 2],
    interrupts: [(&str, &mut Interrupts); 2],
) {
    let baseline = rates[0].1.median();
    println!("## Terminal: `cat` of a 100 MiB file\n");
    println!(
        "An interactive bash runs `cat` of the same {} MiB text file ({}-byte lines; the \
         terminal turns each `\\n` into `\\r\\n`) on an 80x24 terminal; the reader counts every \
         byte until a marker printed after `cat`. Medians of {THROUGHPUT_ROUNDS} rounds, \
         interleaved, after a warm-up round. Berth's reader is a headless WebSocket client on \
         the terminal socket (`GET /api/v1/workspaces/{{id}}/terminal`, Bearer token), in the \
         same process as the server but on its own runtime. The workspaces' file is in their \
         `/tmp` (a tmpfs), the local one in the host's temporary directory.\n",
        FILE_BYTES / (1024 * 1024),
        LINE.len()
    );
    println!("| path | MB/s | ratio to the local PTY |");
    println!("|---|---:|---:|");
    for (name, rates) in rates {
        let rate = rates.median();
        println!("| {name} | {rate:.1} | {:.2} |", rate / baseline);
    }
    let ratio = rates[2].1.median() / baseline;
    println!(
        "\nBerth with recording reaches **{ratio:.2}x** the local PTY (target: at least 0.5x{}).\n",
        if ratio >= 0.5 { ", met" } else { ", NOT met" }
    );

    println!("## Terminal: keystroke echo\n");
    println!(
        "{ECHO_KEYS} keys, one at a time 3 ms apart, alternating `x` and backspace at a bash \
         prompt: the time from sending a key to the first output after it. \"During a flood\": \
         another terminal on the same machine (local) or of the same workspace (Berth) runs \
         `yes`, drained as fast as it comes.\n"
    );
    println!("| path | idle p50 | idle p99 | during a flood p50 | during a flood p99 |");
    println!("|---|---:|---:|---:|---:|");
    let mut berth_idle_p99 = Duration::ZERO;
    for (name, idle, flood) in echoes {
        let row = [
            percentile(idle, 0.5),
            percentile(idle, 0.99),
            percentile(flood, 0.5),
            percentile(flood, 0.99),
        ];
        berth_idle_p99 = row[1];
        println!(
            "| {name} | {} | {} | {} | {} |",
            ms(row[0]),
            ms(row[1]),
            ms(row[2]),
            ms(row[3])
        );
    }
    println!(
        "\nBerth's idle echo p99 is **{}** (target: under 5 ms{}).\n",
        ms(berth_idle_p99),
        if berth_idle_p99 < Duration::from_millis(5) {
            ", met"
        } else {
            ", NOT met"
        }
    );

    println!("## Terminal: Ctrl-C during `yes`\n");
    println!(
        "{INTERRUPTS} times, interleaved: `yes` runs in the measured terminal until 4 MiB have \
         arrived, then Ctrl-C: the time until the prompt is back, and the bytes still on the \
         way when the key was sent (what the PTY and, for Berth, its bounded queues held).\n"
    );
    println!("| path | p50 | p99 | bytes after Ctrl-C, median | max |");
    println!("|---|---:|---:|---:|---:|");
    for (name, samples) in interrupts {
        let mut times: Vec<Duration> = samples.iter().map(|(t, _)| *t).collect();
        let mut bytes: Vec<usize> = samples.iter().map(|(_, b)| *b).collect();
        bytes.sort_unstable();
        println!(
            "| {name} | {} | {} | {} | {} |",
            ms(percentile(&mut times, 0.5)),
            ms(percentile(&mut times, 0.99)),
            bytes[bytes.len() / 2],
            bytes[bytes.len() - 1]
        );
    }
}
