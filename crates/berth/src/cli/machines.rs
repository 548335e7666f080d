//! `berth machines` and `berth machines show`: the fleet's machines you may see, with their
//! SSH settings, enrollment and health (`GET /api/v1/machines`, `GET /api/v1/machines/{id}`).

use std::fmt::Write as _;
use std::process::ExitCode;

use berth_client::MachineId;
use berth_client::api::{MachineQuery, MachineView};
use berth_types::fleet::{EnrollmentStatus, HealthStatus, is_label};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use time::OffsetDateTime;

use super::Session;
use super::errors::CliError;
use super::fleet::{explain, trust_hint};
use super::output::{self, Spinner, Style};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MachinesArgs {
    #[command(subcommand)]
    command: Option<MachinesCommand>,
    #[command(flatten)]
    list: ListArgs,
}

#[derive(Debug, clap::Subcommand)]
enum MachinesCommand {
    /// One machine: its SSH settings, its enrollment (with the message and the fingerprint
    /// of a host key to trust) and its health with the recent checks.
    #[command(after_help = "Examples:\n  berth machines show web-1\n  \
        berth machines show web-1 --json | jq -r .enrollment.fingerprint\n\n\
        A machine you may not see answers like one that does not exist.")]
    Show(ShowArgs),
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Only machines with this tag (links.yaml `tags`).
    #[arg(long, value_name = "TAG", value_parser = label)]
    tag: Option<String>,
    /// Only machines of this type (links.yaml `type`).
    #[arg(long = "type", value_name = "TYPE", value_parser = label)]
    kind: Option<String>,
    /// Only machines whose health is this.
    #[arg(long, value_name = "HEALTH", value_parser = PossibleValuesParser::new(HealthStatus::NAMES)
        .try_map(|s| s.parse::<HealthStatus>()))]
    status: Option<HealthStatus>,
    /// Only machines whose enrollment is this.
    #[arg(long, value_name = "ENROLLMENT",
        value_parser = PossibleValuesParser::new(EnrollmentStatus::NAMES)
            .try_map(|s| s.parse::<EnrollmentStatus>()))]
    enrollment: Option<EnrollmentStatus>,
    /// Print the machines as a JSON array (the API's machine objects, every page).
    #[arg(long)]
    json: bool,
    /// Machines asked for per call (1 to 500): the API's largest by default, so a fleet of
    /// hundreds is a few calls. For tests of paging.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=500),
        hide = true)]
    page_size: u32,
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// The machine's id (links.yaml `id`).
    id: MachineId,
    /// Print the machine as JSON (the API's machine object, with `health.history`).
    #[arg(long)]
    json: bool,
}

/// A tag, type or script name as the inventory allows them, checked before asking the
/// server.
pub fn label(text: &str) -> Result<String, String> {
    if is_label(text) {
        Ok(text.to_owned())
    } else {
        Err("1 to 63 characters of a-z, 0-9, _ . -, starting with a letter or a digit".to_owned())
    }
}

pub async fn run(args: MachinesArgs) -> Result<ExitCode, CliError> {
    let session = Session::open()?;
    match args.command {
        Some(MachinesCommand::Show(show)) => self::show(&session, &show).await,
        None => list(&session, &args.list).await,
    }
}

async fn list(session: &Session, args: &ListArgs) -> Result<ExitCode, CliError> {
    let query = MachineQuery {
        kind: args.kind.clone(),
        status: args.status,
        enrollment: args.enrollment,
        tag: args.tag.clone(),
        limit: Some(args.page_size),
        ..MachineQuery::default()
    };
    let spinner = Spinner::start("listing machines");
    let listed = session.client.all_machines(&query).await;
    spinner.done();
    let machines = match listed {
        Ok(machines) => machines,
        Err(e) => return Err(explain(session, &e, "berth machines", None).await),
    };
    if machines.is_empty()
        && let Err(e) = session.client.fleet_sync_status().await
        && e.code() == Some("fleet_disabled")
    {
        // Without a fleet the list is empty for everyone: say why rather than "no machines".
        return Err(session.fail(&e));
    }
    if args.json {
        println!("{}", output::pretty_json(&machines)?);
    } else if machines.is_empty() {
        let filtered = args.tag.is_some()
            || args.kind.is_some()
            || args.status.is_some()
            || args.enrollment.is_some();
        if filtered {
            println!("No machine you may see matches.");
        } else {
            println!(
                "No machines you may see (admins see every machine of links.yaml; a user those \
                 the `machines:` of their users.yaml entry select)."
            );
        }
    } else {
        print!("{}", machines_table(Style::stdout(), &machines));
    }
    Ok(ExitCode::SUCCESS)
}

/// `host:port`, with an IPv6 address in brackets.
pub fn address(machine: &MachineView) -> String {
    if machine.host.contains(':') {
        format!("[{}]:{}", machine.host, machine.port)
    } else {
        format!("{}:{}", machine.host, machine.port)
    }
}

/// `12 ms`, or `-` when the machine did not answer.
fn latency(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms"))
}

/// `5m ago`, or `what` when there is no time.
fn ago(at: Option<OffsetDateTime>, now: OffsetDateTime, what: &str) -> String {
    at.map_or_else(
        || what.to_owned(),
        |at| format!("{} ago", output::age(at, now)),
    )
}

