//! `berth cluster ls|create|rm|extend|kubeconfig`: ephemeral Kubernetes clusters with a TTL
//! on the server (`/api/v1/clusters…`).
//!
//! A cluster is named by its name among the caller's own clusters (resolved through the
//! list), or by its id (fetched directly, so admins reach anyone's). Exit status: 0 done, 1
//! failed (a refusal of the server, a cluster that failed while `create --wait` waited for it),
//! 2 bad arguments (a name the server would refuse, a bad duration), [`NOT_FOUND`] when no
//! cluster (or invite) has that name or id.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write as _};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use berth_client::api::{ClusterQuery, ClusterView, ExtendCluster, NewCluster, Timeout};
use berth_client::{ClientError, ClusterId, ClusterName, ClusterState};
use berth_types::Username;
use berth_types::units::HumanDuration;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::signal::unix::{SignalKind, signal};

use super::Session;
use super::errors::CliError;
use super::output::{self, Spinner, Style};
use super::paths;
use super::settings::write_private;

/// The exit status when no cluster (or invite) has the name or id given.
pub const NOT_FOUND: u8 = 4;

/// How often `create --wait` asks for the cluster's state.
const POLL: Duration = Duration::from_secs(1);

/// The names of the states, for `--state`.
const STATE_NAMES: [&str; 5] = ["provisioning", "running", "deleting", "deleted", "failed"];

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// List your clusters (every state but deleted): name, state, time left, API address, age.
    #[command(
        visible_alias = "list",
        after_help = "Examples:\n  berth cluster ls\n  berth cluster ls --json | jq -r \
        '.[] | select(.state == \"running\") | .name'\n  berth cluster ls --all            \
        # admins: everyone's\n  berth cluster ls --owner alice    # admins: one user's\n  \
        berth cluster ls --state deleted"
    )]
    Ls(LsArgs),
    /// Ask for a cluster that lives for a TTL (default the server's clusters.default_ttl).
    /// Prints its id on stdout.
    #[command(
        after_help = "Examples:\n  berth cluster create dev\n  berth cluster create \
        lab-2 --ttl 4h --wait\n  berth cluster create ci --wait --timeout 5m && berth cluster \
        kubeconfig ci -o ci.kubeconfig\n\n\
        The server answers at once with the cluster in `provisioning`; --wait shows its state \
        until it runs (exit 0) or fails (exit 1, saying why). Without a terminal, --wait prints \
        a line for each change instead of a spinner. Names: 1 to 40 characters of a-z, 0-9 and \
        -, starting with a letter, not ending with -; unique among your clusters."
    )]
    Create(CreateArgs),
    /// Delete a cluster now (its TTL would later).
    #[command(
        visible_alias = "remove",
        after_help = "Examples:\n  berth cluster rm dev\n  berth cluster rm \
        7a1c2a3b-0000-4000-8000-000000000001   # by id: admins reach anyone's"
    )]
    Rm(TargetArgs),
    /// Give a cluster more time: TTL added to its expiry, up to clusters.max_ttl after its
    /// creation.
    #[command(
        after_help = "Examples:\n  berth cluster extend dev --ttl 1h\n  berth cluster \
        extend dev --ttl 30m"
    )]
    Extend(ExtendArgs),
    /// Print a running cluster's kubeconfig, or write it to a file readable by you alone.
    #[command(
        after_help = "Examples:\n  berth cluster kubeconfig dev > ~/.kube/dev && chmod \
        600 ~/.kube/dev\n  berth cluster kubeconfig dev -o dev.kubeconfig\n  kubectl \
        --kubeconfig dev.kubeconfig get nodes\n\n\
        The kubeconfig holds the cluster's credentials. -o FILE creates the file with mode 0600 \
        and refuses to replace one that exists unless --force is given."
    )]
    Kubeconfig(KubeconfigArgs),
}

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Print the clusters as a JSON array (the API's cluster objects).
    #[arg(long)]
    json: bool,
    /// Everyone's clusters (admins).
    #[arg(long, conflicts_with = "owner")]
    all: bool,
    /// One user's clusters (admins).
    #[arg(long, value_name = "USER")]
    owner: Option<Username>,
    /// Only clusters in this state (`deleted` ones are listed only so).
    #[arg(long, value_name = "STATE",
        value_parser = PossibleValuesParser::new(STATE_NAMES)
            .try_map(|s| s.parse::<ClusterState>()))]
    state: Option<ClusterState>,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The cluster's name.
    #[arg(value_name = "NAME", value_parser = name)]
    name: ClusterName,
    /// How long it lives (`90m`, `2h`, `1h30m`); at most the server's clusters.max_ttl.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    ttl: Option<Timeout>,
    /// Wait until it runs (or fails).
    #[arg(long)]
    wait: bool,
    /// With --wait: how long to wait before giving up (the cluster goes on).
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "10m",
        requires = "wait")]
    timeout: Timeout,
}

