//! Public keys users log in to the SSH gateway with (`ssh_keys` in users.yaml), one OpenSSH
//! line each: `ssh-ed25519 AAAAC3Nza... alice@laptop`.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ssh_key::public::KeyData;
use ssh_key::{HashAlg, PublicKey};

/// The longest key line accepted (an RSA key of 16384 bits, with a comment, fits).
pub const MAX_SSH_KEY_CHARS: usize = 4096;

/// The most keys one user may have.
pub const MAX_SSH_KEYS_PER_USER: usize = 64;

/// The fewest bits an RSA key may have.
const MIN_RSA_BITS: u32 = 2048;

/// A user's SSH public key, parsed and checked; written back as the OpenSSH line it came
/// from (leading and trailing blanks removed).
#[derive(Clone)]
pub struct SshKey {
    line: String,
    key: PublicKey,
    fingerprint: String,
}

/// Why a text is not a usable SSH public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshKeyError {
    /// Nothing was given.
    #[error("the key is empty; paste the contents of a .pub file such as ~/.ssh/id_ed25519.pub")]
    Empty,
    /// The text is too long to be a public key.
    #[error("a public key line has at most {MAX_SSH_KEY_CHARS} characters, found {0}")]
    TooLong(usize),
    /// A private key was given instead of the public one.
    #[error(
        "this is a private key; never share it: give the public key instead (the .pub file \
         beside it, or `ssh-keygen -y -f KEYFILE`)"
    )]
    PrivateKey,
    /// More than one line.
    #[error("one key per line: the text has {0} lines")]
    SeveralLines(usize),
    /// The key type is not accepted.
    #[error(
        "unsupported key type {0:?}: use ssh-ed25519 (recommended), ecdsa-sha2-nistp256/384/521, \
         their sk-...@openssh.com security-key forms, or ssh-rsa of 2048 bits or more"
    )]
    Unsupported(String),
    /// An RSA key that is too short.
    #[error(
        "RSA keys need at least {MIN_RSA_BITS} bits, this one has {0}; make an ed25519 key (`ssh-keygen -t ed25519`)"
    )]
    WeakRsa(u32),
    /// authorized_keys options before the key.
    #[error(
        "authorized_keys options (such as command=\"...\" or no-pty) are not accepted; give the \
         key line only, starting with its type"
    )]
    Options,
    /// A comment with control characters.
    #[error("the key's comment contains control characters")]
    BadComment,
    /// Not an OpenSSH public key.
    #[error("not an OpenSSH public key (TYPE BASE64 [COMMENT]): {0}")]
    Malformed(String),
}

/// Key types accepted, as OpenSSH names them.
const ACCEPTED: [&str; 7] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-rsa",
];

impl SshKey {
    /// Parses one OpenSSH public key line.
    pub fn parse(text: &str) -> Result<Self, SshKeyError> {
        let chars = text.chars().count();
        if chars > MAX_SSH_KEY_CHARS {
            return Err(SshKeyError::TooLong(chars));
        }
        let line = text.trim();
        if line.is_empty() {
            return Err(SshKeyError::Empty);
        }
        if line.contains("PRIVATE KEY") || line.starts_with("PuTTY-User-Key-File") {
            return Err(SshKeyError::PrivateKey);
        }
        let lines = line.lines().count();
        if lines > 1 || line.contains(['\n', '\r']) {
            return Err(SshKeyError::SeveralLines(lines.max(2)));
        }
        let kind = line.split_ascii_whitespace().next().unwrap_or_default();
        if !ACCEPTED.contains(&kind) {
            let looks_like_options = kind.contains(['=', ',', '"'])
                || ["no-", "restrict", "cert-authority"]
                    .iter()
                    .any(|p| kind.starts_with(p));
            if looks_like_options {
                return Err(SshKeyError::Options);
            }
            if kind.is_empty() || kind.starts_with("AAAA") {
                return Err(SshKeyError::Malformed(
                    "the key type (such as ssh-ed25519) is missing".into(),
                ));
            }
            return Err(SshKeyError::Unsupported(crate::yaml::truncate(kind)));
        }
        let key =
            PublicKey::from_openssh(line).map_err(|e| SshKeyError::Malformed(e.to_string()))?;
        match key.key_data() {
            KeyData::Rsa(rsa) if rsa.key_size() < MIN_RSA_BITS => {
                return Err(SshKeyError::WeakRsa(rsa.key_size()));
            }
            KeyData::Ed25519(_)
            | KeyData::Ecdsa(_)
            | KeyData::Rsa(_)
            | KeyData::SkEcdsaSha2NistP256(_)
            | KeyData::SkEd25519(_) => {}
            other => return Err(SshKeyError::Unsupported(other.algorithm().to_string())),
        }
        if key.comment().as_bytes().iter().any(u8::is_ascii_control) {
            return Err(SshKeyError::BadComment);
        }
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        Ok(Self {
            line: line.split_ascii_whitespace().collect::<Vec<_>>().join(" "),
            key,
            fingerprint,
        })
    }

