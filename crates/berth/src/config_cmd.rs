//! `berth config check`, `berth config schema` and `berth config metrics-token`.

use std::process::ExitCode;

use clap::Subcommand;

use crate::HomeArg;
use crate::home::Home;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate HOME/config and print every error found (exit status 1 if any).
    #[command(
        after_help = "Example:\n  berth config check --home /var/lib/berth\n\nEach error \
                            reads FILE:LINE: FIELD PATH: MESSAGE, for example\n  users.yaml:12: \
                            users[2].templates[0]: unknown template \"pyhton\""
    )]
    Check(HomeArg),
    /// Print the JSON Schema of main.yaml, users.yaml, containers.yaml and users.d/*.yaml.
    #[command(after_help = "Example:\n  berth config schema > berth-config.schema.json")]
    Schema,
    /// Make the token /metrics asks for (replacing any other), or remove it.
    #[command(
        after_help = "Examples:\n  berth config metrics-token --home /var/lib/berth\n  \
        berth config metrics-token --remove\n\n\
        The token is printed once on stdout; main.yaml keeps only its SHA-256 \
        (security.metrics_token_hash). A running server picks it up on SIGHUP \
        (systemctl reload berth). Prometheus sends it with\n  \
        authorization:\n    credentials: TOKEN\n\
        Without a token, /metrics answers anyone."
    )]
    MetricsToken(MetricsTokenArgs),
}

#[derive(Debug, clap::Args)]
pub struct MetricsTokenArgs {
    #[command(flatten)]
    home: HomeArg,
    /// Remove the token: /metrics answers anyone again.
    #[arg(long)]
    remove: bool,
}

pub fn run(command: ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Check(HomeArg { home }) => {
            let home = Home::resolve(home)?;
            let dir = home.config();
            if !dir.is_dir() {
                anyhow::bail!(
                    "{} is not a directory: nothing to check (berth serve writes a default \
                     configuration on first start)",
                    dir.display()
                );
            }
            match berth_config::check(&dir) {
                Ok(_) => {
                    eprintln!("{}: configuration is valid", dir.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(errors) => {
                    for error in errors.iter() {
                        eprintln!("{error}");
                    }
                    eprintln!("{}: {} error(s)", dir.display(), errors.len());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        ConfigCommand::MetricsToken(MetricsTokenArgs { home, remove }) => {
            let home = Home::resolve(home.home)?;
            let store = berth_config::ConfigStore::open(home.config()).map_err(|e| {
                anyhow::anyhow!("{e} (berth serve writes a configuration on first start)")
            })?;
            if remove {
                if store.remove_metrics_token()? {
                    eprintln!("The metrics token is removed: /metrics answers anyone.");
                } else {
                    eprintln!("There was no metrics token: /metrics answers anyone.");
                }
            } else {
                let token = store.issue_metrics_token()?;
                #[allow(clippy::print_stdout)]
                {
                    println!("{}", token.expose());
                }
                eprintln!(
                    "This is the only time the token is shown. /metrics now asks for \
                     `Authorization: Bearer TOKEN`."
                );
            }
            eprintln!(
                "A running server uses the change after SIGHUP (systemctl reload berth) or a restart."
            );
            Ok(ExitCode::SUCCESS)
        }
        ConfigCommand::Schema => {
            let schema = serde_json::to_string_pretty(&berth_config::json_schema())?;
            #[allow(clippy::print_stdout)]
            {
                println!("{schema}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