#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// The cluster: its name, or its id.
    #[arg(value_name = "NAME|ID", value_parser = target)]
    cluster: Target,
}

#[derive(Debug, clap::Args)]
pub struct ExtendArgs {
    /// The cluster: its name, or its id.
    #[arg(value_name = "NAME|ID", value_parser = target)]
    cluster: Target,
    /// How much longer it lives (`30m`, `1h`).
    #[arg(long, value_name = "DURATION", value_parser = duration, required = true)]
    ttl: Timeout,
}

#[derive(Debug, clap::Args)]
pub struct KubeconfigArgs {
    /// The cluster: its name, or its id.
    #[arg(value_name = "NAME|ID", value_parser = target)]
    cluster: Target,
    /// Write it to FILE (created with mode 0600) instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// With -o: replace FILE if it exists.
    #[arg(long, requires = "output")]
    force: bool,
}

/// How a command names a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// By id.
    Id(ClusterId),
    /// By name, among the caller's own clusters.
    Name(ClusterName),
}

fn name(text: &str) -> Result<ClusterName, String> {
    ClusterName::new(text).map_err(|e| e.to_string())
}

fn duration(text: &str) -> Result<Timeout, String> {
    text.parse::<HumanDuration>().map(Timeout)
}

fn target(text: &str) -> Result<Target, String> {
    if let Ok(id) = text.parse::<ClusterId>() {
        return Ok(Target::Id(id));
    }
    name(text).map(Target::Name)
}

pub async fn run(command: ClusterCommand) -> Result<ExitCode, CliError> {
    let session = Session::open()?;
    match command {
        ClusterCommand::Ls(args) => ls(&session, &args).await,
        ClusterCommand::Create(args) => create(&session, &args).await,
        ClusterCommand::Rm(args) => rm(&session, &args).await,
        ClusterCommand::Extend(args) => extend(&session, &args).await,
        ClusterCommand::Kubeconfig(args) => kubeconfig(&session, &args).await,
    }
}

/// A refusal of the clusters API in the words of someone at the shell: the server's message,
/// and what to do about it.
fn fail(session: &Session, err: &ClientError) -> CliError {
    let Some(failure) = err.api() else {
        return session.fail(err);
    };
    let message = output::safe(&failure.message);
    match failure.code.as_str() {
        "clusters_disabled" => CliError::new("this Berth has no clusters (main.yaml clusters.enabled is off)")
            .hint("an admin turns them on with `clusters: {enabled: true}` in main.yaml"),
        "name_taken" => CliError::new(message)
            .hint("pick another name, or remove that one first: berth cluster rm NAME"),
        "quota_exceeded" => CliError::new(message)
            .hint("remove one of yours first: `berth cluster ls`, then `berth cluster rm NAME`"),
        "ttl_too_long" => CliError::new(message)
            .hint("ask for less time (the server's clusters.max_ttl is the most, counted from creation)"),
        "wrong_state" => CliError::new(message)
            .hint("`berth cluster ls` shows its state; `berth cluster create NAME --wait` waits until one runs"),
        _ if failure.status == 404 => CliError::new(message)
            .hint("`berth cluster ls` lists yours")
            .with_status(NOT_FOUND),
        _ => session.fail(err),
    }
}

/// The caller's user name: the login's, else the server's word for it.
async fn me(session: &Session) -> Result<Username, CliError> {
    if let Some(me) = session
        .login
        .username
        .as_deref()
        .and_then(|u| Username::new(u).ok())
    {
        return Ok(me);
    }
    let config = session.client.config().await;
    Ok(config.map_err(|e| session.fail(&e))?.user.username)
}

