//! `make bench`: verifying the enrollment of 100 machines with [`check_enrollment`] under a
//! concurrency of 100 (a semaphore, as the fleet does with `fleet.max_concurrency`), against
//! `parallel-ssh -p 100 -i -h HOSTS cat /etc/berth/client_id` (Debian's `pssh`) over the same
//! machines, in the same run, rounds interleaved.
//!
//! The machines are `scripts/test-machines.sh start-bench 100`: real OpenSSH servers, one
//! container each on 127.0.21.x, each with its own host key and client id, listed in
//! BERTH_BENCH_MACHINES; the client key is BERTH_TEST_SSH_KEYS/id_ed25519. Both sides log in
//! with that key and check host keys against the same known_hosts file (no
//! `StrictHostKeyChecking=no`); both open one connection per machine and run one command.
//! `scripts/bench.sh` starts and stops the machines and collects the Markdown this prints.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the failure report

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_fleet::{EnrollmentStatus, check_enrollment};
use berth_ssh::{ClientKey, ConnectOptions, HostKeyPolicy, Target};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Rounds, unless BERTH_BENCH_ROUNDS says otherwise (a quick look: BERTH_BENCH_ROUNDS=1).
const ROUNDS: usize = 10;
/// How long the sshds get to reap their finished connections before their CPU is read (not
/// part of any wall time).
const SETTLE: Duration = Duration::from_millis(500);
const CONCURRENCY: usize = 100;
const CLIENT_ID_PATH: &str = "/etc/berth/client_id";
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
    hosts_file: PathBuf,
}

/// The bench machines, a known_hosts file with their keys and a pssh hosts file.
fn fleet(dir: &Path) -> Fleet {
    let list = std::env::var_os("BERTH_BENCH_MACHINES")
        .unwrap_or_else(|| panic!("BERTH_BENCH_MACHINES is not set: {HOW}"));
    let keys = std::env::var_os("BERTH_TEST_SSH_KEYS")
        .unwrap_or_else(|| panic!("BERTH_TEST_SSH_KEYS is not set: {HOW}"));
    let text = std::fs::read_to_string(&list)
        .unwrap_or_else(|e| panic!("cannot read BERTH_BENCH_MACHINES={list:?} ({e}): {HOW}"));
    let (mut machines, mut known_hosts, mut hosts) = (Vec::new(), String::new(), String::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 7, "bad machines line {line:?}");
        let machine = Machine {
            name: f[0].into(),
            host: f[1].into(),
            port: f[2].parse().unwrap(),
            user: f[3].into(),
            client_id: f[5].into(),
        };
        // OpenSSH names a host on port 22 by its address alone, and `[host]:port` otherwise.
        if machine.port == 22 {
            known_hosts.push_str(&format!("{} {}\n", machine.host, f[4]));
        } else {
            known_hosts.push_str(&format!("[{}]:{} {}\n", machine.host, machine.port, f[4]));
        }
        hosts.push_str(&format!(
            "{}@{}:{}\n",
            machine.user, machine.host, machine.port
        ));
        machines.push(machine);
    }
    assert!(!machines.is_empty(), "{list:?} lists no machines: {HOW}");
    let fleet = Fleet {
        machines,
        key: PathBuf::from(keys).join("id_ed25519"),
        known_hosts: dir.join("known_hosts"),
        hosts_file: dir.join("hosts"),
    };
    std::fs::write(&fleet.known_hosts, known_hosts).unwrap();
    std::fs::write(&fleet.hosts_file, hosts).unwrap();
    fleet
}

