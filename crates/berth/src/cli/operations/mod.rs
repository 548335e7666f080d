//! `berth run` and `berth ops`: run an inventory script on fleet machines and follow it live,
//! then look through the history, stop, rerun and watch operations (`/api/v1/operations…`).
//!
//! Exit status of the commands that follow an operation (`run`, `ops rerun`, `ops watch`): 0
//! when every machine succeeded, 1 when some did not (or the operation could not be started
//! or followed), [`CANCELLED`] when it was stopped (Ctrl-C, `berth ops stop`) or when Ctrl-C
//! left before its end.

mod follow;
mod report;
mod targets;

use std::process::ExitCode;

use berth_client::api::{
    MachineQuery, OperationQuery, OperationView, OutputDetail, StartOperation, Timeout,
};
use berth_client::{ClientError, MachineId, OperationId};
use berth_types::Username;
use berth_types::operation::{OperationStatus, OutputStream};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use tokio::signal::unix::{Signal, SignalKind, signal};

use self::follow::{Live, OnInterrupt, follow};
use self::targets::Target;
use super::Session;
use super::errors::CliError;
use super::machines::label;
use super::output::{self, Spinner, Style};

/// The exit status when the operation was cancelled, as after Ctrl-C in a shell.
pub const CANCELLED: u8 = 130;

/// Operations scanned (newest first) to find the one an id prefix names.
const PREFIX_SCAN: u32 = 5_000;
/// Operations per call of `GET /api/v1/operations` when scanning.
const PAGE: u32 = 500;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The script: its `name` in the inventory's scripts.yaml.
    #[arg(value_parser = label)]
    script: String,
    /// The machines: ids, `tag:NAME` (every machine with the tag) and `type:NAME`, separated
    /// by commas; --on may be given more than once.
    #[arg(long, required = true, value_name = "TARGETS", value_delimiter = ',',
        value_parser = targets::target)]
    on: Vec<Target>,
    /// Machines at once (1 to 1000); default the script's `concurrency`, else all (within the
    /// server's fleet.max_concurrency).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    concurrency: Option<u32>,
    /// How long the script may run on each machine (`90s`, `5m`, `1h30m`); default the
    /// script's `timeout`.
    #[arg(long, value_name = "DURATION", value_parser = timeout)]
    timeout: Option<Timeout>,
    /// Print the finished operation as JSON (the API's operation, with each machine's output
    /// and the groups); the live output goes to stderr.
    #[arg(long)]
    json: bool,
}

fn timeout(text: &str) -> Result<Timeout, String> {
    text.parse().map(Timeout)
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct OpsArgs {
    #[command(subcommand)]
    command: Option<OpsCommand>,
    #[command(flatten)]
    list: ListArgs,
}

#[derive(Debug, clap::Subcommand)]
enum OpsCommand {
    /// One operation: what ran where, each machine's state, and the output grouped by
    /// machines that printed the same (as `dshbak -c`).
    #[command(
        after_help = "Examples:\n  berth ops show 6f1c2a3b\n  berth ops show 6f1c2a3b \
        --json | jq -r '.machines[] | select(.status != \"succeeded\") | .machine'"
    )]
    Show(ShowArgs),
    /// Stop an operation: machines still queued never start, running scripts are ended
    /// (SIGTERM, then SIGKILL).
    #[command(
        after_help = "Examples:\n  berth ops stop 6f1c2a3b\n\nStopping a finished \
        operation changes nothing."
    )]
    Stop(IdArgs),
    /// Run an operation's script again on its machines that did not succeed, and follow the
    /// new operation as `berth run` does.
    #[command(
        after_help = "Examples:\n  berth ops rerun 6f1c2a3b\n\nExit status as for \
        `berth run`: 0 every machine succeeded, 1 some did not, 130 cancelled."
    )]
    Rerun(FollowArgs),
    /// Follow an operation live from its start (a finished one is replayed), as `berth run`
    /// shows it. Ctrl-C leaves; the operation goes on.
    #[command(
        after_help = "Examples:\n  berth ops watch 6f1c2a3b\n\nExit status as for \
        `berth run`: 0 every machine succeeded, 1 some did not, 130 cancelled or left."
    )]
    Watch(FollowArgs),
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Only operations in this state.
    #[arg(long, value_name = "STATUS",
        value_parser = PossibleValuesParser::new(OperationStatus::NAMES)
            .try_map(|s| s.parse::<OperationStatus>()))]
    status: Option<OperationStatus>,
    /// Only runs of this script.
    #[arg(long, value_name = "SCRIPT", value_parser = label)]
    script: Option<String>,
    /// Only operations that ran on this machine.
    #[arg(long, value_name = "ID")]
    machine: Option<MachineId>,
    /// Only operations this user started (admins; a user sees only their own).
    #[arg(long, value_name = "USERNAME")]
    user: Option<Username>,
    /// How many, newest first (1 to 500).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
    limit: u32,
    /// Print the API's page as JSON (`operations`, `total`).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct IdArgs {
    /// The operation: its id or the start of it (as `berth ops` shows it).
    #[arg(value_name = "ID", value_parser = id_prefix)]
    id: String,
    /// Print the API's operation as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// The operation: its id or the start of it (as `berth ops` shows it).
    #[arg(value_name = "ID", value_parser = id_prefix)]
    id: String,
    /// Print only this machine's output, as it printed it: its standard output on stdout,
    /// its standard error on stderr (bytes as they are, also when they are not UTF-8).
    #[arg(long, value_name = "MACHINE")]
    machine: Option<MachineId>,
    /// Print the API's operation (or, with --machine, the machine's part) as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct FollowArgs {
    /// The operation: its id or the start of it (as `berth ops` shows it).
    #[arg(value_name = "ID", value_parser = id_prefix)]
    id: String,
    /// Print the finished operation as JSON; the live output goes to stderr.
    #[arg(long)]
    json: bool,
}

