//! Validation errors: each names the file, the line when the parser knows it, and the field path.

use std::fmt;

/// One problem found in a configuration file (see [`berth_yaml::FileError`]).
pub use berth_yaml::FileError as ConfigError;

/// Every problem found in a configuration directory, in file order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    /// Wraps `errors`, sorted by file, line and path; `None` when there are none.
    pub(crate) fn from_vec(mut errors: Vec<ConfigError>) -> Option<Self> {
        errors.sort_by(|a, b| {
            file_rank(&a.file)
                .cmp(&file_rank(&b.file))
                .then_with(|| a.file.cmp(&b.file))
                .then_with(|| a.line.cmp(&b.line))
                .then_with(|| a.path.cmp(&b.path))
                .then_with(|| a.message.cmp(&b.message))
        });
        errors.dedup();
        (!errors.is_empty()).then_some(Self(errors))
    }

    pub(crate) fn single(error: ConfigError) -> Self {
        Self(vec![error])
    }

    /// The errors, in file and line order.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// How many errors there are (at least one).
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a `ConfigErrors` holds at least one error.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors as a vector.
    #[must_use]
    pub fn into_vec(self) -> Vec<ConfigError> {
        self.0
    }
}

/// main.yaml first, then the files that depend on it, then the per-user files.
fn file_rank(file: &str) -> u8 {
    match file {
        "main.yaml" => 0,
        "containers.yaml" => 1,
        "users.yaml" => 2,
        _ => 3,
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_file_line_path_and_message() {
        let e = ConfigError::new(
            "users.yaml",
            Some(12),
            "users[2].templates[0]",
            "unknown template \"pyhton\"",
        );
        assert_eq!(
            e.to_string(),
            "users.yaml:12: users[2].templates[0]: unknown template \"pyhton\""
        );
        let e = ConfigError::new("main.yaml", None, "", "cannot read: denied");
        assert_eq!(e.to_string(), "main.yaml: cannot read: denied");
    }

    #[test]
    fn sorts_by_file_then_line_and_drops_duplicates() {
        let a = ConfigError::new("users.yaml", Some(3), "x", "m");
        let b = ConfigError::new("main.yaml", Some(9), "y", "m");
        let errors = ConfigErrors::from_vec(vec![a.clone(), b.clone(), a.clone()]).unwrap();
        assert_eq!(errors.into_vec(), vec![b, a]);
        assert!(ConfigErrors::from_vec(Vec::new()).is_none());
    }
}
