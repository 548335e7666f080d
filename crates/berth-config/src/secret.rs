//! A string that must not end up in logs by accident.

use std::fmt;

/// A secret (a generated password, a client token) handed to the caller once.
///
/// `Debug` prints `<secret>`; only [`Secret::expose`] gives the value, so every place that
/// reveals it is visible in the code.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub(crate) fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself. Show it to its owner; never log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let secret = Secret::new("hunter2".into());
        assert_eq!(format!("{secret:?}"), "<secret>");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(<secret>)");
        assert_eq!(secret.expose(), "hunter2");
    }
}
