//! `berth serve`: first-start set-up, logging, signals and the HTTP server.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use std::sync::Arc;

use berth_clusters::{ClusterNetwork, DockerClusterSettings, DockerProvider};
use berth_config::ConfigStore;
use berth_core::bridge::TerminalSettings;
use berth_core::gateway::{SshGateway, gateway_options};
use berth_core::{
    Audit, ConfigPolicy, Fleet, FleetSettings, LiveConfig, MachineTerminals, Operations,
    OperationsSettings, Recordings, Terminals, WorkspaceTerminals, Workspaces, WorkspacesSettings,
};
use berth_core::{Clusters, ClustersSettings, KubeconfigKey};
use berth_runtime::{DockerOptions, DockerRuntime, parse_endpoint};
use berth_server::{AppState, JwtKey, SshGatewayInfo, TlsCertificate};
use berth_ssh::gateway::Gateway;
use berth_terminal::TerminalSource;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::HomeArg;
use crate::home::Home;
use crate::logging::{self, LogSettings};

/// How long open connections may take to finish after SIGTERM or SIGINT.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    home: HomeArg,
    /// Address to listen on; overrides `listen` in main.yaml (default 127.0.0.1:8080).
    #[arg(long, env = "BERTH_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Runtime-state database: `postgres://USER@HOST/DB` or a SQLite file path; overrides
    /// `database` in main.yaml (default HOME/berth.db).
    #[arg(long, env = "BERTH_DATABASE", value_name = "URL")]
    database: Option<String>,
    /// This installation's name on the Docker Engine (label `berth.instance`); overrides
    /// `runtime.instance` in main.yaml (default `berth`).
    #[arg(long, env = "BERTH_INSTANCE", value_name = "NAME")]
    instance: Option<String>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let home = Home::resolve(args.home.home)?;
    home.create()?;
    let config_dir = home.config();
    let initial_admin = berth_config::init(&config_dir).with_context(|| {
        format!(
            "cannot write the default configuration in {}",
            config_dir.display()
        )
    })?;
    let config = match LiveConfig::load(&config_dir) {
        Ok(config) => config,
        Err(errors) => {
            for error in errors.iter() {
                eprintln!("{error}");
            }
            anyhow::bail!(
                "the configuration in {} is invalid ({} error(s)); fix it and start again \
                 (`berth config check` lists the errors)",
                config_dir.display(),
                errors.len()
            );
        }
    };
    let main = config.current().main.clone();
    logging::init(&LogSettings {
        file: home.logs().join("berth.log"),
        max_bytes: main.logging.max_size_mb.saturating_mul(1024 * 1024),
        files_kept: main.logging.files_kept,
        level: main.logging.level.clone(),
    });
    if let Some(admin) = initial_admin {
        eprintln!(
            "\n  Berth created the admin account.\n    username: {}\n    password: {}\n  \
             This password is shown once; only its hash is stored. Change it after logging in.\n",
            admin.username,
            admin.password.expose()
        );
        tracing::info!(username = %admin.username, "created the admin account");
    }
    let listen = args.listen.unwrap_or(main.listen);
    let database = args
        .database
        .or_else(|| main.database.clone())
        .unwrap_or_else(|| home.root().join("berth.db").display().to_string());
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(home, config, listen, database, args.instance))?;
    Ok(ExitCode::SUCCESS)
}

