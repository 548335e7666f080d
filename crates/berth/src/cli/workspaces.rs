//! `berth ls`, `berth start`, `berth stop`, `berth rm`: workspaces on the server (and, with
//! `--local`, on this machine's Docker Engine; see [`super::local`]).

use std::process::ExitCode;

use berth_client::api::{StartWorkspace, WorkspaceQuery, WorkspaceState, WorkspaceView};
use berth_types::{Username, WorkspaceId};
use time::OffsetDateTime;

use super::errors::CliError;
use super::output::{self, Spinner, Style};
use super::{Session, attach, local, server_config};

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Print JSON: `{"templates": [...], "workspaces": [...]}` (with --local: `{"local": [...]}`).
    #[arg(long)]
    json: bool,
    /// List the workspaces this CLI runs on the local Docker Engine instead.
    #[arg(long)]
    local: bool,
    /// Everyone's workspaces (admins).
    #[arg(long, conflicts_with = "local")]
    all: bool,
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The template to start (`berth ls` lists yours), or the id (or id prefix) of a stopped
    /// workspace of yours to start again.
    #[arg(value_name = "TEMPLATE|ID")]
    template: String,
    /// Keep the workspace's container and volumes when it stops (if the template allows it).
    #[arg(long, conflicts_with = "no_persist")]
    persist: bool,
    /// Do not keep them, even if the template keeps them by default.
    #[arg(long)]
    no_persist: bool,
    /// Network: `none`, `host` or a Docker network the template allows.
    #[arg(long, value_name = "MODE")]
    net: Option<String>,
    /// Attach a terminal once it runs.
    #[arg(long)]
    attach: bool,
    /// Run it on this machine's Docker Engine (DOCKER_HOST or /var/run/docker.sock) instead.
    #[arg(long)]
    local: bool,
    /// With --local: accept a template that mounts host directories or adds dangerous
    /// capabilities.
    #[arg(long, requires = "local")]
    allow_host_access: bool,
}

