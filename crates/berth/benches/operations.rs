//! `make bench`: `uname -a` on 100 machines as an operation through Berth's API — a real
//! `berth serve` process whose fleet holds the 100 bench machines, timed from the `POST
//! /api/v1/operations` to the end of its event stream, output checked — against
//! `parallel-ssh -p 100 -i`, `pdsh -f 100` and `ansible all -f 32 -m raw` (Debian's pssh,
//! pdsh and ansible-core) on the same machines, in the same run, rounds interleaved; with the
//! server's memory (resident set, sampled during the runs, and its peak).
//!
//! The machines are `scripts/test-machines.sh start-bench 100` (BERTH_BENCH_MACHINES); the
//! client key is BERTH_TEST_SSH_KEYS/id_ed25519. Every tool logs in with that key and checks
//! host keys against the same known_hosts file. `scripts/bench.sh` starts and stops the
//! machines and collects the Markdown this prints.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the failure report

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth_client::Client;
use berth_types::api::OperationView;
use berth_types::operation::OperationStatus;

const ROUNDS: usize = 5;
const PASSWORD: &str = "bench-admin-password";
const HOW: &str = "run through `make bench` (scripts/bench.sh starts the bench machines with \
    `scripts/test-machines.sh start-bench 100`)";

struct Machine {
    name: String,
    host: String,
    port: u16,
    user: String,
    client_id: String,
}

struct Fleet {
    machines: Vec<Machine>,
    key: PathBuf,
    known_hosts: PathBuf,
    pssh_hosts: PathBuf,
    pdsh_hosts: PathBuf,
    ansible_inventory: PathBuf,
}

fn fleet(dir: &Path) -> Fleet {
    let list = std::env::var_os("BERTH_BENCH_MACHINES")
        .unwrap_or_else(|| panic!("BERTH_BENCH_MACHINES is not set: {HOW}"));
    let keys = std::env::var_os("BERTH_TEST_SSH_KEYS")
        .unwrap_or_else(|| panic!("BERTH_TEST_SSH_KEYS is not set: {HOW}"));
    let text = std::fs::read_to_string(&list).unwrap();
    let (mut machines, mut known, mut pssh, mut pdsh) =
        (Vec::new(), String::new(), String::new(), String::new());
    let mut ansible = String::from("[bench]\n");
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 7, "bad machines line {line:?}");
        let m = Machine {
            name: f[0].into(),
            host: f[1].into(),
            port: f[2].parse().unwrap(),
            user: f[3].into(),
            client_id: f[5].into(),
        };
        if m.port == 22 {
            known.push_str(&format!("{} {}\n", m.host, f[4]));
        } else {
            known.push_str(&format!("[{}]:{} {}\n", m.host, m.port, f[4]));
        }
        pssh.push_str(&format!("{}@{}:{}\n", m.user, m.host, m.port));
        pdsh.push_str(&format!("{}\n", m.host));
        ansible.push_str(&format!(
            "{} ansible_host={} ansible_port={} ansible_user={}\n",
            m.name, m.host, m.port, m.user
        ));
        machines.push(m);
    }
    assert!(
        machines
            .iter()
            .all(|m| m.port == machines[0].port && m.user == machines[0].user),
        "pdsh takes one port and one user"
    );
    let fleet = Fleet {
        machines,
        key: PathBuf::from(keys).join("id_ed25519"),
        known_hosts: dir.join("known_hosts"),
        pssh_hosts: dir.join("pssh-hosts"),
        pdsh_hosts: dir.join("pdsh-hosts"),
        ansible_inventory: dir.join("ansible-inventory"),
    };
    std::fs::write(&fleet.known_hosts, known).unwrap();
    std::fs::write(&fleet.pssh_hosts, pssh).unwrap();
    std::fs::write(&fleet.pdsh_hosts, pdsh).unwrap();
    std::fs::write(&fleet.ansible_inventory, ansible).unwrap();
    fleet
}

