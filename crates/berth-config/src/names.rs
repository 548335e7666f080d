//! Rules for the names that appear in the files, and "did you mean" suggestions.

pub(crate) use berth_yaml::closest;

/// A template name: like a username (lowercase letters, digits, `_`, `-`, `.`, starting with a
/// letter or `_`), 1 to 63 characters, so it fits in container and volume names.
pub(crate) fn template_name_problem(name: &str) -> Option<String> {
    let Some(first) = name.chars().next() else {
        return Some("a template name cannot be empty".into());
    };
    if name.len() > 63 {
        return Some(format!(
            "a template name has at most 63 characters, this one has {}",
            name.len()
        ));
    }
    if !(first.is_ascii_lowercase() || first == '_') {
        return Some(format!(
            "a template name starts with a lowercase letter or '_', not {first:?}"
        ));
    }
    name.chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.')))
        .map(|c| format!("a template name may contain only a-z, 0-9, '_', '-' and '.', not {c:?}"))
}

/// A Docker object name (volume, network): `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 128 characters.
pub(crate) fn is_docker_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() <= 128
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A hostname label (RFC 1123): letters, digits and inner hyphens, 1 to 63 characters.
pub(crate) fn is_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let fields = ["image", "name", "shell"];
        assert_eq!(closest("imagee", fields), Some("image"));
        assert_eq!(closest("shel", fields), Some("shell"));
        assert_eq!(closest("colour", fields), None);
        assert_eq!(closest("ab", ["xy"]), None);
        assert_eq!(closest("pyhton", ["python", "base"]), Some("python"));
    }

    #[test]
    fn checks_names() {
        assert_eq!(template_name_problem("python-3.12"), None);
        assert!(template_name_problem("Python").is_some());
        assert!(template_name_problem("").is_some());
        assert!(template_name_problem("a b").is_some());
        assert!(template_name_problem(&"a".repeat(64)).is_some());
        assert!(is_docker_name("berth-net_1.x") && !is_docker_name("-x") && !is_docker_name(""));
        assert!(is_env_name("_A1") && !is_env_name("1A") && !is_env_name("A-B"));
        assert!(is_hostname("ws-1") && !is_hostname("-ws") && !is_hostname("a.b"));
    }
}
