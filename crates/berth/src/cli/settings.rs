//! The CLI's `config.yaml`: which server, which installation, which token.
//!
//! ```yaml
//! server: http://127.0.0.1:8080
//! client_id: 7b0e…            # this installation, made on first login, kept across logins
//! username: alice
//! token: 0b6c…                # a client token (or a 24 h login token, see below)
//! token_client_id: 6f1c…      # the server's id of that token: pings carry it
//! token_expires_at: …         # only for login tokens
//! ```
//!
//! Two ids, because the server decides the id of a client token when it mints one: pings must
//! carry that id (`token_client_id`), while containers started with `--local` are labelled with
//! the installation's own `client_id`, which survives a new login.
//!
//! The file holds a secret: it is written with mode 0600 in a directory of mode 0700, through a
//! temporary file renamed over the old one, so a crash never leaves half a file.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_client::api::Secret;
use berth_types::ClientId;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::errors::CliError;
use super::flat_yaml;
use super::paths;

/// What the file is, in error messages.
const SETTINGS: &str = "Berth CLI settings";

/// Larger files are not read: config.yaml is a few lines.
const MAX_BYTES: u64 = 64 * 1024;

const HEADER: &str = "# Berth CLI settings, written by `berth login`. It holds a token: keep it \
private (mode 0600).\n";

/// What `berth login` stores.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This installation: made on first login, kept by every later one.
    pub client_id: ClientId,
    /// The server and the credentials for it; `None` before the first login.
    pub login: Option<Login>,
}

/// A server and a token for it.
#[derive(Debug, Clone)]
pub struct Login {
    /// `http://host:port`.
    pub server: String,
    /// Who the token belongs to.
    pub username: Option<String>,
    /// The bearer token.
    pub token: Secret,
    /// The server's id of the token (client tokens only); pings carry it.
    pub token_client_id: Option<ClientId>,
    /// When a login token (JWT) expires; `None` for client tokens.
    pub token_expires_at: Option<OffsetDateTime>,
    /// A CA certificate file trusted for this server besides the system's roots
    /// (`berth login --ca FILE`), kept as an absolute path.
    pub ca: Option<std::path::PathBuf>,
    /// Plain http to a server that is not this machine was allowed (`--insecure-http`).
    pub insecure_http: bool,
}

impl Login {
    /// An API client of this login's server, as the login said to reach it (without the
    /// token).
    pub fn client(&self) -> Result<berth_client::Client, CliError> {
        super::transport::client_for(&self.server, self.ca.as_deref(), self.insecure_http)
    }
}

/// The file as written: plain strings, in this order.
#[derive(Serialize)]
struct Repr<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<&'a str>,
    client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    insecure_http: bool,
}

/// Why the file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsError {
    /// There is no file: nobody logged in yet.
    Missing(PathBuf),
    /// The file exists but cannot be read.
    Unreadable(PathBuf, String),
    /// The file is not YAML, or not the expected keys and values.
    Invalid {
        path: PathBuf,
        /// `YAML` when the text does not parse, else what the file should be.
        what: &'static str,
        line: Option<usize>,
        reason: String,
    },
}

impl SettingsError {
    pub fn into_cli(self) -> CliError {
        let repair = "run `berth login SERVER` to repair it";
        match self {
            Self::Missing(path) => CliError::new(format!(
                "not logged in ({} does not exist)",
                paths::display(&path)
            ))
            .hint("run `berth login SERVER` first"),
            Self::Unreadable(path, why) => {
                CliError::new(format!("cannot read {}: {why}", paths::display(&path)))
            }
            Self::Invalid {
                path,
                what,
                line,
                reason,
            } => {
                let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
                CliError::new(format!(
                    "{} is not valid {what}{at}: {reason}",
                    paths::display(&path)
                ))
                .hint(repair)
            }
        }
    }
}

