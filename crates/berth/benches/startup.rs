//! `make bench`: the release binary's size, and the time from `exec` of `berth serve` to its
//! first `200` on `/healthz` (a home already initialized, SQLite, the test Docker Engine), for
//! this profile's binary (`[profile.release]`: thin LTO, stripped) against the development
//! build (`target/debug/berth`, what `cargo build` and the tests use), in the same run, rounds
//! interleaved. Prints Markdown for BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the failure report

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 10;

fn healthz(addr: SocketAddr) -> bool {
    let Ok(mut tcp) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

/// Starts `binary serve` on `home`; the time from exec to the first 200 on /healthz.
fn start_once(binary: &Path, home: &Path, instance: &str) -> Duration {
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--home"])
        .arg(home)
        .env("BERTH_INSTANCE", instance)
        .env_remove("BERTH_HOME")
        .env_remove("BERTH_LISTEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut addr = None;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("Berth is listening on http://") {
            addr = rest.split_whitespace().next().map(|a| a.parse().unwrap());
            break;
        }
    }
    let addr: SocketAddr = addr.expect("berth serve printed where it listens");
    while !healthz(addr) {
        assert!(started.elapsed() < Duration::from_secs(60), "no /healthz");
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = started.elapsed();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    took
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn mib(path: &Path) -> f64 {
    std::fs::metadata(path).unwrap().len() as f64 / (1024.0 * 1024.0)
}

fn main() {
    if std::env::var_os("DOCKER_HOST").is_none() {
        panic!("DOCKER_HOST is not set: run through `make bench`");
    }
    let release = PathBuf::from(env!("CARGO_BIN_EXE_berth"));
    let debug = release
        .parent()
        .and_then(Path::parent)
        .map(|target| target.join("debug/berth"))
        .filter(|p| p.exists());
    let home = tempfile::tempdir().unwrap();
    let instance = format!("bench-startup-{}", std::process::id());
    // The first start writes the configuration and hashes the admin's password: not timed.
    start_once(&release, home.path(), &instance);
    let mut times_release = Vec::new();
    let mut times_debug = Vec::new();
    for _ in 0..ROUNDS {
        times_release.push(start_once(&release, home.path(), &instance));
        if let Some(debug) = &debug {
            times_debug.push(start_once(debug, home.path(), &instance));
        }
    }
    println!("## berth: binary size and start-up\n");
    println!(
        "`berth serve` on an initialized home (SQLite, the test engine), timed from exec to the \
         first `200` on `/healthz`, median of {ROUNDS} starts each, interleaved.\n"
    );
    println!("| build | binary | exec → /healthz |");
    println!("|---|---:|---:|");
    println!(
        "| release profile (thin LTO, stripped) | {:.1} MiB | {:.0} ms |",
        mib(&release),
        median(times_release).as_secs_f64() * 1000.0
    );
    match &debug {
        Some(debug) => println!(
            "| development build (`cargo build`) | {:.1} MiB | {:.0} ms |",
            mib(debug),
            median(times_debug).as_secs_f64() * 1000.0
        ),
        None => println!("| development build | not built | — |"),
    }
    println!();
}