/// One verification of every machine; the wall time and each connect+auth latency.
async fn berth_round(fleet: &Fleet) -> (Duration, Vec<Duration>) {
    // The fleet's defaults: 30 s connect timeout, 3 retries.
    let options = Arc::new(ConnectOptions::default());
    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    let started = Instant::now();
    let mut checks = JoinSet::new();
    for machine in &fleet.machines {
        let target = Target {
            host: machine.host.clone(),
            port: machine.port,
            user: machine.user.clone(),
            key: ClientKey::new(&fleet.key),
            host_key: HostKeyPolicy::KnownHosts {
                path: fleet.known_hosts.clone(),
                trust_on_first_use: false,
            },
            jump: Vec::new(),
        };
        let (options, limit, expected) = (
            Arc::clone(&options),
            Arc::clone(&limit),
            machine.client_id.clone(),
        );
        checks.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            let check = check_enrollment(&target, &options, CLIENT_ID_PATH, &expected).await;
            (target.host, check)
        });
    }
    let mut latencies = Vec::with_capacity(fleet.machines.len());
    while let Some(done) = checks.join_next().await {
        let (host, check) = done.unwrap();
        assert_eq!(
            check.status,
            EnrollmentStatus::Enrolled,
            "{host}: {}",
            check.message
        );
        latencies.push(check.latency.unwrap());
    }
    (started.elapsed(), latencies)
}

/// One `parallel-ssh` run over every machine (with extra ssh `options`), checked afterwards:
/// every machine succeeded and printed its own client id.
fn pssh_round(fleet: &Fleet, options: &[&str]) -> Duration {
    let mut extra = format!(
        "-F /dev/null -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
         -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null",
        fleet.key.display(),
        fleet.known_hosts.display()
    );
    for option in options {
        extra.push_str(&format!(" -o {option}"));
    }
    let started = Instant::now();
    let out = Command::new("parallel-ssh")
        .args(["-p", &CONCURRENCY.to_string(), "-i", "-t", "60", "-h"])
        .arg(&fleet.hosts_file)
        .args(["-x", &extra])
        .arg(format!("cat {CLIENT_ID_PATH}"))
        .output()
        .expect("parallel-ssh (Debian's pssh; scripts/bench.sh installs it)");
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "parallel-ssh failed ({}): {stdout} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // "[n] HH:MM:SS [SUCCESS] user@host:port" and then what the command printed.
    let mut printed: HashMap<String, String> = HashMap::new();
    let mut current = None;
    for line in stdout.lines() {
        if line.starts_with('[') && (line.contains(" [SUCCESS] ") || line.contains(" [FAILURE] ")) {
            assert!(line.contains("[SUCCESS]"), "{line}");
            let host = line.rsplit(' ').next().unwrap();
            let host = host.split_once('@').map_or(host, |(_, h)| h);
            let host = host.rsplit_once(':').map_or(host, |(h, _)| h).to_owned();
            printed.insert(host.clone(), String::new());
            current = Some(host);
        } else if let Some(host) = &current {
            printed.get_mut(host).unwrap().push_str(line.trim());
        }
    }
    for machine in &fleet.machines {
        assert_eq!(
            printed.get(&machine.host),
            Some(&machine.client_id),
            "parallel-ssh's output for {}",
            machine.host
        );
    }
    elapsed
}

/// utime, stime, cutime and cstime of process `pid` (or `self`), in seconds: fields 14-17 of
/// proc(5). A process's cutime and cstime cover the children it has reaped, and theirs.
fn cpu_fields(pid: &str, tick: f64) -> Option<[f64; 4]> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<f64> = stat[stat.rfind(')')? + 2..]
        .split(' ')
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    Some([
        fields[11] / tick,
        fields[12] / tick,
        fields[13] / tick,
        fields[14] / tick,
    ])
}