/// Opens the database, connects to the Docker Engine and reconciles the two (before serving,
/// so no request sees a workspace of before the restart unsettled); loads (or makes)
/// the key that signs login tokens.
async fn services(
    home: &Home,
    config: &LiveConfig,
    database: &str,
    instance: Option<String>,
) -> anyhow::Result<AppState> {
    let jwt_path = home.root().join("jwt.key");
    let jwt = JwtKey::load_or_create(&jwt_path)
        .with_context(|| format!("cannot load the login token key {}", jwt_path.display()))?;
    let store = berth_store::open(database).await.with_context(|| {
        format!(
            "cannot open the database {}",
            berth_store::redact_location(database)
        )
    })?;
    let main = config.current().main.clone();
    let options = DockerOptions::default();
    let runtime = match &main.runtime.docker_socket {
        Some(socket) => DockerRuntime::connect(parse_endpoint(socket)?, options).await,
        None => DockerRuntime::connect_env(options).await,
    }
    .context(
        "cannot reach the Docker Engine (set runtime.docker_socket in main.yaml or DOCKER_HOST)",
    )?;
    tracing::info!(
        engine = runtime.engine_version(),
        api = %runtime.api_version(),
        socket = %runtime.socket().display(),
        database = store.backend(),
        "connected"
    );
    let instance = instance.unwrap_or(main.runtime.instance.clone());
    // Clusters run beside workspaces on the same engine, with their containers' own rules.
    let cluster_provider = DockerProvider::new(
        runtime.engine().clone(),
        docker_cluster_settings(&main.clusters, &instance),
    );
    let cluster_provider = if main.clusters.enabled {
        Some(cluster_provider)
    } else {
        // Turning clusters off makes none and starts no privileged container; it does not
        // remove those made while they were on, so say they are there.
        use berth_clusters::ClusterProvider as _;
        match cluster_provider.list().await {
            Ok(left) if !left.is_empty() => {
                eprintln!(
                    "warning: clusters are off (main.yaml clusters.enabled), yet the Docker \
                     Engine runs {} cluster container(s) of this installation; see docs/clusters.md",
                    left.len()
                );
                tracing::warn!(
                    containers = left.len(),
                    "cluster containers left while clusters are off"
                );
            }
            Ok(_) => {}
            Err(err) => tracing::debug!(error = %err, "cannot list cluster containers"),
        }
        None
    };
    let workspaces = Workspaces::new(
        Arc::new(runtime),
        Arc::clone(&store),
        Arc::new(ConfigPolicy::new(config.clone())),
        WorkspacesSettings {
            instance: instance.clone(),
            ..WorkspacesSettings::default()
        },
    );
    // Only an engine or a database that cannot list is fatal: a workspace the pass could not
    // settle is logged, and its next engine event or the next pass settles it.
    let reconciled = workspaces
        .reconcile()
        .await
        .context("cannot reconcile workspaces with the Docker Engine")?;
    if !reconciled.unsettled.is_empty() {
        tracing::warn!(
            unsettled = reconciled.unsettled.len(),
            "serving with workspaces not yet settled with the Docker Engine (see the warnings above)"
        );
    }
    let config_store = ConfigStore::open(config.dir()).with_context(|| {
        format!(
            "cannot open the configuration in {}",
            config.dir().display()
        )
    })?;
    let clock = workspaces.clock();
    // The fleet, when main.yaml names an inventory repository: its first sync runs at once,
    // in the background, so an unreachable git host never delays serving.
    let fleet_settings = FleetSettings::from_config(&main.fleet, home.root(), Arc::clone(&clock))
        .map_err(|e| anyhow::anyhow!("main.yaml fleet.repository: {e}"))?;
    let fleet = match fleet_settings {
        Some(settings) => {
            let fleet = Fleet::new(settings, Arc::clone(&store));
            fleet
                .start()
                .await
                .context("cannot prepare the fleet (fleet in main.yaml)")?;
            Some(fleet)
        }
        None => None,
    };
    // The kinds of terminal target this installation serves: workspaces, and the fleet's
    // machines when there is a fleet.
    let mut sources: Vec<Arc<dyn TerminalSource>> =
        vec![Arc::new(WorkspaceTerminals::new(workspaces.clone()))];
    if let Some(fleet) = &fleet {
        sources.push(Arc::new(MachineTerminals::new(
            fleet.clone(),
            Arc::new(config.clone()),
        )));
    }
    let terminals = Terminals::new(
        sources,
        Recordings::new(home.root().join("recordings"), Arc::clone(&store)),
        Audit::new(Arc::clone(&store)),
        TerminalSettings::default(),
    );
    let state = AppState::new(
        config.clone(),
        Arc::new(config_store),
        Arc::clone(&store),
        workspaces,
        terminals,
        jwt,
        home.root().to_owned(),
    );
    let state = match clusters(home, &main.clusters, cluster_provider, &store, &clock).await? {
        Some(clusters) => state.with_clusters(clusters),
        None => state,
    };
    Ok(match fleet {
        Some(fleet) => {
            // Operations a killed Berth left running end `interrupted` before anything runs.
            let operations = Operations::new(
                fleet.clone(),
                store,
                OperationsSettings {
                    max_output: usize::try_from(main.fleet.max_output.bytes())
                        .unwrap_or(usize::MAX),
                    ..OperationsSettings::default()
                },
            );
            operations
                .start()
                .await
                .context("cannot settle the operations a previous run left")?;
            fleet.spawn_loops();
            tracing::info!(repository = %fleet.settings().repository, branch = %fleet.settings().branch, "fleet enabled");
            state.with_fleet(fleet).with_operations(operations)
        }
        None => state,
    })
}

