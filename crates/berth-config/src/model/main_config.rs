//! `main.yaml`: how Berth listens, who the admin is, how it logs, what workspaces get by
//! default, how logins are protected, clusters and sign-up. Every section and field is
//! optional.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use berth_types::Username;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::passwords::PasswordHash;
use crate::units::{DiskSize, HumanDuration, IpNet, Memory, within};

/// `main.yaml`: server-wide settings. Every section is optional and takes the defaults shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MainConfig {
    /// Address and port the web UI and API listen on. `berth serve --listen` overrides it.
    #[schemars(with = "String", example = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The address users reach Berth at, when it differs from `listen` (behind a reverse
    /// proxy, for example): an `http://` or `https://` URL. Used in links and printed
    /// commands. Default: `http://` followed by the listen address.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(example = "https://berth.example.com")]
    pub public_url: Option<String>,
    /// Serve HTTPS on `listen` with this certificate and key (PEM files); reloaded on SIGHUP
    /// without dropping connections. Cookies are then `Secure` with the `__Host-` prefix and
    /// HSTS is sent. Without it Berth serves plain HTTP (for this machine, or behind a
    /// TLS-terminating proxy whose `https://` address is `public_url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// The built-in administrator account.
    pub admin: Admin,
    /// Where runtime state (workspaces, sessions, audit log) is kept: a `sqlite://` or
    /// `postgres://` URL. Default: the SQLite file `berth.db` in Berth's home directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(example = "postgres://berth@localhost/berth")]
    pub database: Option<String>,
    /// Berth's own log file (`logs/berth.log` in Berth's home directory).
    pub logging: Logging,
    /// The container runtime and the defaults every workspace gets.
    pub runtime: Runtime,
    /// Sessions, login lockout and rate limits.
    pub security: Security,
    /// How long, and how much, terminal recordings are kept.
    pub recordings: Recordings,
    /// Machines and scripts from a git repository (docs/fleet.md); no fleet while
    /// `fleet.repository` is unset.
    pub fleet: Fleet,
    /// The SSH gateway into workspaces (docs/ssh-gateway.md); off while `ssh.listen` is unset.
    pub ssh: Ssh,
    /// Ephemeral Kubernetes clusters; off unless `clusters.enabled`.
    pub clusters: super::Clusters,
    /// Self-service sign-up; off unless `registration.mode` says otherwise.
    pub registration: super::Registration,
}

impl Default for MainConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            public_url: None,
            tls: None,
            admin: Admin::default(),
            database: None,
            logging: Logging::default(),
            runtime: Runtime::default(),
            security: Security::default(),
            recordings: Recordings::default(),
            fleet: Fleet::default(),
            ssh: Ssh::default(),
            clusters: super::Clusters::default(),
            registration: super::Registration::default(),
        }
    }
}

/// The fleet: the inventory repository (`links.yaml`, `scripts.yaml`), how Berth reaches its
/// machines over SSH, and how often it looks (docs/fleet.md). Read when Berth starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Fleet {
    /// The inventory repository: an absolute path, or a `file://`, `ssh://` or `https://` URL
    /// (credentials never in it: they live in `keys_dir`). `null`: no fleet.
    #[schemars(example = "ssh://git@git.example.com/ops/fleet.git")]
    pub repository: Option<String>,
    /// The branch that is synced.
    pub branch: String,
    /// How often the repository is fetched (5s to 365d); the webhook syncs at once.
    pub sync_interval: HumanDuration,
    /// Private keys, the webhook secret, git credentials and the age identity, each file mode
    /// 0600 or 0400. Default: `fleet/keys` in Berth's home.
    pub keys_dir: Option<PathBuf>,
    /// How often every machine is checked (5s to 365d), jittered.
    pub health_interval: HumanDuration,
    /// How long one SSH connection attempt may take, handshake and login included (1s to 10m).
    pub connect_timeout: HumanDuration,
    /// Further attempts when a machine cannot be reached (0 to 10), with growing delays;
    /// never after a refused key or host key.
    #[serde(deserialize_with = "within::<_, _, 0, 10>")]
    #[schemars(range(min = 0, max = 10))]
    pub connect_retries: u32,
    /// Where `berth agent --enroll` writes a machine's client id, read over SSH to enroll it.
    pub client_id_path: String,
    /// Trust (and record in `fleet/known_hosts`) the host key of a machine seen for the first
    /// time. Off: an unknown key is refused until an admin trusts its fingerprint. A changed
    /// key is refused either way.
    pub trust_on_first_use: bool,
    /// SSH connections to machines at once, for health checks, enrollment and script runs
    /// (1 to 1000).
    #[serde(deserialize_with = "within::<_, _, 1, 1000>")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_concurrency: u32,
    /// Output of a script kept per machine and stream in an operation's history (1m to 64m):
    /// the first and the last half of it; what lies between is dropped and marked.
    #[serde(deserialize_with = "max_output")]
    pub max_output: DiskSize,
}

