//! `berth fleet sync|status|verify|trust|secrets-key`: the admin's side of the fleet — syncing
//! the inventory repository, checking machines' enrollment, trusting host keys, and the age
//! recipient for `secrets.ini` (`/api/v1/fleet/…`, `/api/v1/machines/…/verify|trust`).
//!
//! Exit status: 0 when it worked, 1 when it did not (a failed sync included), and
//! [`NOT_ENROLLED`] when machines were checked but some is not enrolled.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use berth_client::api::{FleetSyncStatus, MachineView, SyncView};
use berth_client::{ClientError, MachineId};
use berth_types::fleet::{Changes, EnrollmentStatus, SyncChanges, SyncFileError};
use clap::Subcommand;
use time::OffsetDateTime;

use super::Session;
use super::errors::CliError;
use super::output::{self, Spinner, Style};

/// The exit status of `verify` and `trust` when the check ran but a machine it checked is not
/// enrolled: scripts tell "some machine needs attention" (3) from "could not ask" (1).
pub const NOT_ENROLLED: u8 = 3;

/// How long a sync or a check may take: a git fetch, or SSH connections with their retries
/// (`fleet.connect_timeout` × `fleet.connect_retries`, a whole fleet `max_concurrency` at a
/// time) take longer than the client's usual limit.
const FLEET_WAIT: Duration = Duration::from_secs(15 * 60);

/// How many characters of a commit id are shown.
const SHORT_COMMIT: usize = 12;

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Sync the inventory repository now (after a sync already running) and print the
    /// result: the commit, the machines and scripts added, changed, removed, or every error.
    #[command(
        after_help = "Examples:\n  berth fleet sync\n  berth fleet sync --json | jq \
        .changes.machines\n\n\
        A failed sync prints each error as FILE:LINE: FIELD: MESSAGE and exits with status 1; \
        the inventory in force stays as it was. Admins only."
    )]
    Sync(JsonArgs),
    /// The inventory repository and branch, the commit in force, whether a sync runs now, and
    /// the recent syncs.
    #[command(
        after_help = "Examples:\n  berth fleet status\n  berth fleet status --json | jq \
        -r .commit\n\nAdmins only."
    )]
    Status(JsonArgs),
    /// Check machines' enrollment (and health) over SSH now: one machine, or every one.
    #[command(
        after_help = "Examples:\n  berth fleet verify\n  berth fleet verify web-1\n  \
        berth fleet verify --json | jq -r '.machines[] | select(.enrollment.status != \
        \"enrolled\") | .id'\n\n\
        Exit status: 0 when every machine checked is enrolled, 3 when the check ran but some \
        machine is not (each is listed with what to do), 1 when it could not run. Admins only."
    )]
    Verify(VerifyArgs),
    /// Trust the host key a machine presents, once you compared its fingerprint with the
    /// machine's own; the machine is verified again.
    #[command(
        after_help = "Examples:\n  berth machines show web-1      # the fingerprint it \
        presents\n  berth fleet trust web-1 SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8\n\n\
        Compare first: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the machine's \
        console prints its fingerprint. A key that does not have this fingerprint is refused; a \
        changed key is never trusted this way (remove its line from known_hosts once you know \
        why it changed). Exit status 3 when the machine is trusted but still not enrolled. \
        Admins only."
    )]
    Trust(TrustArgs),
    /// Print the age recipient `secrets.ini` is encrypted to (made on first use).
    #[command(
        after_help = "Example:\n  age -r \"$(berth fleet secrets-key)\" -a -o secrets.ini \
        secrets.plain.ini\n\nOnly the recipient is printed, so it can be used as above. Admins \
        only."
    )]
    SecretsKey,
}

#[derive(Debug, clap::Args)]
pub struct JsonArgs {
    /// Print the API's answer as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The machine to check (links.yaml `id`); without it, every machine.
    id: Option<MachineId>,
    /// Print the API's answer as JSON: the machine, or `{"machines": [...]}`.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// The machine (links.yaml `id`).
    id: MachineId,
    /// The SHA256 fingerprint of its host key, `SHA256:…` as `ssh-keygen -l` prints it.
    #[arg(value_parser = fingerprint)]
    fingerprint: String,
}

fn fingerprint(text: &str) -> Result<String, String> {
    let text = text.trim();
    let body = text.strip_prefix("SHA256:").unwrap_or_default();
    if !body.is_empty()
        && text.len() <= 100
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
    {
        Ok(text.to_owned())
    } else {
        Err(
            "give the key's SHA256 fingerprint, `SHA256:` and base64, as `ssh-keygen -l` or \
             `berth machines show ID` print it"
                .to_owned(),
        )
    }
}

