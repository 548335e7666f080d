//! Usernames and roles.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// What a user may do: admins manage users, templates and everyone's workspaces.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages users, templates and every workspace.
    Admin,
    /// Uses the templates they are allowed.
    #[default]
    User,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Admin => "admin",
            Role::User => "user",
        })
    }
}

/// A valid username: 1 to 32 characters, lowercase ASCII letters, digits, `_`, `-` and `.`,
/// starting with a letter or `_`. The rule follows POSIX portable login names, so a username
/// can also name a Linux account, a Docker label value and a file (`users.d/<username>.yaml`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

/// Why a string is not a [`Username`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// The empty string.
    #[error("a username cannot be empty")]
    Empty,
    /// More than [`Username::MAX_LEN`] characters.
    #[error("a username has at most {max} characters, this one has {len}", max = Username::MAX_LEN)]
    TooLong {
        /// The length that was given.
        len: usize,
    },
    /// The first character is not a lowercase letter or `_`.
    #[error("a username starts with a lowercase letter or '_'")]
    BadStart,
    /// A character outside the allowed set.
    #[error("a username may contain only a-z, 0-9, '_', '-' and '.', not {0:?}")]
    BadChar(char),
}

impl Username {
    /// The longest username accepted.
    pub const MAX_LEN: usize = 32;

    /// The same rule as a JSON Schema (ECMA 262) pattern.
    pub const PATTERN: &'static str = "^[a-z_][a-z0-9_.-]{0,31}$";

    /// Checks `name` and wraps it.
    pub fn new(name: impl Into<String>) -> Result<Self, UsernameError> {
        let name = name.into();
        Self::check(&name)?;
        Ok(Self(name))
    }

    fn check(name: &str) -> Result<(), UsernameError> {
        let len = name.chars().count();
        let first = name.chars().next().ok_or(UsernameError::Empty)?;
        if len > Self::MAX_LEN {
            return Err(UsernameError::TooLong { len });
        }
        if !(first.is_ascii_lowercase() || first == '_') {
            return Err(UsernameError::BadStart);
        }
        match name.chars().find(|c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'))
        }) {
            Some(c) => Err(UsernameError::BadChar(c)),
            None => Ok(()),
        }
    }

    /// The username as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Username {
    type Err = UsernameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for Username {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::new(raw).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Username {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Username".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": Self::PATTERN,
            "description": "1-32 characters: a-z, 0-9, '_', '-', '.'; starts with a letter or '_'"
        })
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Username {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_portable_names() {
        for name in ["alice", "_svc", "bob-2", "a.b", "a", &"x".repeat(32)] {
            assert!(Username::new(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        assert_eq!(Username::new(""), Err(UsernameError::Empty));
        assert_eq!(
            Username::new("x".repeat(33)),
            Err(UsernameError::TooLong { len: 33 })
        );
        assert_eq!(Username::new("Alice"), Err(UsernameError::BadStart));
        assert_eq!(Username::new("1abc"), Err(UsernameError::BadStart));
        assert_eq!(Username::new("-abc"), Err(UsernameError::BadStart));
        assert_eq!(Username::new("a/b"), Err(UsernameError::BadChar('/')));
        assert_eq!(Username::new("a b"), Err(UsernameError::BadChar(' ')));
        assert_eq!(Username::new("../x"), Err(UsernameError::BadStart));
        assert_eq!(Username::new("é"), Err(UsernameError::BadStart));
        assert!(serde_json::from_str::<Username>("\"Root\"").is_err());
    }
}
