//! `berth users …` (admins): the accounts of the server. For now the invites of self-service
//! sign-up (main.yaml `registration.mode: invite`): `berth users invite` makes a one-time code,
//! `berth users invites` lists them, `berth users invite rm ID` withdraws one
//! (`/api/v1/invites…`).

use std::process::ExitCode;

use berth_client::api::{InviteView, NewInvite, Timeout};
use berth_client::{ClientError, InviteId};
use berth_types::units::HumanDuration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Session;
use super::clusters::{NOT_FOUND, time_left};
use super::errors::CliError;
use super::output::{self, Style};

/// The longest note the server keeps.
const MAX_NOTE: usize = 200;

#[derive(Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// Make a one-time sign-up code (admins): prints the code and the sign-up page's URL with
    /// it, shown this once.
    #[command(
        after_help = "Examples:\n  berth users invite\n  berth users invite --expires \
        2d --note \"course 2026-A\"\n  berth users invite --json | jq -r .url\n  berth users \
        invite rm 8b1c2a3b\n\n\
        The code admits one account while main.yaml `registration.mode` is `invite`; the new \
        account gets `registration.defaults`. Give the URL (or the code) to the person; `berth \
        users invites` shows whether it was used."
    )]
    Invite(InviteArgs),
    /// List the invites (admins), newest first: who made them, until when, who used them.
    #[command(
        after_help = "Examples:\n  berth users invites\n  berth users invites --json \
        | jq -r '.[] | select(.used_by == null) | .id'"
    )]
    Invites(InvitesArgs),
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct InviteArgs {
    #[command(subcommand)]
    command: Option<InviteCommand>,
    /// How long the code may be used (`2h`, `7d`); default the server's
    /// registration.invite_ttl (7 days unless changed).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    expires: Option<Timeout>,
    /// A note for admins (`course 2026-A`), up to 200 characters.
    #[arg(long, value_name = "TEXT", value_parser = note)]
    note: Option<String>,
    /// Print the invite as JSON, code and URL included.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum InviteCommand {
    /// Withdraw an invite: its code is no longer accepted.
    #[command(
        visible_alias = "remove",
        after_help = "Examples:\n  berth users invite rm 8b1c2a3b\n\n\
        ID is the id `berth users invites` shows, or the start of it."
    )]
    Rm(RmArgs),
}

#[derive(Debug, clap::Args)]
struct RmArgs {
    /// The invite: its id, or a unique start of it.
    #[arg(value_name = "ID")]
    id: String,
}

#[derive(Debug, clap::Args)]
pub struct InvitesArgs {
    /// Print the invites as a JSON array (the API's invite objects, without codes).
    #[arg(long)]
    json: bool,
}

fn duration(text: &str) -> Result<Timeout, String> {
    text.parse::<HumanDuration>().map(Timeout)
}

