//! `berth agent`: the lab client's background loop, as a long-running process.
//!
//! - Pings the server as often as the server asks in its answers (30 s today), or every
//!   `--interval` when given (±10 % jitter so a lab of machines started together does not ping
//!   in lock-step), reporting the workspaces this installation runs on
//!   the local engine (`berth start --local`) so the dashboard shows them.
//! - On failure retries after 5 s, then doubling, capped at 10 min (same jitter); each failure
//!   is logged with its attempt number and the delay chosen, and from the third one on at
//!   `error` level: a persistent failure stands out in the log.
//! - Fetches the configuration every `--config-interval` (10 min) and on SIGHUP (which also
//!   re-reads config.yaml, e.g. after `berth login`), into the cache `berth config show` reads.
//! - As root, writes the id the server knows this client by (the client id of its token) to
//!   `/etc/berth/client_id`, where fleet enrollment reads it. `--enroll` does only that (as
//!   any user who may write the file), prints the id and exits.
//! - Logs JSON lines to `/var/log/berth-agent.log` as root, else
//!   `$XDG_STATE_HOME/berth/agent.log`, and to stderr when that is a terminal.
//!
//! SIGTERM and SIGINT stop it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use berth_client::ClientError;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;

use crate::cli::errors::CliError;
use crate::cli::local::{self, Engine};
use crate::cli::settings::write_file;
use crate::cli::{Session, paths, server_config};
use crate::logging::{self, LogSettings};

/// The log rotates at this size.
const LOG_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Rotated logs kept.
const LOG_FILES_KEPT: u32 = 3;
/// From this many failures in a row, failures are logged as errors.
const PERSISTENT_FAILURES: u32 = 3;

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// Time between pings, e.g. `60s`, `2m` (each shortened or lengthened by up to 10 %).
    /// Default: what the server asks for in its answers to pings (30 s today).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    interval: Option<Duration>,
    /// Time between configuration fetches (SIGHUP fetches at once).
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    config_interval: Duration,
    /// The first retry after a failure; each further one doubles it (for tests).
    #[arg(long, default_value = "5s", value_parser = parse_duration, hide = true)]
    first_retry: Duration,
    /// The longest wait between retries (for tests).
    #[arg(long, default_value = "10m", value_parser = parse_duration, hide = true)]
    max_retry: Duration,
    /// The log file (JSON lines). Default: /var/log/berth-agent.log as root, else
    /// $XDG_STATE_HOME/berth/agent.log (~/.local/state/berth/agent.log).
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// Where root writes this client's id for fleet enrollment.
    #[arg(long, default_value = "/etc/berth/client_id", value_name = "FILE")]
    client_id_file: PathBuf,
    /// Write this client's id to the client id file (as any user who may write it), print it,
    /// and exit: the one step that enrolls a machine in the fleet, for provisioning scripts.
    #[arg(long)]
    enroll: bool,
}

/// `90`, `90s`, `500ms`, `2m`, `1h`: a duration of at least 1 ms.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 60s, 500ms, 10m or 1h"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(number),
        "" | "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        _ => return Err(format!("unknown unit {unit:?}: use ms, s, m or h")),
    };
    if duration.is_zero() {
        return Err("the duration must be more than 0".into());
    }
    Ok(duration)
}

/// `duration`, shortened or lengthened by up to 10 %.
fn jitter(duration: Duration) -> Duration {
    duration.mul_f64(0.9 + 0.2 * fastrand::f64())
}

/// Exponential backoff: `first`, then doubling, capped at `max`; jittered.
#[derive(Debug, Clone)]
struct Backoff {
    first: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            failures: 0,
        }
    }

    /// Counts a failure and returns how long to wait before the next attempt.
    fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let doubled = self
            .first
            .saturating_mul(2_u32.saturating_pow(self.failures.saturating_sub(1).min(30)));
        jitter(doubled.min(self.max)).min(self.max)
    }

    /// Counts a success; returns how many failures it ends.
    fn succeeded(&mut self) -> u32 {
        std::mem::take(&mut self.failures)
    }
}

pub fn run(args: AgentArgs) -> ExitCode {
    if args.enroll {
        return crate::cli::execute(async move {
            let session = Session::open()?;
            let id = enroll_once(&session, &args.client_id_file)?;
            println!("{id}");
            eprintln!(
                "wrote client id {id} to {}: put `client_id: {id}` on this machine in links.yaml",
                args.client_id_file.display()
            );
            Ok(ExitCode::SUCCESS)
        });
    }
    let root = rustix::process::geteuid().is_root();
    let log_file = match args.log_file.clone() {
        Some(file) => file,
        None if root => PathBuf::from("/var/log/berth-agent.log"),
        None => match paths::agent_log() {
            Ok(file) => file,
            Err(err) => return err.report(),
        },
    };
    logging::init(&LogSettings {
        file: log_file,
        max_bytes: LOG_MAX_BYTES,
        files_kept: LOG_FILES_KEPT,
        level: "info".into(),
    });
    crate::cli::execute(async move {
        let result = Agent::start(args, root).await;
        if let Err(err) = &result {
            tracing::error!(error = %err, "the agent stopped");
        }
        result.map(|()| ExitCode::SUCCESS)
    })
}