fn ssh_options(fleet: &Fleet) -> String {
    format!(
        "-F /dev/null -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
         -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null -o ControlMaster=no",
        fleet.key.display(),
        fleet.known_hosts.display()
    )
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.invalid",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

/// A `berth serve` whose fleet is the bench machines, synced and verified.
struct Berth {
    child: Child,
    client: Client,
    pid: u32,
}

impl Drop for Berth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn berth(fleet: &Fleet, dir: &Path, runtime: &tokio::runtime::Runtime) -> Berth {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let repo = dir.join("inventory");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "--quiet", "--initial-branch=main"]);
    let mut links = String::from("machines:\n");
    for m in &fleet.machines {
        links.push_str(&format!(
            "  - id: {}\n    host: {}\n    port: {}\n    user: {}\n    key: id_ed25519\n    tags: [bench]\n    client_id: {}\n",
            m.name, m.host, m.port, m.user, m.client_id
        ));
    }
    std::fs::write(repo.join("links.yaml"), links).unwrap();
    std::fs::write(
        repo.join("scripts.yaml"),
        "scripts:\n  - name: uname\n    file: uname.sh\n",
    )
    .unwrap();
    std::fs::write(repo.join("uname.sh"), "uname -a\n").unwrap();
    git(&repo, &["add", "--all"]);
    git(&repo, &["commit", "--quiet", "-m", "bench"]);
    let home = dir.join("home");
    let config = home.join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(home.join("fleet"))
        .unwrap();
    std::fs::copy(&fleet.known_hosts, home.join("fleet/known_hosts")).unwrap();
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::copy(&fleet.key, keys.join("id_ed25519")).unwrap();
    std::fs::set_permissions(
        keys.join("id_ed25519"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let hash = berth_config::hash_password(PASSWORD).unwrap();
    std::fs::write(
        config.join("main.yaml"),
        format!(
            "admin:\n  username: admin\n  password_hash: \"{}\"\nfleet:\n  repository: file://{}\n  \
             keys_dir: {}\n  max_concurrency: 100\n  sync_interval: 1h\n  health_interval: 1h\n",
            hash.as_str(),
            repo.display(),
            keys.display()
        ),
    )
    .unwrap();
    assert!(berth_config::init(&config).unwrap().is_none());
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--home"])
        .arg(&home)
        .env_remove("BERTH_HOME")
        .env_remove("BERTH_LISTEN")
        .env("BERTH_INSTANCE", "bench-operations")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("berth serve ended before listening")
            .unwrap();
        if let Some(rest) = line.strip_prefix("Berth is listening on ") {
            break rest.split(' ').next().unwrap().to_owned();
        }
    };
    // Keep reading its stderr, so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let client = Client::new(&url).unwrap();
    let login = runtime.block_on(client.login("admin", PASSWORD)).unwrap();
    let client = client.with_token(login.token.expose());
    for path in ["/api/v1/fleet/sync", "/api/v1/machines/verify"] {
        let answer = runtime
            .block_on(client.send(berth_client::Method::POST, path, &[], ""))
            .unwrap();
        assert_eq!(answer.status, 200, "{path}");
    }
    Berth { child, client, pid }
}

/// One operation: POST, then the event stream to its end; the output checked.
fn berth_round(berth: &Berth, fleet: &Fleet, runtime: &tokio::runtime::Runtime) -> Duration {
    let started = Instant::now();
    let answer = runtime
        .block_on(berth.client.send(
            berth_client::Method::POST,
            "/api/v1/operations",
            &[("content-type", "application/json")],
            r#"{"script": "uname", "selector": {"tags": ["bench"]}}"#,
        ))
        .unwrap();
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let view: OperationView = serde_json::from_slice(&answer.body).unwrap();
    let events = runtime
        .block_on(berth.client.send(
            berth_client::Method::GET,
            &format!("/api/v1/operations/{}/events", view.id),
            &[],
            "",
        ))
        .unwrap();
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&events.body);
    assert!(
        text.contains("\"status\":\"succeeded\"}"),
        "the operation did not succeed: {}",
        text.lines().last().unwrap_or_default()
    );
    let done: OperationView = runtime
        .block_on(berth.client.send(
            berth_client::Method::GET,
            &format!("/api/v1/operations/{}", view.id),
            &[],
            "",
        ))
        .map(|a| serde_json::from_slice(&a.body).unwrap())
        .unwrap();
    assert_eq!(done.status, OperationStatus::Succeeded);
    assert_eq!(done.machines.len(), fleet.machines.len());
    assert!(
        done.machines
            .iter()
            .all(|m| m.stdout.as_deref().is_some_and(|o| o.starts_with("Linux "))),
        "every machine printed uname -a"
    );
    elapsed
}

/// Runs `command`, checks it succeeded and printed `Linux` once per machine.
fn tool_round(name: &str, mut command: Command, machines: usize) -> Duration {
    let started = Instant::now();
    let out = command.output().unwrap_or_else(|e| panic!("{name}: {e}"));
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name} failed ({}): {} {}",
        out.status,
        stdout.lines().take(5).collect::<Vec<_>>().join(" | "),
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .take(5)
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let printed = stdout.matches("Linux ").count();
    assert_eq!(
        printed, machines,
        "{name} printed uname for {printed} machines"
    );
    elapsed
}

fn pssh(fleet: &Fleet) -> Command {
    let mut c = Command::new("parallel-ssh");
    c.args(["-p", "100", "-i", "-t", "60", "-h"])
        .arg(&fleet.pssh_hosts)
        .args(["-x", &ssh_options(fleet), "uname -a"]);
    c
}

fn pdsh(fleet: &Fleet) -> Command {
    let mut c = Command::new("pdsh");
    c.args([
        "-S",
        "-R",
        "ssh",
        "-l",
        &fleet.machines[0].user,
        "-f",
        "100",
        "-w",
    ])
    .arg(format!("^{}", fleet.pdsh_hosts.display()))
    .arg("uname -a")
    .env(
        "PDSH_SSH_ARGS",
        format!(
            "{} -p {} -l%u %h",
            ssh_options(fleet),
            fleet.machines[0].port
        ),
    );
    c
}