fn note(text: &str) -> Result<String, String> {
    if text.chars().count() > MAX_NOTE {
        return Err(format!("a note has at most {MAX_NOTE} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err("a note has no control characters (line breaks, tabs, escapes)".to_owned());
    }
    Ok(text.to_owned())
}

pub async fn run(command: UsersCommand) -> Result<ExitCode, CliError> {
    let session = Session::open()?;
    match command {
        UsersCommand::Invite(args) => match &args.command {
            Some(InviteCommand::Rm(rm)) => remove(&session, &rm.id).await,
            None => invite(&session, &args).await,
        },
        UsersCommand::Invites(args) => list(&session, &args).await,
    }
}

/// A refusal of the invites API: a user who is not an admin is told so.
fn fail(session: &Session, err: &ClientError) -> CliError {
    match err.api() {
        Some(failure) if failure.status == 403 => CliError::new(output::safe(&failure.message))
            .hint("invites are for admins: log in as one (`berth login SERVER --username admin`)"),
        _ => session.fail(err),
    }
}

fn stamp(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

async fn invite(session: &Session, args: &InviteArgs) -> Result<ExitCode, CliError> {
    let request = NewInvite {
        expires_in: args.expires,
        note: args.note.clone().unwrap_or_default(),
    };
    let created = session
        .client
        .create_invite(&request)
        .await
        .map_err(|e| fail(session, &e))?;
    if args.json {
        println!("{}", output::pretty_json(&created)?);
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "Invite {} admits one account for {} (until {}). The code is shown this once.",
        created.invite.id,
        time_left(created.invite.expires_at, created.invite.created_at),
        stamp(created.invite.expires_at)
    );
    println!("code: {}", output::safe(created.code.expose()));
    println!("url:  {}", output::safe(&created.url));
    Ok(ExitCode::SUCCESS)
}

async fn list(session: &Session, args: &InvitesArgs) -> Result<ExitCode, CliError> {
    let invites = session
        .client
        .list_invites()
        .await
        .map_err(|e| fail(session, &e))?;
    if args.json {
        println!("{}", output::pretty_json(&invites)?);
    } else if invites.is_empty() {
        println!("No invites. Make one: berth users invite");
    } else {
        print!(
            "{}",
            table(Style::stdout(), &invites, OffsetDateTime::now_utc())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The first 8 characters of an id: what the table shows and what `invite rm` accepts.
fn short(id: InviteId) -> String {
    id.to_string().chars().take(8).collect()
}

fn table(style: Style, invites: &[InviteView], now: OffsetDateTime) -> String {
    let rows: Vec<Vec<String>> = invites
        .iter()
        .map(|invite| {
            let status = match (&invite.used_by, invite.expires_at > now) {
                (Some(user), _) => style.dim(&format!("used by {user}")),
                (None, true) => {
                    style.green(&format!("open, {} left", time_left(invite.expires_at, now)))
                }
                (None, false) => style.dim("expired"),
            };
            vec![
                short(invite.id),
                status,
                invite.created_by.to_string(),
                output::age(invite.created_at, now),
                output::safe(&invite.note),
            ]
        })
        .collect();
    output::table(style, &["ID", "STATUS", "BY", "AGE", "NOTE"], &rows)
}

/// The invite `query` names: its id, or the start of one of the listed ids.
fn pick<'a>(invites: &'a [InviteView], query: &str) -> Result<&'a InviteView, CliError> {
    let lower = query.trim().to_ascii_lowercase();
    if lower.is_empty() {
        return Err(CliError::new("give an invite id"));
    }
    let found: Vec<&InviteView> = invites
        .iter()
        .filter(|i| i.id.to_string().starts_with(&lower))
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(CliError::new(format!("no invite has the id {query:?}"))
            .hint("`berth users invites` lists them")
            .with_status(NOT_FOUND)),
        many => Err(CliError::new(format!(
            "{query:?} starts {} invites' ids: {}",
            many.len(),
            many.iter()
                .map(|i| short(i.id))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .hint("give more of the id")),
    }
}

async fn remove(session: &Session, query: &str) -> Result<ExitCode, CliError> {
    let invites = session
        .client
        .list_invites()
        .await
        .map_err(|e| fail(session, &e))?;
    let invite = pick(&invites, query)?;
    session
        .client
        .delete_invite(invite.id)
        .await
        .map_err(|e| match e.status() {
            Some(404) => CliError::new(format!("invite {} is gone already", short(invite.id)))
                .with_status(NOT_FOUND),
            _ => fail(session, &e),
        })?;
    eprintln!("Withdrew invite {}.", invite.id);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use berth_types::Username;

    use super::*;

    fn invite(id: &str, used_by: Option<&str>, hours_left: i64, now: OffsetDateTime) -> InviteView {
        InviteView {
            id: id.parse().unwrap(),
            created_by: Username::new("admin").unwrap(),
            note: "course\u{202e}A".into(),
            created_at: now - time::Duration::hours(3),
            expires_at: now + time::Duration::hours(hours_left),
            used_by: used_by.map(|u| Username::new(u).unwrap()),
            used_at: None,
        }
    }

    #[test]
    fn notes_and_durations_are_checked_here() {
        assert_eq!(note("course 2026-A").unwrap(), "course 2026-A");
        assert!(note(&"n".repeat(201)).unwrap_err().contains("200"));
        assert!(note("a\nb").is_err() && note("\x1b[2J").is_err());
        assert_eq!(duration("7d").unwrap().0.as_secs(), 7 * 86_400);
        assert!(duration("soon").is_err());
    }

    #[test]
    fn invites_show_whether_they_still_admit_someone() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(30);
        let list = vec![
            invite("8b1c2a3b-0000-4000-8000-000000000001", None, 50, now),
            invite("8b1d0000-0000-4000-8000-000000000002", Some("bob"), 50, now),
            invite("9c000000-0000-4000-8000-000000000003", None, -1, now),
        ];
        let text = table(Style::plain(), &list, now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ID        STATUS           BY     AGE  NOTE");
        assert_eq!(
            lines[1],
            "8b1c2a3b  open, 2d2h left  admin  3h   course\\u{202e}A"
        );
        assert!(lines[2].contains("used by bob"), "{text}");
        assert!(lines[3].contains("expired"), "{text}");

        assert_eq!(pick(&list, "8B1C").unwrap().id, list[0].id);
        assert_eq!(pick(&list, &list[2].id.to_string()).unwrap().id, list[2].id);
        let err = pick(&list, "8b1").unwrap_err();
        assert!(err.message().contains("starts 2 invites"), "{err}");
        let err = pick(&list, "ffff").unwrap_err();
        assert!(format!("{err:?}").contains("status: 4"), "{err:?}");
        assert!(pick(&list, " ").is_err());
    }
}
