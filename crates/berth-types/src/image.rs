//! [`ImageRef`]: a container image reference in Docker's grammar, the one place that decides
//! which `image` a template may name.
//!
//! ```text
//! reference   := name [ ":" tag ] [ "@" digest ]
//! name        := [ domain "/" ] path
//! domain      := host [ ":" port ]          host: DNS labels joined by ".", or [IPv6]
//! path        := component ( "/" component )*
//! component   := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag         := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest      := "sha256:" 64 hex | "sha384:" 96 hex | "sha512:" 128 hex   (lowercase)
//! ```
//!
//! The first part of a name is a registry host when it holds a `.` or a `:`, is `localhost`,
//! or has an uppercase letter (as Docker reads it); the repository path is lowercase. A name is
//! at most 255 characters. Anything else (whitespace, NUL, `|`, `..`, a leading `-` such as
//! `--privileged`) is refused here, before the engine sees it.

use std::fmt;
use std::str::FromStr;

/// The longest name (registry and path) Docker accepts.
const MAX_NAME: usize = 255;

/// The longest tag Docker accepts.
const MAX_TAG: usize = 128;

/// A parsed image reference: `debian:12`, `ghcr.io/org/img:1.2@sha256:…`, `localhost:5000/x`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    text: String,
    domain: Option<(usize, usize)>,
    path: (usize, usize),
    tag: Option<(usize, usize)>,
    digest: Option<(usize, usize)>,
}

/// Why a string is not an image reference, in words for the person who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ImageRefError(String);

impl ImageRef {
    /// Parses `text` in Docker's reference grammar.
    pub fn parse(text: &str) -> Result<Self, ImageRefError> {
        let fail = |message: String| Err(ImageRefError(message));
        if text.is_empty() {
            return fail("an image reference is not empty".into());
        }
        if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return fail(format!(
                "an image reference has no whitespace or control characters, found {c:?}"
            ));
        }
        let (name_tag, digest) = match text.split_once('@') {
            Some((name_tag, digest)) => (name_tag, Some(digest)),
            None => (text, None),
        };
        if let Some(digest) = digest
            && let Some(problem) = digest_problem(digest)
        {
            return fail(problem);
        }
        // A ':' after the last '/' starts the tag; one before it is a registry port.
        let slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[slash..].find(':') {
            Some(i) => (&name_tag[..slash + i], Some(&name_tag[slash + i + 1..])),
            None => (name_tag, None),
        };
        if let Some(tag) = tag
            && let Some(problem) = tag_problem(tag)
        {
            return fail(problem);
        }
        if name.len() > MAX_NAME {
            return fail(format!(
                "an image name has at most {MAX_NAME} characters, found {}",
                name.len()
            ));
        }
        let domain = match name.split_once('/') {
            Some((first, _))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                if let Some(problem) = domain_problem(first) {
                    return fail(problem);
                }
                Some(first)
            }
            _ => None,
        };
        let path = domain.map_or(name, |d| &name[d.len() + 1..]);
        for component in path.split('/') {
            if let Some(problem) = component_problem(component) {
                return fail(problem);
            }
        }
        let span = |part: &str| {
            let start = part.as_ptr() as usize - text.as_ptr() as usize;
            (start, start + part.len())
        };
        Ok(Self {
            text: text.to_owned(),
            domain: domain.map(span),
            path: span(path),
            tag: tag.map(span),
            digest: digest.map(span),
        })
    }

    /// The registry host and port (`ghcr.io`, `localhost:5000`), if the reference names one.
    #[must_use]
    pub fn domain(&self) -> Option<&str> {
        self.domain.map(|(a, b)| &self.text[a..b])
    }

    /// The repository path: `library/debian`, `org/img`, `berth-test/base`.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.text[self.path.0..self.path.1]
    }

    /// The tag, if any: `12`, `1.2`.
    #[must_use]
    pub fn tag(&self) -> Option<&str> {
        self.tag.map(|(a, b)| &self.text[a..b])
    }

    /// The digest, if any: `sha256:…`.
    #[must_use]
    pub fn digest(&self) -> Option<&str> {
        self.digest.map(|(a, b)| &self.text[a..b])
    }

    /// The reference as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for ImageRef {
    type Err = ImageRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or any number of `-`.
fn component_problem(component: &str) -> Option<String> {
    let lower = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bad = || {
        Some(format!(
            "{component:?} is not a repository name part: lowercase letters and digits, \
             joined by '.', '_', '__' or '-'"
        ))
    };
    if component.chars().any(|c| c.is_ascii_uppercase()) {
        return Some(format!(
            "the repository {component:?} has uppercase letters; Docker repositories are lowercase"
        ));
    }
    let bytes = component.as_bytes();
    if bytes.is_empty()
        || !lower(char::from(bytes[0]))
        || !lower(char::from(bytes[bytes.len() - 1]))
    {
        return bad();
    }
    let mut i = 0;
    while i < bytes.len() {
        let c = char::from(bytes[i]);
        if lower(c) {
            i += 1;
            continue;
        }
        // A separator: ".", "_", "__" or a run of "-", then an alphanumeric.
        let start = i;
        while i < bytes.len() && !lower(char::from(bytes[i])) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return bad();
        }
    }
    None
}

