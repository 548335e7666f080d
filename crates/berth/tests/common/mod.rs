//! Runs the real `berth` binary in a temporary home and talks to it over loopback.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::zombie_processes)] // test helpers: a panic is the failure report; Drop kills and waits

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The `berth` binary built for this test run.
pub fn berth() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command
        .env_remove("BERTH_HOME")
        .env_remove("BERTH_LISTEN")
        .env_remove("BERTH_LOG");
    command
}

/// A `berth.instance` label of its own for each test home (the same for every start on that
/// home), so parallel servers on one engine never reconcile away each other's containers: the
/// home's name and a hash of its whole path, since two homes may share a name (`…/home`).
pub fn instance_for(home: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let name = home
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let clean: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    home.hash(&mut hasher);
    format!("test-{clean}-{:08x}", hasher.finish() as u32)
}

/// A `berth serve` process; killed on drop if still running, and then every container and
/// volume of its instance removed.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// Every stderr line printed up to "listening".
    pub banner: Vec<String>,
    stderr_rest: mpsc::Receiver<String>,
    instance: String,
}

impl Server {
    /// Starts `berth serve --home HOME --listen 127.0.0.1:0` and waits until it listens.
    pub fn start(home: &Path) -> Server {
        Self::start_with(home, &[])
    }

    /// Starts `berth serve --home HOME --listen LISTEN` and waits until it listens.
    pub fn start_at(home: &Path, listen: &str) -> Server {
        Self::start_with(home, &["--listen", listen])
    }

    /// Starts `berth serve --home HOME ARGS…` (with `--listen 127.0.0.1:0` unless `args` has a
    /// `--listen`) and waits until it listens.
    pub fn start_with(home: &Path, args: &[&str]) -> Server {
        let listen: &[&str] = if args.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let mut child = berth()
            .arg("serve")
            .args(listen)
            .arg("--home")
            .arg(home)
            .args(args)
            .env("BERTH_INSTANCE", instance_for(home))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn berth serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        forward_lines(stderr, tx);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut banner = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "berth serve did not start; stderr so far:\n{}",
                        banner.join("\n")
                    );
                }
            };
            banner.push(line.clone());
            if let Some(rest) = line
                .strip_prefix("Berth is listening on http://")
                .or_else(|| line.strip_prefix("Berth is listening on https://"))
            {
                let addr = rest
                    .split_whitespace()
                    .next()
                    .expect("address")
                    .parse()
                    .expect("addr");
                return Server {
                    child,
                    addr,
                    banner,
                    stderr_rest: rx,
                    instance: instance_for(home),
                };
            }
        }
    }

    /// The admin password printed on first start, if any.
    pub fn printed_password(&self) -> Option<String> {
        self.banner
            .iter()
            .find_map(|l| l.trim().strip_prefix("password: ").map(str::to_owned))
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path)
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit, failing the test after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "berth did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stderr lines printed after start-up, so far.
    pub fn stderr_since_start(&self) -> Vec<String> {
        self.stderr_rest.try_iter().collect()
    }

    /// SIGKILLs the process and leaves its containers and volumes behind, as a crash does (the
    /// next server on the home finds them).
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.instance.clear();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.instance.is_empty() {
            remove_instance(&self.instance);
        }
    }
}