fn clock_tick() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Reads the CPU time of both sides: this process (Berth), its reaped children (parallel-ssh
/// and the ssh processes it reaped), and the bench machines' sshds (each container's process 1
/// is its listening sshd, which reaps the per-connection sshds, which reap the commands).
struct Meter {
    tick: f64,
    /// The listening sshd of every bench machine, when all of them were found.
    sshds: Option<Vec<String>>,
}

/// CPU seconds: (this process, its children, the sshds).
type Cpu = (f64, f64, Option<f64>);

impl Meter {
    fn new(fleet: &Fleet) -> Self {
        let names: std::collections::HashSet<&str> =
            fleet.machines.iter().map(|m| m.name.as_str()).collect();
        let mut sshds = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if !pid.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            // The listening sshd retitles itself "sshd: /usr/sbin/sshd -D ... [listener] ...";
            // the per-connection ones are "sshd: USER [priv]" and the like.
            if !cmdline.contains("/usr/sbin/sshd -D") {
                continue;
            }
            // The container's host name is the machine's name (needs root, as the bench does).
            let host = std::fs::read_to_string(format!("/proc/{pid}/root/etc/hostname"))
                .unwrap_or_default();
            if names.contains(host.trim()) {
                sshds.push(pid);
            }
        }
        let found = sshds.len();
        if found != names.len() {
            eprintln!(
                "found {found} of the {} bench sshds: the servers' CPU is not measured",
                names.len()
            );
        }
        Self {
            tick: clock_tick(),
            sshds: (found == names.len()).then_some(sshds),
        }
    }

    /// [`Meter::read`] once the servers have reaped the connections that just ended, so their
    /// CPU counts for the run that used it.
    fn settled(&self) -> Cpu {
        std::thread::sleep(SETTLE);
        self.read()
    }

    fn read(&self) -> Cpu {
        let me = cpu_fields("self", self.tick).unwrap();
        let sshds = self.sshds.as_ref().and_then(|pids| {
            pids.iter()
                .map(|pid| cpu_fields(pid, self.tick).map(|f| f.iter().sum::<f64>()))
                .sum::<Option<f64>>()
        });
        (me[0] + me[1], me[2] + me[3], sshds)
    }
}

/// What one timed run took: wall time, CPU time of the client side and of the servers.
struct Sample {
    wall: Duration,
    client: Duration,
    servers: Option<Duration>,
}

impl Sample {
    fn new(wall: Duration, client: f64, before: Cpu, after: Cpu) -> Self {
        Self {
            wall,
            client: Duration::from_secs_f64(client.max(0.0)),
            servers: before
                .2
                .zip(after.2)
                .map(|(b, a)| Duration::from_secs_f64((a - b).max(0.0))),
        }
    }
}

fn berth_sample(
    runtime: &tokio::runtime::Runtime,
    fleet: &Fleet,
    meter: &Meter,
    latencies: &mut Vec<Duration>,
) -> Sample {
    let before = meter.read();
    let (wall, l) = runtime.block_on(berth_round(fleet));
    let after = meter.settled();
    latencies.extend(l);
    Sample::new(wall, after.0 - before.0, before, after)
}

