//! `berth login SERVER`: trade a password for a long-lived client token, or store a token as
//! given, in config.yaml. A login also repairs a damaged config.yaml.

use std::process::ExitCode;

use berth_client::api::Secret;
use berth_client::{Client, ClientError};
use berth_types::ClientId;

use super::errors::CliError;
use super::output::{Spinner, Style};
use super::settings::{Login, Settings, SettingsError};
use super::{paths, prompt, server_config};

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The server, e.g. `https://berth.lab` (`https://` is assumed when left out, `http://`
    /// for this machine).
    server: String,
    /// Trust this CA certificate (PEM) for the server besides the system's roots: a private CA
    /// or the server's self-signed certificate. Kept in config.yaml for later commands.
    #[arg(long, value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// Allow plain http:// to a server that is not this machine (the password and token cross
    /// the network in clear). Kept in config.yaml.
    #[arg(long)]
    insecure_http: bool,
    /// Your username; asked for on the terminal when neither it nor --token is given.
    #[arg(long, short = 'u', conflicts_with = "token")]
    username: Option<String>,
    /// Read the password from stdin (all of it, less one trailing newline), for scripts.
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// Store this token instead of logging in with a password: a client token an admin gave
    /// you (`POST /api/v1/users/NAME/token`) or a login token.
    #[arg(long, env = "BERTH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The client id given with --token; the agent's pings need it.
    #[arg(long, requires = "token", value_name = "UUID")]
    client_id: Option<ClientId>,
}

pub async fn run(args: LoginArgs) -> Result<ExitCode, CliError> {
    let path = paths::config_file()?;
    let (client_id, previous) = match Settings::load(&path) {
        Ok(settings) => (settings.client_id, settings.login),
        Err(SettingsError::Missing(_)) => (ClientId::random(), None),
        Err(err) => {
            let kept = Settings::salvage_client_id(&path);
            eprintln!(
                "{} {}; replacing it{}",
                Style::stderr().yellow("warning:"),
                err.into_cli().message(),
                if kept.is_some() {
                    " (keeping its client id)"
                } else {
                    ""
                }
            );
            (kept.unwrap_or_else(ClientId::random), None)
        }
    };
    let server = super::transport::normalize(&args.server);
    let ca = match &args.ca {
        Some(path) => Some(std::path::absolute(path).map_err(|e| {
            CliError::new(format!("cannot use the CA file {}: {e}", path.display()))
        })?),
        None => None,
    };
    let client = super::transport::client_for(&server, ca.as_deref(), args.insecure_http)?;
    let mut login = match args.token {
        Some(token) => with_token(&client, &server, token, args.client_id).await?,
        None => with_password(&client, &server, args.username, args.password_stdin).await?,
    };
    login.ca = ca;
    login.insecure_http = args.insecure_http;
    let username = login.username.clone().unwrap_or_default();
    let authed = client.clone().with_token(login.token.expose());
    let replaced = previous
        .filter(|p| p.server == server)
        .and_then(|p| p.token_client_id);
    if let Some(old) = replaced
        && Some(old) != login.token_client_id
    {
        // The token this login replaces is of no more use: do not leave it valid on the server.
        if let Err(err) = authed.revoke_token(old).await {
            tracing::debug!(error = %err, "could not revoke the previous token");
        }
    }
    let settings = Settings {
        client_id,
        login: Some(login),
    };
    settings.save(&path)?;
    if let Ok(config) = authed.config().await
        && let Err(err) = server_config::store_cache(&server, &config)
    {
        tracing::debug!(error = %err, "could not cache the configuration");
    }
    eprintln!(
        "Logged in to {server} as {username}; the token is in {}.",
        paths::display(&path)
    );
    if let Some(login) = &settings.login
        && let Some(expiry) = login.token_expires_at
    {
        let expiry = expiry
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        eprintln!(
            "{} this account cannot have client tokens (the main.yaml admin): the stored login \
             token expires at {expiry}. Log in with a users.yaml account for a lasting login.",
            Style::stderr().yellow("warning:")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks a given token against the server and keeps it.
async fn with_token(
    client: &Client,
    server: &str,
    token: String,
    client_id: Option<ClientId>,
) -> Result<Login, CliError> {
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(CliError::new("--token is empty"));
    }
    let spinner = Spinner::start("checking the token");
    let config = client.clone().with_token(&token).config().await;
    spinner.done();
    let config = config.map_err(|e| match e.status() {
        Some(401) => CliError::new(format!("{server} does not accept this token"))
            .hint("ask your admin for a new one"),
        _ => CliError::from_client(&e, server),
    })?;
    if client_id.is_none() {
        eprintln!(
            "{} no --client-id given: the agent cannot ping without the client id that came \
             with the token",
            Style::stderr().yellow("note:")
        );
    }
    Ok(Login {
        server: server.to_owned(),
        username: Some(config.user.username.to_string()),
        token: Secret::new(token),
        token_client_id: client_id,
        token_expires_at: None,
        ca: None,
        insecure_http: false,
    })
}

/// Logs in with a password and mints a client token labelled with this machine's name.
async fn with_password(
    client: &Client,
    server: &str,
    username: Option<String>,
    password_stdin: bool,
) -> Result<Login, CliError> {
    let username = match username {
        Some(name) => name,
        None => prompt::line(&format!("Username for {server}: "), "username").await?,
    };
    let password = if password_stdin {
        prompt::password_from_stdin()?
    } else {
        prompt::password(&format!("Password for {username}: ")).await?
    };
    let spinner = Spinner::start("logging in");
    let result = async {
        let jwt = client
            .login(&username, &password)
            .await
            .map_err(|e| login_failure(&e, server))?;
        let authed = client.clone().with_token(jwt.token.expose());
        match authed.create_token(Some(&super::hostname(100))).await {
            Ok(minted) => Ok(Login {
                server: server.to_owned(),
                username: Some(username.clone()),
                token: minted.token,
                token_client_id: Some(minted.client_id),
                token_expires_at: None,
                ca: None,
                insecure_http: false,
            }),
            // The main.yaml admin is not a users.yaml user: keep the 24 h login token.
            Err(e) if e.code() == Some("no_client_tokens") => Ok(Login {
                server: server.to_owned(),
                username: Some(username.clone()),
                token: jwt.token,
                token_client_id: None,
                token_expires_at: Some(jwt.expires_at),
                ca: None,
                insecure_http: false,
            }),
            Err(e) => Err(CliError::from_client(&e, server)),
        }
    }
    .await;
    spinner.done();
    result
}

fn login_failure(err: &ClientError, server: &str) -> CliError {
    match err.api() {
        Some(failure) if failure.status == 401 => CliError::new("wrong username or password")
            .hint("repeated failures lock the account for a few minutes"),
        _ => CliError::from_client(err, server),
    }
}

#[cfg(test)]
mod tests {
    use super::super::transport::normalize;

    #[test]
    fn servers_default_to_https_except_on_this_machine() {
        assert_eq!(normalize("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(normalize("http://h:1/"), "http://h:1");
        assert_eq!(normalize(" https://h "), "https://h");
        assert_eq!(normalize("h:8443"), "https://h:8443");
    }
}
