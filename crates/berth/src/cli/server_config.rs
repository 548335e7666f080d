//! `berth config fetch|show`: the server's configuration for this user (`GET /api/v1/config`),
//! cached in `~/.cache/berth/config.json` so that it can be read without the server, and
//! `berth config check|schema` for the server's own files, in one `config` group.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use berth_client::Template;
use berth_client::api::ClientConfig;
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::errors::CliError;
use super::output::{self, Spinner, Style};
use super::settings::write_private;
use super::{Session, paths};
use crate::config_cmd;

/// A cache larger than this is not read.
const MAX_CACHE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    #[command(flatten)]
    Server(config_cmd::ConfigCommand),
    /// Fetch your configuration from the server (templates you may start, limits) and cache it.
    #[command(after_help = "Example:\n  berth config fetch\n\nThe cache is \
        $XDG_CACHE_HOME/berth/config.json (~/.cache/berth/config.json); `berth ls` and the agent \
        refresh it too.")]
    Fetch,
    /// Print the cached configuration (fetched by `berth config fetch`, `berth ls` or the agent).
    #[command(
        after_help = "Examples:\n  berth config show\n  berth config show --json | jq \
        '.config.templates[].name'"
    )]
    Show(ShowArgs),
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Print JSON: `{server, fetched_at, config}`.
    #[arg(long)]
    json: bool,
}

/// The cache file's content.
#[derive(Debug, Serialize, Deserialize)]
pub struct Cached {
    /// The server it came from.
    pub server: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub fetched_at: OffsetDateTime,
    /// What `GET /api/v1/config` answered.
    pub config: ClientConfig<Template>,
}

/// Writes the cache (private: it names the user's templates and limits).
pub fn store_cache(server: &str, config: &ClientConfig<Template>) -> Result<(), CliError> {
    let cached = Cached {
        server: server.to_owned(),
        fetched_at: OffsetDateTime::now_utc(),
        config: config.clone(),
    };
    let json = serde_json::to_vec_pretty(&cached)
        .map_err(|e| CliError::new(format!("cannot encode the configuration: {e}")))?;
    write_private(&paths::config_cache()?, &json)
}

/// Reads the cache.
pub fn load_cache() -> Result<Cached, CliError> {
    let path = paths::config_cache()?;
    read_cache(&path)
}

fn read_cache(path: &Path) -> Result<Cached, CliError> {
    let shown = paths::display(path);
    let meta = fs::metadata(path).map_err(|_| {
        CliError::new(format!("no cached configuration ({shown} does not exist)"))
            .hint("run `berth config fetch`")
    })?;
    if meta.len() > MAX_CACHE_BYTES {
        return Err(CliError::new(format!("{shown} is too large to be a cache"))
            .hint("run `berth config fetch` to replace it"));
    }
    let bytes = fs::read(path).map_err(|e| CliError::new(format!("cannot read {shown}: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        CliError::new(format!("{shown} is damaged: {e}"))
            .hint("run `berth config fetch` to replace it")
    })
}

pub async fn run(command: ConfigCommand) -> Result<ExitCode, CliError> {
    match command {
        ConfigCommand::Server(command) => match config_cmd::run(command) {
            Ok(code) => Ok(code),
            Err(err) => Err(CliError::new(format!("{err:#}"))),
        },
        ConfigCommand::Fetch => fetch().await,
        ConfigCommand::Show(args) => show(&args),
    }
}

async fn fetch() -> Result<ExitCode, CliError> {
    let session = Session::open()?;
    let spinner = Spinner::start("fetching the configuration");
    let config = session.client.config().await;
    spinner.done();
    let config = config.map_err(|e| session.fail(&e))?;
    store_cache(session.server(), &config)?;
    eprintln!(
        "Fetched the configuration of {} from {}: {} template(s); cached in {}.",
        config.user.username,
        session.server(),
        config.templates.len(),
        paths::display(&paths::config_cache()?)
    );
    Ok(ExitCode::SUCCESS)
}

fn show(args: &ShowArgs) -> Result<ExitCode, CliError> {
    let cached = load_cache()?;
    if args.json {
        println!("{}", super::output::pretty_json(&cached)?);
        return Ok(ExitCode::SUCCESS);
    }
    let style = Style::stdout();
    let config = &cached.config;
    let now = OffsetDateTime::now_utc();
    let limits = &config.limits;
    println!(
        "{} {}  (fetched {} ago)",
        style.bold("Server:  "),
        cached.server,
        output::age(cached.fetched_at, now)
    );
    println!(
        "{} {} ({})",
        style.bold("User:    "),
        config.user.username,
        config.user.role
    );
    println!(
        "{} {} workspace(s) at once{}{}",
        style.bold("Limits:  "),
        limits.max_workspaces,
        limits
            .memory_bytes
            .map(|m| format!(", memory {}", output::bytes(m)))
            .unwrap_or_default(),
        limits
            .cpus
            .map(|c| format!(", {c} CPUs"))
            .unwrap_or_default()
    );
    println!(
        "{} memory {}, {} processes, idle timeout {} s; ping every {} s",
        style.bold("Defaults:"),
        output::bytes(config.defaults.memory_bytes),
        config.defaults.pids_limit,
        config.defaults.idle_timeout_seconds,
        config.ping_interval_seconds
    );
    println!();
    print!("{}", templates_table(style, &config.templates));
    Ok(ExitCode::SUCCESS)
}

/// The templates as a table: name, image, persist, networks, description.
pub fn templates_table(style: Style, templates: &[Template]) -> String {
    if templates.is_empty() {
        return "No templates: ask your admin to allow you some.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = templates
        .iter()
        .map(|t| {
            let mut networks = vec![t.network.clone()];
            networks.extend(t.networks.iter().cloned());
            vec![
                t.name.clone(),
                t.image.clone(),
                format!("{:?}", t.persist).to_lowercase(),
                networks.join(","),
                t.description.clone(),
            ]
        })
        .collect();
    output::table(
        style,
        &["TEMPLATE", "IMAGE", "PERSIST", "NETWORKS", "DESCRIPTION"],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_cache_says_how_to_replace_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let err = read_cache(&path).unwrap_err().to_string();
        assert!(err.contains("berth config fetch"), "{err}");
        fs::write(&path, "{\"server\": 1").unwrap();
        let err = read_cache(&path).unwrap_err().to_string();
        assert!(
            err.contains("damaged") && err.contains("berth config fetch"),
            "{err}"
        );
    }
}
