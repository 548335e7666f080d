//! `make bench`: `POST /api/v1/ping` through Berth (credentials, rate limit, metrics, ping
//! buffer) against a bare axum handler that parses the same body, in the same run, from the
//! same load generator: many keep-alive HTTP/1.1 connections on loopback, runs interleaved.
//!
//! The rate limiter stays on: the configuration gives each client the most pings main.yaml
//! allows (10,000 a minute) and the load is spread over enough client tokens that no request
//! is refused; a refused request fails the benchmark.
//!
//! Needs the test Docker Engine (DOCKER_HOST) because the server's workspace manager connects
//! to it; `scripts/bench.sh` provides it and collects the Markdown this prints.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the failure report

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use berth_config::ConfigStore;
use berth_core::{ConfigPolicy, LiveConfig, Terminals, Workspaces, WorkspacesSettings};
use berth_runtime::{DockerOptions, DockerRuntime};
use berth_server::{AppState, JwtKey};
use berth_types::api::{PingRequest, PingResponse};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const CONNECTIONS: usize = 32;
const TOKENS_PER_CONNECTION: usize = 4;
const WARM_UP: Duration = Duration::from_secs(1);
const RUN: Duration = Duration::from_secs(2);
const ROUNDS: usize = 4;

/// One client: its bearer header and its ping body.
#[derive(Clone)]
struct Caller {
    authorization: String,
    body: Bytes,
}

async fn bare(axum::Json(ping): axum::Json<PingRequest>) -> axum::Json<PingResponse> {
    std::hint::black_box(&ping);
    axum::Json(PingResponse {
        received_at: time::OffsetDateTime::now_utc(),
        interval_seconds: 30,
    })
}