/// The largest `fleet.max_output`.
pub const MAX_OUTPUT_LIMIT: u64 = 64 << 20;

fn max_output<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<DiskSize, D::Error> {
    use serde::Deserialize as _;
    let size = DiskSize::deserialize(deserializer)?;
    if size.bytes() > MAX_OUTPUT_LIMIT {
        return Err(serde::de::Error::custom(format!(
            "at most 64m of output is kept per machine, found {size}"
        )));
    }
    Ok(size)
}

impl Default for Fleet {
    fn default() -> Self {
        Self {
            repository: None,
            branch: "main".to_owned(),
            sync_interval: HumanDuration::from_secs_unchecked(300),
            keys_dir: None,
            health_interval: HumanDuration::from_secs_unchecked(300),
            connect_timeout: HumanDuration::from_secs_unchecked(30),
            connect_retries: 3,
            client_id_path: "/etc/berth/client_id".to_owned(),
            trust_on_first_use: false,
            max_concurrency: 32,
            max_output: DiskSize::from_bytes_unchecked(1 << 20),
        }
    }
}

/// The SSH gateway: `ssh -p PORT alice@host` into alice's workspace (docs/ssh-gateway.md).
/// Read when Berth starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Ssh {
    /// Address and port the gateway listens on. `null` (the default): no gateway.
    #[schemars(with = "Option<String>", example = "0.0.0.0:2222")]
    pub listen: Option<SocketAddr>,
    /// The gateway's host key (an OpenSSH ed25519 private key file, mode 0600), absolute
    /// path. Generated on first start when missing. Default: `ssh_host_ed25519_key` in
    /// Berth's home.
    pub host_key: Option<PathBuf>,
    /// The host name (and `:port` when it differs from the listen port) users type after
    /// `ssh`, shown in the UI's `ssh` commands. Default: the host of `public_url`.
    #[schemars(example = "lab.example.com:2222")]
    pub public_address: Option<String>,
    /// How long a client may take from connecting to being logged in (1s to 10m).
    pub login_timeout: HumanDuration,
    /// Public keys a client may offer on one connection before it is disconnected (1 to 64).
    #[serde(deserialize_with = "within::<_, _, 1, 64>")]
    #[schemars(range(min = 1, max = 64))]
    pub max_auth_attempts: u32,
    /// Connections at once, logged in or not (1 to 100000).
    #[serde(deserialize_with = "within::<_, _, 1, 100000>")]
    #[schemars(range(min = 1, max = 100000))]
    pub max_connections: u32,
    /// Connections at once from one address (an IPv6 address counts as its /64; 1 to
    /// 100000, at most `max_connections`).
    #[serde(deserialize_with = "within::<_, _, 1, 100000>")]
    #[schemars(range(min = 1, max = 100000))]
    pub max_connections_per_address: u32,
    /// How often a silent client is asked whether it is still there (1s to 1h); after three
    /// unanswered asks the connection is closed.
    pub keepalive: HumanDuration,
}

impl Default for Ssh {
    fn default() -> Self {
        Self {
            listen: None,
            host_key: None,
            public_address: None,
            login_timeout: HumanDuration::from_secs_unchecked(30),
            max_auth_attempts: 6,
            max_connections: 256,
            max_connections_per_address: 16,
            keepalive: HumanDuration::from_secs_unchecked(30),
        }
    }
}

