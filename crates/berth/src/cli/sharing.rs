//! `berth share` (members of a shared workspace) and `berth recordings` (its recorded
//! sessions): the API's members and recordings endpoints from the terminal.

use std::path::PathBuf;
use std::process::ExitCode;

use berth_client::api::{MemberList, RecordingView};
use berth_client::{MemberRole, RecordingId, SessionRole};
use time::OffsetDateTime;

use super::Session;
use super::errors::CliError;
use super::output::{self, Style};
use super::settings::write_file;
use super::workspaces::{Which, resolve, short};

#[derive(Debug, clap::Args)]
pub struct ShareArgs {
    /// The workspace: its id, a unique prefix of it, or a template you have one workspace of.
    workspace: String,
    /// The user to invite (or, with --remove, to take out). Without it: list the members and
    /// who is connected now.
    user: Option<String>,
    /// Let them watch only: the server drops what a viewer types.
    #[arg(long, requires = "user")]
    viewer: bool,
    /// Take them out of the workspace; their open terminals close at once.
    #[arg(long, requires = "user", conflicts_with = "viewer")]
    remove: bool,
    /// Print the members as JSON.
    #[arg(long, conflicts_with = "user")]
    json: bool,
}

pub async fn share(args: ShareArgs) -> Result<ExitCode, CliError> {
    let session = Session::open()?;
    let workspace = resolve(&session, &args.workspace, Which::Any).await?;
    let client = &session.client;
    match (args.user, args.remove) {
        (Some(user), true) => {
            client
                .remove_member(workspace.id, &user)
                .await
                .map_err(|e| session.fail(&e))?;
            eprintln!(
                "{user} is no longer a member of {} ({}).",
                short(workspace.id),
                workspace.template
            );
        }
        (Some(user), false) => {
            let role = if args.viewer {
                MemberRole::Viewer
            } else {
                MemberRole::Peer
            };
            client
                .add_member(workspace.id, &user, role)
                .await
                .map_err(|e| session.fail(&e))?;
            eprintln!(
                "{user} may now join {} ({}) as a {role}: berth attach {}",
                short(workspace.id),
                workspace.template,
                workspace.id
            );
        }
        (None, _) => {
            let members = client
                .members(workspace.id)
                .await
                .map_err(|e| session.fail(&e))?;
            if args.json {
                println!("{}", output::pretty_json(&members)?);
            } else {
                print!("{}", members_table(Style::stdout(), &members));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The owner and the members, each with their role and whether they are connected now.
fn members_table(style: Style, members: &MemberList) -> String {
    let now = |name: &str| {
        if members
            .connected
            .iter()
            .any(|c| c.username.as_str() == name)
        {
            style.green("connected")
        } else {
            String::new()
        }
    };
    let owner = members.owner.as_str();
    let mut rows = vec![vec![
        owner.to_owned(),
        SessionRole::Owner.to_string(),
        String::new(),
        now(owner),
    ]];
    for member in &members.members {
        let name = member.username.as_str();
        rows.push(vec![
            name.to_owned(),
            member.role.to_string(),
            member.added_by.to_string(),
            now(name),
        ]);
    }
    output::table(style, &["USER", "ROLE", "ADDED BY", "NOW"], &rows)
}

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["workspace", "cast"]))]
pub struct RecordingsArgs {
    /// The workspace whose recordings to list: its id, a unique prefix of it, or a template
    /// you have one workspace of.
    workspace: Option<String>,
    /// Download this recording as an asciicast v2 file (play it with `asciinema play`).
    #[arg(long, value_name = "ID")]
    cast: Option<RecordingId>,
    /// Where to write the downloaded file (default: standard output).
    #[arg(short, long, value_name = "FILE", requires = "cast")]
    output: Option<PathBuf>,
    /// Print the list as JSON.
    #[arg(long, conflicts_with = "cast")]
    json: bool,
}

pub async fn recordings(args: RecordingsArgs) -> Result<ExitCode, CliError> {
    let session = Session::open()?;
    if let Some(id) = args.cast {
        let cast = session
            .client
            .recording_cast(id)
            .await
            .map_err(|e| session.fail(&e))?;
        match &args.output {
            Some(path) => {
                write_file(path, cast.as_bytes(), 0o600, 0o700)?;
                eprintln!("Wrote {} ({} bytes).", path.display(), cast.len());
            }
            None => print!("{cast}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let query = args.workspace.as_deref().unwrap_or_default();
    let workspace = resolve(&session, query, Which::Any).await?;
    let recordings = session
        .client
        .recordings(workspace.id)
        .await
        .map_err(|e| session.fail(&e))?;
    if args.json {
        println!("{}", output::pretty_json(&recordings)?);
    } else if recordings.is_empty() {
        println!("No recordings of {} yet.", short(workspace.id));
    } else {
        print!("{}", recordings_table(Style::stdout(), &recordings));
    }
    Ok(ExitCode::SUCCESS)
}

/// Newest first: id, who, when, how long, how big.
fn recordings_table(style: Style, recordings: &[RecordingView]) -> String {
    let now = OffsetDateTime::now_utc();
    let rows: Vec<Vec<String>> = recordings
        .iter()
        .map(|r| {
            let length = match r.ended_at {
                Some(end) => output::age(r.started_at, end),
                None => "running".to_owned(),
            };
            vec![
                r.id.to_string(),
                r.username.to_string(),
                format!("{} ago", output::age(r.started_at, now)),
                length,
                r.bytes.to_string(),
            ]
        })
        .collect();
    output::table(style, &["ID", "USER", "STARTED", "LENGTH", "BYTES"], &rows)
}
