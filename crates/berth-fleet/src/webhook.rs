//! Push webhooks from git hosts: is this request signed with the installation's secret?
//!
//! The secret is the file `webhook.secret` in the keys dir. Accepted, in this order (the first
//! header present decides; a bad signature is not rescued by another header):
//!
//! - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`;
//! - Gitea and Forgejo: `X-Gitea-Signature` / `X-Forgejo-Signature: <hex HMAC-SHA256>`;
//! - GitLab signing tokens (Standard Webhooks): `webhook-signature: v1,<base64 HMAC-SHA256 of
//!   "{webhook-id}.{webhook-timestamp}.{body}">`, the timestamp within five minutes of now, the
//!   key the secret itself or, for a `whsec_` secret, its base64 payload;
//! - GitLab secret tokens: `X-Gitlab-Token: <the secret>`.
//!
//! Every comparison is constant-time. Neither GitHub's nor Gitea's signature covers a time, so
//! a captured delivery can be replayed: all it can do is trigger one more sync.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// How far a Standard Webhooks timestamp may be from now.
pub const TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Which kind of sender a verified request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    GitHub,
    Gitea,
    GitLabSigned,
    GitLabToken,
}

impl Sender {
    /// A short name for logs and the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Self::GitHub => "github",
            Self::Gitea => "gitea",
            Self::GitLabSigned => "gitlab-signed",
            Self::GitLabToken => "gitlab-token",
        }
    }
}

/// Why a webhook request is refused. The messages never contain the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error(
        "no signature: expected X-Hub-Signature-256, X-Gitea-Signature, X-Forgejo-Signature, \
         webhook-signature or X-Gitlab-Token"
    )]
    Unsigned,
    #[error("{header}: malformed signature")]
    Malformed { header: &'static str },
    #[error("{header}: the signature does not match")]
    Mismatch { header: &'static str },
    #[error("webhook-timestamp: more than five minutes from the server's clock")]
    Stale,
    #[error("the webhook secret is empty")]
    EmptySecret,
}

/// Verifies a request: `header` looks a header up by its lowercase name.
pub fn verify<'a>(
    header: impl Fn(&str) -> Option<&'a str>,
    body: &[u8],
    secret: &[u8],
    now: SystemTime,
) -> Result<Sender, WebhookError> {
    let secret = trim_secret(secret);
    if secret.is_empty() {
        return Err(WebhookError::EmptySecret);
    }
    if let Some(value) = header("x-hub-signature-256") {
        const HEADER: &str = "X-Hub-Signature-256";
        let hex = value
            .trim()
            .strip_prefix("sha256=")
            .ok_or(WebhookError::Malformed { header: HEADER })?;
        check_hex(HEADER, hex, &[body], secret)?;
        return Ok(Sender::GitHub);
    }
    for (name, header_name) in [
        ("x-forgejo-signature", "X-Forgejo-Signature"),
        ("x-gitea-signature", "X-Gitea-Signature"),
    ] {
        if let Some(value) = header(name) {
            check_hex(header_name, value.trim(), &[body], secret)?;
            return Ok(Sender::Gitea);
        }
    }
    if let Some(value) = header("webhook-signature") {
        const HEADER: &str = "webhook-signature";
        let id = header("webhook-id").ok_or(WebhookError::Malformed {
            header: "webhook-id",
        })?;
        let timestamp = header("webhook-timestamp").ok_or(WebhookError::Malformed {
            header: "webhook-timestamp",
        })?;
        let seconds: u64 = timestamp
            .trim()
            .parse()
            .map_err(|_| WebhookError::Malformed {
                header: "webhook-timestamp",
            })?;
        let sent = UNIX_EPOCH.checked_add(Duration::from_secs(seconds)).ok_or(
            WebhookError::Malformed {
                header: "webhook-timestamp",
            },
        )?;
        let skew = now.duration_since(sent).unwrap_or_else(|e| e.duration());
        if skew > TIMESTAMP_TOLERANCE {
            return Err(WebhookError::Stale);
        }
        let key = match secret.strip_prefix(b"whsec_") {
            Some(encoded) => STANDARD
                .decode(encoded)
                .map_err(|_| WebhookError::Malformed {
                    header: "webhook.secret (whsec_)",
                })?,
            None => secret.to_vec(),
        };
        let expected = mac(
            &key,
            &[
                id.trim().as_bytes(),
                b".",
                timestamp.trim().as_bytes(),
                b".",
                body,
            ],
        );
        // Several signatures may be sent, separated by spaces, while a key is rotated.
        let mut any = false;
        for candidate in value.split_ascii_whitespace() {
            let Some(encoded) = candidate.strip_prefix("v1,") else {
                continue;
            };
            any = true;
            if let Ok(given) = STANDARD.decode(encoded)
                && bool::from(given.ct_eq(&expected))
            {
                return Ok(Sender::GitLabSigned);
            }
        }
        return Err(if any {
            WebhookError::Mismatch { header: HEADER }
        } else {
            WebhookError::Malformed { header: HEADER }
        });
    }
    if let Some(value) = header("x-gitlab-token") {
        if bool::from(value.as_bytes().ct_eq(secret)) {
            return Ok(Sender::GitLabToken);
        }
        return Err(WebhookError::Mismatch {
            header: "X-Gitlab-Token",
        });
    }
    Err(WebhookError::Unsigned)
}