/// The `docker` cluster provider's settings from main.yaml's `clusters` section.
fn docker_cluster_settings(
    config: &berth_config::Clusters,
    instance: &str,
) -> DockerClusterSettings {
    DockerClusterSettings {
        image: config.image.clone(),
        instance: instance.to_owned(),
        cpus: config.cpus,
        memory: config.memory.bytes(),
        api_address: config.api_address,
        network: match config.network {
            berth_config::ClusterNetwork::Bridge => ClusterNetwork::Bridge,
            berth_config::ClusterNetwork::Host => ClusterNetwork::Host,
        },
        privileged: config.privileged,
        env: config.env.clone(),
    }
}

/// The cluster service when main.yaml enables it, reconciled with what the engine holds (before
/// serving, so no request sees a cluster a killed Berth left unsettled).
async fn clusters(
    home: &Home,
    config: &berth_config::Clusters,
    provider: Option<DockerProvider>,
    store: &Arc<dyn berth_store::Store>,
    clock: &Arc<dyn berth_core::Clock>,
) -> anyhow::Result<Option<Clusters>> {
    let Some(provider) = provider else {
        return Ok(None);
    };
    let key_path = home.root().join("keys").join("clusters.key");
    let key = KubeconfigKey::load_or_create(&key_path).with_context(|| {
        format!(
            "cannot load the key that encrypts kubeconfigs, {}",
            key_path.display()
        )
    })?;
    let clusters = Clusters::new(
        Arc::new(provider),
        Arc::clone(store),
        key,
        ClustersSettings {
            default_ttl: config.default_ttl.get(),
            max_ttl: config.max_ttl.get(),
            max_per_user: config.max_per_user,
            ready_timeout: config.ready_timeout.get(),
            clock: Arc::clone(clock),
            ..ClustersSettings::default()
        },
    );
    let report = clusters
        .reconcile()
        .await
        .context("cannot reconcile clusters with the Docker Engine")?;
    tracing::info!(
        provider = clusters.provider(),
        image = %config.image,
        removed = report.removed.len(),
        failed = report.failed.len(),
        resumed = report.resumed.len(),
        "clusters enabled"
    );
    Ok(Some(clusters))
}

