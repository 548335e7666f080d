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

/// A `berth.instance` label of its own for each test home, so parallel servers on one engine
/// never reconcile away each other's containers.
pub fn instance_for(home: &Path) -> String {
    let name = home
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let clean: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!("test-{clean}")
}

/// A `berth serve` process; killed on drop if still running.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// Every stderr line printed up to "listening".
    pub banner: Vec<String>,
    stderr_rest: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `berth serve --home HOME --listen 127.0.0.1:0` and waits until it listens.
    pub fn start(home: &Path) -> Server {
        let mut child = berth()
            .args(["serve", "--listen", "127.0.0.1:0", "--home"])
            .arg(home)
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
            if let Some(rest) = line.strip_prefix("Berth is listening on http://") {
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
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
