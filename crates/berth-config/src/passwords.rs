//! Password hashing: argon2id with OWASP's parameters; PBKDF2-SHA256 accepted for imports.
//!
//! Both functions are deliberately slow (tens of milliseconds in a release build) and
//! synchronous: async callers run them in `tokio::task::spawn_blocking`.

use std::fmt;

use argon2::password_hash::phc::PasswordHash as Phc;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The longest password accepted, in characters. Longer ones are refused rather than cut, so
/// every character counts.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// argon2id memory cost in KiB (19 MiB), iterations and lanes: OWASP's recommendation.
const M_COST: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// Stored hashes asking for more than this are refused, so a hostile config cannot make one
/// login allocate gigabytes or spin for minutes.
const MAX_M_COST: u32 = 1024 * 1024;
const MAX_T_COST: u32 = 64;
const MAX_P_COST: u32 = 16;
const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;

/// A password hash in PHC string format (`$argon2id$v=19$m=19456,t=2,p=1$…`), as stored in
/// main.yaml and users.yaml. The format is checked when the configuration is validated.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Checks that `phc` is a hash Berth can verify and wraps it.
    pub fn from_phc(phc: impl Into<String>) -> Result<Self, PasswordError> {
        let hash = Self(phc.into());
        match hash.problem() {
            None => Ok(hash),
            Some(problem) => Err(PasswordError::BadHash(problem)),
        }
    }

    /// The PHC string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Why Berth could not verify a password against this hash, if it could not.
    pub(crate) fn problem(&self) -> Option<String> {
        let phc = match Phc::new(&self.0) {
            Ok(phc) => phc,
            Err(e) => {
                return Some(format!(
                    "not a password hash in PHC format ($argon2id$… or $pbkdf2-sha256$…): {e}"
                ));
            }
        };
        if phc.salt.is_none() || phc.hash.is_none() {
            return Some("the password hash has no salt or no hash part".into());
        }
        cost_problem(&phc)
    }
}

/// Whether the parameters of a stored hash are ones Berth verifies.
fn cost_problem(phc: &Phc) -> Option<String> {
    match phc.algorithm.as_str() {
        "argon2id" | "argon2i" | "argon2d" => match Params::try_from(phc) {
            Err(e) => Some(format!("invalid argon2 parameters: {e}")),
            Ok(p)
                if p.m_cost() > MAX_M_COST
                    || p.t_cost() > MAX_T_COST
                    || p.p_cost() > MAX_P_COST =>
            {
                Some(format!(
                    "argon2 parameters m={}, t={}, p={} exceed what Berth accepts \
                     (m<={MAX_M_COST}, t<={MAX_T_COST}, p<={MAX_P_COST})",
                    p.m_cost(),
                    p.t_cost(),
                    p.p_cost()
                ))
            }
            Ok(_) => None,
        },
        "pbkdf2-sha256" => match pbkdf2::Params::try_from(phc) {
            Err(e) => Some(format!("invalid PBKDF2 parameters: {e}")),
            Ok(p) if p.rounds() > MAX_PBKDF2_ROUNDS => Some(format!(
                "PBKDF2 with {} rounds exceeds the {MAX_PBKDF2_ROUNDS} Berth accepts",
                p.rounds()
            )),
            Ok(_) => None,
        },
        other => Some(format!(
            "unsupported password hash algorithm {other:?} (Berth verifies argon2id and pbkdf2-sha256)"
        )),
    }
}

impl AsRef<str> for PasswordHash {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    /// Only the algorithm: the hash is not a secret, but it has no business in logs either.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algorithm = self.0.split('$').nth(1).unwrap_or("?");
        write!(f, "PasswordHash(${algorithm}$…)")
    }
}

impl schemars::JsonSchema for PasswordHash {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PasswordHash".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^\\$(argon2id|argon2i|argon2d|pbkdf2-sha256)\\$",
            "description": "A password hash in PHC string format: argon2id (what Berth writes) \
                            or pbkdf2-sha256 (accepted from imported configurations, replaced by \
                            argon2id at the next login)."
        })
    }
}

