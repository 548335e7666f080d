//! What the terminal benchmarks share: a terminal [`Session`] over a local PTY, a pair of
//! pipes or Berth's terminal socket, with the prompt, echo and percentile helpers.
#![allow(dead_code)] // each benchmark uses its part

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// How long a benchmark waits for an answer before it fails (a failure report only).
pub const PATIENCE: Duration = Duration::from_secs(120);
/// The prompt every measured shell gets; typed as `'@@''@@ '` so that its echo differs.
pub const PROMPT: &[u8] = b"@@@@ ";

/// One terminal: what is typed goes to `input`, what it prints arrives on `output`.
pub struct Session {
    pub input: mpsc::Sender<Vec<u8>>,
    pub output: mpsc::Receiver<Vec<u8>>,
    /// Output read past the last needle, not yet consumed.
    pub rest: Vec<u8>,
}

impl Session {
    /// Bash on a new local 80x24 PTY, as the controlling terminal of its own session.
    pub fn local() -> Self {
        Self::pty(&["bash", "--norc", "--noprofile", "-i"])
    }

    /// `argv` on a new local 80x24 PTY, as the controlling terminal of its own session (as a
    /// terminal emulator runs `ssh` or `docker exec -it`), read by a thread.
    pub fn pty(argv: &[&str]) -> Self {
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
                .arg("--ctty")
                .args(argv)
                .env("TERM", "xterm-256color")
                .stdin(Stdio::from(open()))
                .stdout(Stdio::from(open()))
                .stderr(Stdio::from(open()));
            let mut child = command.spawn().unwrap();
            std::thread::spawn(move || child.wait());
        } // the command's copies of the terminal side close here
        let mut reader = std::fs::File::from(controller);
        let mut writer = reader.try_clone().unwrap();
        let (output_tx, output) = mpsc::channel::<Vec<u8>>(64);
        let (input, mut input_rx) = mpsc::channel::<Vec<u8>>(64);
        std::thread::spawn(move || {
            let mut buf = vec![0_u8; 64 * 1024];
            // EIO once the command and every copy of the terminal side are gone.
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
            // Dropping the session hangs up: the shell exits.
            let _ = writer.write_all(b"\x04exit\r");
        });
        Self {
            input,
            output,
            rest: Vec::new(),
        }
    }

    /// A command whose stdin and stdout are pipes (`ssh -tt`: the terminal is remote only),
    /// read by a task.
    pub fn piped(mut command: tokio::process::Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let (output_tx, output) = mpsc::channel::<Vec<u8>>(64);
        let (input, mut input_rx) = mpsc::channel::<Vec<u8>>(64);
        tokio::spawn(async move {
            let mut buf = vec![0_u8; 64 * 1024];
            while let Ok(n) = stdout.read(&mut buf).await {
                if n == 0 || output_tx.send(buf[..n].to_vec()).await.is_err() {
                    break;
                }
            }
            let _ = child.kill().await;
        });
        tokio::spawn(async move {
            while let Some(bytes) = input_rx.recv().await {
                if stdin.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            let _ = stdin.write_all(b"\x04exit\r").await;
        });
        Self {
            input,
            output,
            rest: Vec::new(),
        }
    }

    /// A terminal socket of Berth (`/api/v1/workspaces/{id}/terminal?…` or
    /// `/api/v1/machines/{id}/terminal?…`), as the CLI opens it (Bearer token, no Origin).
    pub async fn websocket(addr: std::net::SocketAddr, path: &str, token: &str) -> Self {
        let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
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
                    Message::Close(frame) => {
                        // The failure report of a refused or ended terminal.
                        if let Some(frame) = frame {
                            eprintln!("terminal socket closed: {} {}", frame.code, frame.reason);
                        }
                        break;
                    }
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

    pub async fn type_(&self, bytes: &[u8]) {
        self.input.send(bytes.to_vec()).await.unwrap();
    }

    /// The next output: what the last [`Session::until`] read past its needle, or a new chunk.
    pub async fn chunk(&mut self) -> Vec<u8> {
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
    pub async fn until(&mut self, needle: &[u8]) -> usize {
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
    pub async fn settle(&mut self) {
        self.rest.clear();
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(200), self.output.recv()).await
        {}
    }

    /// Waits for the shell's first prompt (keys sent before it may be lost), then sets the
    /// known prompt and waits for that.
    pub async fn prepare(&mut self) {
        self.chunk().await;
        self.settle().await;
        self.type_(b"PS1='@@''@@ '\r").await;
        self.until(PROMPT).await;
        self.settle().await;
    }

    /// One key at a time, alternating `x` and backspace so that the line stays short: the time
    /// from sending each key to the first output after it.
    pub async fn echoes(&mut self, keys: usize) -> Vec<Duration> {
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
}

pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
