//! Login tokens: HS256 JWTs signed with a key kept in `$BERTH_HOME/jwt.key`.
//!
//! Only what Berth needs of RFC 7519 is implemented: the header must say `HS256` (so `none` and
//! algorithm-confusion tokens are refused before anything else is read), the signature is
//! checked in constant time before the claims are parsed, and `exp`, `iat` and the lifetime are
//! checked against the clock. The claims name the account (`sub`, `uid`) and carry a
//! fingerprint of its password hash (`pwd`), so deleting the user, re-creating it under the
//! same name or changing its password all invalidate the tokens issued before.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_types::UserId;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

type HmacSha256 = Hmac<Sha256>;

/// How long a login token is valid.
pub const TOKEN_LIFETIME: time::Duration = time::Duration::hours(24);
/// Clock difference tolerated for `iat` in the future (several servers, one key).
const LEEWAY_SECONDS: i64 = 60;
/// Longer bearer values are refused without decoding.
pub(crate) const MAX_TOKEN_LEN: usize = 4096;
const KEY_LEN: usize = 32;

/// The key that signs and checks login tokens. `Debug` does not show it.
#[derive(Clone)]
pub struct JwtKey(Arc<[u8; KEY_LEN]>);

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtKey(<secret>)")
    }
}

/// Why the key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading, creating or restricting the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file is not 64 hexadecimal digits.
    #[error(
        "{}: not a Berth JWT key (64 hexadecimal digits); remove it to have a new one made \
         (every login token is then invalidated)",
        path.display()
    )]
    Malformed {
        /// The key file.
        path: PathBuf,
    },
    /// The operating system gave no randomness.
    #[error("no randomness for a new JWT key: {0}")]
    Random(String),
}

impl JwtKey {
    /// Reads the key in `path`, or makes a random one there (mode 0600) when the file does not
    /// exist. A key readable by others is restricted to its owner, with a warning.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        match fs::read_to_string(path) {
            Ok(text) => {
                let mode = fs::metadata(path).map_err(io)?.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "the JWT key was readable by others; restricting it to mode 0600");
                    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io)?;
                }
                decode_hex(text.trim())
                    .map(Self::from_bytes)
                    .ok_or(KeyError::Malformed {
                        path: path.to_owned(),
                    })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_LEN];
                getrandom::fill(&mut key).map_err(|e| KeyError::Random(e.to_string()))?;
                let created = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path);
                match created {
                    Ok(mut file) => {
                        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
                        file.write_all(format!("{hex}\n").as_bytes()).map_err(io)?;
                        file.sync_all().map_err(io)?;
                        tracing::info!(path = %path.display(), "created the JWT key");
                        Ok(Self::from_bytes(key))
                    }
                    // Another process made it first: use theirs.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(path)
                    }
                    Err(e) => Err(io(e)),
                }
            }
            Err(e) => Err(io(e)),
        }
    }

    /// A key from its bytes.
    #[must_use]
    pub fn from_bytes(key: [u8; KEY_LEN]) -> Self {
        Self(Arc::new(key))
    }

    /// How a web session id is kept in the database: HMAC-SHA256 under this key, in hex. Only
    /// a holder of the key (in `$BERTH_HOME`, not in the database) can make a row that a
    /// cookie matches.
    pub(crate) fn session_id_hash(&self, id: &str) -> String {
        let mut mac = self.mac();
        mac.update(b"berth-web-session:");
        mac.update(id.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length: this cannot fail.
        <HmacSha256 as KeyInit>::new_from_slice(self.0.as_slice())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
    }

    /// A signed token carrying `claims`.
    #[must_use]
    pub fn sign(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// The claims of `token` if this key signed it and it is valid at `now`.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Claims, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header: Header = decode_json(header)?;
        if header.alg != "HS256" {
            return Err(JwtError::Algorithm(header.alg));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| JwtError::Malformed)?;
        let mut mac = self.mac();
        mac.update(&token.as_bytes()[..header_len(token)]);
        mac.verify_slice(&signature)
            .map_err(|_| JwtError::Signature)?;
        let claims: Claims = decode_json(payload)?;
        let now = now.unix_timestamp();
        if claims.exp <= now {
            return Err(JwtError::Expired);
        }
        if claims.iat > now + LEEWAY_SECONDS
            || claims.exp - claims.iat > TOKEN_LIFETIME.whole_seconds()
        {
            return Err(JwtError::Lifetime);
        }
        Ok(claims)
    }
}

/// The length of `header.payload`, the part the signature covers.
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(0)
}

/// What a login token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The username.
    pub sub: String,
    /// The user's id; absent for the main.yaml admin, who has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<UserId>,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// A short digest of the password hash at login (it changes with the password).
    pub pwd: String,
}

