//! The gateway's host key: an OpenSSH ed25519 private key file, made on first start.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use ring::rand::SecureRandom as _;
use russh::keys::PrivateKey;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;

use super::GatewayError;

/// Reads the host key at `path`, or makes a new ed25519 key there (mode 0600) when there is
/// no file. A key readable by group or others, or one that does not parse, is refused.
pub fn load_or_generate_host_key(path: &Path) -> Result<PrivateKey, GatewayError> {
    let error = |reason: String| GatewayError::HostKey {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            if !meta.is_file() {
                return Err(error("not a regular file".into()));
            }
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(error(format!(
                    "mode {mode:04o} lets others read it; make it 0600 (chmod 600)"
                )));
            }
            let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
            PrivateKey::from_openssh(&text)
                .map_err(|e| error(format!("not an OpenSSH private key: {e}")))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => generate(path).map_err(error),
        Err(e) => Err(error(e.to_string())),
    }
}

fn generate(path: &Path) -> Result<PrivateKey, String> {
    let mut seed = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| "no randomness available".to_owned())?;
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    seed.fill(0);
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| format!("cannot encode the new key: {e}"))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Written beside, then renamed: a crash never leaves half a key where Berth looks.
    let temp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::hard_link(&temp, path)?;
        std::fs::remove_file(&temp)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        format!("cannot write a new host key: {e}")
    })?;
    // The public half beside it (`KEY.pub`, as ssh-keygen writes it), for known_hosts lines
    // and `ssh-keygen -lf`; a failure here costs only the convenience.
    if let Ok(public) = key.public_key().to_openssh() {
        let mut name = path.as_os_str().to_owned();
        name.push(".pub");
        if let Err(e) = std::fs::write(&name, format!("{public}\n")) {
            tracing::warn!(path = %Path::new(&name).display(), error = %e, "cannot write the host key's public half");
        }
    }
    Ok(key)
}
