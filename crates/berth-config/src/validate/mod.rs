//! Checks beyond types: names, paths, references between files, duplicates.
//!
//! Names a file refers to (templates, users) are taken from the parsed trees rather than the
//! typed values, so that one broken template is reported once, not again by every user that
//! may start it.

mod main_file;
mod templates;
mod users;

use std::collections::HashSet;
use std::path::Path;

use berth_types::Username;

use crate::error::ConfigError;
use crate::load::{CONTAINERS, Loaded, MAIN, OVERRIDES_DIR, USERS};
use crate::model::{ContainersFile, MainConfig, UserOverrides, UsersFile};
use crate::names::closest;
use crate::yaml::{Node, push_key};

/// A place in a file: its path and, when the value is written there, its line.
#[derive(Clone)]
pub(crate) struct At<'a> {
    file: &'a str,
    node: Option<&'a Node>,
    pub(crate) line: Option<usize>,
    path: String,
    excluded: &'a HashSet<u32>,
}

impl<'a> At<'a> {
    fn root<T>(file: &'a str, loaded: &'a Loaded<T>) -> Self {
        Self {
            file,
            node: Some(&loaded.root),
            line: Some(loaded.root.line),
            path: String::new(),
            excluded: &loaded.excluded,
        }
    }

    /// The value of the first of `keys` present (a field and its aliases).
    pub(crate) fn key_any(&self, keys: &[&'a str]) -> Self {
        let found = keys
            .iter()
            .find_map(|k| self.node.and_then(|n| n.get(k)).map(|n| (*k, n)));
        let (key, node) = match found {
            Some((key, node)) => (key, Some(node)),
            None => (keys.first().copied().unwrap_or_default(), None),
        };
        let mut path = self.path.clone();
        push_key(&mut path, key);
        Self {
            node,
            line: node.map(|n| n.line).or(self.line),
            path,
            ..self.clone()
        }
    }

    pub(crate) fn key(&self, key: &'a str) -> Self {
        self.key_any(&[key])
    }

    /// Item `index` of a typed list: items left out for errors are skipped, so the path and
    /// line are those of the item as written.
    pub(crate) fn index(&self, index: usize) -> Self {
        let items = self.node.map(Node::items).unwrap_or_default();
        let raw = items
            .iter()
            .enumerate()
            .filter(|(_, n)| !self.excluded.contains(&n.id))
            .nth(index);
        let (i, node) = match raw {
            Some((i, node)) => (i, Some(node)),
            None => (index, None),
        };
        Self {
            node,
            line: node.map(|n| n.line).or(self.line),
            path: format!("{}[{i}]", self.path),
            ..self.clone()
        }
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::new(self.file, self.line, self.path.clone(), message)
    }
}

/// The cross-file checks, over whatever could be parsed.
pub(crate) struct Checks<'a> {
    main: Option<&'a Loaded<MainConfig>>,
    containers: Option<&'a Loaded<ContainersFile>>,
    users: Option<&'a Loaded<UsersFile>>,
    /// Suggest a template of containers.yaml for an unknown one ("did you mean").
    hints: bool,
}

impl<'a> Checks<'a> {
    pub(crate) fn new(
        main: Option<&'a Loaded<MainConfig>>,
        containers: Option<&'a Loaded<ContainersFile>>,
        users: Option<&'a Loaded<UsersFile>>,
    ) -> Self {
        Self {
            main,
            containers,
            users,
            hints: true,
        }
    }

    /// Whether an unknown template may be answered with the name of a close one, which
    /// quotes containers.yaml.
    pub(crate) fn hint_templates(self, hints: bool) -> Self {
        Self { hints, ..self }
    }