/// Removes every container and volume labelled `berth.instance=INSTANCE`, whatever their state.
pub fn remove_instance(instance: &str) {
    let filter = format!("label=berth.instance={instance}");
    let list = |args: &[&str]| -> Vec<String> {
        Command::new("docker")
            .args(args)
            .output()
            .map(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let containers = list(&["ps", "-aq", "--filter", &filter]);
    if !containers.is_empty() {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v"])
            .args(&containers)
            .output();
    }
    let volumes = list(&["volume", "ls", "-q", "--filter", &filter]);
    if !volumes.is_empty() {
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f"])
            .args(&volumes)
            .output();
    }
}

fn forward_lines(stderr: ChildStderr, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
}

/// A minimal HTTP/1.1 GET: status code and body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Polls `check` until it is true, failing after `limit`. For waiting on a process's effects,
/// never for asserting how fast they happen.
pub fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The JSON lines of `HOME/logs/berth.log`.
pub fn log_lines(home: &Path) -> Vec<serde_json::Value> {
    let path: PathBuf = home.join("logs/berth.log");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// How to get the test Docker Engine that `berth serve` and local mode need.
pub const HOW_TO_START_ENGINE: &str = "start the test Docker Engine and load the test image: \
    `scripts/docker-engine.sh start && eval \"$(scripts/docker-engine.sh env)\" && \
    scripts/test-image.sh` (or run the tests through `make test`)";

/// Fails the test, saying how to start it, when there is no Docker Engine at DOCKER_HOST.
pub fn require_engine() {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    let socket = host.strip_prefix("unix://").unwrap_or_default();
    assert!(
        !socket.is_empty() && Path::new(socket).exists(),
        "DOCKER_HOST ({host:?}) names no Docker Engine socket: {HOW_TO_START_ENGINE}"
    );
}

/// Runs a future to completion on a runtime of its own (for the async API client).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

impl Server {
    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An API client logged in as the main.yaml admin, with the password printed on first start.
    pub fn admin(&self) -> Admin {
        let password = self
            .printed_password()
            .expect("the first start printed the admin password");
        let client = berth_client::Client::new(&self.url()).unwrap();
        let login = block_on(client.login("admin", &password)).unwrap();
        Admin {
            client: client.with_token(login.token.expose()),
            password,
        }
    }
}

/// The main.yaml admin, through the API client.
pub struct Admin {
    pub client: berth_client::Client,
    pub password: String,
}

impl Admin {
    /// Adds a users.yaml user with a password and templates.
    pub fn create_user(&self, name: &str, password: &str, templates: &[&str]) {
        let body = berth_client::api::UserBody {
            username: berth_types::Username::new(name).unwrap(),
            role: berth_types::Role::User,
            password: Some(berth_client::api::Secret::new(password)),
            templates: templates.iter().map(|t| (*t).to_owned()).collect(),
            access_locked: false,
            disabled: false,
            metadata: Default::default(),
            machines: Vec::new(),
        };
        block_on(self.client.create_user(&body)).unwrap();
    }

    /// Adds a template.
    pub fn create_template(&self, template: &berth_client::Template) {
        block_on(self.client.create_template(template)).unwrap();
    }

    /// `GET /api/v1/monitor`.
    pub fn monitor(&self) -> berth_client::api::Monitor {
        block_on(self.client.monitor()).unwrap()
    }
}

/// A CLI user's own home: HOME and the XDG directories in a temporary directory, so that
/// config.yaml, the cache and the agent's log never touch the real ones.
pub struct CliHome {
    pub dir: tempfile::TempDir,
}

impl CliHome {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `berth` with this home's environment (and no colour).
    pub fn berth(&self) -> Command {
        self.with_env(berth())
    }

    /// `command` with this home's environment (and no colour).
    pub fn with_env(&self, mut command: Command) -> Command {
        let root = self.dir.path();
        command
            .env("HOME", root)
            .env("XDG_CONFIG_HOME", root.join("config"))
            .env("XDG_CACHE_HOME", root.join("cache"))
            .env("XDG_STATE_HOME", root.join("state"))
            .env("NO_COLOR", "1")
            .env_remove("BERTH_CLI_CONFIG")
            .env_remove("BERTH_TOKEN");
        command
    }

    /// Runs `berth ARGS` with stdin closed.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.berth()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs `berth ARGS` with `input` on stdin.
    pub fn run_with_stdin(&self, args: &[&str], input: &str) -> std::process::Output {
        let mut child = self
            .berth()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        // A command that never ends (input's end lost on the way) fails the test, killed
        // after a minute, instead of hanging the suite.
        let pid = child.id().to_string();
        let (done, finished) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if finished.recv_timeout(Duration::from_secs(60)).is_err() {
                let _ = Command::new("kill").args(["-9", &pid]).status();
            }
        });
        let output = child.wait_with_output().unwrap();
        let _ = done.send(());
        output
    }

    /// Runs `berth ARGS`, fails the test unless it succeeds, and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "berth {args:?} failed ({:?}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// `berth ARGS --json`, parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    /// `berth login SERVER --username NAME --password-stdin`.
    pub fn login(&self, server: &Server, username: &str, password: &str) {
        let output = self.run_with_stdin(
            &[
                "login",
                &server.url(),
                "--username",
                username,
                "--password-stdin",
            ],
            &format!("{password}\n"),
        );
        assert!(
            output.status.success(),
            "login failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The CLI's config.yaml.
    pub fn config_file(&self) -> PathBuf {
        self.dir.path().join("config/berth/config.yaml")
    }

    /// The `key: value` lines of config.yaml.
    pub fn settings(&self) -> std::collections::BTreeMap<String, String> {
        std::fs::read_to_string(self.config_file())
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| {
                (
                    k.trim().to_owned(),
                    v.trim().trim_matches(['"', '\'']).to_owned(),
                )
            })
            .collect()
    }
}

/// Stdout and stderr of a finished command, for assertion messages.
pub fn both(output: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A pseudo-terminal for a child process: the child gets the terminal side as stdin, stdout
/// and stderr; the test types into and reads from the other side.
pub struct Pty {
    writer: std::fs::File,
    output: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
    terminal: PathBuf,
}

impl Pty {
    /// Spawns `command` on a new 100x30 terminal.
    pub fn spawn(mut command: Command) -> (Child, Pty) {
        use rustix::fs::{Mode, OFlags};
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&controller).unwrap();
        unlockpt(&controller).unwrap();
        let name = ptsname(&controller, Vec::new()).unwrap();
        let terminal = PathBuf::from(name.to_str().unwrap());
        let size = rustix::termios::Winsize {
            ws_row: 30,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&controller, size).unwrap();
        let open =
            || rustix::fs::open(&terminal, OFlags::RDWR | OFlags::NOCTTY, Mode::empty()).unwrap();
        let child = command
            .stdin(Stdio::from(open()))
            .stdout(Stdio::from(open()))
            .stderr(Stdio::from(open()))
            .spawn()
            .unwrap();
        let controller = std::fs::File::from(controller);
        let mut reader = controller.try_clone().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0_u8; 4096];
            // EIO once the child and every copy of the terminal side are gone.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        (
            child,
            Pty {
                writer: controller,
                output: rx,
                seen: Vec::new(),
                terminal,
            },
        )
    }

    /// Types `text`.
    pub fn type_text(&mut self, text: &[u8]) {
        self.writer.write_all(text).unwrap();
        self.writer.flush().unwrap();
    }

    /// Everything the child wrote so far, as text.
    pub fn seen(&mut self) -> String {
        while let Ok(chunk) = self.output.try_recv() {
            self.seen.extend(chunk);
        }
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Waits until the output contains `needle`, typing `retype` (if any) every 2 s meanwhile
    /// (keys typed before a session is ready are dropped, by design).
    pub fn wait_for(&mut self, needle: &str, retype: Option<&[u8]>, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut next_type = Instant::now();
        loop {
            if self.seen().contains(needle) {
                return;
            }
            if let Some(text) = retype
                && Instant::now() >= next_type
            {
                self.type_text(text);
                next_type = Instant::now() + Duration::from_secs(2);
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle:?}; the terminal shows:\n{}",
                self.seen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The terminal side's modes now (to see they were restored).
    pub fn modes(&self) -> rustix::termios::Termios {
        use rustix::fs::{Mode, OFlags};
        let fd =
            rustix::fs::open(&self.terminal, OFlags::RDWR | OFlags::NOCTTY, Mode::empty()).unwrap();
        rustix::termios::tcgetattr(&fd).unwrap()
    }
}

/// Waits for `child` to exit, failing the test after `limit`.
pub fn wait_child(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