struct Agent {
    args: AgentArgs,
    root: bool,
    session: Session,
    engine: Option<Engine>,
    pings: Backoff,
    fetches: Backoff,
    warned_no_client_id: bool,
    /// The interval the server asked for in its last answer.
    server_interval: Duration,
}

/// Writes the id the server knows this client by to `file` (0644, so enrollment can read it
/// as the machine's SSH user); answers the id.
fn enroll_once(session: &Session, file: &std::path::Path) -> Result<String, CliError> {
    let Some(id) = session.login.token_client_id else {
        return Err(CliError::new(
            "the token's client id is unknown (logged in with --token and no --client-id)",
        )
        .hint("log in with `berth login` (or pass --client-id with --token), then enroll again"));
    };
    write_file(file, format!("{id}\n").as_bytes(), 0o644, 0o755).map_err(|err| {
        err.hint(
            "run it as a user who may write the file (root for /etc/berth/client_id), or pass \
             --client-id-file",
        )
    })?;
    Ok(id.to_string())
}

/// Before the server has said, and the bounds its word is kept within.
const FIRST_INTERVAL: Duration = Duration::from_secs(30);
const SHORTEST_INTERVAL: Duration = Duration::from_secs(5);
const LONGEST_INTERVAL: Duration = Duration::from_secs(3600);

/// The time between pings: `--interval` if given, else what the server asks (within 5 s to
/// 1 h, so a misconfigured server can neither flood itself nor lose its clients).
fn ping_interval(given: Option<Duration>, server_seconds: u32) -> Duration {
    given.unwrap_or_else(|| {
        Duration::from_secs(u64::from(server_seconds)).clamp(SHORTEST_INTERVAL, LONGEST_INTERVAL)
    })
}