impl Settings {
    /// Reads the file at `path`.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        let meta = match fs::metadata(path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(SettingsError::Missing(path.to_owned()));
            }
            Err(err) => return Err(SettingsError::Unreadable(path.to_owned(), err.to_string())),
        };
        let invalid = |line: Option<usize>, reason: String| SettingsError::Invalid {
            path: path.to_owned(),
            what: SETTINGS,
            line,
            reason,
        };
        if !meta.is_file() {
            return Err(invalid(None, "it is not a file".into()));
        }
        if meta.len() > MAX_BYTES {
            return Err(invalid(
                None,
                format!("it is larger than {} KiB", MAX_BYTES / 1024),
            ));
        }
        let bytes = fs::read(path)
            .map_err(|e| SettingsError::Unreadable(path.to_owned(), e.to_string()))?;
        let text =
            String::from_utf8(bytes).map_err(|_| invalid(None, "it is not UTF-8 text".into()))?;
        Self::parse(&text).map_err(|(what, line, reason)| SettingsError::Invalid {
            path: path.to_owned(),
            what,
            line,
            reason,
        })
    }

    /// The settings in `text`; errors carry the line when there is one.
    fn parse(text: &str) -> Result<Self, (&'static str, Option<usize>, String)> {
        let mut values = flat_yaml::read(text).map_err(|e| ("YAML", Some(e.line), e.reason))?;
        let mut take = |key: &str| values.remove(key);
        let uuid = |value: flat_yaml::Value, key: &str| {
            value
                .text
                .trim()
                .parse::<ClientId>()
                .map_err(|_| (SETTINGS, Some(value.line), format!("{key} is not a UUID")))
        };
        let client_id = match take("client_id") {
            Some(value) => uuid(value, "client_id")?,
            None => return Err((SETTINGS, None, "client_id is missing".into())),
        };
        let server = take("server");
        let token = take("token");
        let username = take("username").map(|v| v.text);
        let token_client_id = take("token_client_id")
            .map(|v| uuid(v, "token_client_id"))
            .transpose()?;
        let token_expires_at = take("token_expires_at")
            .map(|v| {
                OffsetDateTime::parse(v.text.trim(), &Rfc3339).map_err(|_| {
                    (
                        SETTINGS,
                        Some(v.line),
                        "token_expires_at is not an RFC 3339 time".to_owned(),
                    )
                })
            })
            .transpose()?;
        let ca = take("ca").map(|v| std::path::PathBuf::from(v.text));
        let insecure_http = match take("insecure_http") {
            None => false,
            Some(v) => match v.text.trim() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err((
                        SETTINGS,
                        Some(v.line),
                        "insecure_http is true or false".into(),
                    ));
                }
            },
        };
        let login = match (server, token) {
            (None, None) => None,
            (Some(server), Some(token)) => Some(Login {
                server: server.text,
                username,
                token: Secret::new(token.text),
                token_client_id,
                token_expires_at,
                ca,
                insecure_http,
            }),
            (Some(v), None) | (None, Some(v)) => {
                return Err((
                    SETTINGS,
                    Some(v.line),
                    "server and token go together".into(),
                ));
            }
        };
        Ok(Self { client_id, login })
    }

    /// The client id of a damaged file, if a `client_id:` line can still be read, so that a
    /// repairing login keeps this installation's identity (and its local workspaces).
    pub fn salvage_client_id(path: &Path) -> Option<ClientId> {
        let meta = fs::metadata(path).ok()?;
        if meta.len() > MAX_BYTES {
            return None;
        }
        let bytes = fs::read(path).ok()?;
        let text = String::from_utf8_lossy(&bytes);
        text.lines().find_map(|line| {
            let value = line.trim_start().strip_prefix("client_id:")?;
            let value = value.split('#').next()?.trim().trim_matches(['"', '\'']);
            value.parse().ok()
        })
    }

    /// The text of the file.
    fn render(&self) -> Result<String, CliError> {
        let login = self.login.as_ref();
        let repr = Repr {
            server: login.map(|l| l.server.as_str()),
            client_id: self.client_id.to_string(),
            username: login.and_then(|l| l.username.as_deref()),
            token: login.map(|l| l.token.expose()),
            token_client_id: login.and_then(|l| l.token_client_id.map(|id| id.to_string())),
            token_expires_at: login
                .and_then(|l| l.token_expires_at)
                .and_then(|t| t.format(&Rfc3339).ok()),
            ca: login.and_then(|l| l.ca.as_ref().map(|p| p.display().to_string())),
            insecure_http: login.is_some_and(|l| l.insecure_http),
        };
        let body = serde_saphyr::to_string(&repr)
            .map_err(|e| CliError::new(format!("cannot write the settings: {e}")))?;
        Ok(format!("{HEADER}{body}"))
    }

    /// Writes the file atomically, private to the user: directory 0700, file 0600.
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        let text = self.render()?;
        write_private(path, text.as_bytes())
    }
}

