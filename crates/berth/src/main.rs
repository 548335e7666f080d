//! The `berth` binary: the server (`berth serve`), configuration tools (`berth config …`) and,
//! as they arrive, the CLI and the agent. Each command lives in its own module; this file only
//! parses arguments and dispatches.

mod config_cmd;
mod home;
mod logging;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Berth gives people shells: isolated workspaces from container templates, reached from a
/// browser terminal or this CLI.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the Berth server.
    ///
    /// On first start with an empty home, writes a commented default configuration to
    /// HOME/config/, creates the admin account and prints its password once.
    #[command(
        after_help = "Examples:\n  berth serve --home ./berth-home --listen 127.0.0.1:8080\n  \
                            BERTH_HOME=/srv/berth berth serve\n\nSignals: SIGHUP reloads the \
                            configuration (a bad file keeps the old one); SIGTERM or SIGINT \
                            shut down gracefully within 5 s."
    )]
    Serve(serve::ServeArgs),
    /// Validate the configuration or print its JSON Schema.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
}

/// `--home DIR`, shared by every command that reads `$BERTH_HOME`.
#[derive(Debug, clap::Args)]
struct HomeArg {
    /// Berth's data directory (config/, logs/, recordings/, berth.db). Defaults to
    /// /var/lib/berth for root, else $XDG_DATA_HOME/berth or ~/.local/share/berth.
    #[arg(long, env = "BERTH_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Config(command) => config_cmd::run(command),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // Logged for the record (when logging is up) and printed for the person at the shell.
            tracing::error!(error = %format!("{err:#}"), "berth failed");
            eprintln!("berth: {err:#}");
            ExitCode::FAILURE
        }
    }
}
