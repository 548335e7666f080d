//! Local mode, the lab client's original behaviour: `berth start --local TEMPLATE` runs a
//! template the server allows on this machine's Docker Engine (`DOCKER_HOST` or
//! `/var/run/docker.sock`), with the server's hardening, persistence and network rules;
//! `berth ls|stop|rm|attach --local` manage those containers, and the agent's pings report them.
//!
//! Containers are labelled `berth.managed=true`, `berth.local=true`,
//! `berth.instance=local-<client id>` (so a Berth server sharing the engine never touches
//! them), `berth.owner`, `berth.template`, `berth.workspace` (a UUID), `berth.persistent`,
//! `berth.network`, `berth.shell` and `berth.shared`. They are named
//! `berth-local-<template>-<first 8 of the UUID>`. Stopping an ephemeral one removes it with
//! its volumes; a persistent one is stopped and started again by the next `start --local` of
//! its template, and its volumes (`berth-local-<owner>-<template>-<volume>`) outlive it.

mod spec;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use berth_client::Template;
use berth_client::api::{ClientConfig, LocalWorkspace, PingRequest};
use berth_runtime::{
    ContainerId, ContainerRuntime, ContainerState, DockerOptions, DockerRuntime, RuntimeError,
};
use berth_types::{ClientId, WorkspaceId};
use serde::Serialize;

use super::errors::CliError;
use super::output::{self, Spinner, Style};
use super::{Session, attach, server_config};

pub use berth_core::network_mode;
pub use spec::{options, template_spec};

const LOCAL_LABEL: &str = "berth.local";
const INSTANCE_LABEL: &str = "berth.instance";
const OWNER_LABEL: &str = "berth.owner";
const TEMPLATE_LABEL: &str = "berth.template";
const WORKSPACE_LABEL: &str = "berth.workspace";
const PERSISTENT_LABEL: &str = "berth.persistent";
const NETWORK_LABEL: &str = "berth.network";
const SHELL_LABEL: &str = "berth.shell";
const SHARED_LABEL: &str = "berth.shared";

/// How long a stopping container's main process gets before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The `berth.instance` label of this installation's local containers.
pub fn instance(client_id: ClientId) -> String {
    format!("local-{client_id}")
}

/// What `berth start --local` was asked for.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    pub persist: Option<bool>,
    pub network: Option<String>,
    pub allow_host_access: bool,
}

/// One local workspace, from its container's labels.
#[derive(Debug, Clone, Serialize)]
pub struct LocalContainer {
    pub name: String,
    pub id: String,
    pub template: String,
    pub workspace: String,
    pub state: String,
    pub running: bool,
    pub persistent: bool,
    pub network: String,
    /// The template's shell and its arguments.
    pub shell: berth_config::Shell,
    pub shared: bool,
}

impl LocalContainer {
    fn container(&self) -> ContainerId {
        ContainerId::new(self.id.clone())
    }
}

/// The local Docker Engine and this installation's label.
#[derive(Debug, Clone)]
pub struct Engine {
    pub runtime: DockerRuntime,
    instance: String,
}

impl Engine {
    /// Connects to `DOCKER_HOST` or the default socket.
    pub async fn connect(client_id: ClientId) -> Result<Self, CliError> {
        let runtime = DockerRuntime::connect_env(DockerOptions::default())
            .await
            .map_err(engine_error)?;
        Ok(Self {
            runtime,
            instance: instance(client_id),
        })
    }