/// Replaces `path` with `bytes`, readable by its owner only; see [`write_file`].
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    write_file(path, bytes, 0o600, 0o700)
}

/// Replaces `path` with `bytes` of mode `mode`: a temporary file beside it, fsync, rename, fsync
/// of the directory. Creates the directory with mode `dir_mode` when missing.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32, dir_mode: u32) -> Result<(), CliError> {
    let failed = |what: &str, err: std::io::Error| {
        CliError::new(format!("cannot {what} {}: {err}", paths::display(path)))
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(|e| failed("create the directory of", e))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(dir_mode))
            .map_err(|e| failed("restrict the directory of", e))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temp)?;
        // An old temporary file of a crashed run with the same pid may have other modes.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map_err(|e| failed("write", e))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn logged_in() -> Settings {
        Settings {
            client_id: ClientId::random(),
            login: Some(Login {
                server: "http://127.0.0.1:8080".into(),
                username: Some("alice".into()),
                token: Secret::new("0b6c2c1e-1111-4222-8333-444455556666"),
                token_client_id: Some(ClientId::random()),
                token_expires_at: None,
                ca: Some("/etc/berth/ca.pem".into()),
                insecure_http: false,
            }),
        }
    }

    #[test]
    fn settings_round_trip_through_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth/config.yaml");
        let settings = logged_in();
        settings.save(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        let back = Settings::load(&path).unwrap();
        assert_eq!(back.client_id, settings.client_id);
        let (a, b) = (back.login.unwrap(), settings.login.unwrap());
        assert_eq!(a.server, b.server);
        assert_eq!(a.token.expose(), b.token.expose());
        assert_eq!(a.token_client_id, b.token_client_id);
        assert_eq!(a.username.as_deref(), Some("alice"));
        assert!(
            !format!("{a:?}").contains(b.token.expose()),
            "Debug hides the token"
        );
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn login_tokens_keep_their_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        let mut settings = logged_in();
        let expiry = OffsetDateTime::parse("2030-01-02T03:04:05Z", &Rfc3339).unwrap();
        if let Some(login) = settings.login.as_mut() {
            login.token = Secret::new("aaa.bbb.ccc");
            login.token_client_id = None;
            login.token_expires_at = Some(expiry);
        }
        settings.save(&path).unwrap();
        let login = Settings::load(&path).unwrap().login.unwrap();
        assert_eq!(login.token_expires_at, Some(expiry));
        assert_eq!(login.token.expose(), "aaa.bbb.ccc");
    }

    #[test]
    fn damaged_files_say_where_and_keep_their_client_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        assert_eq!(
            Settings::load(&path).unwrap_err(),
            SettingsError::Missing(path.clone())
        );
        let id = ClientId::random();
        fs::write(
            &path,
            format!("server: http://h:1\nclient_id: {id}\ntoken: [unclosed\n"),
        )
        .unwrap();
        match Settings::load(&path).unwrap_err() {
            SettingsError::Invalid {
                line, what, reason, ..
            } => {
                assert_eq!(line, Some(3), "{reason}");
                assert_eq!(what, "YAML", "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(Settings::salvage_client_id(&path), Some(id));
        let message = Settings::load(&path).unwrap_err().into_cli().to_string();
        assert!(message.contains("is not valid YAML (line 3)"), "{message}");
        assert!(message.contains("berth login SERVER"), "{message}");

        for (text, line, why) in [
            ("client_id: nope\n", Some(1), "client_id is not a UUID"),
            ("server: http://h\n", None, "client_id is missing"),
            (
                &format!("client_id: {id}\nserver: http://h\n") as &str,
                Some(2),
                "go together",
            ),
        ] {
            fs::write(&path, text).unwrap();
            match Settings::load(&path).unwrap_err() {
                SettingsError::Invalid {
                    line: got, reason, ..
                } => {
                    assert_eq!(got, line, "{text}");
                    assert!(reason.contains(why), "{text}: {reason}");
                }
                other => panic!("{other:?}"),
            }
        }
        fs::write(&path, [0xff, 0xfe, b'\n']).unwrap();
        assert!(matches!(
            Settings::load(&path),
            Err(SettingsError::Invalid { .. })
        ));
        fs::write(&path, vec![b'#'; 100 * 1024]).unwrap();
        assert!(matches!(
            Settings::load(&path),
            Err(SettingsError::Invalid { .. })
        ));
    }
}
