//! Login names: `alice` (her running workspace, a menu when she has several) or
//! `alice+python` (her workspace of template `python`).

use std::fmt;

use berth_types::Username;

/// The most characters a template name has (the rule of containers.yaml).
const MAX_TEMPLATE_CHARS: usize = 63;

/// What an SSH client logs in as: a Berth user and, optionally, a template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SshLogin {
    user: Username,
    template: Option<String>,
}

/// Why a login name is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Berth login name (USER or USER+TEMPLATE): {0}")]
pub struct LoginError(String);

impl SshLogin {
    /// Parses `USER` or `USER+TEMPLATE`. The user follows Berth's username rule; the template
    /// the template name rule (a-z, 0-9, `_`, `-`, `.`, starting with a letter or `_`, at most
    /// 63 characters).
    pub fn parse(text: &str) -> Result<Self, LoginError> {
        let (user, template) = match text.split_once('+') {
            Some((user, template)) => (user, Some(template)),
            None => (text, None),
        };
        let user = Username::new(user).map_err(|e| LoginError(e.to_string()))?;
        if let Some(template) = template
            && let Some(problem) = template_problem(template)
        {
            return Err(LoginError(problem));
        }
        Ok(Self {
            user,
            template: template.map(str::to_owned),
        })
    }

    /// A login for `user`, optionally naming a template.
    #[must_use]
    pub fn new(user: Username, template: Option<String>) -> Self {
        Self { user, template }
    }

    /// The Berth user.
    #[must_use]
    pub fn user(&self) -> &Username {
        &self.user
    }

    /// The template after `+`, if any.
    #[must_use]
    pub fn template(&self) -> Option<&str> {
        self.template.as_deref()
    }

    /// The same user with another template.
    #[must_use]
    pub fn with_template(&self, template: impl Into<String>) -> Self {
        Self {
            user: self.user.clone(),
            template: Some(template.into()),
        }
    }
}

impl fmt::Display for SshLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.template {
            Some(template) => write!(f, "{}+{template}", self.user.as_str()),
            None => f.write_str(self.user.as_str()),
        }
    }
}

fn template_problem(name: &str) -> Option<String> {
    let Some(first) = name.chars().next() else {
        return Some("the template after '+' is empty".into());
    };
    if name.chars().count() > MAX_TEMPLATE_CHARS {
        return Some(format!(
            "a template name has at most {MAX_TEMPLATE_CHARS} characters"
        ));
    }
    if !(first.is_ascii_lowercase() || first == '_') {
        return Some(format!(
            "a template name starts with a lowercase letter or '_', not {first:?}"
        ));
    }
    name.chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(*c)))
        .map(|c| format!("a template name may contain only a-z, 0-9, '_', '-' and '.', not {c:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_users_and_templates() {
        let plain = SshLogin::parse("alice").unwrap();
        assert_eq!((plain.user().as_str(), plain.template()), ("alice", None));
        let with = SshLogin::parse("alice+python").unwrap();
        assert_eq!(with.template(), Some("python"));
        assert_eq!(with.to_string(), "alice+python");
        assert_eq!(plain.with_template("python"), with);
        for bad in [
            "",
            "+python",
            "alice+",
            "alice+Python",
            "alice+py thon",
            "alice+a+b",
            "Alice",
            "al ice",
            "alice\0",
            "alice+1py",
            &"a".repeat(33),
            &format!("alice+{}", "p".repeat(64)),
        ] {
            let err = SshLogin::parse(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("not a Berth login name"),
                "{bad:?}"
            );
        }
    }
}