/// The cluster `target` names: by id directly, by name among the caller's own clusters.
async fn resolve(session: &Session, target: &Target) -> Result<ClusterView, CliError> {
    match target {
        Target::Id(id) => session
            .client
            .cluster(*id)
            .await
            .map_err(|e| fail(session, &e)),
        Target::Name(name) => {
            let query = ClusterQuery {
                owner: Some(me(session).await?),
                state: None,
            };
            let mine = session
                .client
                .list_clusters(&query)
                .await
                .map_err(|e| fail(session, &e))?;
            pick(mine, name)
        }
    }
}

/// The cluster called `name` in `clusters` (a user's clusters that are not deleted: names are
/// unique among them).
fn pick(clusters: Vec<ClusterView>, name: &ClusterName) -> Result<ClusterView, CliError> {
    let mut found: Vec<ClusterView> = clusters.into_iter().filter(|c| &c.name == name).collect();
    match found.len() {
        0 => Err(CliError::new(format!("you have no cluster named {name}"))
            .hint("`berth cluster ls` lists yours")
            .with_status(NOT_FOUND)),
        1 => Ok(found.remove(0)),
        n => {
            let ids: Vec<String> = found.iter().map(|c| c.id.to_string()).collect();
            Err(CliError::new(format!(
                "{n} clusters of yours are named {name}: {}",
                ids.join(", ")
            ))
            .hint("name one by its id"))
        }
    }
}

