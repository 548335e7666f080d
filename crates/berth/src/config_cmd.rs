//! `berth config check` and `berth config schema`.

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
