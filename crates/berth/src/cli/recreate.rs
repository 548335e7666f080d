//! `berth persist ID on|off` and `berth net ID MODE`: the lab plan's commands to change how a
//! workspace runs.
//!
//! The server cannot change either on an existing workspace (its container was created with
//! them), so these commands **replace** the workspace: they check that the template allows the
//! new setting, remove the workspace and start a new one of the same template with the new
//! setting and the other one unchanged. What that loses is said before it happens, and needs
//! `--yes` (or a "y" at the terminal): an ephemeral workspace loses its container and files; a
//! persistent one loses what is outside its volumes (its volumes are kept, and a new persistent
//! workspace mounts them again). A stopped ephemeral workspace has nothing to lose.

use std::io::IsTerminal;
use std::process::ExitCode;

use berth_client::api::{StartWorkspace, WorkspaceState, WorkspaceView};
use berth_config::{Persist, Template};

use super::errors::CliError;
use super::output::Spinner;
use super::workspaces::{Which, resolve, short};
use super::{Session, prompt};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, clap::Args)]
pub struct PersistArgs {
    /// The workspace: id, unique id prefix, or template name.
    workspace: String,
    /// `on`: keep its container and volumes when it stops; `off`: remove them.
    #[arg(value_enum)]
    mode: OnOff,
    /// Replace the workspace without asking, even when that loses its files.
    #[arg(long, short = 'y')]
    yes: bool,
}

#[derive(Debug, clap::Args)]
pub struct NetArgs {
    /// The workspace: id, unique id prefix, or template name.
    workspace: String,
    /// `none`, `host` or a Docker network the template allows.
    mode: String,
    /// Replace the workspace without asking, even when that loses its files.
    #[arg(long, short = 'y')]
    yes: bool,
}

/// The setting to change.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Persist(bool),
    Network(String),
}

pub async fn persist(args: PersistArgs) -> Result<ExitCode, CliError> {
    let change = Change::Persist(args.mode == OnOff::On);
    replace(&args.workspace, change, args.yes).await
}

pub async fn net(args: NetArgs) -> Result<ExitCode, CliError> {
    replace(
        &args.workspace,
        Change::Network(args.mode.trim().to_owned()),
        args.yes,
    )
    .await
}

