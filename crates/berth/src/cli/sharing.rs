//! `berth share` (members of a shared workspace) and `berth recordings` (its recorded
//! sessions): the API's members and recordings endpoints from the terminal.

use std::path::PathBuf;
use std::process::ExitCode;

use berth_client::api::{FilterOp, MemberList, RecordingView, TableFilter, TableQuery};
use berth_client::{MemberRole, RecordingId, SessionRole, WorkspaceId};
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
pub struct RecordingsArgs {
    /// The workspace whose recordings to list: its id, a unique prefix of it, or a template
    /// you have one workspace of. Without it: the newest recordings you may watch, also of
    /// workspaces removed since (an admin's: everyone's).
    #[arg(conflicts_with = "cast")]
    workspace: Option<String>,
    /// Without WORKSPACE: only recordings of this user's workspaces.
    #[arg(long, value_name = "USER", conflicts_with_all = ["workspace", "cast"])]
    owner: Option<String>,
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
    let Some(query) = args.workspace.as_deref() else {
        return newest(&session, args.owner.as_deref(), args.json).await;
    };
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
        let listed: Vec<Listed> = recordings.iter().map(Listed::from).collect();
        print!("{}", recordings_table(Style::stdout(), &listed, false));
    }
    Ok(ExitCode::SUCCESS)
}

/// How many recordings `berth recordings` without a workspace lists.
const NEWEST: u32 = 50;

/// The newest recordings the caller may watch, through the `recordings` table query.
async fn newest(session: &Session, owner: Option<&str>, json: bool) -> Result<ExitCode, CliError> {
    let query = TableQuery {
        table: "recordings".into(),
        filters: owner
            .map(|owner| TableFilter {
                column: "owner".into(),
                op: FilterOp::Eq,
                value: serde_json::json!(owner),
            })
            .into_iter()
            .collect(),
        limit: Some(NEWEST),
        ..TableQuery::default()
    };
    let result = session
        .client
        .query_table(&query)
        .await
        .map_err(|e| session.fail(&e))?;
    let listed: Vec<Listed> = result
        .rows
        .into_iter()
        .map(|row| serde_json::from_value(serde_json::Value::Object(row)))
        .collect::<Result<_, _>>()
        .map_err(|e| {
            CliError::new(format!(
                "the server's recordings table is not as expected: {e}"
            ))
        })?;
    if json {
        println!("{}", output::pretty_json(&listed)?);
    } else if listed.is_empty() {
        println!("No recordings yet.");
    } else {
        print!("{}", recordings_table(Style::stdout(), &listed, true));
        if result.total > u64::from(NEWEST) {
            eprintln!(
                "The newest {NEWEST} of {}; `berth recordings WORKSPACE` lists one workspace's.",
                result.total
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What the recordings table shows of a recording, from either API answer.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Listed {
    id: RecordingId,
    /// `workspace` or `machine`.
    target_kind: String,
    /// The workspace's or machine's id.
    target_id: String,
    /// The workspace, for workspace recordings (the name before recordings had targets).
    #[serde(default)]
    workspace_id: Option<WorkspaceId>,
    owner: String,
    username: String,
    #[serde(with = "time::serde::rfc3339")]
    started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    ended_at: Option<OffsetDateTime>,
    bytes: u64,
}

impl From<&RecordingView> for Listed {
    fn from(r: &RecordingView) -> Self {
        Self {
            id: r.id,
            target_kind: r.target.kind().to_string(),
            target_id: r.target.id_string(),
            workspace_id: r.workspace,
            owner: r.owner.to_string(),
            username: r.username.to_string(),
            started_at: r.started_at,
            ended_at: r.ended_at,
            bytes: r.bytes,
        }
    }
}

/// Newest first: id, (whose and which workspace,) who attached, when, how long, how big.
fn recordings_table(style: Style, recordings: &[Listed], whose: bool) -> String {
    let now = OffsetDateTime::now_utc();
    let rows: Vec<Vec<String>> = recordings
        .iter()
        .map(|r| {
            let length = match r.ended_at {
                Some(end) => output::age(r.started_at, end),
                None => "running".to_owned(),
            };
            let mut row = vec![r.id.to_string()];
            if whose {
                let target = match r.workspace_id {
                    Some(workspace) => short(workspace),
                    None => format!("{}:{}", r.target_kind, r.target_id),
                };
                row.extend([r.owner.clone(), target]);
            }
            row.extend([
                r.username.clone(),
                format!("{} ago", output::age(r.started_at, now)),
                length,
                r.bytes.to_string(),
            ]);
            row
        })
        .collect();
    let header: &[&str] = if whose {
        &[
            "ID",
            "OWNER",
            "WORKSPACE",
            "USER",
            "STARTED",
            "LENGTH",
            "BYTES",
        ]
    } else {
        &["ID", "USER", "STARTED", "LENGTH", "BYTES"]
    };
    output::table(style, header, &rows)
}
