//! Kubeconfigs at rest: XChaCha20-Poly1305 under one 256-bit key file.
//!
//! The key file holds 64 hexadecimal characters (32 bytes), optionally followed by a newline;
//! it is made on first use with mode 0600 (its directory 0700) and refused when group or others
//! may read it. A sealed kubeconfig is `MAGIC (4 bytes: "BKC" 0x01) ‖ nonce (24 random bytes) ‖
//! ciphertext with its 16-byte tag`, and the cluster's id (its 16 bytes) is the associated data:
//! a ciphertext copied to another cluster's row does not open.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_types::ClusterId;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::Kubeconfig;

/// The first bytes of every sealed kubeconfig: the format and its version.
const MAGIC: [u8; 4] = *b"BKC\x01";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Why a key could not be loaded or a kubeconfig not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Reading or creating the key file (or its directory) failed.
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The key file may be read by group or others.
    #[error(
        "key file {path} has mode {mode:04o}, so others may read it; run `chmod 600 {path}` \
         (and check who could have copied it)",
        path = path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
    /// The key file is not 64 hex characters.
    #[error("key file {path} must hold exactly 64 hexadecimal characters (a 256-bit key): {reason}", path = path.display())]
    BadKey { path: PathBuf, reason: String },
    /// The key file is not a regular file.
    #[error("key file {path} is not a regular file", path = path.display())]
    NotAFile { path: PathBuf },
    /// The system's random source failed.
    #[error("no random bytes for a nonce: {0}")]
    Random(String),
    /// The sealed bytes do not start with this format's magic, or are too short to hold one.
    #[error("not a sealed kubeconfig (wrong format or truncated)")]
    Format,
    /// Authentication failed: another key, another cluster's ciphertext, or altered bytes.
    #[error(
        "the sealed kubeconfig does not open with this key for cluster {id} (another key, another cluster's row, or altered bytes)"
    )]
    Open { id: ClusterId },
    /// The plaintext is not UTF-8 (a kubeconfig is YAML text).
    #[error("the opened kubeconfig is not UTF-8 text")]
    NotText,
}

/// The key that seals kubeconfigs. Its `Debug` prints `<secret>`.
#[derive(Clone)]
pub struct KubeconfigKey {
    key: [u8; KEY_LEN],
}

impl fmt::Debug for KubeconfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl KubeconfigKey {
    /// Loads the key file at `path`, or makes one (32 random bytes, mode 0600, its directory
    /// 0700) when there is none.
    pub fn load_or_create(path: &Path) -> Result<Self, SealError> {
        let io = |source| SealError::Io {
            path: path.to_owned(),
            source,
        };
        match fs::symlink_metadata(path) {
            Ok(_) => Self::load(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(dir)
                        .map_err(|source| SealError::Io {
                            path: dir.to_owned(),
                            source,
                        })?;
                }
                let mut key = [0u8; KEY_LEN];
                getrandom::fill(&mut key).map_err(|e| SealError::Random(e.to_string()))?;
                let mut file = match fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                {
                    Ok(file) => file,
                    // Another process made it first: use that one.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return Self::load(path);
                    }
                    Err(e) => return Err(io(e)),
                };
                let mut text = encode_hex(&key);
                text.push('\n');
                file.write_all(text.as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok(Self { key })
            }
            Err(e) => Err(io(e)),
        }
    }

    fn load(path: &Path) -> Result<Self, SealError> {
        let meta = fs::symlink_metadata(path).map_err(|source| SealError::Io {
            path: path.to_owned(),
            source,
        })?;
        if !meta.file_type().is_file() {
            return Err(SealError::NotAFile {
                path: path.to_owned(),
            });
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(SealError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        let bad = |reason: String| SealError::BadKey {
            path: path.to_owned(),
            reason,
        };
        // A key file is 65 bytes; reading a stray large file whole is not needed to refuse it.
        if meta.len() > 1024 {
            return Err(bad(format!("it has {} bytes", meta.len())));
        }
        let raw = fs::read(path).map_err(|source| SealError::Io {
            path: path.to_owned(),
            source,
        })?;
        let text = raw.strip_suffix(b"\n").unwrap_or(&raw);
        if text.len() != 2 * KEY_LEN {
            return Err(bad(format!("it has {} characters", text.len())));
        }
        let key =
            decode_hex(text).ok_or_else(|| bad("it has a non-hexadecimal character".into()))?;
        Ok(Self { key })
    }

    /// A key from its 32 bytes (tests, and a key kept somewhere other than a file).
    #[must_use]
    pub fn from_bytes(key: [u8; KEY_LEN]) -> Self {
        Self { key }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.key.into())
    }

    /// Seals `plaintext` for cluster `id` under a fresh random nonce.
    pub fn seal(&self, id: ClusterId, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| SealError::Random(e.to_string()))?;
        let aad = id.as_uuid();
        let ciphertext = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            // Encryption fails only for messages past the cipher's limit (256 GiB).
            .map_err(|_| SealError::Format)?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Opens what [`seal`](Self::seal) made for cluster `id`.
    pub fn open(&self, id: ClusterId, sealed: &[u8]) -> Result<Kubeconfig, SealError> {
        let rest = sealed.strip_prefix(&MAGIC).ok_or(SealError::Format)?;
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Format);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let mut n = [0u8; NONCE_LEN];
        n.copy_from_slice(nonce);
        let aad = id.as_uuid();
        let plaintext = self
            .cipher()
            .decrypt(
                &XNonce::from(n),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open { id })?;
        String::from_utf8(plaintext)
            .map(Kubeconfig::new)
            .map_err(|_| SealError::NotText)
    }
}

fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

fn decode_hex(text: &[u8]) -> Option<[u8; KEY_LEN]> {
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut key = [0u8; KEY_LEN];
    for (out, pair) in key.iter_mut().zip(text.chunks_exact(2)) {
        *out = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const TEXT: &[u8] = b"apiVersion: v1\nkind: Config\n";

    fn key() -> KubeconfigKey {
        KubeconfigKey::from_bytes([7; KEY_LEN])
    }

    #[test]
    fn round_trip_and_fresh_nonces() {
        let id = ClusterId::random();
        let a = key().seal(id, TEXT).unwrap();
        let b = key().seal(id, TEXT).unwrap();
        assert_ne!(a, b, "two seals of one text share a nonce");
        assert_eq!(&a[..4], b"BKC\x01");
        assert_eq!(a.len(), 4 + 24 + TEXT.len() + 16);
        assert!(!a.windows(6).any(|w| w == b"Config"), "plaintext visible");
        assert_eq!(key().open(id, &a).unwrap().expose().as_bytes(), TEXT);
        assert_eq!(key().open(id, &b).unwrap().expose().as_bytes(), TEXT);
    }

    #[test]
    fn another_id_or_key_does_not_open() {
        let id = ClusterId::random();
        let sealed = key().seal(id, TEXT).unwrap();
        let other = ClusterId::random();
        assert!(matches!(key().open(other, &sealed), Err(SealError::Open { id }) if id == other));
        let stranger = KubeconfigKey::from_bytes([8; KEY_LEN]);
        assert!(matches!(
            stranger.open(id, &sealed),
            Err(SealError::Open { .. })
        ));
    }

    #[test]
    fn tampered_or_truncated_input_fails() {
        let id = ClusterId::random();
        let sealed = key().seal(id, TEXT).unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                key().open(id, &bad).is_err(),
                "flipped byte {i} still opens"
            );
        }
        for len in 0..sealed.len() {
            assert!(
                key().open(id, &sealed[..len]).is_err(),
                "truncated to {len} opens"
            );
        }
        assert!(matches!(key().open(id, b""), Err(SealError::Format)));
        assert!(matches!(
            key().open(id, b"BKC\x01short"),
            Err(SealError::Format)
        ));
        assert!(matches!(
            key().open(id, &sealed[..50]),
            Err(SealError::Open { .. })
        ));
    }

    #[test]
    fn key_file_is_made_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/kubeconfig.key");
        let made = KubeconfigKey::load_or_create(&path).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert_eq!(fs::read(&path).unwrap().len(), 65);
        let again = KubeconfigKey::load_or_create(&path).unwrap();
        assert_eq!(made.key, again.key, "a second load made a new key");
        let id = ClusterId::random();
        let sealed = made.seal(id, TEXT).unwrap();
        assert_eq!(again.open(id, &sealed).unwrap().expose().as_bytes(), TEXT);
        assert_eq!(format!("{made:?}"), "<secret>");
    }

    #[test]
    fn readable_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig.key");
        KubeconfigKey::load_or_create(&path).unwrap();
        for mode in [0o640, 0o604, 0o644] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = KubeconfigKey::load_or_create(&path).unwrap_err();
            assert!(
                matches!(err, SealError::Permissions { mode: m, .. } if m == mode),
                "{err}"
            );
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn key_file_of_wrong_length_or_text_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig.key");
        let cases: [&[u8]; 5] = [
            b"",
            b"00ff\n",
            &[b'a'; 63],
            &[b'a'; 66],
            b"zz00000000000000000000000000000000000000000000000000000000000000",
        ];
        for content in cases {
            fs::write(&path, content).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            let err = KubeconfigKey::load_or_create(&path).unwrap_err();
            assert!(matches!(err, SealError::BadKey { .. }), "{err}");
        }
        fs::write(&path, "ab".repeat(32)).unwrap();
        let key = KubeconfigKey::load_or_create(&path).unwrap();
        assert_eq!(key.key, [0xab; KEY_LEN], "a key without a newline");
    }

    #[test]
    fn a_directory_is_not_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = KubeconfigKey::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, SealError::NotAFile { .. }), "{err}");
    }
}