/// A DNS name or a bracketed IPv6 address, with an optional numeric port.
fn domain_problem(domain: &str) -> Option<String> {
    let bad = || Some(format!("{domain:?} is not a registry host[:port]"));
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return bad();
        };
        if v6.is_empty() || !v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return bad();
        }
        match after {
            "" => (None, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return bad(),
            },
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad();
    }
    if let Some(host) = host {
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return bad();
        }
    }
    None
}

fn tag_problem(tag: &str) -> Option<String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = tag.len() <= MAX_TAG
        && tag.bytes().next().is_some_and(word)
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    (!ok).then(|| {
        format!(
            "{tag:?} is not a tag: up to {MAX_TAG} letters, digits, '_', '.', '-', not starting \
             with '.' or '-'"
        )
    })
}

fn digest_problem(digest: &str) -> Option<String> {
    let expected = match digest.split_once(':') {
        Some(("sha256", hex)) => Some((64, hex)),
        Some(("sha384", hex)) => Some((96, hex)),
        Some(("sha512", hex)) => Some((128, hex)),
        _ => None,
    };
    let ok = expected.is_some_and(|(len, hex)| {
        hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    (!ok).then(|| {
        "a digest is \"sha256:\" and 64 lowercase hex digits (or sha384: 96, sha512: 128)".into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn the_longest_reference_is_accepted() {
        // berth-runtime passes references up to 1024 bytes to the engine; this one has 520.
        let name = format!("registry.example.invalid/{}", "a".repeat(255 - 25));
        let reference = format!("{name}:{}@sha512:{}", "t".repeat(128), "f".repeat(128));
        assert!(ImageRef::parse(&reference).is_ok(), "{reference}");
        assert!(reference.len() < 1024);
    }

    #[test]
    fn accepts_docker_references() {
        for text in [
            "debian",
            "debian:12",
            "berth-test/base",
            "library/debian:bookworm-slim",
            "localhost:5000/x",
            "localhost/x:latest",
            "registry.local/python:3.12",
            "a__b/c.d/e---f_g:V1.2_x-y",
            "[::1]:5000/img",
            "Registry.Example.COM/img",
            &format!("ghcr.io/org/img:1.2@sha256:{HEX}"),
            &format!("debian@sha256:{HEX}"),
        ] {
            assert!(
                ImageRef::parse(text).is_ok(),
                "{text}: {:?}",
                ImageRef::parse(text)
            );
        }
    }

    #[test]
    fn splits_domain_path_tag_and_digest() {
        let image = ImageRef::parse(&format!("ghcr.io:443/org/img:1.2@sha256:{HEX}")).unwrap();
        assert_eq!(image.domain(), Some("ghcr.io:443"));
        assert_eq!(image.path(), "org/img");
        assert_eq!(image.tag(), Some("1.2"));
        assert_eq!(image.digest(), Some(format!("sha256:{HEX}").as_str()));
        let image = ImageRef::parse("localhost:5000/x").unwrap();
        assert_eq!(
            (image.domain(), image.path(), image.tag()),
            (Some("localhost:5000"), "x", None)
        );
        let image = ImageRef::parse("debian:12").unwrap();
        assert_eq!(
            (image.domain(), image.path(), image.tag()),
            (None, "debian", Some("12"))
        );
        assert_eq!(image.to_string(), "debian:12");
    }

    #[test]
    fn refuses_what_is_not_a_reference() {
        for (text, says) in [
            ("", "not empty"),
            ("--privileged", "not a repository name part"),
            ("debian --privileged", "whitespace"),
            ("debian\0", "control"),
            ("debian|sh", "not a repository name part"),
            ("../etc/passwd", "registry host"),
            ("a/../b", "not a repository name part"),
            ("Debian:12", "uppercase"),
            ("org/Img", "uppercase"),
            ("debian:", "not a tag"),
            ("debian:-x", "not a tag"),
            ("debian:a/b", "registry host"),
            ("debian@sha256:abc", "digest"),
            (&format!("debian@sha256:{}", HEX.to_uppercase()), "digest"),
            (&format!("debian@md5:{HEX}"), "digest"),
            ("host:99999999/x", "registry host"),
            ("-bad.io/x", "registry host"),
            ("a//b", "not a repository name part"),
            ("a/", "not a repository name part"),
            ("a.", "not a repository name part"),
            ("a...b", "not a repository name part"),
            ("a___b", "not a repository name part"),
            (&"a".repeat(256), "at most 255"),
            (&format!("debian:{}", "t".repeat(129)), "not a tag"),
        ] {
            let e = ImageRef::parse(text).expect_err(text);
            assert!(e.to_string().contains(says), "{text:?}: {e}");
        }
    }
}