impl StartArgs {
    fn persist(&self) -> Option<bool> {
        match (self.persist, self.no_persist) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// The workspace: its id, a unique prefix of it, or the template's name when you have one
    /// live workspace of it.
    workspace: String,
    /// A workspace on this machine's Docker Engine (by name, id prefix or template).
    #[arg(long)]
    local: bool,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// The workspace: its id, a unique prefix of it, or the template's name when you have one
    /// workspace of it.
    workspace: String,
    /// A workspace on this machine's Docker Engine.
    #[arg(long)]
    local: bool,
}

pub async fn ls(args: LsArgs) -> Result<ExitCode, CliError> {
    let session = Session::open()?;
    if args.local {
        return local::ls(&session, args.json).await;
    }
    let spinner = Spinner::start("listing");
    let result = async {
        let config = session.fetch_config().await?;
        let query = WorkspaceQuery {
            owner: (!args.all).then(|| config.user.username.clone()),
            ..WorkspaceQuery::default()
        };
        let workspaces = session
            .client
            .list_workspaces(&query)
            .await
            .map_err(|e| session.fail(&e))?;
        let shared = WorkspaceQuery {
            shared: true,
            ..WorkspaceQuery::default()
        };
        let shared = session
            .client
            .list_workspaces(&shared)
            .await
            .map_err(|e| session.fail(&e))?;
        Ok::<_, CliError>((config, workspaces, shared))
    }
    .await;
    spinner.done();
    let (config, workspaces, shared) = result?;
    if args.json {
        let json = serde_json::json!({
            "templates": config.templates,
            "workspaces": workspaces,
            "shared": shared,
        });
        println!("{json:#}");
        return Ok(ExitCode::SUCCESS);
    }
    let style = Style::stdout();
    print!(
        "{}",
        server_config::templates_table(style, &config.templates)
    );
    println!();
    if workspaces.is_empty() {
        println!("No workspaces. Start one: berth start TEMPLATE");
    } else {
        print!("{}", workspaces_table(style, &workspaces, args.all));
    }
    if !shared.is_empty() {
        println!("\nShared with you (join with berth attach ID):");
        let rows: Vec<Vec<String>> = shared
            .iter()
            .map(|w| {
                vec![
                    w.id.to_string(),
                    w.owner.to_string(),
                    w.template.clone(),
                    style.state(w.state.as_str()),
                ]
            })
            .collect();
        print!(
            "{}",
            output::table(style, &["ID", "OWNER", "TEMPLATE", "STATE"], &rows)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The first 8 characters of an id: what tables show and what `berth stop` accepts.
pub fn short(id: WorkspaceId) -> String {
    id.to_string().chars().take(8).collect()
}

fn workspaces_table(style: Style, workspaces: &[WorkspaceView], owners: bool) -> String {
    let now = OffsetDateTime::now_utc();
    let mut header = vec!["ID"];
    if owners {
        header.push("OWNER");
    }
    header.extend(["TEMPLATE", "STATE", "PERSIST", "NETWORK", "CREATED", "NOTE"]);
    let rows: Vec<Vec<String>> = workspaces
        .iter()
        .map(|w| {
            let mut row = vec![short(w.id)];
            if owners {
                row.push(w.owner.to_string());
            }
            row.extend([
                w.template.clone(),
                style.state(w.state.as_str()),
                if w.persistent { "yes" } else { "no" }.to_owned(),
                w.network.clone(),
                format!("{} ago", output::age(w.created_at, now)),
                w.alive_reason
                    .clone()
                    .unwrap_or_else(|| w.state_reason.clone()),
            ]);
            row
        })
        .collect();
    output::table(style, &header, &rows)
}

pub async fn start(args: StartArgs) -> Result<ExitCode, CliError> {
    let session = Session::open()?;
    if args.local {
        let options = local::StartOptions {
            persist: args.persist(),
            network: args.net.clone(),
            allow_host_access: args.allow_host_access,
        };
        return local::start(&session, &args.template, options, args.attach).await;
    }
    if looks_like_id(&args.template)
        && let Some(workspace) = own_by_id(&session, &args.template).await?
    {
        return start_again(&session, &workspace, &args).await;
    }
    let request = StartWorkspace {
        template: args.template.clone(),
        persist: args.persist(),
        network: args.net.clone(),
    };
    let spinner = Spinner::start(format!("starting {}", args.template));
    let started = session.client.start_workspace(&request).await;
    spinner.done();
    let workspace = started.map_err(|e| session.fail(&e))?;
    eprintln!(
        "Started {} workspace {} ({}, {}network {}).",
        workspace.template,
        short(workspace.id),
        workspace.state,
        if workspace.persistent {
            "persistent, "
        } else {
            ""
        },
        workspace.network
    );
    println!("{}", workspace.id);
    if args.attach {
        return attach::remote(&session, &workspace).await;
    }
    eprintln!("Attach a terminal: berth attach {}", short(workspace.id));
    Ok(ExitCode::SUCCESS)
}

/// Whether `text` may be a workspace id or a prefix of one rather than a template name.
fn looks_like_id(text: &str) -> bool {
    text.len() >= 4
        && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        && text.chars().any(|c| c.is_ascii_digit())
}

/// The caller's workspace whose id starts with `prefix`, if exactly one does.
async fn own_by_id(session: &Session, prefix: &str) -> Result<Option<WorkspaceView>, CliError> {
    let lower = prefix.to_ascii_lowercase();
    let mine = own(session).await?;
    let found: Vec<WorkspaceView> = mine
        .into_iter()
        .filter(|w| w.id.to_string().starts_with(&lower))
        .collect();
    Ok(match <[WorkspaceView; 1]>::try_from(found) {
        Ok([one]) => Some(one),
        Err(_) => None,
    })
}

/// `berth start ID`: a stopped workspace starts again, with its container if it kept one.
async fn start_again(
    session: &Session,
    workspace: &WorkspaceView,
    args: &StartArgs,
) -> Result<ExitCode, CliError> {
    if args.persist().is_some() || args.net.is_some() || args.local {
        return Err(CliError::new(
            "--persist, --no-persist, --net and --local are for new workspaces",
        )
        .hint("`berth persist` and `berth net` change an existing one"));
    }
    let workspace = if workspace.state == WorkspaceState::Running {
        eprintln!("{} is already running.", short(workspace.id));
        workspace.clone()
    } else {
        let spinner = Spinner::start(format!("starting {} again", short(workspace.id)));
        let started = session.client.restart_workspace(workspace.id).await;
        spinner.done();
        let started = started.map_err(|e| session.fail(&e))?;
        eprintln!(
            "Started {} ({}) again.",
            short(started.id),
            started.template
        );
        started
    };
    println!("{}", workspace.id);
    if args.attach {
        return attach::remote(session, &workspace).await;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn stop(args: StopArgs) -> Result<ExitCode, CliError> {
    let session = Session::open()?;
    if args.local {
        return local::stop(&session, &args.workspace).await;
    }
    let workspace = resolve(&session, &args.workspace, Which::Live).await?;
    let spinner = Spinner::start(format!("stopping {}", short(workspace.id)));
    let stopped = session.client.stop_workspace(workspace.id).await;
    spinner.done();
    let stopped = stopped.map_err(|e| session.fail(&e))?;
    eprintln!(
        "Stopped {} ({}): {}.",
        short(stopped.id),
        stopped.template,
        stopped.state_reason
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn rm(args: RmArgs) -> Result<ExitCode, CliError> {
    let session = Session::open()?;
    if args.local {
        return local::rm(&session, &args.workspace).await;
    }
    let workspace = resolve(&session, &args.workspace, Which::Any).await?;
    let spinner = Spinner::start(format!("removing {}", short(workspace.id)));
    let removed = session.client.delete_workspace(workspace.id).await;
    spinner.done();
    removed.map_err(|e| session.fail(&e))?;
    eprintln!("Removed {} ({}).", short(workspace.id), workspace.template);
    Ok(ExitCode::SUCCESS)
}

/// Which workspaces a template name may stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Pending, starting, running or stopping ones (stop, attach).
    Live,
    /// Any (rm).
    Any,
}

fn is_live(state: WorkspaceState) -> bool {
    matches!(
        state,
        WorkspaceState::Pending
            | WorkspaceState::Starting
            | WorkspaceState::Running
            | WorkspaceState::Stopping
    )
}

/// The workspace `query` names: a full id (fetched directly, so admins reach anyone's), a
/// unique prefix of the id of one of yours, or a template of which you have exactly one.
pub async fn resolve(
    session: &Session,
    query: &str,
    which: Which,
) -> Result<WorkspaceView, CliError> {
    if let Ok(id) = query.parse::<WorkspaceId>() {
        return session
            .client
            .workspace(id)
            .await
            .map_err(|e| session.fail(&e));
    }
    let mine = own(session).await?;
    pick(&mine, query, which).cloned()
}

/// The caller's own workspaces (an admin's list would otherwise be everyone's).
async fn own(session: &Session) -> Result<Vec<WorkspaceView>, CliError> {
    let me = match session
        .login
        .username
        .as_deref()
        .and_then(|u| Username::new(u).ok())
    {
        Some(me) => me,
        None => {
            let config = session.client.config().await;
            config.map_err(|e| session.fail(&e))?.user.username
        }
    };
    let query = WorkspaceQuery {
        owner: Some(me),
        ..WorkspaceQuery::default()
    };
    session
        .client
        .list_workspaces(&query)
        .await
        .map_err(|e| session.fail(&e))
}

/// [`resolve`] over a list: id prefixes first, then template names.
pub fn pick<'a>(
    workspaces: &'a [WorkspaceView],
    query: &str,
    which: Which,
) -> Result<&'a WorkspaceView, CliError> {
    let query = query.trim();
    if query.is_empty() {
        return Err(CliError::new("give a workspace id or template name"));
    }
    let lower = query.to_ascii_lowercase();
    let by_id: Vec<&WorkspaceView> = workspaces
        .iter()
        .filter(|w| w.id.to_string().starts_with(&lower))
        .collect();
    let ids = |list: &[&WorkspaceView]| {
        list.iter()
            .map(|w| short(w.id))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match by_id.as_slice() {
        [one] => return Ok(one),
        [] => {}
        many => {
            return Err(CliError::new(format!(
                "{query:?} matches {} workspaces ({})",
                many.len(),
                ids(many)
            ))
            .hint("give more of the id"));
        }
    }
    let by_template: Vec<&WorkspaceView> = workspaces
        .iter()
        .filter(|w| w.template == query && (which == Which::Any || is_live(w.state)))
        .collect();
    match by_template.as_slice() {
        [one] => Ok(one),
        [] => Err(
            CliError::new(format!("no workspace of yours matches {query:?}"))
                .hint("`berth ls` lists them"),
        ),
        many => Err(CliError::new(format!(
            "you have {} {}workspaces of {query}: {}",
            many.len(),
            if which == Which::Live { "live " } else { "" },
            ids(many)
        ))
        .hint("give the id (or a unique prefix) of one")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace(id: &str, template: &str, state: WorkspaceState) -> WorkspaceView {
        WorkspaceView {
            id: id.parse().unwrap(),
            template: template.into(),
            owner: Username::new("alice").unwrap(),
            state,
            persistent: false,
            network: "none".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            started_at: None,
            last_activity: OffsetDateTime::UNIX_EPOCH,
            expires_at: None,
            state_reason: String::new(),
            alive_reason: None,
        }
    }

    #[test]
    fn ids_prefixes_and_template_names_pick_one_workspace() {
        let list = vec![
            workspace(
                "0b6c2c1e-0000-4000-8000-000000000001",
                "base",
                WorkspaceState::Running,
            ),
            workspace(
                "0b6d0000-0000-4000-8000-000000000002",
                "python",
                WorkspaceState::Stopped,
            ),
            workspace(
                "9a000000-0000-4000-8000-000000000003",
                "python",
                WorkspaceState::Running,
            ),
            workspace(
                "9b000000-0000-4000-8000-000000000004",
                "base",
                WorkspaceState::Stopped,
            ),
        ];
        let id = |w: &WorkspaceView| w.id.to_string();
        assert_eq!(id(pick(&list, "0b6c", Which::Live).unwrap()), id(&list[0]));
        assert_eq!(id(pick(&list, "0B6D", Which::Live).unwrap()), id(&list[1]));
        let err = pick(&list, "0b6", Which::Live).unwrap_err().to_string();
        assert!(
            err.contains("matches 2") && err.contains("0b6c2c1e"),
            "{err}"
        );
        // One live `python`, and one live `base` (the stopped one does not count for stop).
        assert_eq!(
            id(pick(&list, "python", Which::Live).unwrap()),
            id(&list[2])
        );
        assert_eq!(id(pick(&list, "base", Which::Live).unwrap()), id(&list[0]));
        let err = pick(&list, "base", Which::Any).unwrap_err().to_string();
        assert!(err.contains("2 workspaces of base"), "{err}");
        let err = pick(&list, "nothing", Which::Any).unwrap_err().to_string();
        assert!(err.contains("berth ls"), "{err}");
        assert!(pick(&list, " ", Which::Any).is_err());
    }
}
