//! Turning a changed [`Config`] back into file texts, and the plan of which files to write.
//!
//! Files are rendered with `serde-saphyr` below the comment block that opens the existing file
//! (or the default one), so the reference comments survive a save. main.yaml is mostly
//! written by hands: when only the admin's credentials or the metrics token change, the values
//! are replaced (or the token's line added) in place and every comment stays.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use super::files::{self, Replace};
use super::{Scope, StoreError};
use crate::defaults;
use crate::error::{ConfigError, ConfigErrors};
use crate::load::{CONTAINERS, MAIN, OVERRIDES_DIR, Sources, USERS};
use crate::model::{Config, MainConfig, Template, User};
use crate::yaml;

/// The comment block that opens `text`, up to its last comment line.
pub(crate) fn leading_comments(text: &str) -> Option<&str> {
    let mut end = 0;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        pos += line.len();
        if trimmed.starts_with('#') {
            end = pos;
        } else if !trimmed.is_empty() {
            break;
        }
    }
    (end > 0).then(|| &text[..end])
}

fn render<T: Serialize>(file: &str, header: &str, value: &T) -> Result<String, StoreError> {
    // A long line stays one line (an SSH key is grepped for and pasted whole), never folded.
    let options = serde_saphyr::ser_options! {
        compact_list_indent: false,
        folded_wrap_chars: usize::MAX,
    };
    let body = serde_saphyr::to_string_with_options(value, options).map_err(|e| {
        StoreError::Invalid(ConfigErrors::single(ConfigError::new(
            file,
            None,
            "",
            format!("cannot write YAML: {e}"),
        )))
    })?;
    let mut text = header.trim_end().to_owned();
    if !text.is_empty() {
        text.push_str("\n\n");
    }
    text.push_str(&body);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

fn header<'a>(old: Option<&'a str>, default: &'a str) -> &'a str {
    old.and_then(leading_comments).unwrap_or(default)
}

#[derive(Serialize)]
struct UsersOut<'a> {
    users: &'a [User],
}

#[derive(Serialize)]
struct ContainersOut<'a> {
    templates: &'a [Template],
}

/// main.yaml after a change. Changes to the admin's credentials and the metrics token are
/// made in place when the file allows it (see [`edit_main_in_place`]); anything else, or a file
/// laid out otherwise, is rendered whole below its header.
fn render_main(old_text: &str, old: &MainConfig, new: &MainConfig) -> Result<String, StoreError> {
    let mut rest = new.clone();
    rest.admin = old.admin.clone();
    rest.security
        .metrics_token_hash
        .clone_from(&old.security.metrics_token_hash);
    if rest == *old
        && let Some(text) = edit_main_in_place(old_text, old, new)
    {
        return Ok(text);
    }
    render(MAIN, header(Some(old_text), defaults::header(MAIN)), new)
}

/// Replaces the admin's values and sets `security.metrics_token_hash` in the text itself, so
/// every comment stays. `None` when a value is not a one-line scalar, or the token's key is
/// missing and `security` has no key to put it beside.
fn edit_main_in_place(text: &str, old: &MainConfig, new: &MainConfig) -> Option<String> {
    let root = yaml::parse(MAIN, text).ok()?;
    // (start, end, replacement) in characters; start == end inserts.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    if old.admin != new.admin {
        let node = root.get("admin")?;
        let username = node.get("username")?.scalar()?;
        let hash = node.get("password_hash")?.scalar()?;
        let new_hash = new.admin.password_hash.as_ref()?;
        edits.push((
            username.start,
            username.end,
            serde_json::to_string(new.admin.username.as_str()).ok()?,
        ));
        edits.push((
            hash.start,
            hash.end,
            serde_json::to_string(new_hash.as_str()).ok()?,
        ));
    }
    let token = &new.security.metrics_token_hash;
    if old.security.metrics_token_hash != *token {
        let value = match token {
            Some(hash) => serde_json::to_string(hash).ok()?,
            None => "null".to_owned(),
        };
        let security = root.get("security")?;
        match security.get("metrics_token_hash") {
            Some(node) => {
                // An empty value (`metrics_token_hash:`) has no span to replace.
                let scalar = node.scalar().filter(|s| s.start < s.end)?;
                edits.push((scalar.start, scalar.end, value));
            }
            None => {
                // A new line above the section's first key, indented like it.
                let yaml::Kind::Map(entries) = &security.kind else {
                    return None;
                };
                let first = entries.first()?.0.scalar()?;
                let line_start = text
                    .chars()
                    .take(first.start)
                    .collect::<String>()
                    .rfind('\n')
                    .map_or(0, |i| i + 1);
                let indent = byte_offset(text, first.start)? - line_start;
                let indent = text.get(line_start..line_start + indent)?;
                if !indent.chars().all(|c| c == ' ') {
                    return None;
                }
                edits.push((
                    first.start,
                    first.start,
                    format!("metrics_token_hash: {value}\n{indent}"),
                ));
            }
        }
    }
    edits.sort_by_key(|(start, ..)| std::cmp::Reverse(*start));
    let mut out = text.to_owned();
    for (start, end, replacement) in edits {
        let (start, mut end) = (byte_offset(&out, start)?, byte_offset(&out, end)?);
        if start < end {
            // The parser's span of a quoted scalar runs on over trailing blanks and comments.
            if let Some(len) = quoted_len(out.get(start..)?) {
                end = start + len;
            }
            // Only one-line scalars: a span that crosses a line is not a value we can swap.
            if out.get(start..end)?.contains('\n') {
                return None;
            }
        } else if start > end {
            return None;
        }
        out.replace_range(start..end, &replacement);
    }
    // An insertion into a layout we did not foresee (a flow mapping over several lines) may
    // not read back as intended: then the caller renders the file whole.
    if old.security.metrics_token_hash != new.security.metrics_token_hash {
        let root = yaml::parse(MAIN, &out).ok()?;
        let scalar = root.get("security")?.get("metrics_token_hash")?;
        let reads_back = match &new.security.metrics_token_hash {
            Some(hash) => scalar.scalar().is_some_and(|s| !s.plain && s.text == *hash),
            None => scalar.is_null(),
        };
        if !reads_back {
            return None;
        }
    }
    Some(out)
}