/// Why a password could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The empty password.
    #[error("a password cannot be empty")]
    Empty,
    /// More than [`MAX_PASSWORD_CHARS`] characters.
    #[error("a password has at most {MAX_PASSWORD_CHARS} characters, this one has {chars}")]
    TooLong {
        /// The length that was given, in characters.
        chars: usize,
    },
    /// A stored hash Berth cannot verify.
    #[error("{0}")]
    BadHash(String),
    /// The hashing library failed (no randomness for the salt, for example).
    #[error("cannot hash the password: {0}")]
    Hashing(String),
}

/// The outcome of [`verify_password`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The password matches a hash made with the current parameters.
    Valid,
    /// The password matches, but the hash is PBKDF2 or weaker argon2: store a new
    /// [`hash_password`] of the password the user just typed.
    ValidNeedsUpgrade,
    /// Wrong password, or a stored hash that cannot be verified.
    Invalid,
}

fn check_length(password: &str) -> Result<(), PasswordError> {
    let chars = password.chars().count();
    if chars == 0 {
        return Err(PasswordError::Empty);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordError::TooLong { chars });
    }
    Ok(())
}

fn argon2id() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(M_COST, T_COST, P_COST, None)
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with argon2id (m = 19 MiB, t = 2, p = 1) and a random salt.
///
/// Takes tens of milliseconds and 19 MiB on purpose; from async code call it inside
/// `tokio::task::spawn_blocking`. Refuses empty passwords and passwords longer than
/// [`MAX_PASSWORD_CHARS`] characters.
pub fn hash_password(password: &str) -> Result<PasswordHash, PasswordError> {
    check_length(password)?;
    let hash = argon2id()?
        .hash_password(password.as_bytes())
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
    Ok(PasswordHash(hash.to_string()))
}

/// Checks `candidate` against `stored` (a PHC string: argon2id/argon2i/argon2d or
/// pbkdf2-sha256).
///
/// Returns [`Verification::ValidNeedsUpgrade`] for a correct password whose hash should be
/// replaced (PBKDF2, or argon2 weaker than the current parameters). Malformed or unsupported
/// hashes, and candidates longer than [`MAX_PASSWORD_CHARS`], are [`Verification::Invalid`].
/// As slow as [`hash_password`]: from async code call it inside
/// `tokio::task::spawn_blocking`.
#[must_use]
pub fn verify_password(stored: &str, candidate: &str) -> Verification {
    let Ok(phc) = Phc::new(stored) else {
        return Verification::Invalid;
    };
    if check_length(candidate).is_err() || cost_problem(&phc).is_some() {
        return Verification::Invalid;
    }
    let password = candidate.as_bytes();
    match phc.algorithm.as_str() {
        "pbkdf2-sha256" => match pbkdf2::Pbkdf2::default().verify_password(password, &phc) {
            Ok(()) => Verification::ValidNeedsUpgrade,
            Err(_) => Verification::Invalid,
        },
        _ => match Argon2::default().verify_password(password, &phc) {
            Ok(()) if is_current(&phc) => Verification::Valid,
            Ok(()) => Verification::ValidNeedsUpgrade,
            Err(_) => Verification::Invalid,
        },
    }
}

/// argon2id at least as strong as what [`hash_password`] makes today.
fn is_current(phc: &Phc) -> bool {
    phc.algorithm.as_str() == "argon2id"
        && Params::try_from(phc)
            .is_ok_and(|p| p.m_cost() >= M_COST && p.t_cost() >= T_COST && p.p_cost() >= P_COST)
}