async fn serve(
    home: Home,
    config: LiveConfig,
    listen: SocketAddr,
    database: String,
    instance: Option<String>,
) -> anyhow::Result<()> {
    // Handlers first: a signal during start-up is handled once serving, never fatal.
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    // The certificate first: a bad one stops Berth before anything else starts.
    let main = config.current().main.clone();
    let certificate = match &main.tls {
        Some(tls) => Some(
            TlsCertificate::load(&tls.cert, &tls.key)
                .with_context(|| "cannot serve HTTPS (main.yaml tls)".to_owned())?,
        ),
        None => None,
    };
    let state = services(&home, &config, &database, instance).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    let scheme = if certificate.is_some() {
        "https"
    } else {
        "http"
    };
    let public_url = main
        .public_url
        .clone()
        .map_or_else(|| format!("{scheme}://{local}"), |url| url.to_string());
    let redirect = match main.tls.as_ref().and_then(|tls| tls.redirect_http) {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} (tls.redirect_http)"))?,
        ),
        None => None,
    };
    let (state, gateway) = match main.ssh.listen {
        Some(address) => {
            let (info, backend, gateway) = ssh_gateway(&home, &config, &state, address).await?;
            let bound = gateway.local_addr()?;
            // Before the HTTP server's line, which says Berth is up.
            eprintln!(
                "The SSH gateway is listening on {bound} ({}), host key {}; known_hosts line: {}",
                info.command("USER"),
                info.fingerprint,
                info.known_hosts()
            );
            tracing::info!(%bound, fingerprint = %info.fingerprint, "SSH gateway listening");
            (state.with_ssh_gateway(info, backend), Some(gateway))
        }
        None => (state, None),
    };
    let flusher = state.clone();
    if let Some(redirect) = &redirect {
        eprintln!(
            "Plain HTTP on {} redirects to https (tls.redirect_http)",
            redirect.local_addr()?
        );
    }
    eprintln!(
        "Berth is listening on {scheme}://{local} (public URL {public_url}), home {}",
        home.root().display()
    );
    tracing::info!(%local, %public_url, home = %home.root().display(), "listening");

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let gateway = gateway.map(|gateway| {
        let mut stopped = stopped.clone();
        tokio::spawn(gateway.serve(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }))
    });
    let background = {
        let workspaces = state.workspaces.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            workspaces
                .run_background(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await;
        })
    };
    // Expired clusters are deleted while Berth runs.
    let reaper = state.clusters.clone().map(|clusters| {
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            clusters
                .run_reaper(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await;
        })
    });
    // Containers killed or removed behind Berth's back stop their workspaces while it runs.
    let watcher = {
        let workspaces = state.workspaces.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            workspaces
                .watch_engine(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await;
        })
    };
    let redirect = redirect.map(|redirect| {
        let mut stopped = stopped.clone();
        let base = main.public_url.clone();
        tokio::spawn(berth_server::serve_redirect(
            redirect,
            base,
            local.port(),
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        ))
    });
    let until_stopped = async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let mut server = match &certificate {
        Some(certificate) => {
            let certificate = certificate.clone();
            tokio::spawn(async move {
                berth_server::serve_tls(listener, &certificate, state, until_stopped).await
            })
        }
        None => tokio::spawn(berth_server::serve(listener, state, until_stopped)),
    };

    loop {
        tokio::select! {
            result = &mut server => {
                // The server ended without being asked to: that is an error worth reporting.
                result.context("the HTTP server task failed")?.context("the HTTP server failed")?;
                anyhow::bail!("the HTTP server stopped unexpectedly");
            }
            _ = terminate.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
            _ = interrupt.recv() => { tracing::info!("SIGINT: shutting down"); break; }
            _ = hangup.recv() => {
                reload(&config);
                if let Some(certificate) = &certificate {
                    match certificate.reload() {
                        Ok(()) => tracing::info!(cert = %certificate.cert_path().display(), "TLS certificate reloaded"),
                        Err(err) => tracing::error!(error = %err, "TLS certificate reload failed; keeping the certificate in force"),
                    }
                }
            }
        }
    }
    let _ = stop.send(true);
    // Scripts running on machines end (SIGTERM, then SIGKILL) and are recorded interrupted.
    if let Some(operations) = &flusher.operations {
        operations
            .shutdown(berth_core::operations::KILL_GRACE + SHUTDOWN_GRACE)
            .await;
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, background).await;
    if let Some(gateway) = gateway {
        match tokio::time::timeout(SHUTDOWN_GRACE, gateway).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "the SSH gateway failed"),
            Ok(_) => {}
            Err(_) => tracing::warn!("SSH gateway sessions still open after the grace period"),
        }
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, watcher).await;
    if let Some(redirect) = redirect {
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, redirect).await;
    }
    if let Some(reaper) = reaper {
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, reaper).await;
    }
    match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
        Ok(result) => {
            result.context("the HTTP server task failed")??;
            tracing::info!("shut down");
        }
        Err(_) => {
            server.abort();
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "connections still open after the grace period were closed");
            // The server writes its buffered pings when it drains; it was cut short.
            flusher.flush().await;
        }
    }
    Ok(())
}

/// The SSH gateway of main.yaml's `ssh:` section on `address`, over the server's workspaces,
/// with its host key loaded (or made, in Berth's home, on first start); what users are told.
async fn ssh_gateway(
    home: &Home,
    config: &LiveConfig,
    state: &AppState,
    address: SocketAddr,
) -> anyhow::Result<(SshGatewayInfo, SshGateway, Gateway)> {
    let main = config.current().main.clone();
    let backend = SshGateway::new(
        config.clone(),
        Arc::new(state.workspaces.clone()),
        Arc::new(WorkspaceTerminals::new(state.workspaces.clone())),
        Arc::clone(&state.store),
        // The terminals' own: one set of live recordings, which retention leaves alone.
        Some(state.terminals.recordings().clone()),
        state.workspaces.clock(),
    );
    let options = gateway_options(&main.ssh, home.root());
    let host_key = options.host_key.clone();
    let gateway = Gateway::bind(address, options, Arc::new(backend.clone()))
        .await
        .with_context(|| {
            format!(
                "cannot start the SSH gateway (ssh.listen {address}, host key {})",
                host_key.display()
            )
        })?;
    let port = gateway.local_addr()?.port();
    let (host, port) = public_ssh_address(
        main.ssh.public_address.as_deref(),
        main.public_url.as_deref().and_then(url_host),
        address,
        port,
    );
    let info = SshGatewayInfo {
        host,
        port,
        fingerprint: gateway.fingerprint().to_owned(),
        public_key: gateway.public_key().to_owned(),
    };
    Ok((info, backend, gateway))
}