pub async fn run(command: FleetCommand) -> Result<ExitCode, CliError> {
    let session = Session::open()?;
    match command {
        FleetCommand::Sync(args) => sync(&session, args.json).await,
        FleetCommand::Status(args) => status(&session, args.json).await,
        FleetCommand::Verify(args) => verify(&session, args).await,
        FleetCommand::Trust(args) => trust(&session, args).await,
        FleetCommand::SecretsKey => {
            let key = session.client.fleet_secrets_key().await;
            let key = match key {
                Ok(key) => key,
                Err(e) => return Err(explain(&session, &e, "berth fleet secrets-key", None).await),
            };
            println!("{}", key.recipient);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A failed fleet call in the words of someone at the shell: a refusal names the command, a
/// 404 the machine (or, on a server without a fleet, says that), the rest as every command
/// says it ([`Session::fail`]).
pub async fn explain(
    session: &Session,
    err: &ClientError,
    command: &str,
    machine: Option<&MachineId>,
) -> CliError {
    match (err.status(), machine) {
        (Some(403), _) => {
            let who = session
                .login
                .username
                .as_deref()
                .map(|u| format!(" (you are logged in as {u})"))
                .unwrap_or_default();
            CliError::new(format!("`{command}` is for admins{who}"))
                .hint("an admin can run it, or make you one (role: admin in users.yaml)")
        }
        (Some(404), Some(id)) => {
            // Without a fleet no machine exists: say that rather than "no such machine".
            if let Err(e) = session.client.fleet_sync_status().await
                && e.code() == Some("fleet_disabled")
            {
                return session.fail(&e);
            }
            CliError::new(format!("there is no machine {id}, or you may not see it"))
                .hint("`berth machines` lists the machines you may see")
        }
        _ => session.fail(err),
    }
}

/// What to do about a machine whose host key is unknown: the command that trusts it.
pub fn trust_hint(machine: &MachineView) -> Option<String> {
    let fingerprint = machine.enrollment.fingerprint.as_deref()?;
    (machine.enrollment.status == EnrollmentStatus::HostKeyUnknown).then(|| {
        format!(
            "{}'s host key is unknown: compare {fingerprint} with the machine's own \
             (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on its console), then: berth \
             fleet trust {} {fingerprint}",
            machine.id, machine.id
        )
    })
}

/// A client that waits as long as a sync or an SSH check may take.
fn patient(session: &Session) -> berth_client::Client {
    session.client.clone().with_timeout(FLEET_WAIT)
}

fn short_commit(commit: Option<&str>) -> String {
    commit.map_or_else(
        || "-".to_owned(),
        |c| c.chars().take(SHORT_COMMIT).collect(),
    )
}

/// `links.yaml:3: machines[0].host: message`, as the server's configuration errors read.
pub fn located(error: &SyncFileError) -> String {
    let mut out = String::new();
    match (&error.file, error.line) {
        (Some(file), Some(line)) => {
            let _ = write!(out, "{file}:{line}: ");
        }
        (Some(file), None) => {
            let _ = write!(out, "{file}: ");
        }
        _ => {}
    }
    if let Some(path) = &error.path {
        let _ = write!(out, "{path}: ");
    }
    out.push_str(&error.message);
    output::safe(&out)
}

/// `added m4, m5; changed m2` for one kind of entry, or `None` when nothing changed.
fn listed(changes: &Changes) -> Option<String> {
    let parts: Vec<String> = [
        ("added", &changes.added),
        ("changed", &changes.changed),
        ("removed", &changes.removed),
    ]
    .into_iter()
    .filter(|(_, ids)| !ids.is_empty())
    .map(|(what, ids)| format!("{what} {}", ids.join(", ")))
    .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// `+3 ~1 -0 machines` and the same for scripts, for the history table.
fn counted(changes: &SyncChanges) -> String {
    let count = |c: &Changes, what: &str| {
        (!c.is_empty()).then(|| {
            format!(
                "+{} ~{} -{} {what}",
                c.added.len(),
                c.changed.len(),
                c.removed.len()
            )
        })
    };
    let parts: Vec<String> = [
        count(&changes.machines, "machines"),
        count(&changes.scripts, "scripts"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        "no changes".to_owned()
    } else {
        parts.join(", ")
    }
}

/// A sync's outcome for people: its result and commit, then what changed or every error.
fn report(style: Style, sync: &SyncView) -> String {
    let mut out = String::new();
    let took = sync
        .finished
        .map(|end| format!(" in {:.1} s", (end - sync.started).as_seconds_f64()))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Sync {} ({}, by {}): {}{took}, commit {}.",
        sync.id,
        sync.trigger,
        sync.actor,
        style.state(sync.result.as_str()),
        short_commit(sync.commit.as_deref()),
    );
    if sync.result.in_force() {
        let kinds = [
            ("machines", &sync.changes.machines),
            ("scripts", &sync.changes.scripts),
        ];
        let mut any = false;
        for (what, changes) in kinds {
            if let Some(text) = listed(changes) {
                any = true;
                let _ = writeln!(out, "  {what}: {text}");
            }
        }
        if !any {
            out.push_str("  nothing changed\n");
        }
    } else {
        for error in &sync.errors {
            let _ = writeln!(out, "  {}", located(error));
        }
    }
    out
}

async fn sync(session: &Session, json: bool) -> Result<ExitCode, CliError> {
    let spinner = Spinner::start("syncing the inventory");
    let synced = patient(session).sync_fleet().await;
    spinner.done();
    let sync = match synced {
        Ok(sync) => sync,
        Err(e) => return Err(explain(session, &e, "berth fleet sync", None).await),
    };
    if json {
        println!("{}", output::pretty_json(&sync)?);
    } else {
        print!("{}", report(Style::stdout(), &sync));
    }
    if sync.result.in_force() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::new(format!(
            "the sync {} with {} error(s); the inventory in force stays as it was",
            sync.result,
            sync.errors.len()
        ))
        .hint("fix the repository, push, and run `berth fleet sync` again"))
    }
}

async fn status(session: &Session, json: bool) -> Result<ExitCode, CliError> {
    let status = match session.client.fleet_sync_status().await {
        Ok(status) => status,
        Err(e) => return Err(explain(session, &e, "berth fleet status", None).await),
    };
    if json {
        println!("{}", output::pretty_json(&status)?);
    } else {
        print!("{}", status_text(Style::stdout(), &status));
    }
    Ok(ExitCode::SUCCESS)
}

fn status_text(style: Style, status: &FleetSyncStatus) -> String {
    let now = OffsetDateTime::now_utc();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Repository  {} (branch {})",
        status.repository, status.branch
    );
    let _ = writeln!(
        out,
        "In force    {}",
        status.commit.as_deref().map_or_else(
            || "nothing yet: no sync has succeeded".to_owned(),
            |c| format!("commit {c}")
        )
    );
    let _ = writeln!(
        out,
        "Syncing     {}",
        if status.syncing { "yes, now" } else { "no" }
    );
    if status.history.is_empty() {
        out.push_str("\nNo syncs yet.\n");
        return out;
    }
    out.push_str("\nRecent syncs, newest first:\n");
    let rows: Vec<Vec<String>> = status
        .history
        .iter()
        .map(|s| {
            let note = if s.result.in_force() {
                counted(&s.changes)
            } else {
                match s.errors.as_slice() {
                    [] => String::new(),
                    [one] => located(one),
                    [first, rest @ ..] => {
                        format!("{} (and {} more)", located(first), rest.len())
                    }
                }
            };
            vec![
                s.id.to_string(),
                format!("{} ago", output::age(s.started, now)),
                s.trigger.to_string(),
                s.actor.clone(),
                style.state(s.result.as_str()),
                short_commit(s.commit.as_deref()),
                note,
            ]
        })
        .collect();
    out.push_str(&output::table(
        style,
        &["ID", "STARTED", "TRIGGER", "BY", "RESULT", "COMMIT", "NOTE"],
        &rows,
    ));
    out
}

async fn verify(session: &Session, args: VerifyArgs) -> Result<ExitCode, CliError> {
    let client = patient(session);
    let spinner = Spinner::start(match &args.id {
        Some(id) => format!("verifying {id}"),
        None => "verifying every machine".to_owned(),
    });
    let (machines, json) = match &args.id {
        Some(id) => {
            let checked = client.verify_machine(id).await;
            spinner.done();
            let machine = match checked {
                Ok(machine) => machine,
                Err(e) => return Err(explain(session, &e, "berth fleet verify", Some(id)).await),
            };
            let json = args.json.then(|| output::pretty_json(&machine));
            (vec![machine], json)
        }
        None => {
            let checked = client.verify_machines().await;
            spinner.done();
            let all = match checked {
                Ok(all) => all,
                Err(e) => return Err(explain(session, &e, "berth fleet verify", None).await),
            };
            let json = args.json.then(|| output::pretty_json(&all));
            (all.machines, json)
        }
    };
    match json {
        Some(json) => println!("{}", json?),
        None if machines.is_empty() => println!("No machines in links.yaml to verify."),
        None => print!("{}", enrollment_table(Style::stdout(), &machines)),
    }
    enrolled_or_not(&machines)
}

/// 0 when every machine is enrolled; else [`NOT_ENROLLED`], saying which are not and, for an
/// unknown host key, how to trust it.
fn enrolled_or_not(machines: &[MachineView]) -> Result<ExitCode, CliError> {
    let not: Vec<&MachineView> = machines
        .iter()
        .filter(|m| m.enrollment.status != EnrollmentStatus::Enrolled)
        .collect();
    if not.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for hint in not.iter().filter_map(|m| trust_hint(m)) {
        eprintln!("{hint}");
    }
    let ids: Vec<String> = not
        .iter()
        .map(|m| format!("{} ({})", m.id, m.enrollment.status))
        .collect();
    Err(CliError::new(format!(
        "{} of {} machine(s) not enrolled: {}",
        not.len(),
        machines.len(),
        ids.join(", ")
    ))
    .hint("each one's message says what to do; `berth machines show ID` has the details")
    .with_status(NOT_ENROLLED))
}

fn enrollment_table(style: Style, machines: &[MachineView]) -> String {
    let rows: Vec<Vec<String>> = machines
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                style.state(m.enrollment.status.as_str()),
                style.state(m.health.status.as_str()),
                output::safe(&m.enrollment.message),
            ]
        })
        .collect();
    output::table(style, &["ID", "ENROLLMENT", "HEALTH", "MESSAGE"], &rows)
}

