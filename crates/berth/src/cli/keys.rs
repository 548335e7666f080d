//! `berth keys add|ls|rm`: the SSH public keys you (or, for admins, `--user`) log in to
//! Berth's SSH gateway with (`/api/v1/users/{name}/keys`).

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use berth_client::api::SshKeyView;

use super::Session;
use super::errors::CliError;
use super::output::{self, Style};

/// The most a key file may hold: a public key is a line of a few hundred bytes.
const MAX_KEY_FILE: u64 = 64 * 1024;

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Add a public key: a file such as ~/.ssh/id_ed25519.pub, or - for standard input.
    /// Without FILE, the first of ~/.ssh/id_ed25519.pub, id_ecdsa.pub and id_rsa.pub.
    #[command(
        after_help = "Examples:\n  berth keys add\n  berth keys add ~/.ssh/work.pub\n  \
        ssh-add -L | head -1 | berth keys add -\n  berth keys add --user alice alice.pub   # admins\n\n\
        Only the public half: a private key is refused and never sent."
    )]
    Add(AddArgs),
    /// List your public keys with their fingerprints.
    #[command(
        visible_alias = "list",
        after_help = "Examples:\n  berth keys ls\n  \
        berth keys ls --json | jq -r '.[].fingerprint'"
    )]
    Ls(LsArgs),
    /// Remove a key by its fingerprint (as `berth keys ls` prints it). Sessions opened with
    /// it are closed.
    #[command(
        visible_alias = "remove",
        after_help = "Examples:\n  \
        berth keys rm SHA256:O8V0FwqbCHaaSx29SKJ9/oYCcjg+t7C+emeUS/dAbg8"
    )]
    Rm(RmArgs),
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The public key file; - reads standard input.
    file: Option<PathBuf>,
    /// Whose keys (admins): another user's.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Whose keys (admins): another user's.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Print the keys as a JSON array (the API's key objects).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// The key's fingerprint: SHA256:...
    fingerprint: String,
    /// Whose keys (admins): another user's.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
}

pub async fn run(command: KeysCommand) -> Result<ExitCode, CliError> {
    let session = Session::open()?;
    match command {
        KeysCommand::Add(args) => add(&session, args).await,
        KeysCommand::Ls(args) => ls(&session, &args).await,
        KeysCommand::Rm(args) => rm(&session, &args).await,
    }
}

/// Whose keys: `--user`, else the logged-in user.
fn owner(session: &Session, user: Option<&str>) -> Result<String, CliError> {
    user.map(str::to_owned)
        .or_else(|| session.login.username.clone())
        .ok_or_else(|| {
            CliError::new("this login does not say whose it is").hint("name the user with --user")
        })
}

/// The key text of `file` (standard input for `-`; the usual key files when none).
fn read_key(file: Option<&PathBuf>) -> Result<String, CliError> {
    let read = |path: &PathBuf| -> Result<String, CliError> {
        let mut text = String::new();
        let opened = std::fs::File::open(path)
            .map_err(|e| CliError::new(format!("cannot read {}: {e}", path.display())))?;
        opened
            .take(MAX_KEY_FILE + 1)
            .read_to_string(&mut text)
            .map_err(|e| CliError::new(format!("cannot read {}: {e}", path.display())))?;
        Ok(text)
    };
    let text = match file {
        Some(path) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .take(MAX_KEY_FILE + 1)
                .read_to_string(&mut text)
                .map_err(|e| CliError::new(format!("cannot read standard input: {e}")))?;
            text
        }
        Some(path) => read(path)?,
        None => {
            let home = std::env::var_os("HOME").map(PathBuf::from).ok_or_else(|| {
                CliError::new("HOME is not set").hint("name the key file: berth keys add FILE")
            })?;
            let found = ["id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"]
                .iter()
                .map(|name| home.join(".ssh").join(name))
                .find(|path| path.is_file())
                .ok_or_else(|| {
                    CliError::new("no public key in ~/.ssh (id_ed25519.pub, id_ecdsa.pub, id_rsa.pub)")
                        .hint("make one with `ssh-keygen -t ed25519`, or name the file: berth keys add FILE")
                })?;
            read(&found)?
        }
    };
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(CliError::new(
            "that is far too long for a public key (a line of a few hundred characters)",
        ));
    }
    if text.contains("PRIVATE KEY") {
        // Never sent: it would leave this machine.
        return Err(CliError::new("that is a private key; give its .pub file")
            .hint("the public half is next to it: berth keys add ~/.ssh/id_ed25519.pub"));
    }
    Ok(text.trim().to_owned())
}

async fn add(session: &Session, args: AddArgs) -> Result<ExitCode, CliError> {
    let user = owner(session, args.user.as_deref())?;
    let key = read_key(args.file.as_ref())?;
    if key.is_empty() {
        return Err(CliError::new("the key is empty"));
    }
    let added = session
        .client
        .add_ssh_key(&user, &key)
        .await
        .map_err(|e| session.fail(&e))?;
    let style = Style::stdout();
    println!(
        "{} {} {}{}",
        style.green("added"),
        added.fingerprint,
        added.algorithm,
        if added.comment.is_empty() {
            String::new()
        } else {
            format!(" ({})", output::safe(&added.comment))
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn rows(keys: &[SshKeyView]) -> Vec<Vec<String>> {
    keys.iter()
        .map(|key| {
            vec![
                key.fingerprint.clone(),
                key.algorithm.clone(),
                output::safe(&key.comment),
            ]
        })
        .collect()
}

async fn ls(session: &Session, args: &LsArgs) -> Result<ExitCode, CliError> {
    let user = owner(session, args.user.as_deref())?;
    let keys = session
        .client
        .ssh_keys(&user)
        .await
        .map_err(|e| session.fail(&e))?;
    if args.json {
        println!("{}", output::pretty_json(&keys)?);
    } else if keys.is_empty() {
        println!("no SSH keys: add one with `berth keys add`");
    } else {
        print!(
            "{}",
            output::table(
                Style::stdout(),
                &["FINGERPRINT", "TYPE", "COMMENT"],
                &rows(&keys)
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn rm(session: &Session, args: &RmArgs) -> Result<ExitCode, CliError> {
    let user = owner(session, args.user.as_deref())?;
    if !args.fingerprint.starts_with("SHA256:") {
        return Err(
            CliError::new(format!("{:?} is not a fingerprint", args.fingerprint))
                .hint("fingerprints look like SHA256:…; `berth keys ls` prints them"),
        );
    }
    session
        .client
        .remove_ssh_key(&user, &args.fingerprint)
        .await
        .map_err(|e| session.fail(&e))?;
    println!("removed {}", args.fingerprint);
    Ok(ExitCode::SUCCESS)
}
