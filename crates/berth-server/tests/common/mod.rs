//! A Berth server on port 0 for tests: a temporary home with its own configuration and SQLite
//! database, the real Docker Engine of DOCKER_HOST, and a `berth.instance` label of its own so
//! that parallel tests never see each other's containers. Dropping the [`TestServer`] stops
//! the server and removes every container and volume of its instance.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

/// The SSH test machines and inventory helpers shared with the other crates' fleet tests.
#[path = "../../../berth-ssh/tests/common/mod.rs"]
pub mod machines;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_client::{Client, ClientError, RawResponse};
use berth_config::{ConfigStore, NewUser, hash_password};
use berth_core::{
    ConfigPolicy, Fleet, FleetSettings, LiveConfig, Operations, OperationsSettings, Terminals,
    Workspaces, WorkspacesSettings,
};
use berth_runtime::{DockerOptions, DockerRuntime};
use berth_server::{AppState, JwtKey};
use berth_types::{Role, Username};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

pub const IMAGE: &str = "berth-test/base";
/// The stand-in for a k3s image (`scripts/cluster-image.sh`).
pub const CLUSTER_IMAGE: &str = "berth-test/k3s-standin";

const HOW_TO_START: &str = "start the test Docker Engine and load the test image: \
    `scripts/docker-engine.sh start && eval \"$(scripts/docker-engine.sh env)\" && scripts/test-image.sh` \
    (or run the tests through `make test`)";

/// A user to create: name, password, templates, role.
struct NewTestUser {
    name: &'static str,
    password: &'static str,
    templates: Vec<&'static str>,
    role: Role,
    machines: Vec<&'static str>,
    /// users.yaml `clusters: true`.
    clusters: bool,
}

