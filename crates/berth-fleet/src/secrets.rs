//! `secrets.ini`: key passphrases and script environment, kept in the inventory repository
//! only when encrypted to the server's age identity.
//!
//! The identity is the file `age.key` in the keys dir, made by `age-keygen` on first use (mode
//! 0600); [`SecretsKey::recipient`] is the recipient to encrypt to (`age-keygen -y` of the identity), for
//! `age -r RECIPIENT -a -o secrets.ini secrets.plain.ini`. Decryption runs Debian's `age`
//! binary with the identity file; the plaintext never touches the disk, and a `secrets.ini`
//! that is not an age file fails the sync.
//!
//! The decrypted file is INI:
//!
//! ```ini
//! [passphrases]          ; passphrases of encrypted keys in the keys dir, by file name
//! web-1.key = correct horse battery staple
//! [env]                  ; environment of every script
//! DEPLOY_TOKEN = abc
//! [env:backup]           ; environment of the script `backup` only (wins over [env])
//! S3_SECRET = xyz
//! ```
//!
//! Values are [`SecretValue`]s: their `Debug` and `Display` print `(secret)`, so they cannot
//! reach a log line by accident.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::keys::{KeyFileError, check_secret_file};

/// The age identity in the keys dir.
pub const IDENTITY_FILE: &str = "age.key";
/// The largest `secrets.ini` read.
pub const MAX_SECRETS_BYTES: usize = 256 * 1024;
/// How long `age` may take.
const AGE_TIMEOUT: Duration = Duration::from_secs(30);

/// A secret value: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    /// The value itself, for the one place that needs it (a passphrase, an environment).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(secret)")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(secret)")
    }
}

/// What `secrets.ini` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// Passphrases of key files, by file name.
    pub passphrases: BTreeMap<String, SecretValue>,
    /// The environment of every script.
    pub env: BTreeMap<String, SecretValue>,
    /// The environment of one script, by script name.
    pub script_env: BTreeMap<String, BTreeMap<String, SecretValue>>,
}

impl Secrets {
    /// The environment for `script`: `[env]` overlaid with `[env:SCRIPT]`.
    pub fn env_for(&self, script: &str) -> BTreeMap<String, SecretValue> {
        let mut env = self.env.clone();
        if let Some(own) = self.script_env.get(script) {
            env.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        env
    }
}

/// Why `secrets.ini` cannot be used. Messages never contain a secret value.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(
        "secrets.ini is not encrypted: encrypt it to this server's age recipient (what \
         `age-keygen -y` prints for age.key in the fleet's keys dir) with \
         `age -r RECIPIENT -a -o secrets.ini PLAIN.ini`, and commit only that"
    )]
    Plaintext,
    #[error("secrets.ini: {size} bytes, more than {MAX_SECRETS_BYTES}")]
    TooLarge { size: usize },
    #[error("secrets.ini cannot be decrypted with this server's identity: {0}")]
    Decrypt(String),
    #[error("secrets.ini:{line}: {message}")]
    Syntax { line: usize, message: String },
    #[error(transparent)]
    Key(#[from] KeyFileError),
    #[error("age: {0}")]
    Age(String),
}

/// The server's age identity.
#[derive(Debug, Clone)]
pub struct SecretsKey {
    path: PathBuf,
}

impl SecretsKey {
    /// The identity in `keys_dir` (it may not exist yet).
    pub fn in_dir(keys_dir: &Path) -> Self {
        Self {
            path: keys_dir.join(IDENTITY_FILE),
        }
    }

    /// Makes the identity when there is none (`age-keygen`, mode 0600).
    pub async fn ensure(&self) -> Result<(), SecretsError> {
        if self.path.exists() {
            return check_secret_file(&self.path).map_err(Into::into);
        }
        if let Some(dir) = self.path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| SecretsError::Age(e.to_string()))?;
        }
        let out = run(Command::new("age-keygen").arg("-o").arg(&self.path), None).await?;
        if !out.status.success() {
            return Err(SecretsError::Age(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ));
        }
        check_secret_file(&self.path).map_err(Into::into)
    }

    /// The public recipient (`age1…`) to encrypt `secrets.ini` to.
    pub async fn recipient(&self) -> Result<String, SecretsError> {
        check_secret_file(&self.path)?;
        let out = run(Command::new("age-keygen").arg("-y").arg(&self.path), None).await?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.status.success() || !text.starts_with("age1") {
            return Err(SecretsError::Age(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ));
        }
        Ok(text)
    }

    /// Decrypts and parses the bytes of `secrets.ini`.
    pub async fn open(&self, file: &[u8]) -> Result<Secrets, SecretsError> {
        if file.len() > MAX_SECRETS_BYTES {
            return Err(SecretsError::TooLarge { size: file.len() });
        }
        if !is_age_file(file) {
            return Err(SecretsError::Plaintext);
        }
        check_secret_file(&self.path)?;
        let out = run(
            Command::new("age")
                .arg("--decrypt")
                .arg("-i")
                .arg(&self.path),
            Some(file),
        )
        .await?;
        if !out.status.success() {
            // age's message says why (no identity matched, a damaged header, ...); it never
            // contains plaintext.
            let message = String::from_utf8_lossy(&out.stderr);
            let message = message
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("failed")
                .trim();
            return Err(SecretsError::Decrypt(
                message.trim_start_matches("age: ").to_owned(),
            ));
        }
        let text = String::from_utf8(out.stdout).map_err(|_| SecretsError::Syntax {
            line: 1,
            message: "not UTF-8 text".to_owned(),
        })?;
        parse_ini(&text)
    }
}