fn pssh_sample(fleet: &Fleet, options: &[&str], meter: &Meter) -> Sample {
    let before = meter.read();
    let wall = pssh_round(fleet, options);
    let after = meter.settled();
    Sample::new(wall, after.1 - before.1, before, after)
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// `| name | median | min – max | ratio | client CPU | servers' CPU |` for a series against
/// the baseline's median.
fn row(name: &str, samples: &[Sample], baseline: Duration) -> String {
    let wall: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
    let client: Vec<Duration> = samples.iter().map(|s| s.client).collect();
    let servers: Option<Vec<Duration>> = samples.iter().map(|s| s.servers).collect();
    format!(
        "| {name} | {} | {} – {} | {:.2} | {} | {} |",
        secs(median(&wall)),
        secs(*wall.iter().min().unwrap()),
        secs(*wall.iter().max().unwrap()),
        median(&wall).as_secs_f64() / baseline.as_secs_f64(),
        secs(median(&client)),
        servers.map_or_else(|| "not measured".to_owned(), |s| secs(median(&s))),
    )
}

fn walls(samples: &[Sample]) -> Vec<Duration> {
    samples.iter().map(|s| s.wall).collect()
}

/// The 1-minute load average: the machine is shared, and what else ran shows here.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split(' ').next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

fn ssh_version() -> String {
    Command::new("ssh")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet(dir.path());
    let n = fleet.machines.len();
    // The same key exchange as Berth's russh gets from these servers (OpenSSH 9.2 has no
    // ML-KEM); OpenSSH's own default is sntrup761x25519-sha512.
    let same_kex = ["KexAlgorithms=curve25519-sha256"];

    let load_before = load_average();
    // Warm up the page cache, the sshds and the connection paths once, untimed.
    pssh_round(&fleet, &[]);
    runtime.block_on(berth_round(&fleet));

    let meter = Meter::new(&fleet);
    let (mut pssh, mut pssh_kex, mut berth, mut ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut latencies = Vec::new();
    let rounds = std::env::var("BERTH_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(ROUNDS);
    for round in 0..rounds {
        // Alternate who goes first, so neither always runs on the other's leftovers.
        let (b, p) = if round % 2 == 0 {
            let b = berth_sample(&runtime, &fleet, &meter, &mut latencies);
            (b, pssh_sample(&fleet, &[], &meter))
        } else {
            let p = pssh_sample(&fleet, &[], &meter);
            (berth_sample(&runtime, &fleet, &meter, &mut latencies), p)
        };
        pssh_kex.push(pssh_sample(&fleet, &same_kex, &meter));
        ratios.push(b.wall.as_secs_f64() / p.wall.as_secs_f64());
        berth.push(b);
        pssh.push(p);
    }
    let load_after = load_average();
    latencies.sort();
    ratios.sort_by(f64::total_cmp);
    let baseline = median(&walls(&pssh));
    let berth_median = median(&walls(&berth));
    let ratio = berth_median.as_secs_f64() / baseline.as_secs_f64();

    println!("## Fleet: verifying the enrollment of {n} machines\n");
    println!(
        "`cargo bench -p berth-fleet --bench enrollment`: {n} real OpenSSH servers \
         (`scripts/test-machines.sh start-bench {n}`: Debian 12's sshd, one `--network host` \
         container each on 127.0.21.1-{n}, each with its own host key and \
         `/etc/berth/client_id`), on the same {cores} cores as the clients. Each run connects \
         to every machine, checks its host key against the same known_hosts file, logs in with \
         the same ed25519 key and reads the client id; every run's output is checked (all {n} \
         enrolled, each with its own id). Berth is `berth_fleet::check_enrollment` for each \
         machine in a tokio `JoinSet` under a semaphore of {CONCURRENCY} (as \
         `fleet.max_concurrency`), with the fleet's default connect options; pssh is \
         `parallel-ssh -p {CONCURRENCY} -i -h HOSTS cat /etc/berth/client_id` with \
         `-o StrictHostKeyChecking=yes -o UserKnownHostsFile=...` ({ssh}). {rounds} rounds after \
         an untimed warm-up; in each, Berth and pssh run back to back (alternating which goes \
         first), then pssh with Berth's key exchange. Wall time of a whole run, and the CPU time \
         used in it by the client side (Berth's process; parallel-ssh and its ssh processes) \
         and by the {n} sshds (with the per-connection sshds and the commands they ran):\n",
        cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        ssh = ssh_version(),
    );
    println!(
        "| client | median | min – max | ratio to pssh | client CPU, median | sshds' CPU, median |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    println!("{}", row("pssh (baseline)", &pssh, baseline));
    println!(
        "{}",
        row(
            "pssh, `-o KexAlgorithms=curve25519-sha256`",
            &pssh_kex,
            baseline
        )
    );
    println!("{}", row("Berth", &berth, baseline));
    println!(
        "\nBerth's connect and login per machine, within a run ({} samples): p50 {}, p90 {}, \
         max {}. Berth's time over pssh's, per round: {:.2} – {:.2}. The 1-minute load \
         average was {load_before} before the run and {load_after} at its end (every sshd and \
         client counts; so do other jobs on the machine).",
        latencies.len(),
        ms(latencies[latencies.len() / 2]),
        ms(latencies[latencies.len() * 9 / 10]),
        ms(*latencies.last().unwrap()),
        ratios[0],
        ratios[ratios.len() - 1],
    );
    println!(
        "\nBerth takes **{ratio:.2}x** pssh's wall time (target: at most 0.5x{}); against pssh \
         with the same key exchange, {:.2}x.",
        if ratio <= 0.5 { ", met" } else { ", NOT met" },
        berth_median.as_secs_f64() / median(&walls(&pssh_kex)).as_secs_f64()
    );
}