impl Agent {
    async fn start(args: AgentArgs, root: bool) -> Result<(), CliError> {
        // Handlers first: a signal during start-up is handled, never fatal.
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut hangup = signal(SignalKind::hangup())?;
        let session = Session::open()?;
        let mut agent = Self {
            pings: Backoff::new(args.first_retry, args.max_retry),
            fetches: Backoff::new(args.first_retry, args.max_retry),
            args,
            root,
            session,
            engine: None,
            warned_no_client_id: false,
            server_interval: FIRST_INTERVAL,
        };
        tracing::info!(
            server = agent.session.server(),
            client_id = %agent.session.client_id,
            interval = ?agent.args.interval,
            "agent started"
        );
        agent.enroll();
        let mut next_ping = Instant::now();
        let mut next_fetch = Instant::now();
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next_ping) => {
                    next_ping = Instant::now() + agent.ping().await;
                }
                () = tokio::time::sleep_until(next_fetch) => {
                    next_fetch = Instant::now() + agent.fetch().await;
                }
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP: re-reading the settings and fetching the configuration");
                    agent.reload();
                    next_fetch = Instant::now();
                }
                _ = terminate.recv() => { tracing::info!("SIGTERM: stopping"); break; }
                _ = interrupt.recv() => { tracing::info!("SIGINT: stopping"); break; }
            }
        }
        Ok(())
    }

    /// Re-reads config.yaml (a new login takes effect without a restart).
    fn reload(&mut self) {
        match Session::open() {
            Ok(session) => {
                self.session = session;
                self.warned_no_client_id = false;
                self.enroll();
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot re-read the settings; keeping the old ones")
            }
        }
    }

    /// As root, writes the id the server knows this client by, for fleet enrollment.
    fn enroll(&self) {
        if !self.root {
            return;
        }
        match enroll_once(&self.session, &self.args.client_id_file) {
            Ok(id) => {
                tracing::info!(file = %self.args.client_id_file.display(), client_id = %id, "wrote the client id")
            }
            Err(err) => tracing::warn!(error = %err, "nothing written for fleet enrollment"),
        }
    }

    /// The local workspaces to report; none when there is no local engine.
    async fn local_workspaces(&mut self) -> Vec<local::LocalContainer> {
        if self.engine.is_none() {
            match Engine::connect(self.session.client_id).await {
                Ok(engine) => self.engine = Some(engine),
                Err(err) => {
                    tracing::debug!(error = %err, "no local engine: reporting no local workspaces");
                    return Vec::new();
                }
            }
        }
        let Some(engine) = &self.engine else {
            return Vec::new();
        };
        match engine.list().await {
            Ok(list) => list,
            Err(err) => {
                tracing::debug!(error = %err, "cannot list the local workspaces");
                self.engine = None;
                Vec::new()
            }
        }
    }

    /// One ping; returns the time until the next one.
    async fn ping(&mut self) -> Duration {
        let Some(client_id) = self.session.login.token_client_id else {
            if !self.warned_no_client_id {
                self.warned_no_client_id = true;
                tracing::error!(
                    "cannot ping: the token's client id is unknown; log in with a password, or \
                     with --token and --client-id, then send SIGHUP"
                );
            }
            return jitter(self.args.interval.unwrap_or(self.server_interval));
        };
        let local = self.local_workspaces().await;
        let body = local::ping_body(client_id, &local);
        match self.session.client.ping(&body).await {
            Ok(answer) => {
                let interval = ping_interval(self.args.interval, answer.interval_seconds);
                if self.args.interval.is_none() && interval != self.server_interval {
                    tracing::info!(
                        interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
                        "the server asks for another ping interval"
                    );
                    self.server_interval = interval;
                }
                let ended = self.pings.succeeded();
                if ended > 0 {
                    tracing::info!(failures = ended, "ping succeeded again");
                } else {
                    tracing::debug!(local = local.len(), "ping");
                }
                jitter(interval)
            }
            Err(err) => self.failed("ping", &err, Which::Ping),
        }
    }

    /// One configuration fetch; returns the time until the next one.
    async fn fetch(&mut self) -> Duration {
        match self.session.client.config().await {
            Ok(config) => {
                if let Err(err) = server_config::store_cache(self.session.server(), &config) {
                    tracing::warn!(error = %err, "cannot cache the configuration");
                }
                let ended = self.fetches.succeeded();
                tracing::info!(
                    templates = config.templates.len(),
                    failures = ended,
                    "configuration fetched"
                );
                jitter(self.args.config_interval)
            }
            Err(err) => self.failed("configuration fetch", &err, Which::Fetch),
        }
    }

    /// Logs a failure and returns the backoff's delay (or the server's `Retry-After`).
    fn failed(&mut self, what: &str, err: &ClientError, which: Which) -> Duration {
        let backoff = match which {
            Which::Ping => &mut self.pings,
            Which::Fetch => &mut self.fetches,
        };
        let mut delay = backoff.failed();
        if let Some(seconds) = err.api().and_then(|f| f.retry_after) {
            delay = delay.max(Duration::from_secs(seconds));
        }
        let attempt = backoff.failures;
        let error = self.session.fail(err).to_string();
        let retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        if attempt >= PERSISTENT_FAILURES {
            tracing::error!(attempt, retry_in_ms, error, "{what} failed");
        } else {
            tracing::warn!(attempt, retry_in_ms, error, "{what} failed");
        }
        delay
    }
}

#[derive(Debug, Clone, Copy)]
enum Which {
    Ping,
    Fetch,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_sets_the_ping_interval_unless_one_is_given() {
        let s = Duration::from_secs;
        assert_eq!(ping_interval(None, 30), s(30));
        assert_eq!(ping_interval(None, 120), s(120));
        assert_eq!(ping_interval(None, 0), s(5), "never a flood");
        assert_eq!(
            ping_interval(None, u32::MAX),
            s(3600),
            "never silent for long"
        );
        assert_eq!(ping_interval(Some(s(1)), 30), s(1), "--interval wins");
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "0s", "-1s", "5x", "s", "1.5s", "99999999999999999999"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn backoff_starts_small_doubles_and_stops_at_the_cap() {
        let mut backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(600));
        let delays: Vec<Duration> = (0..12).map(|_| backoff.failed()).collect();
        let within = |d: Duration, around: u64| {
            let around = Duration::from_secs(around);
            d >= around.mul_f64(0.9) && d <= around.mul_f64(1.1)
        };
        assert!(within(delays[0], 5), "{delays:?}");
        assert!(within(delays[1], 10), "{delays:?}");
        assert!(within(delays[2], 20), "{delays:?}");
        for pair in delays[..7].windows(2) {
            assert!(pair[1] > pair[0], "grows: {delays:?}");
        }
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(600)),
            "{delays:?}"
        );
        assert!(within(delays[11], 600), "{delays:?}");
        assert_eq!(backoff.succeeded(), 12);
        assert!(within(backoff.failed(), 5), "starts over after a success");
        let mut forever = Backoff::new(Duration::from_secs(5), Duration::from_secs(600));
        for _ in 0..10_000 {
            assert!(forever.failed() <= Duration::from_secs(600));
        }
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let d = jitter(Duration::from_secs(60));
            assert!(
                d >= Duration::from_secs(54) && d <= Duration::from_secs(66),
                "{d:?}"
            );
        }
    }
}