/// The length in bytes of the quoted scalar that opens `text`, quotes included.
fn quoted_len(text: &str) -> Option<usize> {
    let quote = text.chars().next().filter(|c| matches!(c, '"' | '\''))?;
    let mut chars = text.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if quote == '"' => {
                chars.next();
            }
            // '' is an escaped quote inside single quotes.
            '\'' if quote == '\'' && text[i + 1..].starts_with('\'') => {
                chars.next();
            }
            c if c == quote => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// The byte offset of character `index` of `text`.
fn byte_offset(text: &str, index: usize) -> Option<usize> {
    text.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .nth(index)
}

/// What a transaction writes: files in order, `None` to remove one.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    changes: Vec<(String, Option<String>)>,
}

impl Plan {
    /// The files of `scope` that differ between `old` and `new`, rendered.
    pub(crate) fn new(
        sources: &Sources,
        old: &Config,
        new: &Config,
        scope: Scope,
    ) -> Result<Self, StoreError> {
        let mut plan = Self::default();
        let text = |source: &crate::load::Source| source.as_ref().ok().cloned();
        match scope {
            Scope::Main if old.main != new.main => {
                let old_text = text(&sources.main).unwrap_or_default();
                plan.changes.push((
                    MAIN.into(),
                    Some(render_main(&old_text, &old.main, &new.main)?),
                ));
            }
            Scope::Containers if old.templates != new.templates => {
                let old_text = text(&sources.containers);
                let header = header(old_text.as_deref(), defaults::header(CONTAINERS));
                let rendered = render(
                    CONTAINERS,
                    header,
                    &ContainersOut {
                        templates: &new.templates,
                    },
                )?;
                plan.changes.push((CONTAINERS.into(), Some(rendered)));
            }
            Scope::Users => {
                if old.users != new.users {
                    let old_text = text(&sources.users);
                    let header = header(old_text.as_deref(), defaults::header(USERS));
                    let rendered = render(USERS, header, &UsersOut { users: &new.users })?;
                    plan.changes.push((USERS.into(), Some(rendered)));
                }
                let names: BTreeSet<_> = old.overrides.keys().chain(new.overrides.keys()).collect();
                let mut removals = Vec::new();
                for name in names {
                    let file = format!("{OVERRIDES_DIR}/{name}.yaml");
                    match (old.overrides.get(name), new.overrides.get(name)) {
                        (_, Some(value)) if old.overrides.get(name) != Some(value) => {
                            let old_text = sources
                                .overrides
                                .get(&format!("{name}.yaml"))
                                .and_then(text);
                            let header = header(old_text.as_deref(), defaults::OVERRIDES_HEADER);
                            plan.changes
                                .push((file.clone(), Some(render(&file, header, value)?)));
                        }
                        (Some(_), None) => removals.push((file, None)),
                        _ => {}
                    }
                }
                // Removals last: a crash in between leaves a file naming a user that is gone,
                // which the next load reports, rather than losing what the file held.
                plan.changes.extend(removals);
            }
            _ => {}
        }
        Ok(plan)
    }