/// Retention of terminal recordings (`$BERTH_HOME/recordings`). Berth applies it at start-up
/// and every ten minutes; it writes what it deleted to the audit log (`recording.expire`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Recordings {
    /// Delete recordings whose session ended longer ago than this (1d to 365d). `null`: keep
    /// them, whatever their age.
    pub max_age: Option<HumanDuration>,
    /// When all recordings together take more than this (1m to 1024t), delete the oldest
    /// finished ones until they fit. `null`: no limit.
    pub max_total_size: Option<DiskSize>,
}

impl Default for Recordings {
    fn default() -> Self {
        Self {
            max_age: Some(HumanDuration::from_secs_unchecked(90 * 86_400)),
            max_total_size: Some(DiskSize::from_bytes_unchecked(20 << 30)),
        }
    }
}

/// A certificate and its private key, both PEM files given by absolute path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// The certificate chain (PEM), absolute path.
    #[schemars(example = "/etc/berth/tls/cert.pem")]
    pub cert: PathBuf,
    /// The private key (PEM), absolute path. Keep it readable by Berth's user only.
    #[schemars(example = "/etc/berth/tls/key.pem")]
    pub key: PathBuf,
    /// Also listen for plain HTTP on this address and answer every request with a 308 to the
    /// same path over https (`public_url` when set, else the request's host with the HTTPS
    /// port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", example = "0.0.0.0:80")]
    pub redirect_http: Option<std::net::SocketAddr>,
}

/// The administrator account of `main.yaml`. Users with `role: admin` in `users.yaml` are
/// administrators too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Admin {
    /// The admin's login name; no user in `users.yaml` may have it.
    pub username: Username,
    /// argon2id hash of the admin's password (written by Berth: on first start it creates a
    /// random password and prints it once). Without it the admin cannot log in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<PasswordHash>,
}

impl Default for Admin {
    fn default() -> Self {
        Self {
            username: default_admin_username(),
            password_hash: None,
        }
    }
}

/// "admin".
#[allow(clippy::expect_used)] // a literal that passes the username rule
pub(crate) fn default_admin_username() -> Username {
    Username::new("admin").expect("\"admin\" is a valid username")
}

/// Size-based rotation of `logs/berth.log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Logging {
    /// Rotate the log file when it reaches this many megabytes (1 to 1024).
    #[serde(deserialize_with = "within::<_, _, 1, 1024>")]
    #[schemars(range(min = 1, max = 1024))]
    pub max_size_mb: u64,
    /// How many rotated files to keep (1 to 100).
    #[serde(deserialize_with = "within::<_, _, 1, 100>")]
    #[schemars(range(min = 1, max = 100))]
    pub files_kept: u32,
    /// The least severe level logged: `error`, `warn`, `info`, `debug` or `trace`, optionally
    /// per module (`info,berth_server=debug`). The `BERTH_LOG` environment variable overrides
    /// it.
    pub level: String,
}

impl Default for Logging {
    fn default() -> Self {
        Self {
            max_size_mb: 10,
            files_kept: 5,
            level: "info".into(),
        }
    }
}

/// The container runtime (Docker Engine) and the defaults every workspace gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Runtime {
    /// The Docker Engine to use: a Unix socket path (`/var/run/docker.sock`), or a
    /// `unix://` address (TCP is not supported). Default: `DOCKER_HOST` (a `unix://` one), else `/var/run/docker.sock`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(example = "/var/run/docker.sock")]
    pub docker_socket: Option<String>,
    /// This installation's name on the Docker Engine, put on every container as the label
    /// `berth.instance`. At start-up Berth removes containers with its label that its database
    /// does not know, and never touches others: give two installations sharing one engine
    /// different names. 1 to 63 characters: a-z, 0-9, `_`, `.`, `-`. Default: `berth`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_.-]{0,62}$"))]
    pub instance: String,
    /// Live workspaces (starting, running or stopping) a user may have at once, 1 to 100. A
    /// user's `users.d/<username>.yaml` may raise or lower it.
    #[serde(deserialize_with = "within::<_, _, 1, 100>")]
    #[schemars(range(min = 1, max = 100))]
    pub max_workspaces_per_user: u32,
    /// Host directories templates may bind-mount, as absolute paths; a template's
    /// `bind_mounts` source must be one of them or below one. Default: none, so templates
    /// cannot reach the host's files.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(example = example_bind_mounts())]
    pub allowed_bind_mounts: Vec<PathBuf>,
    /// Memory limit of a workspace whose template sets none.
    pub default_memory: Memory,
    /// Process limit of a workspace whose template sets none (16 to 65536): stops fork bombs.
    #[serde(deserialize_with = "within::<_, _, 16, 65536>")]
    #[schemars(range(min = 16, max = 65536))]
    pub default_pids_limit: u32,
    /// A workspace nobody has typed into for this long is stopped, unless its template sets
    /// its own `idle_timeout`.
    pub default_idle_timeout: HumanDuration,
}