impl Claims {
    /// Claims for a token issued `now` to the account `sub`, valid 24 hours.
    #[must_use]
    pub fn new(sub: &str, uid: Option<UserId>, password_hash: &str, now: OffsetDateTime) -> Self {
        let iat = now.unix_timestamp();
        Self {
            sub: sub.to_owned(),
            uid,
            iat,
            exp: iat + TOKEN_LIFETIME.whole_seconds(),
            pwd: password_fingerprint(password_hash),
        }
    }
}

/// A short digest of a password hash: changes whenever the password does, reveals nothing.
#[must_use]
pub(crate) fn password_fingerprint(password_hash: &str) -> String {
    let digest = Sha256::digest(format!("berth-jwt-pwd:{password_hash}").as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts of JSON.
    #[error("not a JWT")]
    Malformed,
    /// Signed with another algorithm than HS256 (or `none`).
    #[error("algorithm {0:?} is not accepted")]
    Algorithm(String),
    /// The signature does not match.
    #[error("bad signature")]
    Signature,
    /// Past `exp`.
    #[error("expired")]
    Expired,
    /// Issued in the future or valid for longer than Berth issues tokens.
    #[error("bad lifetime")]
    Lifetime,
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

fn decode_hex(text: &str) -> Option<[u8; KEY_LEN]> {
    if text.len() != KEY_LEN * 2 || !text.is_ascii() {
        return None;
    }
    let mut key = [0u8; KEY_LEN];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> JwtKey {
        JwtKey::from_bytes([byte; KEY_LEN])
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    #[test]
    fn a_signed_token_verifies_and_round_trips_its_claims() {
        let claims = Claims::new("alice", Some(UserId::random()), "$argon2id$x", now());
        let token = key(1).sign(&claims);
        assert_eq!(key(1).verify(&token, now()), Ok(claims.clone()));
        let later = now() + time::Duration::hours(23);
        assert_eq!(key(1).verify(&token, later), Ok(claims));
    }

    #[test]
    fn tampering_other_keys_and_time_are_refused() {
        let claims = Claims::new("alice", None, "h", now());
        let token = key(1).sign(&claims);
        assert_eq!(key(2).verify(&token, now()), Err(JwtError::Signature));
        assert_eq!(
            key(1).verify(&token, now() + TOKEN_LIFETIME),
            Err(JwtError::Expired)
        );
        // Another payload under the original signature.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD
            .encode(br#"{"sub":"admin","iat":1700000000,"exp":1700003600,"pwd":"x"}"#);
        parts[1] = &forged;
        assert_eq!(
            key(1).verify(&parts.join("."), now()),
            Err(JwtError::Signature)
        );
        // alg none, with or without a signature.
        let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = token.split('.').nth(1).unwrap();
        assert_eq!(
            key(1).verify(&format!("{none}.{payload}."), now()),
            Err(JwtError::Algorithm("none".into()))
        );
        let hs512 = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512"}"#);
        assert!(matches!(
            key(1).verify(&format!("{hs512}.{payload}.AAAA"), now()),
            Err(JwtError::Algorithm(_))
        ));
        for garbage in ["", "a.b", "a.b.c.d", "...", "!!.!!.!!", &"a".repeat(5000)] {
            assert_eq!(
                key(1).verify(garbage, now()),
                Err(JwtError::Malformed),
                "{garbage:.20}"
            );
        }
    }

    #[test]
    fn lifetimes_longer_than_issued_or_from_the_future_are_refused() {
        let mut claims = Claims::new("alice", None, "h", now());
        claims.exp = claims.iat + TOKEN_LIFETIME.whole_seconds() + 1;
        assert_eq!(
            key(1).verify(&key(1).sign(&claims), now()),
            Err(JwtError::Lifetime)
        );
        let future = Claims::new("alice", None, "h", now() + time::Duration::minutes(5));
        assert_eq!(
            key(1).verify(&key(1).sign(&future), now()),
            Err(JwtError::Lifetime)
        );
    }

    #[test]
    fn the_key_file_is_made_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.key");
        let first = JwtKey::load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = JwtKey::load_or_create(&path).unwrap();
        assert_eq!(first.0, again.0);
        assert_eq!(format!("{first:?}"), "JwtKey(<secret>)");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        JwtKey::load_or_create(&path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            JwtKey::load_or_create(&path),
            Err(KeyError::Malformed { .. })
        ));
    }

    #[test]
    fn fingerprints_follow_the_hash() {
        assert_eq!(password_fingerprint("a"), password_fingerprint("a"));
        assert_ne!(password_fingerprint("a"), password_fingerprint("b"));
        assert_eq!(password_fingerprint("a").len(), 16);
    }
}
