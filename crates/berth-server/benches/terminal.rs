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

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_types::WorkspaceId;
use berth_types::api::StartWorkspace;
use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The file `cat` prints: `LINE` repeated to exactly 100 MiB.
const FILE_BYTES: usize = 100 * 1024 * 1024;
const LINE: &str = "the quick brown fox jumps over the lazy dog 0123456789 ABCDEFGH\n";
const THROUGHPUT_ROUNDS: usize = 5;
const ECHO_KEYS: usize = 400;
const INTERRUPTS: usize = 20;
/// How long the benchmark waits for an answer before it fails (a failure report only).
const PATIENCE: Duration = Duration::from_secs(120);
/// The prompt every measured shell gets; typed as `'@@''@@ '` so that its echo differs.
const PROMPT: &[u8] = b"@@@@ ";
const PASSWORD: &str = "bench-password-1";

/// One terminal: what is typed goes to `input`, what it prints arrives on `output`.
struct Session {
    input: mpsc::Sender<Vec<u8>>,
    output: mpsc::Receiver<Vec<u8>>,
    /// Output read past the last needle, not yet consumed.
    rest: Vec<u8>,
}

impl Session {
    /// Bash on a new local 80x24 PTY, as the controlling terminal of its own session.
    fn local() -> Self {
        use rustix::fs::{Mode, OFlags};
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&controller).unwrap();
        unlockpt(&controller).unwrap();
        let name = ptsname(&controller, Vec::new()).unwrap();
        let terminal = std::path::PathBuf::from(name.to_str().unwrap());
        let size = rustix::termios::Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&controller, size).unwrap();
        let open = || rustix::fs::open(&terminal, OFlags::RDWR, Mode::empty()).unwrap();
        {
            let mut command = Command::new("setsid");
            command
                .args(["--ctty", "bash", "--norc", "--noprofile", "-i"])
                .env("TERM", "xterm-256color")
                .stdin(Stdio::from(open()))
                .stdout(Stdio::from(open()))
                .stderr(Stdio::from(open()));
            let mut bash = command.spawn().unwrap();
            std::thread::spawn(move || bash.wait());
        } // the command's copies of the terminal side close here
        let mut reader = std::fs::File::from(controller);
        let mut writer = reader.try_clone().unwrap();
        let (output_tx, output) = mpsc::channel::<Vec<u8>>(64);
        let (input, mut input_rx) = mpsc::channel::<Vec<u8>>(64);
        std::thread::spawn(move || {
            let mut buf = vec![0_u8; 64 * 1024];
            // EIO once bash and every copy of the terminal side are gone.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || output_tx.blocking_send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        std::thread::spawn(move || {
            while let Some(bytes) = input_rx.blocking_recv() {
                if writer.write_all(&bytes).is_err() {
                    break;
                }
            }
            // Dropping the session hangs up: bash exits.
            let _ = writer.write_all(b"\x04exit\r");
        });
        Self {
            input,
            output,
            rest: Vec::new(),
        }
    }

    /// A workspace's terminal socket, as the CLI opens it (Bearer token, no Origin).
    async fn workspace(server: &TestServer, token: &str, id: WorkspaceId) -> Self {
        let url = format!(
            "ws://{}/api/v1/workspaces/{id}/terminal?cols=80&rows=24",
            server.addr
        );
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        // TCP_NODELAY, as `berth attach` and browsers connect.
        let (ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
            .await
            .unwrap();
        let (mut sink, mut stream) = ws.split();
        let (output_tx, output) = mpsc::channel::<Vec<u8>>(64);
        let (input, mut input_rx) = mpsc::channel::<Vec<u8>>(64);
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                // Hello, members and pongs are not output.
                let bytes = match message {
                    Message::Binary(bytes) => bytes,
                    Message::Close(_) => break,
                    _ => continue,
                };
                if output_tx.send(bytes.into()).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            while let Some(bytes) = input_rx.recv().await {
                if sink.send(Message::Binary(bytes.into())).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        Self {
            input,
            output,
            rest: Vec::new(),
        }
    }

    async fn type_(&self, bytes: &[u8]) {
        self.input.send(bytes.to_vec()).await.unwrap();
    }

    /// The next output: what the last [`Session::until`] read past its needle, or a new chunk.
    async fn chunk(&mut self) -> Vec<u8> {
        if !self.rest.is_empty() {
            return std::mem::take(&mut self.rest);
        }
        tokio::time::timeout(PATIENCE, self.output.recv())
            .await
            .expect("the terminal went silent")
            .expect("the terminal closed")
    }

    /// Reads until `needle` appears; returns the bytes read up to its end. What came after it
    /// is kept for the next read.
    async fn until(&mut self, needle: &[u8]) -> usize {
        let mut window: Vec<u8> = Vec::new();
        let mut total = 0;
        loop {
            let chunk = self.chunk().await;
            let keep = window.len().min(needle.len() - 1);
            window.drain(..window.len() - keep);
            let offset = window.len();
            window.extend_from_slice(&chunk);
            if let Some(at) = window.windows(needle.len()).position(|w| w == needle) {
                let end = at + needle.len();
                self.rest = window[end..].to_vec();
                return total + end - offset;
            }
            total += chunk.len();
        }
    }

    /// Discards output until the terminal has been quiet for 200 ms.
    async fn settle(&mut self) {
        self.rest.clear();
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(200), self.output.recv()).await
        {}
    }

    /// Waits for the shell's first prompt (keys sent before it may be lost), then sets the
    /// known prompt and waits for that.
    async fn prepare(&mut self) {
        self.chunk().await;
        self.settle().await;
        self.type_(b"PS1='@@''@@ '\r").await;
        self.until(PROMPT).await;
        self.settle().await;
    }

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

    /// One key at a time, alternating `x` and backspace so that the line stays short: the time
    /// from sending each key to the first output after it.
    async fn echoes(&mut self, keys: usize) -> Vec<Duration> {
        self.settle().await;
        let mut samples = Vec::with_capacity(keys);
        for i in 0..keys {
            self.rest.clear();
            while self.output.try_recv().is_ok() {}
            let key: &[u8] = if i % 2 == 0 { b"x" } else { b"\x7f" };
            let sent = Instant::now();
            self.type_(key).await;
            self.chunk().await;
            samples.push(sent.elapsed());
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        self.type_(b"\x15").await; // Ctrl-U: an empty line whatever happened
        self.settle().await;
        samples
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

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
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
    let mut session = Session::workspace(server, token, view.id).await;
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
    let flood = Flood::start(Session::workspace(server, &token, recorded.id).await).await;
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