async fn ls(session: &Session, args: &LsArgs) -> Result<ExitCode, CliError> {
    let owner = match (&args.owner, args.all) {
        (Some(owner), _) => Some(owner.clone()),
        (None, true) => None,
        (None, false) => Some(me(session).await?),
    };
    let query = ClusterQuery {
        owner,
        state: args.state,
    };
    let clusters = session
        .client
        .list_clusters(&query)
        .await
        .map_err(|e| fail(session, &e))?;
    if args.json {
        println!("{}", output::pretty_json(&clusters)?);
    } else if clusters.is_empty() {
        println!("No clusters. Ask for one: berth cluster create NAME");
    } else {
        let owners = args.all || args.owner.is_some();
        print!(
            "{}",
            table(
                Style::stdout(),
                &clusters,
                owners,
                OffsetDateTime::now_utc()
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A cluster state, coloured by what it means.
fn state(style: Style, state: ClusterState) -> String {
    match state {
        ClusterState::Running => style.green(state.as_str()),
        ClusterState::Failed => style.red(state.as_str()),
        ClusterState::Provisioning | ClusterState::Deleting => style.yellow(state.as_str()),
        ClusterState::Deleted => style.dim(state.as_str()),
    }
}

/// `1h52m`, `3d4h`, `45s`: how long until `until`, in its two largest units.
pub fn time_left(until: OffsetDateTime, now: OffsetDateTime) -> String {
    let secs = u64::try_from((until - now).whole_seconds()).unwrap_or(0);
    let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match secs {
        0 => "0s".to_owned(),
        1..60 => format!("{secs}s"),
        60..3600 => format!("{minutes}m"),
        3600..86_400 if minutes == 0 => format!("{hours}h"),
        3600..86_400 => format!("{hours}h{minutes}m"),
        _ if hours == 0 => format!("{days}d"),
        _ => format!("{days}d{hours}h"),
    }
}

fn table(style: Style, clusters: &[ClusterView], owners: bool, now: OffsetDateTime) -> String {
    let mut header = vec!["NAME"];
    if owners {
        header.push("OWNER");
    }
    header.extend(["STATE", "TIME LEFT", "API", "AGE", "NOTE"]);
    let rows: Vec<Vec<String>> = clusters
        .iter()
        .map(|c| {
            let mut row = vec![c.name.to_string()];
            if owners {
                row.push(c.owner.to_string());
            }
            row.extend([
                state(style, c.state),
                if c.state.is_live() && c.state != ClusterState::Deleting {
                    time_left(c.expires_at, now)
                } else {
                    "-".to_owned()
                },
                c.api_url
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), output::safe),
                output::age(c.created_at, now),
                output::safe(&c.state_reason),
            ]);
            row
        })
        .collect();
    output::table(style, &header, &rows)
}

async fn create(session: &Session, args: &CreateArgs) -> Result<ExitCode, CliError> {
    let request = NewCluster {
        name: args.name.clone(),
        ttl: args.ttl,
    };
    let spinner = Spinner::start(format!("asking for cluster {}", args.name));
    let created = session.client.create_cluster(&request).await;
    spinner.done();
    let created = created.map_err(|e| match e.api() {
        Some(failure) if failure.code == "forbidden" => {
            CliError::new("you may not ask for clusters on this Berth")
                .hint("an admin allows it with `clusters: true` in your users.yaml entry")
        }
        _ => fail(session, &e),
    })?;
    eprintln!(
        "Cluster {} is {}; it lives {} (until {}).",
        created.name,
        created.state,
        time_left(created.expires_at, created.created_at),
        stamp(created.expires_at)
    );
    // The id first, so that a script has it even if the wait fails.
    println!("{}", created.id);
    if !args.wait {
        eprintln!(
            "`berth cluster ls` shows when it runs; then `berth cluster kubeconfig {}`.",
            created.name
        );
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = tokio::time::Instant::now() + args.timeout.0.get();
    let poll = || session.client.cluster(created.id);
    let mut sigint = signal(SignalKind::interrupt())?;
    let interrupt = async move {
        sigint.recv().await;
    };
    let running = wait_running(
        created.clone(),
        poll,
        POLL,
        deadline,
        interrupt,
        Report::new(),
    )
    .await
    .map_err(|failure| failure.into_cli(session, &created.name, args.timeout))?;
    eprintln!(
        "Cluster {} is running{}. Its kubeconfig: berth cluster kubeconfig {} -o {}.kubeconfig",
        running.name,
        running
            .api_url
            .as_deref()
            .map(|url| format!(" at {}", output::safe(url)))
            .unwrap_or_default(),
        running.name,
        running.name
    );
    Ok(ExitCode::SUCCESS)
}

fn stamp(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// What the wait for a cluster shows: a spinner on a terminal, else a line per change.
struct Report {
    spinner: Option<Spinner>,
    terminal: bool,
    last: Option<(ClusterState, String)>,
}

impl Report {
    fn new() -> Self {
        Self {
            spinner: None,
            terminal: std::io::stderr().is_terminal(),
            last: None,
        }
    }

    /// Shows `cluster` if its state or reason changed.
    fn show(&mut self, cluster: &ClusterView) {
        let now = (cluster.state, cluster.state_reason.clone());
        if self.last.as_ref() == Some(&now) {
            return;
        }
        self.last = Some(now);
        // A reason that only repeats the state says nothing more.
        let reason =
            if cluster.state_reason.is_empty() || cluster.state_reason == cluster.state.as_str() {
                String::new()
            } else {
                format!(" ({})", output::safe(&cluster.state_reason))
            };
        let line = format!("cluster {}: {}{reason}", cluster.name, cluster.state);
        if self.terminal {
            if let Some(spinner) = self.spinner.take() {
                spinner.done();
            }
            self.spinner = Some(Spinner::start(line));
        } else {
            eprintln!("{line}");
        }
    }

    fn done(&mut self) {
        if let Some(spinner) = self.spinner.take() {
            spinner.done();
        }
    }
}

/// Why the wait for a cluster ended without it running.
#[derive(Debug)]
enum WaitFailure {
    /// It failed; the reason.
    Failed(String),
    /// It went away (deleting, deleted) before it ran.
    Gone(ClusterState, String),
    /// The deadline passed; its state then.
    TimedOut(ClusterState),
    /// Ctrl-C.
    Interrupted,
    /// Asking for its state failed.
    Poll(ClientError),
}

impl WaitFailure {
    fn into_cli(self, session: &Session, name: &ClusterName, timeout: Timeout) -> CliError {
        let since = |reason: &str| {
            if reason.is_empty() {
                String::new()
            } else {
                format!(": {}", output::safe(reason))
            }
        };
        match self {
            Self::Failed(reason) => {
                CliError::new(format!("cluster {name} failed{}", since(&reason)))
                    .hint(format!("remove it with `berth cluster rm {name}`"))
            }
            Self::Gone(state, reason) => CliError::new(format!(
                "cluster {name} is {state} before it ran{}",
                since(&reason)
            )),
            Self::TimedOut(state) => CliError::new(format!(
                "cluster {name} is still {state} after {}",
                timeout.0
            ))
            .hint(format!(
                "it goes on: `berth cluster ls` shows when it runs, `berth cluster rm {name}` \
                 removes it"
            )),
            Self::Interrupted => CliError::interrupted().hint(format!(
                "cluster {name} goes on; `berth cluster rm {name}` removes it"
            )),
            Self::Poll(err) => fail(session, &err),
        }
    }
}

/// Polls the cluster every `interval` (with `poll`) until it runs, showing each change in
/// `report`, and leaves when `interrupt` (SIGINT) ends: the cluster running, or why not.
async fn wait_running<F, Fut>(
    first: ClusterView,
    mut poll: F,
    interval: Duration,
    deadline: tokio::time::Instant,
    interrupt: impl std::future::Future<Output = ()>,
    mut report: Report,
) -> Result<ClusterView, WaitFailure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<ClusterView, ClientError>>,
{
    // One future for the whole wait: a Ctrl-C while a poll is on its way counts too.
    tokio::pin!(interrupt);
    let mut cluster = first;
    let result = loop {
        report.show(&cluster);
        match cluster.state {
            ClusterState::Running => break Ok(cluster),
            ClusterState::Failed => break Err(WaitFailure::Failed(cluster.state_reason)),
            ClusterState::Deleting | ClusterState::Deleted => {
                break Err(WaitFailure::Gone(cluster.state, cluster.state_reason));
            }
            ClusterState::Provisioning => {}
        }
        if tokio::time::Instant::now() >= deadline {
            break Err(WaitFailure::TimedOut(cluster.state));
        }
        let next = (tokio::time::Instant::now() + interval).min(deadline);
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = &mut interrupt => break Err(WaitFailure::Interrupted),
        }
        let polled = tokio::select! {
            polled = poll() => polled,
            () = &mut interrupt => break Err(WaitFailure::Interrupted),
        };
        cluster = match polled {
            Ok(cluster) => cluster,
            Err(err) => break Err(WaitFailure::Poll(err)),
        };
    };
    report.done();
    result
}

async fn rm(session: &Session, args: &TargetArgs) -> Result<ExitCode, CliError> {
    let cluster = resolve(session, &args.cluster).await?;
    session
        .client
        .delete_cluster(cluster.id)
        .await
        .map_err(|e| fail(session, &e))?;
    eprintln!("Removing cluster {} ({}).", cluster.name, cluster.id);
    Ok(ExitCode::SUCCESS)
}

async fn extend(session: &Session, args: &ExtendArgs) -> Result<ExitCode, CliError> {
    let cluster = resolve(session, &args.cluster).await?;
    let extended = session
        .client
        .extend_cluster(cluster.id, &ExtendCluster { ttl: args.ttl })
        .await
        .map_err(|e| fail(session, &e))?;
    let now = OffsetDateTime::now_utc();
    eprintln!(
        "Cluster {} now lives {} more (until {}; it may be extended until {}).",
        extended.name,
        time_left(extended.expires_at, now),
        stamp(extended.expires_at),
        stamp(extended.max_expires_at)
    );
    Ok(ExitCode::SUCCESS)
}

async fn kubeconfig(session: &Session, args: &KubeconfigArgs) -> Result<ExitCode, CliError> {
    let cluster = resolve(session, &args.cluster).await?;
    let config = session
        .client
        .kubeconfig(cluster.id)
        .await
        .map_err(|e| fail(session, &e))?;
    match &args.output {
        Some(path) => {
            write_kubeconfig(path, config.as_bytes(), args.force)?;
            eprintln!(
                "Wrote the kubeconfig of cluster {} to {} (mode 0600). Try: kubectl \
                 --kubeconfig {} get nodes",
                cluster.name,
                paths::display(path),
                paths::display(path)
            );
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(config.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| CliError::new(format!("cannot write the kubeconfig: {e}")))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a kubeconfig to `path`, readable by its owner alone from its first byte: a new file
/// is created with mode 0600 (refused if one exists, a symlink too), `force` replaces one
/// through a 0600 temporary file renamed over it. Missing directories (`~/.kube`) are made,
/// mode 0700.
fn write_kubeconfig(path: &Path, bytes: &[u8], force: bool) -> Result<(), CliError> {
    if force {
        return write_private(path, bytes);
    }
    let shown = paths::display(path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| CliError::new(format!("cannot create the directory of {shown}: {e}")))?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                CliError::new(format!("{shown} exists; it was left as it is"))
                    .hint("give --force to replace it, or another file")
            }
            _ => CliError::new(format!("cannot create {shown}: {e}")),
        })?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        // Half a kubeconfig is worse than none.
        let _ = std::fs::remove_file(path);
        return Err(CliError::new(format!("cannot write {shown}: {e}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn cluster(name: &str, state: ClusterState, reason: &str) -> ClusterView {
        let created = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
        ClusterView {
            id: ClusterId::random(),
            name: ClusterName::new(name).unwrap(),
            owner: Username::new("alice").unwrap(),
            provider: "docker".into(),
            state,
            state_reason: reason.into(),
            api_url: (state == ClusterState::Running).then(|| "https://127.0.0.1:40123".into()),
            created_at: created,
            running_at: None,
            expires_at: created + time::Duration::hours(2),
            max_expires_at: created + time::Duration::hours(24),
        }
    }

    #[test]
    fn names_and_durations_are_checked_before_anything_is_sent() {
        assert!(name("dev-2").is_ok());
        assert_eq!(
            name("dEv").unwrap_err(),
            "a cluster name may contain only a-z, 0-9 and '-', not 'E'"
        );
        assert!(name("x-").is_err() && name("").is_err() && name("9lives").is_err());
        assert!(name(&"a".repeat(41)).unwrap_err().contains("at most 40"));
        let id = ClusterId::random();
        assert_eq!(target(&id.to_string()), Ok(Target::Id(id)));
        assert_eq!(
            target("dev"),
            Ok(Target::Name(ClusterName::new("dev").unwrap()))
        );
        assert!(target("not_a_name").is_err());
        assert_eq!(duration("1h30m").unwrap().0.as_secs(), 5400);
        for bad in ["", "2x", "0s", "-1h", "400d"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_left_is_short() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let at = |secs: i64| now + time::Duration::seconds(secs);
        assert_eq!(time_left(at(6720), now), "1h52m");
        assert_eq!(time_left(at(7200), now), "2h");
        assert_eq!(time_left(at(45), now), "45s");
        assert_eq!(time_left(at(600), now), "10m");
        assert_eq!(time_left(at(86_400 + 3 * 3600 + 59), now), "1d3h");
        assert_eq!(time_left(at(2 * 86_400), now), "2d");
        assert_eq!(time_left(at(-5), now), "0s");
    }

    #[test]
    fn the_table_shows_time_left_only_while_it_counts() {
        let running = cluster("dev", ClusterState::Running, "");
        let now = running.created_at + time::Duration::minutes(8);
        let failed = cluster("lab", ClusterState::Failed, "no such image\x1b[2J");
        let text = table(Style::plain(), &[running, failed], false, now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "NAME  STATE    TIME LEFT  API                      AGE  NOTE"
        );
        assert_eq!(
            lines[1].trim_end(),
            "dev   running  1h52m      https://127.0.0.1:40123  8m"
        );
        assert_eq!(
            lines[2],
            "lab   failed   -          -                        8m   no such image\\u{1b}[2J"
        );
        let text = table(
            Style::plain(),
            &[cluster("dev", ClusterState::Deleting, "")],
            true,
            now,
        );
        assert!(text.starts_with("NAME  OWNER  STATE"), "{text}");
        assert!(text.contains("dev   alice  deleting  -"), "{text}");
    }

    #[test]
    fn names_pick_one_of_your_clusters() {
        let list = vec![
            cluster("dev", ClusterState::Running, ""),
            cluster("lab", ClusterState::Failed, "x"),
        ];
        let dev = ClusterName::new("dev").unwrap();
        assert_eq!(pick(list.clone(), &dev).unwrap().id, list[0].id);
        let err = pick(list.clone(), &ClusterName::new("nope").unwrap()).unwrap_err();
        assert_eq!(err.message(), "you have no cluster named nope");
        assert!(format!("{err:?}").contains("status: 4"), "{err:?}");
        let twice = vec![list[0].clone(), cluster("dev", ClusterState::Running, "")];
        assert!(
            pick(twice, &dev)
                .unwrap_err()
                .message()
                .contains("2 clusters")
        );
    }

    fn pending() -> std::future::Pending<()> {
        std::future::pending()
    }

    fn quiet() -> Report {
        Report {
            spinner: None,
            terminal: false,
            last: None,
        }
    }

    #[tokio::test]
    async fn waiting_ends_when_it_runs_fails_goes_or_takes_too_long() {
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        let first = cluster("dev", ClusterState::Provisioning, "");
        let mut states = vec![
            cluster("dev", ClusterState::Running, ""),
            cluster("dev", ClusterState::Provisioning, "waiting for /readyz"),
        ];
        let poll = || {
            let next = states.pop().unwrap();
            async move { Ok::<_, ClientError>(next) }
        };
        let running = wait_running(first.clone(), poll, Duration::ZERO, far, pending(), quiet())
            .await
            .unwrap();
        assert_eq!(running.state, ClusterState::Running);

        let failed = || async {
            Ok::<_, ClientError>(cluster("dev", ClusterState::Failed, "no such image"))
        };
        let err = wait_running(
            first.clone(),
            failed,
            Duration::ZERO,
            far,
            pending(),
            quiet(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, WaitFailure::Failed(r) if r == "no such image"),
            "{err:?}"
        );

        let gone = || async {
            Ok::<_, ClientError>(cluster("dev", ClusterState::Deleted, "deleted by admin"))
        };
        let err = wait_running(first.clone(), gone, Duration::ZERO, far, pending(), quiet())
            .await
            .unwrap_err();
        assert!(
            matches!(err, WaitFailure::Gone(ClusterState::Deleted, _)),
            "{err:?}"
        );

        // A deadline already passed: the state as it was, never another poll.
        let past = tokio::time::Instant::now();
        let never = || -> std::future::Ready<Result<ClusterView, ClientError>> {
            panic!("polled after the deadline")
        };
        let err = wait_running(
            first.clone(),
            never,
            Duration::ZERO,
            past,
            pending(),
            quiet(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, WaitFailure::TimedOut(ClusterState::Provisioning)),
            "{err:?}"
        );

        // Ctrl-C while it waits: left at once, the cluster as it was.
        let provisioning =
            || async { Ok::<_, ClientError>(cluster("dev", ClusterState::Provisioning, "")) };
        let hour = Duration::from_secs(3600);
        let err = wait_running(first.clone(), provisioning, hour, far, async {}, quiet())
            .await
            .unwrap_err();
        assert!(matches!(err, WaitFailure::Interrupted), "{err:?}");

        let broken = || async {
            Err::<ClusterView, _>(ClientError::Timeout {
                url: "http://b/api/v1/clusters/x".into(),
                seconds: 120,
            })
        };
        let err = wait_running(first, broken, Duration::ZERO, far, pending(), quiet())
            .await
            .unwrap_err();
        assert!(matches!(err, WaitFailure::Poll(_)), "{err:?}");
    }

    #[test]
    fn a_kubeconfig_file_is_private_and_never_replaced_unasked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.kubeconfig");
        write_kubeconfig(&path, b"apiVersion: v1\n", false).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let err = write_kubeconfig(&path, b"other", false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"apiVersion: v1\n");
        write_kubeconfig(&path, b"kind: Config\n", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"kind: Config\n");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        // A symlink planted where the file goes is not followed.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
        assert!(write_kubeconfig(&link, b"x", false).is_err());
        assert!(!dir.path().join("elsewhere").exists());
        // ~/.kube/dev.yaml without ~/.kube: made, for its owner alone.
        let kube = dir.path().join("home/.kube");
        write_kubeconfig(&kube.join("dev.yaml"), b"x", false).unwrap();
        assert_eq!(std::fs::metadata(&kube).unwrap().mode() & 0o777, 0o700);
        assert_eq!(
            std::fs::metadata(kube.join("dev.yaml")).unwrap().mode() & 0o777,
            0o600
        );
        // A file where a directory should be.
        let under_file = dir.path().join("dev.kubeconfig/k");
        let err = write_kubeconfig(&under_file, b"x", false).unwrap_err();
        assert!(err.message().starts_with("cannot create"), "{err}");
    }
}
