//! The `berth` CLI: log in, list, start, stop, attach to workspaces on a Berth server or on the
//! local Docker Engine, keep a cached copy of the server's configuration for the user, see
//! and tend the server's fleet of machines, run inventory scripts on them, ask for throwaway
//! Kubernetes clusters, and (admins) invite people to sign up.
//!
//! One module per command group; this one holds what they share: running a command on a Tokio
//! runtime, and the [`Session`] of a logged-in user (settings, API client, cached config).

pub mod attach;
pub mod clusters;
pub mod completions;
pub mod errors;
mod flat_yaml;
pub mod fleet;
pub mod keys;
pub mod local;
pub mod login;
pub mod machines;
pub mod operations;
pub mod output;
pub mod paths;
mod prompt;
pub mod recreate;
pub mod server_config;
pub mod settings;
pub mod sharing;
pub mod transport;
pub mod users;
pub mod workspaces;

use std::future::Future;
use std::process::ExitCode;

use berth_client::api::ClientConfig;
use berth_client::{Client, ClientError, Template};
use berth_types::ClientId;
use time::OffsetDateTime;

use self::errors::CliError;
use self::settings::{Login, Settings};

/// Runs `command` on a single-threaded Tokio runtime and reports its failure, if any.
pub fn execute(command: impl Future<Output = Result<ExitCode, CliError>>) -> ExitCode {
    // `BERTH_LOG=debug berth ls` shows what the CLI does (the agent has its own logging, which
    // this leaves in place).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return CliError::new(format!("cannot start: {err}")).report(),
    };
    match runtime.block_on(command) {
        Ok(code) => code,
        Err(err) => err.report(),
    }
}

/// A logged-in user: the settings file, the login in it and an API client with its token.
#[derive(Debug)]
pub struct Session {
    /// This installation.
    pub client_id: ClientId,
    /// The server and token.
    pub login: Login,
    /// The API client, with the token.
    pub client: Client,
}

impl Session {
    /// Reads the settings and refuses to go on without a usable login.
    pub fn open() -> Result<Self, CliError> {
        let path = paths::config_file()?;
        let settings = Settings::load(&path).map_err(settings::SettingsError::into_cli)?;
        let Some(login) = settings.login else {
            return Err(CliError::new(format!(
                "not logged in ({} has no server)",
                paths::display(&path)
            ))
            .hint("run `berth login SERVER`"));
        };
        if let Some(expiry) = login.token_expires_at
            && expiry <= OffsetDateTime::now_utc()
        {
            return Err(
                CliError::new(format!("your login token for {} expired", login.server))
                    .hint(format!("run `berth login {}`", login.server)),
            );
        }
        let client = login.client()?.with_token(login.token.expose());
        Ok(Self {
            client_id: settings.client_id,
            login,
            client,
        })
    }

    /// The server's URL.
    pub fn server(&self) -> &str {
        &self.login.server
    }

    /// A failed call, in the words of someone using the CLI.
    pub fn fail(&self, err: &ClientError) -> CliError {
        CliError::from_client(err, self.server())
    }

    /// `GET /api/v1/config`, cached for `berth config show` and for `--local` without a server.
    pub async fn fetch_config(&self) -> Result<ClientConfig<Template>, CliError> {
        let config = self.client.config().await.map_err(|e| self.fail(&e))?;
        if let Err(err) = server_config::store_cache(self.server(), &config) {
            tracing::debug!(error = %err, "could not cache the configuration");
        }
        Ok(config)
    }
}

/// This machine's name, at most `max` characters, without control characters: the label of a
/// new token and the hostname of pings.
pub fn hostname(max: usize) -> String {
    let uname = rustix::system::uname();
    let name: String = uname
        .nodename()
        .to_string_lossy()
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect();
    if name.is_empty() {
        "unknown".to_owned()
    } else {
        name
    }
}