    /// `sources` as they will read once the plan is written.
    pub(crate) fn apply_to(&self, sources: &Sources) -> Sources {
        let mut after = sources.clone();
        for (file, text) in &self.changes {
            let slot = match file.as_str() {
                MAIN => &mut after.main,
                CONTAINERS => &mut after.containers,
                USERS => &mut after.users,
                _ => {
                    let name = file
                        .strip_prefix(OVERRIDES_DIR)
                        .unwrap_or(file)
                        .trim_start_matches('/')
                        .to_owned();
                    match text {
                        Some(text) => {
                            after.overrides.insert(name, Ok(text.clone()));
                        }
                        None => {
                            after.overrides.remove(&name);
                        }
                    }
                    continue;
                }
            };
            if let Some(text) = text {
                *slot = Ok(text.clone());
            }
        }
        after
    }

    /// `errors` found in the rendered files lose their line: it would point into a file that
    /// was never written. The field path still says where.
    pub(crate) fn unlocate(&self, errors: ConfigErrors) -> ConfigErrors {
        let errors = errors
            .into_iter()
            .map(|mut e| {
                if self.changes.iter().any(|(file, _)| *file == e.file) {
                    e.line = None;
                }
                e
            })
            .collect();
        ConfigErrors::from_vec(errors)
            .unwrap_or_else(|| ConfigErrors::single(ConfigError::new("", None, "", "invalid")))
    }

    /// Writes the files, each atomically.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), StoreError> {
        for (file, text) in &self.changes {
            let path = dir.join(file);
            let result = match text {
                Some(text) => {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
                    }
                    files::write_atomic(&path, text, Replace::Overwrite)
                }
                None => files::remove(&path),
            };
            result.map_err(|e| StoreError::io(&path, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_opening_comment_block() {
        assert_eq!(
            leading_comments("# a\n\n# b\nx: 1\n# c\n"),
            Some("# a\n\n# b\n")
        );
        assert_eq!(
            leading_comments("\n  # indented\n\nx: 1"),
            Some("\n  # indented\n")
        );
        assert_eq!(leading_comments("x: 1\n# c\n"), None);
        assert_eq!(leading_comments(""), None);
    }

    #[test]
    fn edits_admin_values_in_place() {
        let text = "# keep me\nadmin:\n  username: admin   # and me\n  password_hash: \"$old$\"\nlogging: {}\n";
        let old = MainConfig::default();
        let mut new = MainConfig::default();
        new.admin = crate::model::Admin {
            username: berth_types::Username::new("root.x").unwrap(),
            password_hash: Some(crate::PasswordHash::from_phc("$pbkdf2-sha256$i=1000,l=32$c2FsdHNhbHRzYWx0c2FsdA$MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI").unwrap()),
        };
        let edited = edit_main_in_place(text, &old, &new).unwrap();
        assert_eq!(
            edited,
            "# keep me\nadmin:\n  username: \"root.x\"   # and me\n  password_hash: \"$pbkdf2-sha256$i=1000,l=32$c2FsdHNhbHRzYWx0c2FsdA$MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI\"\nlogging: {}\n"
        );
        assert_eq!(
            edit_main_in_place("admin:\n  username: a\n", &old, &new),
            None,
            "no hash to replace"
        );
    }

    #[test]
    fn sets_the_metrics_token_in_place_or_declines() {
        let old = MainConfig::default();
        let mut new = MainConfig::default();
        let hash = "ab".repeat(32);
        new.security.metrics_token_hash = Some(hash.clone());
        let edit = |text: &str| edit_main_in_place(text, &old, &new);
        assert_eq!(
            edit("security:\n  metrics_token_hash: null # here\n").unwrap(),
            format!("security:\n  metrics_token_hash: \"{hash}\" # here\n")
        );
        assert_eq!(
            edit("security:\n\t# tab\n  lockout_minutes: 5\n").unwrap(),
            format!("security:\n\t# tab\n  metrics_token_hash: \"{hash}\"\n  lockout_minutes: 5\n")
        );
        // No place to put it, or no value to swap: the caller renders the file whole.
        for text in [
            "listen: 127.0.0.1:1\n",
            "security: {}\n",
            "security:\n  metrics_token_hash:\n",
            "security: {lockout_minutes: 5}\n",
            "security: {\n  lockout_minutes: 5}\n",
        ] {
            assert_eq!(edit(text), None, "{text:?}");
        }
    }

    #[test]
    fn measures_quoted_scalars() {
        assert_eq!(quoted_len("\"a\\\"b\" # c"), Some(6));
        assert_eq!(quoted_len("'it''s' x"), Some(7));
        assert_eq!(quoted_len("plain"), None);
        assert_eq!(quoted_len("\"open"), None);
    }

    #[test]
    fn byte_offsets_count_characters() {
        assert_eq!(byte_offset("é1", 1), Some(2));
        assert_eq!(byte_offset("é1", 2), Some(3));
        assert_eq!(byte_offset("é1", 3), None);
    }
}