impl Default for Runtime {
    fn default() -> Self {
        Self {
            docker_socket: None,
            instance: "berth".into(),
            max_workspaces_per_user: 3,
            allowed_bind_mounts: Vec::new(),
            default_memory: Memory::from_bytes_unchecked(1 << 30),
            default_pids_limit: 512,
            default_idle_timeout: HumanDuration::from_secs_unchecked(15 * 60),
        }
    }
}

/// Sessions, login lockout and rate limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Security {
    /// A web session ends this long after login, active or not.
    pub session_ttl: HumanDuration,
    /// A web session ends after this long without a request; at most `session_ttl`.
    pub session_idle: HumanDuration,
    /// Failed logins from one address that lock that address out of an account (1 to 100); as
    /// many spread over several addresses throttle the account instead.
    #[serde(deserialize_with = "within::<_, _, 1, 100>")]
    #[schemars(range(min = 1, max = 100))]
    pub lockout_attempts: u32,
    /// How long a locked account stays locked, in minutes (1 to 1440).
    #[serde(deserialize_with = "within::<_, _, 1, 1440>")]
    #[schemars(range(min = 1, max = 1440))]
    pub lockout_minutes: u32,
    /// Login attempts allowed per minute from one address (1 to 10000).
    #[serde(deserialize_with = "within::<_, _, 1, 10000>")]
    #[schemars(range(min = 1, max = 10000))]
    pub login_rate_per_minute: u32,
    /// Liveness pings allowed per minute from one client (1 to 10000).
    #[serde(deserialize_with = "within::<_, _, 1, 10000>")]
    #[schemars(range(min = 1, max = 10000))]
    pub ping_rate_per_minute: u32,
    /// Other API requests allowed per minute for one user or client (1 to 100000).
    #[serde(deserialize_with = "within::<_, _, 1, 100000>")]
    #[schemars(range(min = 1, max = 100000))]
    pub api_rate_per_minute: u32,
    /// Reverse proxies whose `X-Forwarded-For` header is believed (addresses or CIDR
    /// networks). A request from one of them counts as coming from the address the header
    /// names (the rightmost that is not itself a trusted proxy): rate limits, lockouts and the
    /// audit log see people, not the proxy. Empty (the default): the header is ignored.
    #[schemars(example = example_trusted_proxies())]
    pub trusted_proxies: Vec<IpNet>,
    /// SHA-256 of the token `/metrics` asks for (64 lowercase hex digits), written by
    /// `berth config metrics-token`. When set, a scraper must send `Authorization: Bearer
    /// TOKEN`; unset (the default), `/metrics` answers anyone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_token_hash: Option<String>,
}

fn example_trusted_proxies() -> Vec<&'static str> {
    vec!["127.0.0.1", "10.0.0.0/8"]
}

impl Default for Security {
    fn default() -> Self {
        Self {
            session_ttl: HumanDuration::from_secs_unchecked(12 * 3600),
            session_idle: HumanDuration::from_secs_unchecked(3600),
            lockout_attempts: 5,
            lockout_minutes: 5,
            login_rate_per_minute: 10,
            ping_rate_per_minute: 60,
            api_rate_per_minute: 600,
            trusted_proxies: Vec::new(),
            metrics_token_hash: None,
        }
    }
}

fn example_bind_mounts() -> Vec<&'static str> {
    vec!["/srv/datasets"]
}
