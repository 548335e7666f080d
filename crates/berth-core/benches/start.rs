//! `make bench`: time from `start` to the first byte of shell output, cold and claimed from a
//! pool, against `docker run --rm IMAGE sh -c 'echo ready'` on the same image in the same run.
//!
//! Needs the test Docker Engine (DOCKER_HOST) and image; `scripts/bench.sh` provides both and
//! collects the Markdown this prints into BENCHMARKS.md.
#![allow(clippy::unwrap_used)] // a benchmark: a panic is the failure report

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_core::{
    Persistence, Plan, Policy, StartOptions, WorkspaceError, Workspaces, WorkspacesSettings,
};
use berth_runtime::{ContainerSpec, DockerOptions, DockerRuntime, IDLE_COMMAND, NetworkMode};
use berth_terminal::TtySize;
use berth_types::Username;
use futures_util::StreamExt;

const IMAGE: &str = "berth-test/base";
const ROUNDS: usize = 15;

#[derive(Debug)]
struct BenchPolicy {
    pool: u32,
}

fn plan(template: &str) -> Plan {
    let mut spec = ContainerSpec::new("", IMAGE);
    spec.command = Some(IDLE_COMMAND.iter().map(|s| (*s).to_owned()).collect());
    Plan {
        template: template.into(),
        spec,
        shell: berth_types::template::Shell::default(),
        shared: false,
        persistence: Persistence::Ephemeral,
        network: NetworkMode::None,
        idle_timeout: Duration::from_secs(900),
        ttl: None,
        record: false,
        max_per_user: None,
    }
}

impl Policy for BenchPolicy {
    fn plan(&self, _: &Username, template: &str, _: &StartOptions) -> Result<Plan, WorkspaceError> {
        Ok(plan(template))
    }
    fn plan_existing(&self, _: &Username, template: &str, _: Persistence, _: &str) -> Option<Plan> {
        Some(plan(template))
    }
    fn max_workspaces(&self, _: &Username) -> u32 {
        1000
    }
    fn pools(&self) -> Vec<(Plan, u32)> {
        if self.pool > 0 {
            vec![(plan("pooled"), self.pool)]
        } else {
            Vec::new()
        }
    }
}

async fn first_byte(manager: &Workspaces, template: &str) -> Duration {
    let user = Username::new("bench").unwrap();
    let started = Instant::now();
    let workspace = manager
        .start(&user, template, &StartOptions::default())
        .await
        .unwrap();
    let terminal = manager
        .open_terminal(workspace.id, TtySize { cols: 80, rows: 24 })
        .await
        .unwrap();
    let (mut output, _input, _control) = terminal.session.into_parts();
    let chunk = output.next().await.unwrap().unwrap();
    let elapsed = started.elapsed();
    assert!(!chunk.is_empty());
    drop(output);
    manager.delete(workspace.id, "bench").await.unwrap();
    elapsed
}

fn docker_run_first_byte() -> Duration {
    let started = Instant::now();
    let mut child = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            IMAGE,
            "sh",
            "-c",
            "echo ready",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut byte = [0u8; 1];
    child.stdout.take().unwrap().read_exact(&mut byte).unwrap();
    let elapsed = started.elapsed();
    assert!(child.wait().unwrap().success());
    elapsed
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let runtime = Arc::new(DockerRuntime::connect_env(DockerOptions::default()).await.unwrap());
        let dir = tempfile::tempdir().unwrap();
        let store = berth_store::open(dir.path().join("bench.db").to_str().unwrap()).await.unwrap();
        let settings = WorkspacesSettings { instance: "bench".into(), ..WorkspacesSettings::default() };
        let manager = Workspaces::new(runtime.clone(), store, Arc::new(BenchPolicy { pool: 2 }), settings);
        manager.reconcile().await.unwrap();

        // Warm up the engine and the page cache once, untimed.
        docker_run_first_byte();
        first_byte(&manager, "cold").await;

        let mut samples: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
        for _ in 0..ROUNDS {
            samples.entry("docker run").or_default().push(docker_run_first_byte());
            samples.entry("cold").or_default().push(first_byte(&manager, "cold").await);
            manager.fill_pools().await.unwrap();
            samples.entry("pool").or_default().push(first_byte(&manager, "pooled").await);
        }
        // Let the background refill finish before draining, so nothing is left behind.
        tokio::time::sleep(Duration::from_secs(2)).await;
        manager.fill_pools().await.unwrap();
        manager.drain_pools().await;

        let baseline = median(samples["docker run"].clone());
        let cold = median(samples["cold"].clone());
        let pool = median(samples["pool"].clone());
        println!("## Workspace start to first byte of shell output\n");
        println!("`make bench` (`cargo bench -p berth-core --bench start`), {ROUNDS} rounds, medians, interleaved in one run:\n");
        println!("| path | median | ratio to `docker run` |");
        println!("|---|---|---|");
        println!("| `docker run --rm --network none {IMAGE} sh -c 'echo ready'` (baseline) | {} | 1.00 |", ms(baseline));
        println!("| cold start (create, start, exec a login shell) | {} | {:.2} |", ms(cold), cold.as_secs_f64() / baseline.as_secs_f64());
        println!("| claimed from a pool (claim, wake its waiting terminal) | {} | {:.2} |", ms(pool), pool.as_secs_f64() / baseline.as_secs_f64());
        println!("\nTargets: cold at most 1.2x `docker run`; pool claim at most 50 ms median.");
    });
}