/// The host of `http(s)://HOST[:PORT][/...]` (brackets kept off an IPv6 address).
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split_once(']')?.0
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// What users type after `ssh`: `ssh.public_address` (`HOST` or `HOST:PORT`), else the host
/// of `public_url`, else the listen address (`localhost` for an unspecified one); the port
/// is the one given there, else the listen port.
fn public_ssh_address(
    public_address: Option<&str>,
    public_host: Option<&str>,
    listen: SocketAddr,
    port: u16,
) -> (String, u16) {
    if let Some(address) = public_address {
        if let Ok(socket) = address.parse::<SocketAddr>() {
            return (socket.ip().to_string(), socket.port());
        }
        if let Some((host, given)) = address.rsplit_once(':')
            && !host.contains(':')
            && let Ok(given) = given.parse::<u16>()
        {
            return (host.to_owned(), given);
        }
        return (address.trim_matches(['[', ']']).to_owned(), port);
    }
    if let Some(host) = public_host {
        return (host.trim_matches(['[', ']']).to_owned(), port);
    }
    if listen.ip().is_unspecified() {
        ("localhost".to_owned(), port)
    } else {
        (listen.ip().to_string(), port)
    }
}

/// SIGHUP: swap in the new configuration, or keep the old one and say why.
fn reload(config: &LiveConfig) {
    match config.reload() {
        Ok(new) => tracing::info!(
            users = new.users.len(),
            templates = new.templates.len(),
            "configuration reloaded"
        ),
        Err(errors) => {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            tracing::error!(
                dir = %config.dir().display(),
                errors = %errors.join("; "),
                "configuration reload failed; keeping the configuration in force"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{public_ssh_address, url_host};

    #[test]
    fn main_yaml_and_the_provider_name_the_same_default_k3s_image() {
        assert_eq!(
            berth_config::DEFAULT_CLUSTER_IMAGE,
            berth_clusters::DEFAULT_K3S_IMAGE
        );
    }

    #[test]
    fn the_host_of_a_public_url() {
        for (url, host) in [
            ("https://lab.example.com", Some("lab.example.com")),
            (
                "https://lab.example.com:8443/berth/",
                Some("lab.example.com"),
            ),
            ("http://[::1]:8080", Some("::1")),
            ("http://10.1.2.3", Some("10.1.2.3")),
            ("https://", None),
        ] {
            assert_eq!(url_host(url), host, "{url}");
        }
    }

    #[test]
    fn the_address_users_type_follows_what_main_yaml_says() {
        let any = "0.0.0.0:2222".parse().unwrap();
        let local = "127.0.0.1:2222".parse().unwrap();
        for (public, host, listen, expected) in [
            (
                Some("lab.example.com:22"),
                None,
                any,
                ("lab.example.com", 22),
            ),
            (
                Some("lab.example.com"),
                Some("x"),
                any,
                ("lab.example.com", 2222),
            ),
            (Some("[::1]:2200"), None, any, ("::1", 2200)),
            (Some("[::1]"), None, any, ("::1", 2222)),
            (Some("10.0.0.1:2201"), None, any, ("10.0.0.1", 2201)),
            (
                None,
                Some("berth.example.org"),
                any,
                ("berth.example.org", 2222),
            ),
            (None, None, any, ("localhost", 2222)),
            (None, None, local, ("127.0.0.1", 2222)),
        ] {
            assert_eq!(
                public_ssh_address(public, host, listen, 2222),
                (expected.0.to_owned(), expected.1),
                "{public:?} {host:?} {listen}"
            );
        }
    }
}