    /// This installation's local workspaces, oldest name first.
    pub async fn list(&self) -> Result<Vec<LocalContainer>, CliError> {
        let labels = BTreeMap::from([
            (LOCAL_LABEL.to_owned(), "true".to_owned()),
            (INSTANCE_LABEL.to_owned(), self.instance.clone()),
        ]);
        let mut list: Vec<LocalContainer> = self
            .runtime
            .list(&labels)
            .await
            .map_err(engine_error)?
            .into_iter()
            .map(|info| {
                let label = |key: &str| info.labels.get(key).cloned().unwrap_or_default();
                let (running, state) = match info.state {
                    ContainerState::Running => (true, "running".to_owned()),
                    ContainerState::Stopped { exit_code: None } => (false, "created".to_owned()),
                    ContainerState::Stopped { .. } | ContainerState::Missing => {
                        (false, "stopped".to_owned())
                    }
                };
                LocalContainer {
                    name: info.name.clone(),
                    id: info.id.as_str().to_owned(),
                    template: label(TEMPLATE_LABEL),
                    workspace: label(WORKSPACE_LABEL),
                    state,
                    running,
                    persistent: label(PERSISTENT_LABEL) == "true",
                    network: label(NETWORK_LABEL),
                    shell: shell_from_label(&label(SHELL_LABEL)),
                    shared: label(SHARED_LABEL) == "true",
                }
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    /// Creates and starts a container of `template` for `owner`.
    async fn create(
        &self,
        owner: &str,
        template: &Template,
        config: &ClientConfig<Template>,
        persistent: bool,
        network: &str,
    ) -> Result<LocalContainer, CliError> {
        let workspace = WorkspaceId::random().to_string();
        let short: String = workspace.chars().take(8).collect();
        let mut spec = template_spec(template, config);
        spec.name = format!("berth-local-{}-{short}", template.name);
        spec.network = network_mode(network);
        for volume in &mut spec.volumes {
            volume.persistent = persistent;
            volume.name = if persistent {
                format!("berth-local-{owner}-{}-{}", template.name, volume.name)
            } else {
                format!("berth-local-{workspace}-{}", volume.name)
            };
        }
        spec.labels.extend(BTreeMap::from([
            (LOCAL_LABEL.to_owned(), "true".to_owned()),
            (INSTANCE_LABEL.to_owned(), self.instance.clone()),
            (OWNER_LABEL.to_owned(), owner.to_owned()),
            (TEMPLATE_LABEL.to_owned(), template.name.clone()),
            (WORKSPACE_LABEL.to_owned(), workspace.clone()),
            (PERSISTENT_LABEL.to_owned(), persistent.to_string()),
            (NETWORK_LABEL.to_owned(), network.to_owned()),
            (SHELL_LABEL.to_owned(), shell_label(&template.shell)),
            (SHARED_LABEL.to_owned(), template.shared.to_string()),
        ]));
        let id = self.runtime.create(&spec).await.map_err(engine_error)?;
        if let Err(err) = self.runtime.start(&id).await {
            let _ = self.runtime.remove(&id).await;
            return Err(engine_error(err));
        }
        Ok(LocalContainer {
            name: spec.name,
            id: id.as_str().to_owned(),
            template: template.name.clone(),
            workspace,
            state: "running".into(),
            running: true,
            persistent,
            network: network.to_owned(),
            shell: template.shell.clone(),
            shared: template.shared,
        })
    }
}

/// Engine failures in the words of someone running the CLI on their own machine.
fn engine_error(err: RuntimeError) -> CliError {
    match err {
        RuntimeError::EngineNotRunning { socket, reason } => CliError::new(format!(
            "cannot reach the local Docker Engine at {} ({reason})",
            socket.display()
        ))
        .hint("start Docker, or point DOCKER_HOST at its socket (unix:///path)"),
        RuntimeError::PermissionDenied { socket } => CliError::new(format!(
            "permission denied on the Docker socket {}",
            socket.display()
        ))
        .hint("join the socket's group (usually `docker`) or run as root"),
        other => CliError::new(other.to_string()),
    }
}

/// The server's configuration, or the cached one when the server cannot be reached (local mode
/// works offline with what was fetched last).
async fn config(session: &Session) -> Result<ClientConfig<Template>, CliError> {
    match session.client.config().await {
        Ok(config) => {
            let _ = server_config::store_cache(session.server(), &config);
            Ok(config)
        }
        Err(err) if err.api().is_none() => match server_config::load_cache() {
            Ok(cached) if cached.server == session.server() => {
                eprintln!(
                    "{} {}; using the configuration cached {} ago",
                    Style::stderr().yellow("warning:"),
                    session.fail(&err).message(),
                    output::age(cached.fetched_at, time::OffsetDateTime::now_utc())
                );
                Ok(cached.config)
            }
            _ => Err(session.fail(&err)),
        },
        Err(err) => Err(session.fail(&err)),
    }
}

pub async fn ls(session: &Session, json: bool) -> Result<ExitCode, CliError> {
    let engine = Engine::connect(session.client_id).await?;
    let list = engine.list().await?;
    if json {
        println!("{:#}", serde_json::json!({ "local": list }));
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        println!("No local workspaces. Start one: berth start --local TEMPLATE");
        return Ok(ExitCode::SUCCESS);
    }
    let style = Style::stdout();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.template.clone(),
                style.state(&c.state),
                if c.persistent { "yes" } else { "no" }.to_owned(),
                c.network.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(
            style,
            &["NAME", "TEMPLATE", "STATE", "PERSIST", "NETWORK"],
            &rows
        )
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn start(
    session: &Session,
    template_name: &str,
    wanted: StartOptions,
    attach_after: bool,
) -> Result<ExitCode, CliError> {
    let config = config(session).await?;
    let Some(template) = config.templates.iter().find(|t| t.name == template_name) else {
        let yours: Vec<&str> = config.templates.iter().map(|t| t.name.as_str()).collect();
        return Err(CliError::new(format!(
            "you may not start template {template_name:?} (yours: {})",
            if yours.is_empty() {
                "none".to_owned()
            } else {
                yours.join(", ")
            }
        )));
    };
    if !wanted.allow_host_access {
        host_access(template)?;
    }
    let (persistent, network) = options(template, wanted.persist, wanted.network.as_deref())?;
    let owner = session
        .login
        .username
        .clone()
        .unwrap_or_else(|| config.user.username.to_string());
    let engine = Engine::connect(session.client_id).await?;
    let spinner = Spinner::start(format!("starting {template_name} locally"));
    let again = if persistent {
        engine.list().await?.into_iter().find(|c| {
            c.template == template.name && c.persistent && !c.running && c.network == network
        })
    } else {
        None
    };
    let result = match again {
        Some(mut stopped) => engine
            .runtime
            .start(&stopped.container())
            .await
            .map_err(engine_error)
            .map(|()| {
                stopped.running = true;
                stopped.state = "running".into();
                (stopped, true)
            }),
        None => engine
            .create(&owner, template, &config, persistent, &network)
            .await
            .map(|c| (c, false)),
    };
    spinner.done();
    let (container, restarted) = result?;
    eprintln!(
        "{} {} on the local Docker Engine as {} ({}, network {}).",
        if restarted {
            "Started again"
        } else {
            "Started"
        },
        template.name,
        container.name,
        if persistent {
            "persistent"
        } else {
            "ephemeral"
        },
        network
    );
    println!("{}", container.name);
    report(session, &engine).await;
    if attach_after {
        return attach::local(&engine, &container).await;
    }
    eprintln!("Attach a terminal: berth attach --local {}", container.name);
    Ok(ExitCode::SUCCESS)
}

/// Local mode runs what the server says on this machine: host directories and capabilities
/// that reach the host need the user's own consent.
fn host_access(template: &Template) -> Result<(), CliError> {
    let mut what = Vec::new();
    if !template.bind_mounts.is_empty() {
        let sources: Vec<String> = template
            .bind_mounts
            .iter()
            .map(|b| b.source.display().to_string())
            .collect();
        what.push(format!("mounts host directories ({})", sources.join(", ")));
    }
    if template.allow_dangerous_caps {
        what.push(format!(
            "adds capabilities that reach the host ({})",
            template.cap_add.join(", ")
        ));
    }
    if what.is_empty() {
        return Ok(());
    }
    Err(CliError::new(format!(
        "template {:?} {} on this machine",
        template.name,
        what.join(" and ")
    ))
    .hint("add --allow-host-access if you trust it with that"))
}

pub async fn stop(session: &Session, query: &str) -> Result<ExitCode, CliError> {
    let engine = Engine::connect(session.client_id).await?;
    let list = engine.list().await?;
    let container = pick(&list, query, true)?;
    let spinner = Spinner::start(format!("stopping {}", container.name));
    let result = if container.persistent {
        engine
            .runtime
            .stop(&container.container(), STOP_GRACE)
            .await
    } else {
        engine.runtime.remove(&container.container()).await
    };
    spinner.done();
    result.map_err(engine_error)?;
    if container.persistent {
        eprintln!(
            "Stopped {} (persistent: `berth start --local {}` starts it again).",
            container.name, container.template
        );
    } else {
        eprintln!("Stopped and removed {} (ephemeral).", container.name);
    }
    report(session, &engine).await;
    Ok(ExitCode::SUCCESS)
}

pub async fn rm(session: &Session, query: &str) -> Result<ExitCode, CliError> {
    let engine = Engine::connect(session.client_id).await?;
    let list = engine.list().await?;
    let container = pick(&list, query, false)?;
    let spinner = Spinner::start(format!("removing {}", container.name));
    let result = engine.runtime.remove(&container.container()).await;
    spinner.done();
    result.map_err(engine_error)?;
    eprintln!("Removed {}.", container.name);
    report(session, &engine).await;
    Ok(ExitCode::SUCCESS)
}

/// `berth attach --local QUERY`.
pub async fn attach_to(session: &Session, query: &str) -> Result<ExitCode, CliError> {
    let engine = Engine::connect(session.client_id).await?;
    let list = engine.list().await?;
    let container = pick(&list, query, true)?;
    if !container.running {
        return Err(
            CliError::new(format!("{} is not running", container.name)).hint(format!(
                "start it again: berth start --local {}",
                container.template
            )),
        );
    }
    attach::local(&engine, container).await
}

/// The local workspace `query` names: its container name or a unique prefix of it, of its
/// container id or of its workspace id; or its template when exactly one (live, for stop and
/// attach) is of it.
pub fn pick<'a>(
    list: &'a [LocalContainer],
    query: &str,
    live_only: bool,
) -> Result<&'a LocalContainer, CliError> {
    let query = query.trim();
    if query.is_empty() {
        return Err(CliError::new("give a local workspace's name or template"));
    }
    if let Some(exact) = list.iter().find(|c| c.name == query) {
        return Ok(exact);
    }
    let names = |found: &[&LocalContainer]| {
        found
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let lower = query.to_ascii_lowercase();
    let by_prefix: Vec<&LocalContainer> = list
        .iter()
        .filter(|c| {
            c.name.starts_with(query) || c.id.starts_with(&lower) || c.workspace.starts_with(&lower)
        })
        .collect();
    match by_prefix.as_slice() {
        [one] => return Ok(one),
        [] => {}
        many => {
            return Err(CliError::new(format!(
                "{query:?} matches {} local workspaces ({})",
                many.len(),
                names(many)
            )));
        }
    }
    let by_template: Vec<&LocalContainer> = list
        .iter()
        .filter(|c| c.template == query && (!live_only || c.running))
        .collect();
    match by_template.as_slice() {
        [one] => Ok(one),
        [] => Err(
            CliError::new(format!("no local workspace matches {query:?}"))
                .hint("`berth ls --local` lists them"),
        ),
        many => Err(CliError::new(format!(
            "{} local workspaces are of {query}: {}",
            many.len(),
            names(many)
        ))
        .hint("give the name of one")),
    }
}

/// What pings report: this installation's local workspaces, within the API's limits.
pub fn ping_entries(list: &[LocalContainer]) -> Vec<LocalWorkspace> {
    let clip = |text: &str, max: usize| -> String {
        let text: String = text.chars().filter(|c| !c.is_control()).take(max).collect();
        if text.is_empty() { "?".into() } else { text }
    };
    list.iter()
        .take(100)
        .map(|c| LocalWorkspace {
            id: clip(&c.name, 128),
            template: clip(&c.template, 63),
            state: clip(&c.state, 32),
        })
        .collect()
}

/// The ping a client sends, with the local workspaces of `engine` (none without one).
pub fn ping_body(token_client_id: ClientId, local: &[LocalContainer]) -> PingRequest {
    PingRequest {
        client_id: token_client_id,
        hostname: super::hostname(253),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        local_workspaces: ping_entries(local),
    }
}

/// Tells the server at once what runs locally now, so the dashboard need not wait for the
/// agent's next ping. Best effort: local mode works without the server.
async fn report(session: &Session, engine: &Engine) {
    let Some(client_id) = session.login.token_client_id else {
        return;
    };
    let Ok(list) = engine.list().await else {
        return;
    };
    let body = ping_body(client_id, &list);
    let quick = session.client.clone().with_timeout(Duration::from_secs(5));
    if let Err(err) = quick.ping(&body).await {
        tracing::debug!(error = %err, "could not report the local workspaces");
        if std::io::stderr().is_terminal() {
            eprintln!(
                "{} the server was not told (it will be at the agent's next ping): {}",
                Style::stderr().dim("note:"),
                session.fail(&err).message()
            );
        }
    }
}

/// The `berth.shell` label: the path alone, or the JSON list of the path and its arguments.
fn shell_label(shell: &berth_config::Shell) -> String {
    match shell.argv() {
        [program] => program.clone(),
        _ => serde_json::to_string(shell).unwrap_or_default(),
    }
}

/// The shell a `berth.shell` label names; an empty or unreadable one is the default shell.
fn shell_from_label(label: &str) -> berth_config::Shell {
    if label.starts_with('[') {
        serde_json::from_str(label).unwrap_or_default()
    } else if label.is_empty() {
        berth_config::Shell::default()
    } else {
        berth_config::Shell::new(label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_label_keeps_the_arguments() {
        let plain = berth_config::Shell::new("/bin/zsh");
        assert_eq!(shell_label(&plain), "/bin/zsh");
        assert_eq!(shell_from_label("/bin/zsh"), plain);
        let argv = berth_config::Shell::from_argv(vec!["/usr/bin/fish".into(), "--login".into()]);
        assert_eq!(shell_label(&argv), r#"["/usr/bin/fish","--login"]"#);
        assert_eq!(shell_from_label(&shell_label(&argv)), argv);
        // A container made before this, or a label someone broke, gets the default shell.
        assert_eq!(shell_from_label(""), berth_config::Shell::default());
        assert_eq!(shell_from_label("[broken"), berth_config::Shell::default());
    }

    fn container(name: &str, template: &str, running: bool) -> LocalContainer {
        LocalContainer {
            name: name.into(),
            id: format!("{:0<64}", name.len()),
            template: template.into(),
            workspace: String::new(),
            state: if running { "running" } else { "stopped" }.into(),
            running,
            persistent: false,
            network: "none".into(),
            shell: berth_config::Shell::default(),
            shared: false,
        }
    }

    #[test]
    fn names_prefixes_and_templates_pick_one_local_workspace() {
        let list = vec![
            container("berth-local-base-1a2b3c4d", "base", true),
            container("berth-local-base-9f8e7d6c", "base", false),
            container("berth-local-py-00112233", "py", true),
        ];
        let name = |c: &LocalContainer| c.name.clone();
        assert_eq!(
            name(pick(&list, "berth-local-py-00112233", true).unwrap()),
            list[2].name
        );
        assert_eq!(
            name(pick(&list, "berth-local-base-1", true).unwrap()),
            list[0].name
        );
        assert_eq!(
            name(pick(&list, "base", true).unwrap()),
            list[0].name,
            "the live one"
        );
        assert!(pick(&list, "base", false).is_err(), "two of base");
        assert!(
            pick(&list, "berth-local-base", true).is_err(),
            "two by prefix"
        );
        let err = pick(&list, "nope", true).unwrap_err().to_string();
        assert!(err.contains("berth ls --local"), "{err}");
    }

    #[test]
    fn pings_stay_within_the_api_limits() {
        let mut long = container(&"n".repeat(300), &"t".repeat(100), true);
        long.state = "weird\nstate".into();
        let many = vec![long; 150];
        let entries = ping_entries(&many);
        assert_eq!(entries.len(), 100);
        assert_eq!(entries[0].id.chars().count(), 128);
        assert_eq!(entries[0].template.chars().count(), 63);
        assert_eq!(entries[0].state, "weirdstate");
    }

    #[test]
    fn host_access_needs_consent() {
        let mut template = Template::new("base", "img");
        assert!(host_access(&template).is_ok());
        template.bind_mounts.push(berth_config::BindMount {
            source: "/srv/data".into(),
            target: "/data".into(),
            read_only: false,
        });
        let err = host_access(&template).unwrap_err().to_string();
        assert!(
            err.contains("/srv/data") && err.contains("--allow-host-access"),
            "{err}"
        );
    }
}
