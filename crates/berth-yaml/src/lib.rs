//! YAML in, with every error where a person can find it: a line-aware tree under hard limits
//! (depth, nodes, aliases), and a serde deserializer over it that reports each error with its
//! file, line and field path, and keeps going so one run lists every problem of a file.
//! Berth's configuration (`berth-config`) and the fleet's inventory (`berth-fleet`) read
//! their files through it.

mod de;
mod path;
mod scalar;
mod tree;

use std::fmt;

pub use de::{Outcome, from_node};
pub use path::push_key;
pub use tree::{Kind, MAX_DEPTH, MAX_NODES, Node, Scalar, parse, truncate};

/// One problem found in a YAML file: a configuration file, an inventory file.
///
/// Displays as `FILE:LINE: PATH: MESSAGE`, for example
/// `users.yaml:12: users[2].templates[0]: unknown template "pyhton"`. The line is left out when
/// it is unknown (a file that cannot be read), the path when the problem concerns the whole
/// file (a YAML syntax error).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileError {
    /// The file, relative to the configuration directory: `users.yaml`, `users.d/alice.yaml`.
    pub file: String,
    /// The 1-based line of the offending key or value.
    pub line: Option<usize>,
    /// Where in the file: `users[2].templates[0]`; empty for the file as a whole.
    pub path: String,
    /// What is wrong, in words a person can act on.
    pub message: String,
}

impl FileError {
    pub fn new(
        file: impl Into<String>,
        line: Option<usize>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            line,
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for FileError {}

/// The candidate closest to `name` when it is a plausible typo: at most two edits away, and
/// fewer edits than half the name's length.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 2).clamp(1, 2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}