/// What the server is started with.
pub struct Builder {
    security: Vec<(&'static str, String)>,
    runtime: Vec<(&'static str, String)>,
    recordings: Vec<(&'static str, String)>,
    fleet: Vec<(&'static str, String)>,
    clusters: Vec<(&'static str, String)>,
    registration: Vec<(&'static str, String)>,
    templates: Vec<String>,
    users: Vec<NewTestUser>,
}

impl Builder {
    /// A `security:` key of main.yaml, as YAML, e.g. `("ping_rate_per_minute", 3)` or
    /// `("trusted_proxies", "[127.0.0.1]")`.
    pub fn security(mut self, key: &'static str, value: impl std::fmt::Display) -> Self {
        self.security.push((key, value.to_string()));
        self
    }

    /// A `runtime:` key of main.yaml, as YAML.
    pub fn runtime(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.runtime.push((key, value.into()));
        self
    }

    /// A `recordings:` key of main.yaml, as YAML, e.g. `("max_age", "null")`.
    pub fn recordings(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.recordings.push((key, value.into()));
        self
    }

    /// A `fleet:` key of main.yaml, as YAML, e.g. `("repository", "file:///…")`. With a
    /// repository the server has a fleet, started but without its timers: tests sync with
    /// `POST /api/v1/fleet/sync` (or [`TestServer::fleet`]).
    pub fn fleet(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.fleet.push((key, value.into()));
        self
    }

    /// The users.yaml `machines:` selectors of a user added before (`["m1", "tag:web"]`).
    pub fn machines(mut self, user: &str, selectors: &[&'static str]) -> Self {
        let user = self
            .users
            .iter_mut()
            .find(|u| u.name == user)
            .unwrap_or_else(|| panic!("no user {user} added before"));
        user.machines = selectors.to_vec();
        self
    }

    /// A template on the test image with 128m of memory and network none; `extra` is YAML
    /// lines of more fields (without indentation), e.g. `"persist: never"`, which may replace
    /// those defaults.
    pub fn template(mut self, name: &str, extra: &str) -> Self {
        let mut yaml = format!("  - name: {name}\n");
        for (key, value) in [("image", IMAGE), ("memory", "128m"), ("network", "none")] {
            if !extra.lines().any(|l| l.starts_with(&format!("{key}:"))) {
                let _ = writeln!(yaml, "    {key}: {value}");
            }
        }
        for line in extra.lines().filter(|l| !l.trim().is_empty()) {
            let _ = writeln!(yaml, "    {line}");
        }
        self.templates.push(yaml);
        self
    }

    /// A user with a password and templates.
    pub fn user(
        mut self,
        name: &'static str,
        password: &'static str,
        templates: &[&'static str],
    ) -> Self {
        self.users.push(NewTestUser {
            name,
            password,
            templates: templates.to_vec(),
            role: Role::User,
            machines: Vec::new(),
            clusters: false,
        });
        self
    }

    /// A `clusters:` key of main.yaml, as YAML. Any key enables clusters, on the test engine
    /// with host networking, the stand-in k3s image and short timings unless given.
    pub fn clusters(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.clusters.push((key, value.into()));
        self
    }

    /// A `registration:` key of main.yaml, as YAML (`("mode", "open")`).
    pub fn registration(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.registration.push((key, value.into()));
        self
    }

    /// A user with a password who may ask for clusters (users.yaml `clusters: true`).
    pub fn cluster_user(mut self, name: &'static str, password: &'static str) -> Self {
        self.users.push(NewTestUser {
            name,
            password,
            templates: Vec::new(),
            role: Role::User,
            machines: Vec::new(),
            clusters: true,
        });
        self
    }

    /// Lets the user `name`, added before, ask for clusters (users.yaml `clusters: true`).
    pub fn allow_clusters(mut self, name: &str) -> Self {
        let user = self
            .users
            .iter_mut()
            .find(|u| u.name == name)
            .expect("allow_clusters names a user added before");
        user.clusters = true;
        self
    }

    /// A users.yaml user with `role: admin`.
    pub fn admin_user(mut self, name: &'static str, password: &'static str) -> Self {
        self.users.push(NewTestUser {
            name,
            password,
            templates: Vec::new(),
            role: Role::Admin,
            machines: Vec::new(),
            clusters: false,
        });
        self
    }

    pub async fn start(self) -> TestServer {
        if std::env::var_os("DOCKER_HOST").is_none() {
            panic!("DOCKER_HOST is not set: {HOW_TO_START}");
        }
        let runtime = match DockerRuntime::connect_env(DockerOptions::default()).await {
            Ok(runtime) => Arc::new(runtime),
            Err(err) => panic!("cannot reach the test Docker Engine ({err}): {HOW_TO_START}"),
        };
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().to_owned();
        let config_dir = home.join("config");
        std::fs::create_dir_all(&config_dir).unwrap();
        let instance = format!(
            "test-{}",
            &berth_types::WorkspaceId::random().to_string()[..8]
        );
        let admin_password = "admin-password-for-tests".to_owned();
        let admin_hash = {
            let password = admin_password.clone();
            tokio::task::spawn_blocking(move || hash_password(&password).unwrap())
                .await
                .unwrap()
        };
        let mut main = format!(
            "admin:\n  username: admin\n  password_hash: \"{}\"\nruntime:\n  instance: {instance}\n",
            admin_hash.as_str()
        );
        for (key, value) in &self.runtime {
            let _ = writeln!(main, "  {key}: {value}");
        }
        main.push_str("security:\n");
        for (key, value) in &self.security {
            let _ = writeln!(main, "  {key}: {value}");
        }
        if !self.recordings.is_empty() {
            main.push_str("recordings:\n");
        }
        for (key, value) in &self.recordings {
            let _ = writeln!(main, "  {key}: {value}");
        }
        if !self.fleet.is_empty() {
            main.push_str("fleet:\n");
        }
        for (key, value) in &self.fleet {
            let _ = writeln!(main, "  {key}: {value}");
        }
        if !self.clusters.is_empty() {
            main.push_str("clusters:\n");
            let defaults = [
                ("enabled", "true"),
                ("network", "host"),
                ("image", CLUSTER_IMAGE),
                ("api_address", "127.0.0.1"),
                ("memory", "256m"),
                ("cpus", "1"),
                ("ready_timeout", "2m"),
                // The test engine cannot start privileged containers; the stand-in needs none.
                ("privileged", "false"),
            ];
            for (key, value) in defaults {
                if !self.clusters.iter().any(|(k, _)| *k == key) {
                    let _ = writeln!(main, "  {key}: {value}");
                }
            }
        }
        for (key, value) in &self.clusters {
            let _ = writeln!(main, "  {key}: {value}");
        }
        if !self.registration.is_empty() {
            main.push_str("registration:\n");
        }
        for (key, value) in &self.registration {
            let _ = writeln!(main, "  {key}: {value}");
        }
        std::fs::write(config_dir.join("main.yaml"), main).unwrap();
        std::fs::write(
            config_dir.join("containers.yaml"),
            format!("templates:\n{}", self.templates.concat()),
        )
        .unwrap();
        std::fs::write(config_dir.join("users.yaml"), "users: []\n").unwrap();
        let config_store = Arc::new(ConfigStore::open(&config_dir).unwrap());
        for user in self.users {
            let store = Arc::clone(&config_store);
            tokio::task::spawn_blocking(move || {
                let mut new = NewUser::new(Username::new(user.name).unwrap());
                new.password_hash = Some(hash_password(user.password).unwrap());
                new.templates = user.templates.iter().map(|t| (*t).to_owned()).collect();
                new.role = user.role;
                store.add_user(new).unwrap();
                if user.clusters {
                    store.update_user(user.name, |u| u.clusters = true).unwrap();
                }
                if !user.machines.is_empty() {
                    let selectors = user
                        .machines
                        .iter()
                        .map(|m| m.parse().unwrap())
                        .collect::<Vec<_>>();
                    store
                        .update_user(user.name, |u| u.machines = selectors)
                        .unwrap();
                }
            })
            .await
            .unwrap();
        }

        let config = match LiveConfig::load(&config_dir) {
            Ok(config) => config,
            Err(errors) => panic!("the test configuration is invalid:\n{errors}"),
        };
        let store = berth_store::open(home.join("berth.db").to_str().unwrap())
            .await
            .unwrap();
        // The installation's clock (workspace idle and TTL, web sessions): tests of timeouts
        // move it instead of sleeping.
        let clock = berth_core::ManualClock::new();
        let workspaces = Workspaces::new(
            runtime,
            Arc::clone(&store),
            Arc::new(ConfigPolicy::new(config.clone())),
            WorkspacesSettings {
                stop_timeout: Duration::from_secs(2),
                instance: instance.clone(),
                clock: Arc::new(clock.clone()),
                ..WorkspacesSettings::default()
            },
        );
        let fleet = match FleetSettings::from_config(
            &config.current().main.fleet,
            &home,
            Arc::new(clock.clone()),
        ) {
            Ok(Some(settings)) => {
                let fleet = Fleet::new(settings, Arc::clone(&store));
                fleet.start().await.unwrap();
                let operations = Operations::new(
                    fleet.clone(),
                    Arc::clone(&store),
                    OperationsSettings {
                        max_output: usize::try_from(config.current().main.fleet.max_output.bytes())
                            .unwrap(),
                        ..OperationsSettings::default()
                    },
                );
                operations.start().await.unwrap();
                Some((fleet, operations))
            }
            Ok(None) => None,
            Err(e) => panic!("the test fleet section is invalid: {e}"),
        };
        let jwt = JwtKey::load_or_create(&home.join("jwt.key")).unwrap();
        let mut sources: Vec<Arc<dyn berth_terminal::TerminalSource>> = vec![Arc::new(
            berth_core::WorkspaceTerminals::new(workspaces.clone()),
        )];
        if let Some((fleet, _)) = &fleet {
            sources.push(Arc::new(berth_core::MachineTerminals::new(
                fleet.clone(),
                Arc::new(config.clone()),
            )));
        }
        let terminals = Terminals::new(
            sources,
            berth_core::Recordings::new(home.join("recordings"), Arc::clone(&store)),
            berth_core::Audit::new(Arc::clone(&store)),
            berth_core::bridge::TerminalSettings::default(),
        );
        let state = AppState::new(
            config,
            config_store,
            store,
            workspaces,
            terminals,
            jwt,
            home.clone(),
        );
        let state = match fleet {
            Some((fleet, operations)) => state.with_fleet(fleet).with_operations(operations),
            None => state,
        };
        let main_config = state.config.current().main.clone();
        let state = if main_config.clusters.enabled {
            let c = &main_config.clusters;
            let engine = DockerRuntime::connect_env(DockerOptions::default())
                .await
                .unwrap()
                .engine()
                .clone();
            let provider = berth_clusters::DockerProvider::new(
                engine,
                berth_clusters::DockerClusterSettings {
                    image: c.image.to_string(),
                    instance: instance.clone(),
                    cpus: c.cpus,
                    memory: c.memory.bytes(),
                    api_address: c.api_address,
                    network: berth_clusters::ClusterNetwork::Host,
                    privileged: c.privileged,
                    env: c.env.clone(),
                },
            );
            let key =
                berth_core::KubeconfigKey::load_or_create(&home.join("keys/clusters.key")).unwrap();
            let clusters = berth_core::Clusters::new(
                Arc::new(provider),
                Arc::clone(&state.store),
                key,
                berth_core::ClustersSettings {
                    default_ttl: c.default_ttl.get(),
                    max_ttl: c.max_ttl.get(),
                    max_per_user: c.max_per_user,
                    ready_timeout: c.ready_timeout.get(),
                    poll_interval: Duration::from_millis(200),
                    clock: Arc::new(clock.clone()),
                    ..berth_core::ClustersSettings::default()
                },
            );
            clusters.reconcile().await.unwrap();
            state.with_clusters(clusters)
        } else {
            state
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(berth_server::serve(listener, state.clone(), async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
        TestServer {
            addr,
            url: format!("http://{addr}"),
            home,
            instance,
            admin_password,
            state,
            clock,
            stop,
            task: Some(task),
            _tmp: tmp,
        }
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub url: String,
    pub home: PathBuf,
    pub instance: String,
    pub admin_password: String,
    pub state: AppState,
    pub clock: berth_core::ManualClock,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _tmp: tempfile::TempDir,
}

impl TestServer {
    /// A server with no templates and no users but the main.yaml admin, until the builder
    /// adds some.
    pub fn builder() -> Builder {
        Builder {
            security: Vec::new(),
            runtime: Vec::new(),
            recordings: Vec::new(),
            fleet: Vec::new(),
            clusters: Vec::new(),
            registration: Vec::new(),
            templates: Vec::new(),
            users: Vec::new(),
        }
    }

    /// The server's fleet (a `fleet` repository was given to the builder).
    pub fn fleet(&self) -> &Fleet {
        self.state
            .fleet
            .as_ref()
            .expect("the test server has no fleet")
    }

    /// A client without credentials.
    pub fn client(&self) -> Client {
        Client::new(&self.url).unwrap()
    }

    /// A client logged in as `username`.
    pub async fn login(&self, username: &str, password: &str) -> Client {
        let client = self.client();
        let login = client
            .login(username, password)
            .await
            .unwrap_or_else(|e| panic!("login of {username} failed: {e}"));
        client.with_token(login.token.expose())
    }

    /// A client logged in as the main.yaml admin.
    pub async fn admin(&self) -> Client {
        self.login("admin", &self.admin_password.clone()).await
    }

    /// The JWT key the server signs with.
    pub fn jwt_key(&self) -> JwtKey {
        JwtKey::load_or_create(&self.home.join("jwt.key")).unwrap()
    }

    pub fn config_dir(&self) -> PathBuf {
        self.home.join("config")
    }

    /// Stops the server gracefully (and flushes its buffers), waiting for it.
    pub async fn shutdown(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the server stops within 10 s")
                .unwrap()
                .unwrap();
        }
    }

    /// Sends raw bytes on a new connection and reads the answer until the server closes it.
    /// Writing and reading overlap: a server may answer (413, say) before reading everything.
    pub async fn raw(&self, request: &[u8]) -> RawAnswer {
        let stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        Self::exchange(stream, request).await
    }

    /// [`TestServer::raw`] from the loopback address `from` (127.0.0.0/8 is all this host's):
    /// the server sees a client at that address, as it would a visitor from elsewhere.
    pub async fn raw_from(&self, from: std::net::Ipv4Addr, request: &[u8]) -> RawAnswer {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((from, 0))).unwrap();
        let stream = socket.connect(self.addr).await.unwrap();
        Self::exchange(stream, request).await
    }

    /// `POST /api/v1/auth/login` from the loopback address `from`.
    pub async fn login_from(
        &self,
        from: std::net::Ipv4Addr,
        username: &str,
        password: &str,
    ) -> RawAnswer {
        let body = serde_json::json!({ "username": username, "password": password }).to_string();
        let request = format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        self.raw_from(from, request.as_bytes()).await
    }

    async fn exchange(stream: tokio::net::TcpStream, request: &[u8]) -> RawAnswer {
        let (mut reader, mut writer) = stream.into_split();
        let request = request.to_vec();
        let writing = tokio::spawn(async move {
            let _ = writer.write_all(&request).await;
            writer
        });
        let mut bytes = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut bytes)).await;
        drop(writing.await);
        RawAnswer::parse(&bytes)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
        remove_instance(&self.instance);
    }
}

/// Removes every container and volume labelled with `instance`, whatever state they are in.
pub fn remove_instance(instance: &str) {
    let filter = format!("label=berth.instance={instance}");
    if let Ok(out) = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", &filter])
        .output()
    {
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if !ids.is_empty() {
            let _ = std::process::Command::new("docker")
                .args(["rm", "-f", "-v"])
                .args(&ids)
                .output();
        }
    }
    let _ = std::process::Command::new("docker")
        .args(["volume", "prune", "-f", "--filter", &filter])
        .output();
}

/// An answer read off a raw connection.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawAnswer {
    fn parse(bytes: &[u8]) -> Self {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Self {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        }
    }
}

/// Asserts an error answer: its status, its code, and Berth's error shape.
pub fn assert_error(response: &RawResponse, status: u16, code: &str) -> serde_json::Value {
    let body = response
        .json()
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", response.body));
    assert_eq!(response.status, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["error"].as_object().unwrap().contains_key("details"),
        "{body}"
    );
    body
}

/// Asserts a typed call failed with `status` and `code`; returns the failure.
pub fn assert_api_error<T: std::fmt::Debug>(
    result: Result<T, ClientError>,
    status: u16,
    code: &str,
) -> berth_client::ApiFailure {
    match result {
        Err(ClientError::Api(failure)) => {
            assert_eq!(
                (failure.status, failure.code.as_str()),
                (status, code),
                "{failure:?}"
            );
            *failure
        }
        other => panic!("expected {status} {code}, got {other:?}"),
    }
}

/// A JSON request with the client's credentials.
pub async fn send_json(client: &Client, method: &str, path: &str, body: &str) -> RawResponse {
    client
        .send(
            method.parse().unwrap(),
            path,
            &[("content-type", "application/json")],
            body.to_owned(),
        )
        .await
        .unwrap()
}

/// Indexes a recording of a workspace of `owner` (a fresh workspace id, whose workspace need
/// not exist) that `who` attached to at `started`: unfinished, without a file. The file, when
/// a test needs one, is `server.state.terminals.recordings().dir().join(&recording.path)`.
pub async fn insert_recording(
    server: &TestServer,
    owner: &str,
    who: &str,
    started: time::OffsetDateTime,
) -> berth_store::Recording {
    let workspace = berth_types::WorkspaceId::random();
    let id = berth_types::RecordingId::random();
    let recording = berth_store::Recording {
        id,
        target: workspace.into(),
        owner: Username::new(owner).unwrap(),
        username: Username::new(who).unwrap(),
        started_at: started,
        ended_at: None,
        path: format!("{workspace}/{id}.cast"),
        bytes: 0,
        width: 80,
        height: 24,
    };
    server
        .state
        .store
        .insert_recording(&recording)
        .await
        .unwrap();
    recording
}

/// Writes `recording`'s file with `text`, last modified at `modified`; returns its path.
pub fn write_recording_file(
    server: &TestServer,
    recording: &berth_store::Recording,
    text: &str,
    modified: time::OffsetDateTime,
) -> PathBuf {
    let file = server
        .state
        .terminals
        .recordings()
        .dir()
        .join(&recording.path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, text).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(modified.into())
        .unwrap();
    file
}