async fn listen(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Berth on port 0 over a temporary home, and its client tokens.
async fn berth(home: &std::path::Path) -> (SocketAddr, Vec<Caller>) {
    if std::env::var_os("DOCKER_HOST").is_none() {
        panic!("DOCKER_HOST is not set: run through `make bench` (scripts/bench.sh)");
    }
    let runtime = DockerRuntime::connect_env(DockerOptions::default())
        .await
        .expect("the test Docker Engine (run through `make bench`)");
    let config_dir = home.join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("main.yaml"),
        "runtime:\n  instance: bench-ping\nsecurity:\n  ping_rate_per_minute: 10000\n  \
         api_rate_per_minute: 100000\n",
    )
    .unwrap();
    std::fs::write(config_dir.join("containers.yaml"), "templates: []\n").unwrap();
    std::fs::write(
        config_dir.join("users.yaml"),
        "users:\n  - username: fleet\n    id: 7c1e6f2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b\n",
    )
    .unwrap();
    let config_store = Arc::new(ConfigStore::open(&config_dir).unwrap());
    let mut callers = Vec::new();
    for i in 0..CONNECTIONS * TOKENS_PER_CONNECTION {
        let issued = config_store
            .issue_client_token("fleet", Some(format!("machine-{i}")))
            .unwrap();
        let body = serde_json::to_vec(&PingRequest {
            client_id: issued.client_id,
            hostname: format!("machine-{i}.lab.example"),
            version: "0.1.0".into(),
            local_workspaces: Vec::new(),
        })
        .unwrap();
        callers.push(Caller {
            authorization: format!("Bearer {}", issued.token.expose()),
            body: body.into(),
        });
    }
    let config = LiveConfig::load(&config_dir).unwrap();
    let store = berth_store::open(home.join("berth.db").to_str().unwrap())
        .await
        .unwrap();
    let workspaces = Workspaces::new(
        Arc::new(runtime),
        Arc::clone(&store),
        Arc::new(ConfigPolicy::new(config.clone())),
        WorkspacesSettings {
            instance: "bench-ping".into(),
            ..WorkspacesSettings::default()
        },
    );
    let jwt = JwtKey::load_or_create(&home.join("jwt.key")).unwrap();
    let terminals = Terminals::for_workspaces(&workspaces, home.join("recordings"));
    let state = AppState::new(
        config,
        config_store,
        store,
        workspaces,
        terminals,
        jwt,
        home.to_owned(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(berth_server::serve(listener, state, std::future::pending()));
    (addr, callers)
}

/// What one run measured.
struct Run {
    requests: usize,
    failures: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// `CONNECTIONS` keep-alive connections sending pings back to back for `length`, each cycling
/// through its own callers.
async fn load(addr: SocketAddr, callers: &[Caller], length: Duration) -> Run {
    let start = Instant::now();
    let deadline = start + length;
    let mut tasks = Vec::new();
    for chunk in callers.chunks(TOKENS_PER_CONNECTION) {
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .unwrap();
            tokio::spawn(connection);
            let mut latencies = Vec::with_capacity(1 << 16);
            let mut failures = 0;
            let mut i = 0;
            while Instant::now() < deadline {
                let caller = &chunk[i % chunk.len()];
                i += 1;
                let request = hyper::Request::post("/api/v1/ping")
                    .header("host", "bench")
                    .header("content-type", "application/json")
                    .header("authorization", &caller.authorization)
                    .body(Full::new(caller.body.clone()))
                    .unwrap();
                sender.ready().await.unwrap();
                let sent = Instant::now();
                let response = sender.send_request(request).await.unwrap();
                let ok = response.status() == 200;
                response.into_body().collect().await.unwrap();
                latencies.push(sent.elapsed());
                failures += usize::from(!ok);
            }
            (latencies, failures)
        }));
    }
    let mut run = Run {
        requests: 0,
        failures: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for task in tasks {
        let (latencies, failures) = task.await.unwrap();
        run.requests += latencies.len();
        run.failures += failures;
        run.latencies.extend(latencies);
    }
    run.elapsed = start.elapsed();
    run
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

#[derive(Default)]
struct Totals {
    requests: usize,
    failures: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Totals {
    fn add(&mut self, run: Run) {
        self.requests += run.requests;
        self.failures += run.failures;
        self.elapsed += run.elapsed;
        self.latencies.extend(run.latencies);
    }

    fn throughput(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let requests = self.requests as f64;
        requests / self.elapsed.as_secs_f64()
    }

    fn row(&mut self, name: &str) -> String {
        self.latencies.sort();
        format!(
            "| {name} | {:.0} | {:.2} ms | {:.2} ms |",
            self.throughput(),
            percentile(&self.latencies, 0.5).as_secs_f64() * 1000.0,
            percentile(&self.latencies, 0.99).as_secs_f64() * 1000.0,
        )
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let home = tempfile::tempdir().unwrap();
        let (berth_addr, callers) = berth(home.path()).await;
        let bare_addr = listen(Router::new().route("/api/v1/ping", post(bare))).await;

        let _ = load(bare_addr, &callers, WARM_UP).await;
        let _ = load(berth_addr, &callers, WARM_UP).await;
        let (mut bare_totals, mut berth_totals) = (Totals::default(), Totals::default());
        for _ in 0..ROUNDS {
            bare_totals.add(load(bare_addr, &callers, RUN).await);
            berth_totals.add(load(berth_addr, &callers, RUN).await);
        }
        assert_eq!(bare_totals.failures, 0, "the bare handler refused requests");
        assert_eq!(
            berth_totals.failures, 0,
            "Berth refused requests (rate limit too low for the load?)"
        );
        let ratio = berth_totals.throughput() / bare_totals.throughput();
        println!("## REST API: `POST /api/v1/ping`\n");
        println!(
            "{CONNECTIONS} keep-alive HTTP/1.1 connections on loopback send pings back to back, \
             each cycling through {TOKENS_PER_CONNECTION} client tokens; {ROUNDS} runs of {} s \
             per server, interleaved, after a {} s warm-up. The bare handler is an axum route \
             that parses the same `PingRequest` body and answers the same `PingResponse`. \
             Berth adds what a real ping costs: client-token lookup, the rate limiter (on, at \
             main.yaml's highest ping rate), the route guard, metrics, and the in-memory ping \
             buffer flushed to SQLite every 3 s. The load generator shares the machine with \
             the servers.\n",
            RUN.as_secs(),
            WARM_UP.as_secs()
        );
        println!("| server | requests/s | p50 | p99 |");
        println!("|---|---:|---:|---:|");
        println!("{}", bare_totals.row("bare axum handler"));
        println!("{}", berth_totals.row("Berth"));
        println!(
            "\nBerth reaches **{ratio:.2}x** the bare handler's throughput (target: at least \
             0.5x{}).",
            if ratio >= 0.5 { ", met" } else { ", NOT met" }
        );
    });
}