fn ansible(fleet: &Fleet, dir: &Path) -> Command {
    let home = dir.join("ansible-home");
    std::fs::create_dir_all(&home).unwrap();
    // An empty configuration: ansible's defaults, no file of this machine's.
    std::fs::write(home.join("ansible.cfg"), "").unwrap();
    let mut c = Command::new("ansible");
    c.args(["all", "-f", "32", "-m", "raw", "-a", "uname -a", "-i"])
        .arg(&fleet.ansible_inventory)
        .arg("--private-key")
        .arg(&fleet.key)
        .env("HOME", &home)
        .env("ANSIBLE_CONFIG", home.join("ansible.cfg"))
        .env("ANSIBLE_HOST_KEY_CHECKING", "True")
        .env("ANSIBLE_SSH_ARGS", ssh_options(fleet))
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
        .env("ANSIBLE_NOCOLOR", "1");
    c
}

/// The resident set of `pid` in KiB (VmRSS), and its peak (VmHWM).
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet(dir.path());
    let n = fleet.machines.len();
    let server = berth(&fleet, dir.path(), &runtime);
    let (idle_rss, _) = memory(server.pid);
    // Sample the server's memory while the rounds run.
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak, pid) = (Arc::clone(&stop), Arc::clone(&peak), server.pid);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(memory(pid).0, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // Warm up once each, untimed.
    berth_round(&server, &fleet, &runtime);
    tool_round("parallel-ssh", pssh(&fleet), n);
    tool_round("pdsh", pdsh(&fleet), n);
    tool_round("ansible", ansible(&fleet, dir.path()), n);
    let rounds = std::env::var("BERTH_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(ROUNDS);
    let (mut b, mut p, mut d, mut a) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            b.push(berth_round(&server, &fleet, &runtime));
            p.push(tool_round("parallel-ssh", pssh(&fleet), n));
        } else {
            p.push(tool_round("parallel-ssh", pssh(&fleet), n));
            b.push(berth_round(&server, &fleet, &runtime));
        }
        d.push(tool_round("pdsh", pdsh(&fleet), n));
        a.push(tool_round("ansible", ansible(&fleet, dir.path()), n));
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let (_, hwm) = memory(server.pid);
    let baseline = median(&p);
    let row = |name: &str, samples: &[Duration]| {
        format!(
            "| {name} | {} | {} – {} | {:.2} |",
            secs(median(samples)),
            secs(*samples.iter().min().unwrap()),
            secs(*samples.iter().max().unwrap()),
            median(samples).as_secs_f64() / baseline.as_secs_f64()
        )
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "## Operations: `uname -a` on {n} machines").unwrap();
    writeln!(out).unwrap();
    writeln!(
        out,
        "`cargo bench -p berth --bench operations` ({rounds} rounds, Berth and parallel-ssh \
         alternating who goes first). Berth: a `berth serve` process with the {n} bench \
         machines in its fleet (`fleet.max_concurrency: 100`), timed from `POST \
         /api/v1/operations` (selector `tag:bench`) to the end of the operation's event stream, \
         every machine's output checked. The others print `uname -a` of every machine \
         (checked): `parallel-ssh -p 100 -i`, `pdsh -R ssh -f 100`, `ansible all -f 32 -m raw` \
         (no ControlMaster: one connection per machine, as the others). All check host keys \
         against the same known_hosts and log in with the same ed25519 key."
    )
    .unwrap();
    writeln!(out).unwrap();
    writeln!(out, "| tool | median | min – max | vs parallel-ssh |").unwrap();
    writeln!(out, "|---|---|---|---|").unwrap();
    writeln!(out, "{}", row("Berth (API, SSE to the end)", &b)).unwrap();
    writeln!(out, "{}", row("parallel-ssh -p 100 -i", &p)).unwrap();
    writeln!(out, "{}", row("pdsh -f 100", &d)).unwrap();
    writeln!(out, "{}", row("ansible -f 32 -m raw", &a)).unwrap();
    writeln!(out).unwrap();
    writeln!(
        out,
        "Server memory: {:.1} MiB resident when idle (fleet synced and verified), at most \
         {:.1} MiB sampled during the runs, peak {:.1} MiB (VmHWM).",
        idle_rss as f64 / 1024.0,
        peak.load(Ordering::Relaxed) as f64 / 1024.0,
        hwm as f64 / 1024.0
    )
    .unwrap();
    let ratio = median(&b).as_secs_f64() / baseline.as_secs_f64();
    writeln!(
        out,
        "\nTarget: Berth at most 0.5x parallel-ssh's wall time — {} ({ratio:.2}x).",
        if ratio <= 0.5 { "met" } else { "not met" }
    )
    .unwrap();
    drop(server);
}