fn machines_table(style: Style, machines: &[MachineView]) -> String {
    let now = OffsetDateTime::now_utc();
    let rows: Vec<Vec<String>> = machines
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                output::safe(&m.name),
                output::safe(&address(m)),
                output::safe(m.kind.as_deref().unwrap_or("-")),
                if m.tags.is_empty() {
                    "-".to_owned()
                } else {
                    output::safe(&m.tags.join(","))
                },
                style.state(m.enrollment.status.as_str()),
                style.state(m.health.status.as_str()),
                latency(m.health.latency_ms),
                ago(m.health.last_seen, now, "never"),
            ]
        })
        .collect();
    output::table(
        style,
        &[
            "ID",
            "NAME",
            "ADDRESS",
            "TYPE",
            "TAGS",
            "ENROLLMENT",
            "HEALTH",
            "LATENCY",
            "LAST SEEN",
        ],
        &rows,
    )
}

async fn show(session: &Session, args: &ShowArgs) -> Result<ExitCode, CliError> {
    let machine = match session.client.machine(&args.id).await {
        Ok(machine) => machine,
        Err(e) => return Err(explain(session, &e, "berth machines show", Some(&args.id)).await),
    };
    if args.json {
        println!("{}", output::pretty_json(&machine)?);
    } else {
        print!("{}", describe(Style::stdout(), &machine));
        if let Some(hint) = trust_hint(&machine) {
            eprintln!("{hint}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A machine for people: SSH settings, enrollment, health and its recent checks.
fn describe(style: Style, m: &MachineView) -> String {
    let now = OffsetDateTime::now_utc();
    let or_dash = |v: Option<&str>| v.unwrap_or("-").to_owned();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({})",
        style.bold(m.id.as_str()),
        output::safe(&m.name)
    );
    if !m.description.is_empty() {
        let _ = writeln!(out, "{}", output::safe(&m.description));
    }
    let fields = [
        ("address", address(m)),
        ("user", m.user.clone()),
        ("key", format!("{} (in the keys dir)", m.key)),
        (
            "host key",
            if m.host_key_pinned {
                "pinned in links.yaml".to_owned()
            } else {
                "checked against known_hosts".to_owned()
            },
        ),
        (
            "jump host",
            or_dash(m.proxy_jump.as_ref().map(MachineId::as_str)),
        ),
        ("client id", or_dash(m.client_id.as_deref())),
        ("type", or_dash(m.kind.as_deref())),
        (
            "tags",
            if m.tags.is_empty() {
                "-".to_owned()
            } else {
                m.tags.join(", ")
            },
        ),
        ("commit", m.commit.clone()),
    ];
    out.push_str(&style.bold("\nSSH\n"));
    for (name, value) in fields {
        let _ = writeln!(out, "  {name:<10} {}", output::safe(&value));
    }
    let e = &m.enrollment;
    out.push_str(&style.bold("\nEnrollment\n"));
    let _ = writeln!(
        out,
        "  {:<10} {} (checked {})",
        "status",
        style.state(e.status.as_str()),
        ago(e.verified_at, now, "never")
    );
    if !e.message.is_empty() {
        let _ = writeln!(out, "  {:<10} {}", "message", output::safe(&e.message));
    }
    if let Some(fingerprint) = &e.fingerprint {
        let _ = writeln!(out, "  {:<10} {}", "presents", output::safe(fingerprint));
    }
    let h = &m.health;
    out.push_str(&style.bold("\nHealth\n"));
    let health = [
        ("status", style.state(h.status.as_str())),
        ("latency", latency(h.latency_ms)),
        ("last seen", ago(h.last_seen, now, "never")),
        ("checked", ago(h.checked_at, now, "never")),
        ("failures", format!("{} in a row", h.consecutive_failures)),
    ];
    for (name, value) in health {
        let _ = writeln!(out, "  {name:<10} {value}");
    }
    if !h.history.is_empty() {
        let _ = writeln!(out, "\n{}", style.bold("Recent checks (newest last)"));
        let rows: Vec<Vec<String>> = h
            .history
            .iter()
            .map(|p| {
                vec![
                    format!("  {} ago", output::age(p.at, now)),
                    p.latency_ms.map_or_else(
                        || style.red("no answer"),
                        |ms| style.green(&format!("{ms} ms")),
                    ),
                ]
            })
            .collect();
        out.push_str(&output::table(style, &["  WHEN", "ANSWER"], &rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use berth_client::api::{EnrollmentView, HealthView, ProbeView};

    use super::*;

    fn machine(host: &str) -> MachineView {
        MachineView {
            id: MachineId::new("web-1").unwrap(),
            name: "Web 1".into(),
            host: host.into(),
            port: 2222,
            user: "ops".into(),
            kind: None,
            tags: vec!["web".into(), "eu".into()],
            key: "ops.key".into(),
            host_key_pinned: false,
            proxy_jump: None,
            client_id: None,
            description: String::new(),
            enrollment: EnrollmentView {
                status: EnrollmentStatus::HostKeyUnknown,
                message: "the host key is unknown".into(),
                fingerprint: Some("SHA256:abc".into()),
                verified_at: None,
            },
            health: HealthView {
                status: HealthStatus::Offline,
                latency_ms: None,
                last_seen: None,
                consecutive_failures: 2,
                checked_at: None,
                history: vec![ProbeView {
                    at: OffsetDateTime::now_utc(),
                    latency_ms: None,
                }],
            },
            commit: "0123456789ab".into(),
        }
    }

    #[test]
    fn addresses_bracket_ipv6_and_the_description_shows_what_to_do() {
        assert_eq!(address(&machine("10.0.0.1")), "10.0.0.1:2222");
        assert_eq!(address(&machine("fd00::1")), "[fd00::1]:2222");
        let text = describe(Style::stdout(), &machine("10.0.0.1"));
        for part in [
            "host_key_unknown",
            "presents   SHA256:abc",
            "checked against known_hosts",
            "2 in a row",
            "no answer",
        ] {
            assert!(text.contains(part), "no {part:?} in:\n{text}");
        }
        assert!(label("web").is_ok());
        assert!(label("Web").is_err() && label("").is_err() && label("a b").is_err());
    }
}