    /// The key as an OpenSSH line (`TYPE BASE64 [COMMENT]`).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.line
    }

    /// The key type, e.g. `ssh-ed25519`.
    #[must_use]
    pub fn algorithm(&self) -> String {
        self.key.algorithm().to_string()
    }

    /// The comment after the key, often `user@host`; empty when there is none.
    #[must_use]
    pub fn comment(&self) -> String {
        String::from_utf8_lossy(self.key.comment().as_bytes()).into_owned()
    }

    /// The SHA-256 fingerprint as OpenSSH prints it: `SHA256:` and unpadded base64.
    #[must_use]
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Whether `other` is the same key (whatever the comments).
    #[must_use]
    pub fn same_key(&self, other: &SshKey) -> bool {
        self.fingerprint == other.fingerprint
    }
}

/// Two keys are equal when their lines are, comments included (the file's content).
impl PartialEq for SshKey {
    fn eq(&self, other: &Self) -> bool {
        self.line == other.line
    }
}

impl Eq for SshKey {}

impl fmt::Debug for SshKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshKey")
            .field("algorithm", &self.algorithm())
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for SshKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

impl std::str::FromStr for SshKey {
    type Err = SshKeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl Serialize for SshKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.line)
    }
}

impl<'de> Deserialize<'de> for SshKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for SshKey {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SshKey".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "An OpenSSH public key line: TYPE BASE64 [COMMENT], e.g. the contents of ~/.ssh/id_ed25519.pub.",
            "pattern": "^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\\.com|sk-ecdsa-sha2-nistp256@openssh\\.com|ssh-rsa) [A-Za-z0-9+/]+=*( .*)?$",
            "maxLength": MAX_SSH_KEY_CHARS,
            "examples": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL6ntyLn0+ksLPMTcEM1DytJC+gY1CUqLiExrDS3YTSO alice@laptop"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with ssh-keygen -t ed25519; its fingerprint as `ssh-keygen -lf` prints it.
    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL6ntyLn0+ksLPMTcEM1DytJC+gY1CUqLiExrDS3YTSO alice@laptop";

    #[test]
    fn parses_and_fingerprints() {
        let key = SshKey::parse(&format!("  {ED25519}\n")).unwrap();
        assert_eq!(key.as_str(), ED25519);
        assert_eq!(key.algorithm(), "ssh-ed25519");
        assert_eq!(key.comment(), "alice@laptop");
        assert_eq!(
            key.fingerprint(),
            "SHA256:TavkIFzWzFE5zX++FZcybHRnucQV7dtiaMKyOdQeUHU"
        );
        let other = SshKey::parse(ED25519.trim_end_matches(" alice@laptop")).unwrap();
        assert!(key.same_key(&other));
        assert_ne!(key, other);
    }

    #[test]
    fn refuses_bad_keys() {
        type Check = fn(&SshKeyError) -> bool;
        let cases: [(&str, Check); 9] = [
            ("", |e| *e == SshKeyError::Empty),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----",
                |e| *e == SshKeyError::PrivateKey,
            ),
            ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", |e| {
                matches!(e, SshKeyError::Unsupported(_))
            }),
            ("ssh-ed25519-cert-v01@openssh.com AAAA", |e| {
                matches!(e, SshKeyError::Unsupported(_))
            }),
            ("command=\"ls\" ssh-ed25519 AAAA", |e| {
                *e == SshKeyError::Options
            }),
            ("ssh-ed25519 not-base64!", |e| {
                matches!(e, SshKeyError::Malformed(_))
            }),
            (
                "AAAAC3NzaC1lZDI1NTE5AAAAIL6ntyLn0+ksLPMTcEM1DytJC+gY1CUqLiExrDS3YTSO",
                |e| matches!(e, SshKeyError::Malformed(_)),
            ),
            // The base64 is an ed25519 key, the type says RSA.
            (
                "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIL6ntyLn0+ksLPMTcEM1DytJC+gY1CUqLiExrDS3YTSO",
                |e| matches!(e, SshKeyError::Malformed(_)),
            ),
            (
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL6ntyLn0+ksLPMTcEM1DytJC+gY1CUqLiExrDS3YTSO\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL6ntyLn0+ksLPMTcEM1DytJC+gY1CUqLiExrDS3YTSO",
                |e| matches!(e, SshKeyError::SeveralLines(2)),
            ),
        ];
        for (text, expected) in cases {
            let err = SshKey::parse(text).unwrap_err();
            assert!(expected(&err), "{text:?}: {err:?}");
            assert!(!err.to_string().is_empty());
        }
        let weak = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDDf1Kf7FFfvPJ5Gff+296+Wx6R2yGdqEnDgp3UsveIlfWSY0Ct9Mpiyi4JsM3loA/tOyfG8OMFNMO6fJ5Da1pvuSvjy4wVFq/lQWJsdwEWTscwAmGuW18YWSROpMkvOk3MdXCqxrUNCo74BvPmq0pkWCn36qzq3TgYN57AUJbKew== weak";
        assert_eq!(SshKey::parse(weak).unwrap_err(), SshKeyError::WeakRsa(1024));
        let long = format!("ssh-ed25519 {}", "A".repeat(MAX_SSH_KEY_CHARS));
        assert!(matches!(SshKey::parse(&long), Err(SshKeyError::TooLong(_))));
    }
}
