//! The `berth` binary: the server (`berth serve`), configuration tools (`berth config …`), the
//! CLI (`berth login`, `ls`, `start`, `attach`, …) and the agent (`berth agent`). Each command
//! lives in its own module; this file only parses arguments and dispatches.

mod agent;
mod backup;
mod cli;
mod config_cmd;
mod home;
mod logging;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Berth gives people shells: isolated workspaces from container templates, reached from a
/// browser terminal or this CLI.
#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = "Examples:\n  berth login https://berth.lab --username alice\n  berth ls\n  \
                  berth start python --attach\n  berth stop python\n  berth start --local python\n\n\
                  `berth help COMMAND` shows a command's options and examples; docs/cli.md has the \
                  whole guide."
)]
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
    /// Write one archive of a home (configuration, database snapshot, keys, recordings),
    /// while the server runs.
    #[command(
        after_help = "Examples:\n  berth backup /backups/berth-$(date +%F).tar --home \
        /var/lib/berth\n  sudo -u berth berth backup /backups/berth.tar --force\n\n\
        The archive (a plain tar file, mode 0600: it holds every key of the home) is written as \
        FILE.tmp and renamed when complete. With PostgreSQL the database is not in it: use \
        pg_dump. docs/backup.md has the whole story."
    )]
    Backup(backup::BackupArgs),
    /// Restore an archive of `berth backup` into a new or empty home.
    #[command(after_help = "Examples:\n  berth restore /backups/berth.tar --home \
        /var/lib/berth\n  berth serve --home /var/lib/berth\n\n\
        A non-empty home, an archive without a valid manifest (or of a newer format) and \
        entries a backup never holds (absolute paths, .., links, devices, oversized files) are \
        refused, and nothing is left behind.")]
    Restore(backup::RestoreArgs),
    /// Check the server's configuration or print its schema; fetch or show yours.
    #[command(subcommand)]
    Config(cli::server_config::ConfigCommand),
    /// Log in to a Berth server and store a token for this machine.
    #[command(
        after_help = "Examples:\n  berth login https://berth.lab --username alice\n  \
        echo \"$PASSWORD\" | berth login berth.lab:8080 --username alice --password-stdin\n  \
        berth login https://berth.lab --token 0b6c… --client-id 6f1c…\n  \
        berth login https://berth.lab --ca ca.pem --username alice   # a private CA\n\n\
        A password login mints a client token labelled with this machine's name and stores it \
        (not the password) in $XDG_CONFIG_HOME/berth/config.yaml (~/.config/berth/config.yaml), \
        mode 0600. Logging in again replaces the token and repairs a damaged file."
    )]
    Login(cli::login::LoginArgs),
    /// List the templates you may start and your workspaces.
    #[command(
        after_help = "Examples:\n  berth ls\n  berth ls --json | jq '.workspaces[].id'\n  \
        berth ls --local"
    )]
    Ls(cli::workspaces::LsArgs),
    /// Start a workspace from a template (or a stopped workspace again).
    #[command(
        after_help = "Examples:\n  berth start python\n  berth start python --persist \
        --net host --attach\n  berth start 0b6c2c1e           # a stopped workspace, again\n  \
        berth start --local python     # on this machine's Docker Engine\n\n\
        The new workspace's id is printed on stdout."
    )]
    Start(cli::workspaces::StartArgs),
    /// Stop a workspace (an ephemeral one loses its container).
    #[command(
        after_help = "Examples:\n  berth stop 0b6c2c1e\n  berth stop 0b6   # a unique \
        prefix of the id\n  berth stop python  # your one live workspace of python\n  \
        berth stop --local berth-local-python-1a2b3c4d"
    )]
    Stop(cli::workspaces::StopArgs),
    /// Remove a workspace (a persistent one's volumes are kept).
    #[command(after_help = "Examples:\n  berth rm 0b6c2c1e\n  berth rm --local \
        berth-local-python-1a2b3c4d")]
    Rm(cli::workspaces::RmArgs),
    /// Open a terminal in a running workspace.
    #[command(
        after_help = "Examples:\n  berth attach 0b6c2c1e\n  berth attach python\n  \
        berth attach --local berth-local-python-1a2b3c4d\n\n\
        Detach with Ctrl-] then d (the workspace keeps running; a non-shared workspace's shell \
        ends with its terminal). berth exits with the shell's exit status."
    )]
    Attach(cli::attach::AttachArgs),
    /// Invite others to a shared workspace, take them out, or see who is in it.
    #[command(
        after_help = "Examples:\n  berth share pair                 # members and who is connected\n  \
        berth share pair bob             # bob may type\n  berth share pair carol --viewer  \
        # carol watches; the server drops her typing\n  berth share pair bob --remove    # \
        his terminals close at once\n\n\
        Only shared templates have members; invitees join with berth attach WORKSPACE-ID."
    )]
    Share(cli::sharing::ShareArgs),
    /// List recorded terminal sessions (yours, or one workspace's), or download one.
    #[command(
        after_help = "Examples:\n  berth recordings                # the newest you may watch\n  \
        berth recordings python\n  berth recordings --owner alice  # admins: one user's\n  \
        berth recordings --cast 6f1c…-… -o session.cast && asciinema play session.cast\n\n\
        The owner of the workspace and admins see its recordings; members do not."
    )]
    Recordings(cli::sharing::RecordingsArgs),
    /// Keep a workspace's files when it stops, or not (replaces the workspace).
    #[command(
        after_help = "Examples:\n  berth persist 0b6c2c1e on\n  berth persist python off \
        --yes\n\nThe server cannot change this on an existing workspace: berth removes it and \
        starts a new one of the same template. What that loses is shown first; --yes skips the \
        question."
    )]
    Persist(cli::recreate::PersistArgs),
    /// Change a workspace's network (replaces the workspace).
    #[command(
        after_help = "Examples:\n  berth net 0b6c2c1e host\n  berth net python none --yes\n\n\
        The server cannot change this on an existing workspace: berth removes it and starts a \
        new one of the same template with the new network."
    )]
    Net(cli::recreate::NetArgs),
    /// List the fleet machines you may see, with enrollment and health; or show one.
    #[command(
        after_help = "Examples:\n  berth machines\n  berth machines --tag web --status \
        offline\n  berth machines --enrollment host_key_unknown\n  berth machines --json | jq -r \
        '.[].id'\n  berth machines show web-1\n\n\
        Admins see every machine of links.yaml; a user sees those the `machines:` selectors of \
        their users.yaml entry match. Every page is fetched."
    )]
    Machines(cli::machines::MachinesArgs),
    /// Your SSH public keys, for `ssh -p PORT you@berth-host` into your workspaces.
    #[command(
        subcommand,
        after_help = "Examples:\n  berth keys add                  # ~/.ssh/id_ed25519.pub\n  \
        berth keys ls\n  berth keys rm SHA256:…\n\n\
        The server's SSH gateway (main.yaml `ssh.listen`) lets these keys in as you: \
        ssh -p 2222 you@host attaches to your workspace, you+TEMPLATE@host to that template's."
    )]
    Keys(cli::keys::KeysCommand),
    /// The fleet (admins): sync the inventory, see its syncs, verify machines, trust host keys.
    #[command(
        subcommand,
        after_help = "Examples:\n  berth fleet sync\n  berth fleet status\n  berth fleet \
        verify\n  berth fleet trust web-1 SHA256:…\n  age -r \"$(berth fleet secrets-key)\" -a \
        -o secrets.ini secrets.plain.ini\n\n\
        Exit status: 0 done, 1 failed (a failed sync too), 3 machines checked but some not \
        enrolled (verify, trust). docs/fleet.md has the whole story."
    )]
    Fleet(cli::fleet::FleetCommand),
    /// Run an inventory script on fleet machines and follow its output live.
    #[command(
        after_help = "Examples:\n  berth run disk-usage --on m1,m2\n  berth run upgrade --on \
        tag:web,db-1 --concurrency 5 --timeout 10m\n  berth run inventory --on type:vm --json | \
        jq '.groups'\n\n\
        Each line a machine prints shows as `m1: text` (its stderr on stderr as `m1 (stderr): \
        text`), each change of its state as `* m1 succeeded (exit 0)`; at the end the machines \
        that printed the same are grouped (`---- m1,m2 (succeeded, exit 0) ----`). --on takes \
        machine ids, tag:NAME and type:NAME, all checked against the machines you may see \
        before anything starts. Ctrl-C stops the operation (and waits for its end); a second \
        Ctrl-C leaves at once.\n\n\
        Exit status: 0 every machine succeeded, 1 some did not (or the run could not start), \
        130 cancelled."
    )]
    Run(cli::operations::RunArgs),
    /// The history of operations (yours; admins everyone's); show, stop, rerun or watch one.
    #[command(
        after_help = "Examples:\n  berth ops\n  berth ops --status failed --script upgrade\n  \
        berth ops show 6f1c2a3b\n  berth ops stop 6f1c2a3b\n  berth ops rerun 6f1c2a3b\n  \
        berth ops watch 6f1c2a3b\n\n\
        An operation is named by its id or the start of it, as the table shows it."
    )]
    Ops(cli::operations::OpsArgs),
    /// Throwaway Kubernetes clusters with a TTL: ask for one, list, extend, get its
    /// kubeconfig, delete.
    #[command(
        subcommand,
        visible_alias = "clusters",
        after_help = "Examples:\n  berth cluster create dev --ttl 2h --wait\n  berth cluster ls\n  \
        berth cluster kubeconfig dev -o dev.kubeconfig\n  kubectl --kubeconfig dev.kubeconfig get \
        nodes\n  berth cluster extend dev --ttl 1h\n  berth cluster rm dev\n\n\
        The server deletes a cluster when its time is up. Exit status: 0 done, 1 failed (a cluster \
        that failed while --wait waited too), 2 bad arguments, 4 no cluster of that name."
    )]
    Cluster(cli::clusters::ClusterCommand),
    /// The server's accounts (admins): invite people to sign up.
    #[command(
        subcommand,
        after_help = "Examples:\n  berth users invite --expires 2d --note \"course 2026-A\"\n  \
        berth users invites\n  berth users invite rm 8b1c2a3b\n\n\
        Invites admit sign-ups while main.yaml `registration.mode` is `invite`. Exit status: 0 \
        done, 1 failed, 2 bad arguments, 4 no invite with that id."
    )]
    Users(cli::users::UsersCommand),
    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  berth completions bash > \
        /etc/bash_completion.d/berth\n  berth completions zsh > \"${fpath[1]}/_berth\"\n  \
        berth completions fish > ~/.config/fish/completions/berth.fish")]
    Completions(cli::completions::CompletionsArgs),
    /// Run the agent: liveness pings and configuration refreshes, until stopped.
    #[command(after_help = "Examples:\n  berth agent\n  berth agent --interval 60s \
        --config-interval 10m\n\nSignals: SIGHUP re-reads config.yaml and fetches the \
        configuration; SIGTERM or SIGINT stop. deploy/berth-agent.service runs it under \
        systemd.")]
    Agent(agent::AgentArgs),
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
    match cli.command {
        Command::Serve(args) => match serve::run(args) {
            Ok(code) => code,
            Err(err) => {
                // Logged for the record and printed for the person at the shell.
                tracing::error!(error = %format!("{err:#}"), "berth failed");
                eprintln!("berth: {err:#}");
                ExitCode::FAILURE
            }
        },
        Command::Backup(args) => backup::backup(args),
        Command::Restore(args) => backup::restore(args),
        Command::Config(command) => cli::execute(cli::server_config::run(command)),
        Command::Login(args) => cli::execute(cli::login::run(args)),
        Command::Ls(args) => cli::execute(cli::workspaces::ls(args)),
        Command::Start(args) => cli::execute(cli::workspaces::start(args)),
        Command::Stop(args) => cli::execute(cli::workspaces::stop(args)),
        Command::Rm(args) => cli::execute(cli::workspaces::rm(args)),
        Command::Attach(args) => cli::execute(cli::attach::run(args)),
        Command::Share(args) => cli::execute(cli::sharing::share(args)),
        Command::Recordings(args) => cli::execute(cli::sharing::recordings(args)),
        Command::Persist(args) => cli::execute(cli::recreate::persist(args)),
        Command::Net(args) => cli::execute(cli::recreate::net(args)),
        Command::Machines(args) => cli::execute(cli::machines::run(args)),
        Command::Keys(command) => cli::execute(cli::keys::run(command)),
        Command::Fleet(command) => cli::execute(cli::fleet::run(command)),
        Command::Run(args) => cli::execute(cli::operations::run(args)),
        Command::Ops(args) => cli::execute(cli::operations::ops(args)),
        Command::Cluster(command) => cli::execute(cli::clusters::run(command)),
        Command::Users(command) => cli::execute(cli::users::run(command)),
        Command::Completions(args) => cli::completions::run(&args, &mut Cli::command()),
        Command::Agent(args) => agent::run(args),
    }
}