/// An operation id or the start of one: hex digits and dashes.
fn id_prefix(text: &str) -> Result<String, String> {
    let text = text.trim().to_ascii_lowercase();
    if !text.is_empty()
        && text.len() <= 36
        && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
    {
        Ok(text)
    } else {
        Err("give an operation id, or its first characters as `berth ops` shows them".to_owned())
    }
}

pub async fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    let session = Session::open()?;
    let spinner = Spinner::start("listing machines");
    let visible = session
        .client
        .all_machines(&MachineQuery {
            limit: Some(500),
            ..MachineQuery::default()
        })
        .await;
    spinner.done();
    let visible = match visible {
        Ok(machines) => machines,
        Err(e) => return Err(super::fleet::explain(&session, &e, "berth run", None).await),
    };
    let machines = match targets::resolve(&args.on, &visible) {
        Ok(machines) => machines,
        Err(err) if visible.is_empty() => {
            // Without a fleet nothing is visible: say that rather than "no machine m1".
            if let Err(e) = session.client.fleet_sync_status().await
                && e.code() == Some("fleet_disabled")
            {
                return Err(session.fail(&e));
            }
            return Err(err);
        }
        Err(err) => return Err(err),
    };
    // Ctrl-C from here on stops the operation, even while it is being started.
    let interrupt = signal(SignalKind::interrupt())?;
    let start = StartOperation {
        script: args.script.clone(),
        machines: Some(machines),
        selector: None,
        concurrency: args.concurrency,
        timeout: args.timeout,
    };
    let view = match session.client.start_operation(&start).await {
        Ok(view) => view,
        Err(e) => return Err(refused(&session, &e, &args.script)),
    };
    started(&view);
    finish(&session, view.id, interrupt, OnInterrupt::Stop, args.json).await
}