async fn trust(session: &Session, args: TrustArgs) -> Result<ExitCode, CliError> {
    let spinner = Spinner::start(format!("trusting {}'s host key", args.id));
    let trusted = patient(session)
        .trust_host_key(&args.id, &args.fingerprint)
        .await;
    spinner.done();
    let machine = match trusted {
        Ok(machine) => machine,
        Err(e) => return Err(explain(session, &e, "berth fleet trust", Some(&args.id)).await),
    };
    println!(
        "Trusted {}'s host key {}; its enrollment now: {}.",
        machine.id,
        args.fingerprint,
        Style::stdout().state(machine.enrollment.status.as_str())
    );
    enrolled_or_not(std::slice::from_ref(&machine))
}

#[cfg(test)]
mod tests {
    use berth_types::fleet::{SyncResult, SyncTrigger};

    use super::*;

    #[test]
    fn errors_read_with_file_and_line_and_changes_by_id() {
        let error = |file: Option<&str>, line, path: Option<&str>| SyncFileError {
            file: file.map(str::to_owned),
            line,
            path: path.map(str::to_owned),
            message: "unknown field".into(),
        };
        assert_eq!(
            located(&error(
                Some("links.yaml"),
                Some(3),
                Some("machines[0].hots")
            )),
            "links.yaml:3: machines[0].hots: unknown field"
        );
        assert_eq!(
            located(&error(Some("secrets.ini"), None, None)),
            "secrets.ini: unknown field"
        );
        assert_eq!(located(&error(None, None, None)), "unknown field");

        let mut sync = SyncView {
            id: 7,
            trigger: SyncTrigger::Api,
            actor: "admin".into(),
            started: OffsetDateTime::UNIX_EPOCH,
            finished: Some(OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(300)),
            result: SyncResult::Succeeded,
            commit: Some("0123456789abcdef".into()),
            errors: Vec::new(),
            changes: SyncChanges::default(),
        };
        sync.changes.machines.added = vec!["m4".into(), "m5".into()];
        sync.changes.machines.removed = vec!["m1".into()];
        let text = report(Style::stdout(), &sync);
        assert!(text.contains("in 0.3 s, commit 0123456789ab."), "{text}");
        assert!(
            text.contains("machines: added m4, m5; removed m1"),
            "{text}"
        );
        assert_eq!(counted(&sync.changes), "+2 ~0 -1 machines");
        assert_eq!(counted(&SyncChanges::default()), "no changes");
    }

    #[test]
    fn fingerprints_are_checked_before_asking() {
        assert!(fingerprint("SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8").is_ok());
        for bad in [
            "",
            "SHA256:",
            "MD5:aa:bb",
            "nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8",
        ] {
            assert!(fingerprint(bad).is_err(), "{bad}");
        }
        assert!(fingerprint(&format!("SHA256:{}", "a".repeat(100))).is_err());
    }
}