    pub(crate) fn run(
        &self,
        overrides: &[(String, Option<Loaded<UserOverrides>>)],
        errors: &mut Vec<ConfigError>,
    ) {
        let main = self.main.and_then(|l| l.value.as_ref().map(|v| (l, v)));
        // Names are unknown when their file could not be parsed: references are then not checked.
        let templates = self
            .containers
            .map(|l| raw_names(&l.root, "templates", "name"));
        let usernames = self.users.map(|l| raw_names(&l.root, "users", "username"));

        if let Some((loaded, value)) = main {
            let at = At::root(MAIN, loaded);
            main_file::check_main(value, &at, errors);
            let known = Known {
                templates: templates.as_ref(),
                hints: self.hints,
            };
            check_references(
                &value.registration.defaults.templates,
                &at.key("registration").key("defaults").key("templates"),
                known,
                errors,
            );
        }
        if let Some(loaded) = self.containers
            && let Some(value) = &loaded.value
        {
            let allowed = main.map(|(_, m)| m.runtime.allowed_bind_mounts.as_slice());
            let at = At::root(CONTAINERS, loaded).key("templates");
            templates::check_templates(&value.templates, &at, allowed, errors);
        }
        if let Some(loaded) = self.users
            && let Some(value) = &loaded.value
        {
            let admin = main.map(|(_, m)| &m.admin.username);
            let at = At::root(USERS, loaded).key("users");
            let known = Known {
                templates: templates.as_ref(),
                hints: self.hints,
            };
            users::check_users(&value.users, &at, known, admin, errors);
        }
        for (file, loaded) in overrides {
            let stem = file
                .strip_prefix(OVERRIDES_DIR)
                .and_then(|f| f.strip_prefix('/'))
                .and_then(|f| f.strip_suffix(".yaml"));
            let stem = stem.unwrap_or_default();
            if let Err(e) = Username::new(stem) {
                errors.push(ConfigError::new(
                    file.as_str(),
                    None,
                    "",
                    format!("the file name must be <username>.yaml: {e}"),
                ));
            } else if let Some(usernames) = &usernames
                && !usernames.contains(stem)
            {
                errors.push(ConfigError::new(
                    file.as_str(),
                    None,
                    "",
                    format!("there is no user {stem:?} in users.yaml; rename or remove this file"),
                ));
            }
            if let Some(loaded) = loaded
                && let Some(value) = &loaded.value
            {
                let at = At::root(file, loaded).key_any(&["templates", "containers"]);
                let known = Known {
                    templates: templates.as_ref(),
                    hints: self.hints,
                };
                check_references(&value.templates, &at, known, errors);
            }
        }
    }
}

/// `root[list][*][name]` as written, valid or not.
fn raw_names<'a>(root: &'a Node, list: &str, name: &str) -> HashSet<&'a str> {
    root.get(list)
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .filter_map(|item| item.get(name)?.scalar().map(|s| s.text.as_str()))
        .collect()
}

pub(crate) fn first_at(line: Option<usize>) -> String {
    line.map(|l| format!(" (first defined at line {l})"))
        .unwrap_or_default()
}

/// The template names of containers.yaml, when it could be parsed.
#[derive(Clone, Copy)]
pub(crate) struct Known<'a> {
    templates: Option<&'a HashSet<&'a str>>,
    /// Whether a close name may be suggested.
    hints: bool,
}

/// Template names listed for a user: each must exist, once.
pub(crate) fn check_references(
    names: &[String],
    at: &At<'_>,
    known: Known<'_>,
    errors: &mut Vec<ConfigError>,
) {
    let mut seen = HashSet::new();
    for (i, name) in names.iter().enumerate() {
        let at = at.index(i);
        if !seen.insert(name) {
            errors.push(at.error(format!("template {name:?} is listed twice")));
            continue;
        }
        let Some(templates) = known.templates else {
            continue;
        };
        if !templates.contains(name.as_str()) {
            let close = known
                .hints
                .then(|| closest(name, templates.iter().copied()))
                .flatten();
            let hint = match close {
                Some(close) => format!(" (did you mean {close:?}?)"),
                None => String::new(),
            };
            errors.push(at.error(format!("unknown template {name:?}{hint}")));
        }
    }
}

/// The stored form of a token (a client's or the metrics token): SHA-256, lowercase hex.
pub(crate) fn token_hash_problem(hash: &str) -> Option<&'static str> {
    let ok = hash.len() == 64 && hash.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'));
    (!ok).then_some("expected the SHA-256 of the token, 64 lowercase hex digits")
}

/// An absolute, normalized host path.
pub(crate) fn host_path_problem(path: &Path) -> Option<String> {
    let text = path.to_string_lossy();
    if !path.is_absolute() {
        return Some(format!("expected an absolute path, found {text:?}"));
    }
    if text.split('/').any(|part| part == ".." || part == ".") {
        return Some(format!(
            "a path may not contain \".\" or \"..\", found {text:?}"
        ));
    }
    None
}

pub(crate) fn container_path_problem(path: &str) -> Option<String> {
    host_path_problem(Path::new(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(container_path_problem("/home/dev"), None);
        assert!(container_path_problem("home").is_some());
        assert!(container_path_problem("/a/../etc").is_some());
        assert!(host_path_problem(Path::new("/srv/./x")).is_some());
    }
}