pub async fn ops(args: OpsArgs) -> Result<ExitCode, CliError> {
    let session = Session::open()?;
    match args.command {
        None => list(&session, &args.list).await,
        Some(OpsCommand::Show(args)) => {
            let id = find(&session, &args.id).await?;
            if let Some(machine) = &args.machine {
                return show_machine(&session, id, machine, args.json).await;
            }
            let view = overview(&session, id)
                .await
                .map_err(|e| not_found(&session, &e, &args.id))?;
            if args.json {
                println!("{}", output::pretty_json(&view)?);
            } else {
                print!("{}", report::describe(Style::stdout(), &view));
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(OpsCommand::Stop(args)) => {
            let id = find(&session, &args.id).await?;
            let view = session
                .client
                .stop_operation(id)
                .await
                .map_err(|e| not_found(&session, &e, &args.id))?;
            if args.json {
                println!("{}", output::pretty_json(&view)?);
            } else if view.status.is_finished() {
                eprintln!("Operation {} has finished ({}).", view.id, view.status);
            } else {
                eprintln!(
                    "Stopping operation {}: what has not finished is cancelled (`berth ops watch \
                     {}` follows it to its end).",
                    view.id,
                    report::short(&view)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(OpsCommand::Rerun(args)) => {
            let id = find(&session, &args.id).await?;
            // Known first, so that a 404 of the rerun is about its script or machines.
            let old = session
                .client
                .operation_with(id, OutputDetail::None)
                .await
                .map_err(|e| not_found(&session, &e, &args.id))?;
            let interrupt = signal(SignalKind::interrupt())?;
            let view = session
                .client
                .rerun_operation(id)
                .await
                .map_err(|e| refused(&session, &e, &old.script))?;
            started(&view);
            finish(&session, view.id, interrupt, OnInterrupt::Stop, args.json).await
        }
        Some(OpsCommand::Watch(args)) => {
            let id = find(&session, &args.id).await?;
            let interrupt = signal(SignalKind::interrupt())?;
            finish(&session, id, interrupt, OnInterrupt::Leave, args.json).await
        }
    }
}

/// On stderr: the new operation's id and how to follow it from elsewhere.
fn started(view: &OperationView) {
    eprintln!(
        "{}",
        Style::stderr().dim(&format!(
            "Operation {} started: {} on {} machine(s) (`berth ops watch {}`; Ctrl-C stops it)",
            view.id,
            output::safe(&view.script),
            view.machines.len(),
            report::short(view)
        ))
    );
}

/// Follows `id` to its end, prints the grouped output and how it ended (or the JSON), and
/// answers the exit status.
async fn finish(
    session: &Session,
    id: OperationId,
    interrupt: Signal,
    on_interrupt: OnInterrupt,
    json: bool,
) -> Result<ExitCode, CliError> {
    let live = if json { Live::Stderr } else { Live::Split };
    let view = follow(session, id, interrupt, live, on_interrupt).await?;
    if json {
        println!("{}", output::pretty_json(&view)?);
    } else {
        let style = Style::stdout();
        println!();
        print!("{}", report::grouped(style, &view));
        print!("{}", report::outcome(style, &view));
    }
    ended(&view)
}

/// Operation `id` with each group's output once; without output when even that is more than
/// the server answers at once (the report then says how to get each machine's).
pub async fn overview(session: &Session, id: OperationId) -> Result<OperationView, ClientError> {
    match session
        .client
        .operation_with(id, OutputDetail::Groups)
        .await
    {
        Err(e) if e.code() == Some("output_too_large") => {
            session.client.operation_with(id, OutputDetail::None).await
        }
        answer => answer,
    }
}

/// `berth ops show ID --machine M`: the machine's output as it printed it, or its part as
/// JSON.
async fn show_machine(
    session: &Session,
    id: OperationId,
    machine: &MachineId,
    json: bool,
) -> Result<ExitCode, CliError> {
    let missing = |e: &ClientError| {
        if e.status() == Some(404) {
            CliError::new(format!("operation {id} did not run on {machine}"))
                .hint(format!("`berth ops show {id}` lists its machines"))
        } else {
            session.fail(e)
        }
    };
    if json {
        let run = session
            .client
            .machine_run(id, machine)
            .await
            .map_err(|e| missing(&e))?;
        println!("{}", output::pretty_json(&run)?);
        return Ok(ExitCode::SUCCESS);
    }
    let stdout = session
        .client
        .machine_output(id, machine, OutputStream::Stdout)
        .await
        .map_err(|e| missing(&e))?;
    let stderr = session
        .client
        .machine_output(id, machine, OutputStream::Stderr)
        .await
        .map_err(|e| missing(&e))?;
    use std::io::Write as _;
    let written = std::io::stdout()
        .lock()
        .write_all(&stdout)
        .and_then(|()| std::io::stdout().lock().flush())
        .and_then(|()| std::io::stderr().lock().write_all(&stderr));
    match written {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // A closed pipe (`| head`) is not an error of ours.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(CliError::new(format!("cannot write the output: {e}"))),
    }
}

/// The exit status of an operation that finished.
fn ended(view: &OperationView) -> Result<ExitCode, CliError> {
    let short = report::short(view);
    match view.status {
        OperationStatus::Succeeded => Ok(ExitCode::SUCCESS),
        OperationStatus::Cancelled => Err(CliError::new(format!(
            "operation {} was cancelled",
            view.id
        ))
        .hint(format!(
            "`berth ops rerun {short}` runs it again on the machines that did not succeed"
        ))
        .with_status(CANCELLED)),
        status => {
            let failed = view
                .machines
                .iter()
                .filter(|m| m.status != berth_types::operation::MachineRunStatus::Succeeded)
                .count();
            Err(CliError::new(format!(
                "operation {} {status}: {failed} of {} machine(s) did not succeed",
                view.id,
                view.machines.len()
            ))
            .hint(format!(
                "`berth ops rerun {short}` runs it again on those machines"
            )))
        }
    }
}

async fn list(session: &Session, args: &ListArgs) -> Result<ExitCode, CliError> {
    let query = OperationQuery {
        status: args.status,
        script: args.script.clone(),
        machine: args.machine.clone(),
        user: args.user.clone(),
        limit: Some(args.limit),
        ..OperationQuery::default()
    };
    let page = session
        .client
        .operations(&query)
        .await
        .map_err(|e| session.fail(&e))?;
    if args.json {
        println!("{}", output::pretty_json(&page)?);
        return Ok(ExitCode::SUCCESS);
    }
    if page.operations.is_empty() {
        let filtered = args.status.is_some()
            || args.script.is_some()
            || args.machine.is_some()
            || args.user.is_some();
        if filtered {
            println!("No operation you may see matches.");
        } else {
            println!("No operations yet (`berth run SCRIPT --on MACHINES` starts one).");
        }
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", report::table(Style::stdout(), &page.operations));
    let shown = page.operations.len() as u64;
    if page.total > shown {
        eprintln!(
            "The newest {shown} of {}; --limit shows more (up to 500), the filters fewer.",
            page.total
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The operation `text` names: a whole id, or the start of the id of one of the newest
/// [`PREFIX_SCAN`] operations the caller may see (exactly one).
async fn find(session: &Session, text: &str) -> Result<OperationId, CliError> {
    if let Ok(id) = text.parse::<OperationId>() {
        return Ok(id);
    }
    let mut query = OperationQuery {
        limit: Some(PAGE),
        ..OperationQuery::default()
    };
    let mut found = Vec::new();
    let mut scanned = 0;
    loop {
        let page = session
            .client
            .operations(&query)
            .await
            .map_err(|e| session.fail(&e))?;
        scanned += PAGE;
        found.extend(
            page.operations
                .iter()
                .filter(|op| op.id.to_string().starts_with(text))
                .map(|op| op.id),
        );
        match page.next_cursor {
            Some(next) if found.len() < 2 && scanned < PREFIX_SCAN => query.cursor = Some(next),
            _ => break,
        }
    }
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(CliError::new(format!(
            "no operation you may see has an id starting with {text}"
        ))
        .hint("`berth ops` lists them (users see their own, admins everyone's)")),
        many => Err(CliError::new(format!(
            "{text} starts the ids of {} operations ({})",
            many.len(),
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .hint("give more of the id")),
    }
}

/// A call about operation `text` failed: a 404 says it may not be yours.
fn not_found(session: &Session, err: &ClientError, text: &str) -> CliError {
    if err.status() == Some(404) {
        CliError::new(format!(
            "there is no operation {text}, or you may not see it"
        ))
        .hint("`berth ops` lists them (users see their own, admins everyone's)")
    } else {
        session.fail(err)
    }
}

/// Starting `script` (or rerunning an operation) was refused: the server's message, and what
/// to do about it.
fn refused(session: &Session, err: &ClientError, script: &str) -> CliError {
    let Some(failure) = err.api() else {
        return session.fail(err);
    };
    let message = output::safe(&failure.message);
    match (failure.status, failure.code.as_str()) {
        (404, "not_found") => CliError::new(message).hint(format!(
            "is {script} a script of scripts.yaml in the inventory's commit in force (`berth fleet \
             status`)? `berth machines` lists the machines you may see"
        )),
        (409, "not_enrolled") => CliError::new(message).hint(
            "a machine runs scripts once enrolled: `berth machines show ID` says what to do \
             (admins: `berth fleet verify ID`)",
        ),
        (403, _) => CliError::new(message).hint(
            "the `machines:` selectors of your users.yaml entry say where you may run scripts; \
             an admin can change them",
        ),
        _ => session.fail(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_timeouts_and_targets_are_checked_before_asking() {
        assert_eq!(id_prefix(" 6F1C ").unwrap(), "6f1c");
        assert!(id_prefix("6f1c2a3b-0000-4000-8000-000000000001").is_ok());
        for bad in ["", "xyz", "6f1c 2a", &"a".repeat(37)] {
            assert!(id_prefix(bad).is_err(), "{bad:?}");
        }
        assert_eq!(timeout("5m").unwrap().0.as_secs(), 300);
        for bad in ["0s", "5", "soon", "400d"] {
            assert!(timeout(bad).is_err(), "{bad:?}");
        }
    }
}
