//! Secrets that never reach a log line.

use std::fmt;

/// A private key's passphrase; `Debug` prints `<secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(String);

impl Passphrase {
    /// Wraps a passphrase.
    pub fn new(passphrase: impl Into<String>) -> Self {
        Self(passphrase.into())
    }

    /// The passphrase itself, for decrypting the key.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let p = Passphrase::new("hunter2");
        assert_eq!(format!("{p:?}"), "<secret>");
        assert_eq!(p.expose(), "hunter2");
    }
}