async fn replace(query: &str, change: Change, yes: bool) -> Result<ExitCode, CliError> {
    let session = Session::open()?;
    let workspace = resolve(&session, query, Which::Any).await?;
    let (persistent, network) = match &change {
        Change::Persist(on) => (*on, workspace.network.clone()),
        Change::Network(network) => (workspace.persistent, network.clone()),
    };
    if persistent == workspace.persistent && network == workspace.network {
        eprintln!(
            "{} is already {}: nothing to do.",
            short(workspace.id),
            describe(persistent, &network)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let config = session.fetch_config().await?;
    if workspace.owner != config.user.username {
        // A new workspace would be the caller's, not the owner's.
        return Err(CliError::new(format!(
            "{} is {}'s: only its owner can replace it",
            short(workspace.id),
            workspace.owner
        )));
    }
    let template = config
        .templates
        .iter()
        .find(|t| t.name == workspace.template)
        .ok_or_else(|| {
            CliError::new(format!(
                "you may no longer start template {:?}, so {} cannot be replaced",
                workspace.template,
                short(workspace.id)
            ))
        })?;
    allowed(template, &change)?;
    if let Some(loss) = loss(&workspace) {
        confirm(&workspace, &loss, yes).await?;
    }
    let spinner = Spinner::start(format!("replacing {}", short(workspace.id)));
    let removed = session.client.delete_workspace(workspace.id).await;
    let started = match removed {
        Ok(()) => Some(
            session
                .client
                .start_workspace(&StartWorkspace {
                    template: workspace.template.clone(),
                    persist: Some(persistent),
                    network: Some(network.clone()),
                })
                .await,
        ),
        Err(_) => None,
    };
    spinner.done();
    removed.map_err(|e| session.fail(&e))?;
    let new = match started {
        Some(Ok(new)) => new,
        Some(Err(err)) => {
            let why = session.fail(&err);
            return Err(CliError::new(format!(
                "removed {} but could not start its replacement: {}",
                short(workspace.id),
                why.message()
            ))
            .hint(format!(
                "start it yourself: berth start {} {} --net {network}",
                workspace.template,
                if persistent {
                    "--persist"
                } else {
                    "--no-persist"
                }
            )));
        }
        None => return Err(CliError::new("the workspace could not be removed")),
    };
    eprintln!(
        "Replaced {} with {} ({}).",
        short(workspace.id),
        short(new.id),
        describe(new.persistent, &new.network)
    );
    println!("{}", new.id);
    Ok(ExitCode::SUCCESS)
}

fn describe(persistent: bool, network: &str) -> String {
    format!(
        "{}, network {network}",
        if persistent {
            "persistent"
        } else {
            "ephemeral"
        }
    )
}

/// Refuses what the template does not allow, before anything is removed.
fn allowed(template: &Template, change: &Change) -> Result<(), CliError> {
    match change {
        Change::Persist(true) if template.persist == Persist::Never => Err(CliError::new(format!(
            "template {:?} does not keep workspaces",
            template.name
        ))),
        Change::Persist(false) if template.persist == Persist::Always => Err(CliError::new(
            format!("template {:?} always keeps workspaces", template.name),
        )),
        Change::Network(network)
            if *network != template.network && !template.networks.contains(network) =>
        {
            let mut allowed = vec![template.network.as_str()];
            allowed.extend(template.networks.iter().map(String::as_str));
            Err(CliError::new(format!(
                "template {:?} does not allow network {network:?} (allowed: {})",
                template.name,
                allowed.join(", ")
            )))
        }
        _ => Ok(()),
    }
}

/// What replacing `workspace` loses, if anything.
fn loss(workspace: &WorkspaceView) -> Option<String> {
    let has_container = workspace.persistent
        || !matches!(
            workspace.state,
            WorkspaceState::Stopped | WorkspaceState::Failed
        );
    match (workspace.persistent, has_container) {
        (_, false) => None,
        (false, true) => {
            Some("it is ephemeral: its container, its processes and its files are lost".to_owned())
        }
        (true, _) => Some(
            "its container is removed: files outside its volumes are lost (its volumes are \
             kept, and a new persistent workspace of the template mounts them)"
                .to_owned(),
        ),
    }
}

async fn confirm(workspace: &WorkspaceView, loss: &str, yes: bool) -> Result<(), CliError> {
    let what = format!(
        "this replaces workspace {} ({}) with a new one: {loss}",
        short(workspace.id),
        workspace.template
    );
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::new(what).hint("add --yes to go ahead"));
    }
    eprintln!("{what}.");
    let answer = prompt::line("Replace it? [y/N] ", "answer")
        .await
        .unwrap_or_default();
    if matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CliError::new("nothing changed"))
    }
}

#[cfg(test)]
mod tests {
    use berth_types::Username;
    use time::OffsetDateTime;

    use super::*;

    fn workspace(persistent: bool, state: WorkspaceState) -> WorkspaceView {
        WorkspaceView {
            id: berth_types::WorkspaceId::random(),
            template: "base".into(),
            owner: Username::new("alice").unwrap(),
            state,
            persistent,
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
    fn the_template_decides_what_may_change() {
        let mut template = Template::new("base", "img");
        template.networks = vec!["host".into()];
        assert!(allowed(&template, &Change::Network("host".into())).is_ok());
        assert!(allowed(&template, &Change::Network("none".into())).is_ok());
        let err = allowed(&template, &Change::Network("bridge".into())).unwrap_err();
        assert!(err.message().contains("allowed: none, host"), "{err}");
        assert!(allowed(&template, &Change::Persist(true)).is_ok());
        template.persist = Persist::Never;
        assert!(allowed(&template, &Change::Persist(true)).is_err());
        template.persist = Persist::Always;
        assert!(allowed(&template, &Change::Persist(false)).is_err());
    }

    #[test]
    fn only_a_stopped_ephemeral_workspace_loses_nothing() {
        assert!(loss(&workspace(false, WorkspaceState::Stopped)).is_none());
        assert!(loss(&workspace(false, WorkspaceState::Failed)).is_none());
        let running = loss(&workspace(false, WorkspaceState::Running)).unwrap();
        assert!(running.contains("ephemeral"), "{running}");
        let kept = loss(&workspace(true, WorkspaceState::Stopped)).unwrap();
        assert!(kept.contains("volumes are kept"), "{kept}");
    }
}
