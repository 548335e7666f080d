//! Field paths as error messages print them: `users[2].templates[0]`, `env["A.B"]`.

use std::fmt;

/// Where a value sits in its file: `users[2].templates[0]`.
#[derive(Clone, Copy)]
pub enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Key(parent, key) => {
                parent.render(out);
                push_key(out, key);
            }
            Path::Index(parent, i) => {
                parent.render(out);
                out.push_str(&format!("[{i}]"));
            }
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.render(&mut out);
        f.write_str(&out)
    }
}

/// Appends `.key` (or `["odd key"]`) to a path, as error messages print it.
pub fn push_key(path: &mut String, key: &str) {
    let simple = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (path.is_empty(), simple) {
        (true, true) => path.push_str(key),
        (false, true) => {
            path.push('.');
            path.push_str(key);
        }
        (_, false) => path.push_str(&format!("[{key:?}]")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_keys_and_indices() {
        let root = Path::Root;
        let users = Path::Key(&root, "users");
        let item = Path::Index(&users, 2);
        let odd = Path::Key(&item, "a.b");
        assert_eq!(
            Path::Key(&item, "templates").to_string(),
            "users[2].templates"
        );
        assert_eq!(odd.to_string(), "users[2][\"a.b\"]");
        let mut text = String::new();
        push_key(&mut text, "env");
        push_key(&mut text, "");
        assert_eq!(text, "env[\"\"]");
    }
}