/// The hex HMAC-SHA256 of `body` a GitHub or Gitea sender computes: for tests and tools.
pub fn sign_hex(secret: &[u8], body: &[u8]) -> String {
    hex::encode(mac(trim_secret(secret), &[body]))
}

/// A secret file usually ends with a newline that is not part of the secret.
fn trim_secret(secret: &[u8]) -> &[u8] {
    let end = secret
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &secret[..end]
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn check_hex(
    header: &'static str,
    hex_text: &str,
    parts: &[&[u8]],
    secret: &[u8],
) -> Result<(), WebhookError> {
    let given = hex::decode(hex_text).map_err(|_| WebhookError::Malformed { header })?;
    let expected = mac(secret, parts);
    if given.len() == expected.len() && bool::from(given.ct_eq(&expected)) {
        Ok(())
    } else {
        Err(WebhookError::Mismatch { header })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use super::*;

    const SECRET: &[u8] = b"It's a Secret to Everybody\n";

    fn headers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
            .collect()
    }

    fn check(pairs: &[(&str, &str)], body: &[u8], now: SystemTime) -> Result<Sender, WebhookError> {
        let map = headers(pairs);
        verify(|name| map.get(name).map(String::as_str), body, SECRET, now)
    }

    #[test]
    fn github_example_from_its_documentation() {
        // GitHub's documented test vector: secret "It's a Secret to Everybody", body
        // "Hello, World!".
        let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign_hex(SECRET, b"Hello, World!"), &signature[7..]);
        assert_eq!(
            check(
                &[("X-Hub-Signature-256", signature)],
                b"Hello, World!",
                SystemTime::now()
            ),
            Ok(Sender::GitHub)
        );
        assert_eq!(
            check(
                &[("X-Hub-Signature-256", signature)],
                b"Hello, World?",
                SystemTime::now()
            ),
            Err(WebhookError::Mismatch {
                header: "X-Hub-Signature-256"
            })
        );
        for bad in ["757107ea", "sha1=757107ea", "sha256=zz", "sha256="] {
            assert!(
                check(
                    &[("X-Hub-Signature-256", bad)],
                    b"Hello, World!",
                    SystemTime::now()
                )
                .is_err()
            );
        }
    }

    #[test]
    fn gitea_and_forgejo_sign_the_body_in_hex() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let signature = sign_hex(SECRET, body);
        for header in ["X-Gitea-Signature", "X-Forgejo-Signature"] {
            assert_eq!(
                check(&[(header, &signature)], body, SystemTime::now()),
                Ok(Sender::Gitea)
            );
            assert!(check(&[(header, &signature)], b"{}", SystemTime::now()).is_err());
        }
        // A good Gitea signature does not rescue a bad Forgejo one.
        let wrong = sign_hex(b"other", body);
        assert!(
            check(
                &[
                    ("X-Forgejo-Signature", &wrong),
                    ("X-Gitea-Signature", &signature)
                ],
                body,
                SystemTime::now()
            )
            .is_err()
        );
    }

    #[test]
    fn standard_webhooks_signature_with_timestamp() {
        let body = b"{}";
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let sign = |ts: &str| {
            let key = trim_secret(SECRET);
            let tag = mac(key, &[b"msg_1", b".", ts.as_bytes(), b".", body]);
            format!("v1,{}", STANDARD.encode(tag))
        };
        let ok = sign("1700000000");
        let pairs = |sig: &str, ts: &str| {
            vec![
                ("webhook-id".to_owned(), "msg_1".to_owned()),
                ("webhook-timestamp".to_owned(), ts.to_owned()),
                ("webhook-signature".to_owned(), sig.to_owned()),
            ]
        };
        let run = |sig: &str, ts: &str, now: SystemTime| {
            let map: HashMap<String, String> = pairs(sig, ts).into_iter().collect();
            verify(|n| map.get(n).map(String::as_str), body, SECRET, now)
        };
        assert_eq!(run(&ok, "1700000000", now), Ok(Sender::GitLabSigned));
        // Rotation: a stale signature beside the good one.
        assert_eq!(
            run(&format!("v1,AAAA {ok}"), "1700000000", now),
            Ok(Sender::GitLabSigned)
        );
        // The timestamp is signed: changing it breaks the signature.
        assert_eq!(
            run(&ok, "1700000001", now),
            Err(WebhookError::Mismatch {
                header: "webhook-signature"
            })
        );
        // Too old or too far ahead.
        let late = now + Duration::from_secs(301);
        assert_eq!(run(&ok, "1700000000", late), Err(WebhookError::Stale));
        let early = now - Duration::from_secs(301);
        assert_eq!(run(&ok, "1700000000", early), Err(WebhookError::Stale));
        assert!(run("v2,abc", "1700000000", now).is_err());
        // A timestamp past what a clock can hold is malformed, not a panic.
        assert_eq!(
            run(&ok, "18446744073709551615", now),
            Err(WebhookError::Malformed {
                header: "webhook-timestamp"
            })
        );
        assert!(run(&ok, "soon", now).is_err());
    }

    #[test]
    fn whsec_secrets_are_base64_keys() {
        let key = b"0123456789abcdef0123456789abcdef";
        let secret = format!("whsec_{}", STANDARD.encode(key));
        let body = b"payload";
        let tag = mac(key, &[b"id", b".", b"1700000000", b".", body]);
        let map = headers(&[
            ("webhook-id", "id"),
            ("webhook-timestamp", "1700000000"),
            ("webhook-signature", &format!("v1,{}", STANDARD.encode(tag))),
        ]);
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_010);
        assert_eq!(
            verify(
                |n| map.get(n).map(String::as_str),
                body,
                secret.as_bytes(),
                now
            ),
            Ok(Sender::GitLabSigned)
        );
    }

    #[test]
    fn gitlab_token_is_compared_whole() {
        let now = SystemTime::now();
        assert_eq!(
            check(
                &[("X-Gitlab-Token", "It's a Secret to Everybody")],
                b"",
                now
            ),
            Ok(Sender::GitLabToken)
        );
        for bad in ["It's a Secret", "It's a Secret to Everybody!", ""] {
            assert!(
                check(&[("X-Gitlab-Token", bad)], b"", now).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn unsigned_requests_and_empty_secrets_are_refused() {
        assert_eq!(
            check(&[], b"{}", SystemTime::now()),
            Err(WebhookError::Unsigned)
        );
        let sig = format!("sha256={}", sign_hex(b"", b"{}"));
        let map = headers(&[("X-Hub-Signature-256", &sig)]);
        assert_eq!(
            verify(
                |n| map.get(n).map(String::as_str),
                b"{}",
                b"\n",
                SystemTime::now()
            ),
            Err(WebhookError::EmptySecret)
        );
    }
}