/// A random password for a new account: 24 characters from an alphabet without look-alikes
/// (about 138 bits), drawn from the operating system's CSPRNG.
pub(crate) fn random_password() -> Result<Secret, PasswordError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    const LEN: usize = 24;
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - 256 % ALPHABET.len();
    let mut password = String::with_capacity(LEN);
    while password.len() < LEN {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes)
            .map_err(|e| PasswordError::Hashing(format!("no randomness: {e}")))?;
        for byte in bytes {
            if usize::from(byte) < limit && password.len() < LEN {
                password.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
            }
        }
    }
    Ok(Secret::new(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PBKDF2-SHA256 of "correct horse" with 1000 rounds, as an imported config would hold it.
    fn pbkdf2_hash(password: &str) -> String {
        use argon2::CustomizedPasswordHasher;
        let params = pbkdf2::Params::new(1000).unwrap();
        pbkdf2::Pbkdf2::default()
            .hash_password_with_params(password.as_bytes(), b"saltsaltsaltsalt", params)
            .unwrap()
            .to_string()
    }

    #[test]
    fn argon2id_round_trip_with_owasp_parameters() {
        let hash = hash_password("correct horse").unwrap();
        assert!(
            hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.as_str()
        );
        assert_eq!(hash.problem(), None);
        assert_eq!(
            verify_password(hash.as_str(), "correct horse"),
            Verification::Valid
        );
        assert_eq!(
            verify_password(hash.as_str(), "correct horsE"),
            Verification::Invalid
        );
        assert_ne!(hash_password("correct horse").unwrap(), hash, "salted");
        assert_eq!(format!("{hash:?}"), "PasswordHash($argon2id$…)");
    }

    #[test]
    fn all_128_characters_count_and_longer_passwords_are_refused() {
        let password: String = "é".repeat(127) + "x";
        let hash = hash_password(&password).unwrap();
        let changed_last: String = "é".repeat(127) + "y";
        assert_eq!(
            verify_password(hash.as_str(), &password),
            Verification::Valid
        );
        assert_eq!(
            verify_password(hash.as_str(), &changed_last),
            Verification::Invalid
        );
        let long = "a".repeat(129);
        assert_eq!(
            hash_password(&long),
            Err(PasswordError::TooLong { chars: 129 })
        );
        assert_eq!(
            PasswordError::TooLong { chars: 129 }.to_string(),
            "a password has at most 128 characters, this one has 129"
        );
        assert_eq!(verify_password(hash.as_str(), &long), Verification::Invalid);
        assert_eq!(hash_password(""), Err(PasswordError::Empty));
    }

    #[test]
    fn pbkdf2_hashes_verify_and_ask_for_an_upgrade() {
        let stored = pbkdf2_hash("correct horse");
        assert!(
            stored.starts_with("$pbkdf2-sha256$i=1000,l=32$"),
            "{stored}"
        );
        assert_eq!(
            PasswordHash::from_phc(stored.clone()).unwrap().as_str(),
            stored
        );
        assert_eq!(
            verify_password(&stored, "correct horse"),
            Verification::ValidNeedsUpgrade
        );
        assert_eq!(verify_password(&stored, "wrong"), Verification::Invalid);
    }

    #[test]
    fn weaker_argon2_asks_for_an_upgrade() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw")
        .unwrap()
        .to_string();
        assert_eq!(
            verify_password(&weak, "pw"),
            Verification::ValidNeedsUpgrade
        );
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw")
        .unwrap()
        .to_string();
        assert_eq!(
            verify_password(&argon2i, "pw"),
            Verification::ValidNeedsUpgrade
        );
    }

    #[test]
    fn malformed_unsupported_and_costly_hashes_are_invalid() {
        for stored in [
            "",
            "x",
            "$md5$abc",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
            // 4 GiB of memory per login: refused before any work is done.
            "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI",
            "$pbkdf2-sha256$i=4000000000,l=32$c2FsdHNhbHRzYWx0c2FsdA$MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI",
        ] {
            assert_eq!(
                verify_password(stored, "pw"),
                Verification::Invalid,
                "{stored}"
            );
            assert!(PasswordHash::from_phc(stored).is_err(), "{stored}");
        }
    }

    #[test]
    fn random_passwords_are_long_and_differ() {
        let a = random_password().unwrap();
        let b = random_password().unwrap();
        assert_eq!(a.expose().chars().count(), 24);
        assert_ne!(a, b);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