/// Whether `file` is an age file, binary or armored.
pub fn is_age_file(file: &[u8]) -> bool {
    let start = file
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(file.len());
    let file = &file[start..];
    file.starts_with(b"age-encryption.org/v1\n")
        || file.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
}

async fn run(
    cmd: &mut Command,
    stdin: Option<&[u8]>,
) -> Result<std::process::Output, SecretsError> {
    cmd.env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| {
        SecretsError::Age(format!(
            "cannot run age ({e}); install Debian's age package"
        ))
    })?;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let bytes = bytes.to_vec();
        // Written beside the wait, so a large file cannot deadlock on a full pipe.
        tokio::spawn(async move {
            let _ = pipe.write_all(&bytes).await;
            let _ = pipe.shutdown().await;
        });
    }
    match tokio::time::timeout(AGE_TIMEOUT, child.wait_with_output()).await {
        Ok(out) => out.map_err(|e| SecretsError::Age(e.to_string())),
        Err(_) => Err(SecretsError::Age(format!(
            "did not finish within {}s",
            AGE_TIMEOUT.as_secs()
        ))),
    }
}

/// Parses the decrypted INI text (see the module docs).
pub fn parse_ini(text: &str) -> Result<Secrets, SecretsError> {
    let mut secrets = Secrets::default();
    let mut section: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let err = |message: String| SecretsError::Syntax { line, message };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with(';') || trimmed.starts_with('#') {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or_else(|| {
                    err("a section header is [passphrases], [env] or [env:SCRIPT]".to_owned())
                })?
                .trim();
            let valid = match name {
                "passphrases" | "env" => true,
                _ => name.strip_prefix("env:").is_some_and(|s| {
                    !s.is_empty()
                        && s.len() <= 64
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                }),
            };
            if !valid {
                return Err(err(format!(
                    "unknown section [{}]: expected [passphrases], [env] or [env:SCRIPT]",
                    name.escape_debug()
                )));
            }
            section = Some(name.to_owned());
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            // Never echo the line: it may be a secret missing its key.
            return Err(err("expected KEY = VALUE".to_owned()));
        };
        let key = key.trim();
        let value = unquote(value.trim());
        let Some(section) = section.as_deref() else {
            return Err(err(
                "a value before any section: start with [passphrases] or [env]".to_owned(),
            ));
        };
        let target = match section {
            "passphrases" => {
                if key.is_empty()
                    || key.contains('/')
                    || key == "."
                    || key == ".."
                    || key.chars().any(char::is_control)
                {
                    // Never echo it: a line that fails here may be a secret without its key.
                    return Err(err("the key is not a file name of the keys dir".to_owned()));
                }
                &mut secrets.passphrases
            }
            env => {
                let valid = !key.is_empty()
                    && key.len() <= 128
                    && key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(err(
                        "the key is not an environment variable name (letters, digits and _, \
                         not starting with a digit)"
                            .to_owned(),
                    ));
                }
                match env.strip_prefix("env:") {
                    Some(script) => secrets.script_env.entry(script.to_owned()).or_default(),
                    None => &mut secrets.env,
                }
            }
        };
        if value.contains('\0') {
            return Err(err(format!("{key}: the value contains NUL")));
        }
        if target
            .insert(key.to_owned(), SecretValue(value.to_owned()))
            .is_some()
        {
            return Err(err(format!("{key} is set twice in [{section}]")));
        }
    }
    Ok(secrets)
}

/// `"value"` or `'value'` without its quotes (so a value may keep spaces at its ends).
fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ini_sections_and_values() {
        let secrets = parse_ini(
            "; comment\n[passphrases]\nweb-1.key = correct horse\n\n[env]\nTOKEN=abc\nSPACED = \" x \"\n[env:backup]\nTOKEN = override\n",
        )
        .unwrap();
        assert_eq!(secrets.passphrases["web-1.key"].expose(), "correct horse");
        assert_eq!(secrets.env["SPACED"].expose(), " x ");
        assert_eq!(secrets.env_for("backup")["TOKEN"].expose(), "override");
        assert_eq!(secrets.env_for("other")["TOKEN"].expose(), "abc");
        // Secrets do not print.
        let shown = format!("{secrets:?}");
        assert!(
            !shown.contains("correct horse") && !shown.contains("abc"),
            "{shown}"
        );
    }

    #[test]
    fn ini_errors_name_the_line_but_never_a_value() {
        for (text, line) in [
            ("TOKEN = hunter2\n", 1),
            ("[env]\nhunter2\n", 2),
            ("[env]\n1BAD = hunter2\n", 2),
            ("[env]\nA = 1\nA = hunter2\n", 3),
            ("[secrets]\nA = hunter2\n", 1),
            ("[env\n", 1),
            ("[passphrases]\n../x = hunter2\n", 2),
            // A bare secret that happens to contain '=' (base64 padding) must not be echoed
            // as if it were a key.
            ("[env]\nhunter2/abc== \n", 2),
            ("[passphrases]\nhunter2/x=y\n", 2),
            ("[env:]\n", 1),
        ] {
            let err = parse_ini(text).unwrap_err();
            let message = err.to_string();
            assert!(
                matches!(err, SecretsError::Syntax { line: l, .. } if l == line),
                "{text:?}: {message}"
            );
            assert!(!message.contains("hunter2"), "{message}");
        }
    }

    #[test]
    fn age_files_are_recognised() {
        assert!(is_age_file(b"age-encryption.org/v1\n-> X25519 abc\n"));
        assert!(is_age_file(b"\n-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n"));
        assert!(!is_age_file(b"[env]\nA=1\n"));
        assert!(!is_age_file(b""));
    }
}
