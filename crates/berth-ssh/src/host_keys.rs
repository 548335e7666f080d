//! Host keys: a pinned key or an OpenSSH known_hosts file, and trusting a new key.
//!
//! The known_hosts reader understands what `ssh` writes: plain names (`host`, comma lists),
//! `[host]:port` for ports other than 22, hashed names (`|1|salt|hmac`, as with
//! `HashKnownHosts yes`), `*`/`?` wildcards and `!` negations. `@revoked` lines refuse their key
//! for the hosts they name, before anything else; `@cert-authority` lines are skipped
//! (certificates are not supported), as are lines it cannot parse.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64ct::Encoding as _;
use russh::keys::{HashAlg, PublicKey};

use crate::error::SshError;

/// How a server's host key is checked. There is no "accept anything" mode.
#[derive(Debug, Clone)]
pub enum HostKeyPolicy {
    /// Exactly this key (an OpenSSH public key line, e.g. `ssh-ed25519 AAAA...`).
    Pinned(String),
    /// The entries of an OpenSSH known_hosts file. With `trust_on_first_use`, a host that has
    /// no entry yet gets its key appended and is accepted; a changed key is refused either way.
    KnownHosts {
        /// The file; a missing file is an empty one.
        path: PathBuf,
        /// Append and accept the key of a host the file does not know.
        trust_on_first_use: bool,
    },
}

/// The SHA256 fingerprint of a key, as `ssh-keygen -l` prints it (`SHA256:...`).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Parses an OpenSSH public key line (`type base64 [comment]`).
pub fn parse_public_key(line: &str) -> Result<PublicKey, SshError> {
    PublicKey::from_openssh(line.trim())
        .map_err(|e| SshError::HostKeys(format!("not an OpenSSH public key ({e}): {line:?}")))
}

/// The name a known_hosts file uses for a host: `host` on port 22, `[host]:port` otherwise.
pub fn host_pattern(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// One usable line of a known_hosts file.
#[derive(Debug, Clone)]
pub struct KnownHost {
    /// The host patterns field, as written.
    pub hosts: String,
    /// The key.
    pub key: PublicKey,
    /// The 1-based line number.
    pub line: usize,
    /// An `@revoked` line: this key is refused for these hosts.
    pub revoked: bool,
}

impl KnownHost {
    /// Whether this entry names `host` on `port`.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        hosts_match(&self.hosts, &host_pattern(host, port))
    }
}

/// Parses a known_hosts file's text; lines it cannot use are skipped.
pub fn parse_known_hosts(text: &str) -> Vec<KnownHost> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            parse_line(line).map(|(revoked, hosts, key)| (i, revoked, hosts, key))
        })
        .map(|(i, revoked, hosts, key)| KnownHost {
            hosts,
            key,
            line: i + 1,
            revoked,
        })
        .collect()
}

fn parse_line(line: &str) -> Option<(bool, String, PublicKey)> {
    let mut line = line.trim();
    let mut revoked = false;
    if let Some(rest) = line.strip_prefix("@revoked") {
        revoked = true;
        line = rest.trim_start();
    }
    if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let hosts = fields.next()?;
    let algorithm = fields.next()?;
    let data = fields.next()?;
    let key = PublicKey::from_openssh(&format!("{algorithm} {data}")).ok()?;
    Some((revoked, hosts.to_owned(), key))
}

/// Whether a known_hosts host field names `name` (`host` or `[host]:port`).
fn hosts_match(field: &str, name: &str) -> bool {
    if let Some(hashed) = field.strip_prefix("|1|") {
        return hashed_matches(hashed, name);
    }
    let mut matched = false;
    for pattern in field.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if glob(negated, name) {
                return false;
            }
        } else if glob(pattern, name) {
            matched = true;
        }
    }
    matched
}

fn hashed_matches(hashed: &str, name: &str) -> bool {
    let Some((salt, digest)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(digest)) = (
        base64ct::Base64::decode_vec(salt),
        base64ct::Base64::decode_vec(digest),
    ) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
    ring::hmac::verify(&key, name.as_bytes(), &digest).is_ok()
}

/// The hashed form of a host name (`|1|salt|hmac`), as `ssh-keygen -H` writes it.
pub fn hash_host(name: &str, salt: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
    let tag = ring::hmac::sign(&key, name.as_bytes());
    format!(
        "|1|{}|{}",
        base64ct::Base64::encode_string(salt),
        base64ct::Base64::encode_string(tag.as_ref())
    )
}

/// OpenSSH's pattern match: `*` any run, `?` one character, case-insensitive.
fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let n: Vec<char> = name.to_lowercase().chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The verdict on a presented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Pinned or recorded.
    Known,
    /// No entry for this host (and key type).
    Unknown,
    /// An entry of the same key type holds another key; its fingerprint.
    Changed {
        /// Fingerprint of the recorded key.
        expected: String,
    },
    /// The host is recorded, but only with keys of other types: a server (or someone in the
    /// middle) offering a type not yet recorded. Never trusted on first use.
    OtherTypes {
        /// Fingerprint of a recorded key.
        expected: String,
    },
    /// An `@revoked` line names this key for this host.
    Revoked,
}

/// Checks `key` against known_hosts entries for `host`:`port`, as OpenSSH does: a revoked key
/// is refused whatever else is recorded; a matching key is known; another key of the same type
/// is a change; keys of other types only are [`Verdict::OtherTypes`]; no entry is unknown.
pub fn check(entries: &[KnownHost], host: &str, port: u16, key: &PublicKey) -> Verdict {
    let matching: Vec<&KnownHost> = entries.iter().filter(|e| e.matches(host, port)).collect();
    if matching
        .iter()
        .any(|e| e.revoked && e.key.key_data() == key.key_data())
    {
        return Verdict::Revoked;
    }
    let recorded = || matching.iter().filter(|e| !e.revoked);
    if recorded().any(|e| e.key.key_data() == key.key_data()) {
        return Verdict::Known;
    }
    if let Some(entry) = recorded().find(|e| e.key.algorithm() == key.algorithm()) {
        return Verdict::Changed {
            expected: fingerprint(&entry.key),
        };
    }
    match recorded().next() {
        Some(entry) => Verdict::OtherTypes {
            expected: fingerprint(&entry.key),
        },
        None => Verdict::Unknown,
    }
}

/// Reads a known_hosts file; a missing file is empty.
pub fn read_known_hosts(path: &Path) -> Result<Vec<KnownHost>, SshError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse_known_hosts(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(SshError::HostKeys(format!("{}: {e}", path.display()))),
    }
}

/// Serializes appends within this process; across processes the rename keeps the file whole.
static APPEND: Mutex<()> = Mutex::new(());

/// Adds `host`:`port` with `key` to a known_hosts file atomically (a temporary file in the same
/// directory, fsync, rename), unless that exact entry is already there. Creates the file (0644)
/// and its directory when missing. Refused when the file (read again under the lock) records
/// another key for the host or revokes this one: two first connections, one of them
/// intercepted, must never leave both keys trusted.
pub fn append_known_host(
    path: &Path,
    host: &str,
    port: u16,
    key: &PublicKey,
) -> Result<(), SshError> {
    let fail = |what: &str, e: std::io::Error| {
        SshError::HostKeys(format!("{what} {}: {e}", path.display()))
    };
    let _guard = APPEND
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(fail("cannot read", e)),
    };
    match check(&parse_known_hosts(&existing), host, port, key) {
        Verdict::Known => return Ok(()),
        Verdict::Unknown => {}
        Verdict::Changed { expected } | Verdict::OtherTypes { expected } => {
            return Err(SshError::HostKeyChanged {
                address: host_pattern(host, port),
                expected,
                got: fingerprint(key),
            });
        }
        Verdict::Revoked => {
            return Err(SshError::HostKeyRevoked {
                address: host_pattern(host, port),
                fingerprint: fingerprint(key),
            });
        }
    }
    let key_line = key
        .to_openssh()
        .map_err(|e| SshError::HostKeys(format!("cannot encode the host key: {e}")))?;
    let key_line = key_line
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("{} {key_line}\n", host_pattern(host, port)));

    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail("cannot create the directory of", e))?;
    let mut temp =
        tempfile::NamedTempFile::new_in(&dir).map_err(|e| fail("cannot write next to", e))?;
    temp.write_all(text.as_bytes())
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| fail("cannot write next to", e))?;
    set_mode_0644(temp.as_file()).map_err(|e| fail("cannot set the mode of", e))?;
    temp.persist(path)
        .map_err(|e| fail("cannot replace", e.error))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode_0644(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn set_mode_0644(_: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFBKyD3C+Gqz9//zMnODQduOKB8mTf0mW1oCeGccALTX";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMU23Y3BlwteM7RU6TuNUKt/dRrbE2/gCd7A8lfbdRbK";

    const KEY_ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBLHnbmMa0KtjKiIYtSifCJazKVPH4fvArltc23bgH/jRIVO6WBGHNYoc7cDP9KFoJXKvzRtEDZQK/V9S40whi8M=";

    fn key(line: &str) -> PublicKey {
        parse_public_key(line).unwrap()
    }

    #[test]
    fn a_revoked_key_is_refused_whatever_else_is_recorded() {
        let entries = parse_known_hosts(&format!(
            "h {KEY_A}
@revoked h,g {KEY_A}
@cert-authority *.x {KEY_B}
"
        ));
        assert_eq!(entries.len(), 2, "@cert-authority is skipped");
        assert_eq!(check(&entries, "h", 22, &key(KEY_A)), Verdict::Revoked);
        // Revoked for g too, though g has no entry: never trusted on first use.
        assert_eq!(check(&entries, "g", 22, &key(KEY_A)), Verdict::Revoked);
        assert_eq!(check(&entries, "g", 22, &key(KEY_B)), Verdict::Unknown);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, format!("@revoked g {KEY_A}\n")).unwrap();
        assert!(matches!(
            append_known_host(&path, "g", 22, &key(KEY_A)),
            Err(SshError::HostKeyRevoked { .. })
        ));
    }

    #[test]
    fn a_host_known_by_another_key_type_is_not_unknown() {
        let entries = parse_known_hosts(&format!(
            "h {KEY_A}
"
        ));
        assert_eq!(
            check(&entries, "h", 22, &key(KEY_ECDSA)),
            Verdict::OtherTypes {
                expected: fingerprint(&key(KEY_A))
            }
        );
        assert_eq!(
            check(&entries, "other", 22, &key(KEY_ECDSA)),
            Verdict::Unknown
        );
    }

    #[test]
    fn appending_refuses_what_another_writer_recorded_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        append_known_host(&path, "h", 22, &key(KEY_A)).unwrap();
        // A second first use of h with another key (one of them in the middle): refused.
        assert!(matches!(
            append_known_host(&path, "h", 22, &key(KEY_B)),
            Err(SshError::HostKeyChanged { .. })
        ));
        assert!(matches!(
            append_known_host(&path, "h", 22, &key(KEY_ECDSA)),
            Err(SshError::HostKeyChanged { .. })
        ));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("h {KEY_A}\n")
        );
    }

    #[test]
    fn plain_bracketed_and_lists() {
        let text = format!(
            "# comment\n\nexample.org,10.0.0.1 {KEY_A}\n[10.0.0.2]:2222 {KEY_A} some comment\ngarbage line\n"
        );
        let entries = parse_known_hosts(&text);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].line, 3);
        let a = key(KEY_A);
        assert_eq!(check(&entries, "example.org", 22, &a), Verdict::Known);
        assert_eq!(check(&entries, "EXAMPLE.org", 22, &a), Verdict::Known);
        assert_eq!(check(&entries, "10.0.0.1", 22, &a), Verdict::Known);
        assert_eq!(check(&entries, "10.0.0.1", 2222, &a), Verdict::Unknown);
        assert_eq!(check(&entries, "10.0.0.2", 2222, &a), Verdict::Known);
        assert_eq!(check(&entries, "10.0.0.2", 22, &a), Verdict::Unknown);
    }

    #[test]
    fn another_key_of_the_same_type_is_a_change() {
        let entries = parse_known_hosts(&format!("h {KEY_A}\n"));
        let b = key(KEY_B);
        assert_eq!(
            check(&entries, "h", 22, &b),
            Verdict::Changed {
                expected: fingerprint(&key(KEY_A))
            }
        );
    }

    #[test]
    fn hashed_entries_match_only_their_host() {
        let entries = parse_known_hosts(&format!(
            "{} {KEY_A}\n",
            hash_host("[h]:2200", b"0123456789abcdefghij")
        ));
        let a = key(KEY_A);
        assert_eq!(check(&entries, "h", 2200, &a), Verdict::Known);
        assert_eq!(check(&entries, "h", 22, &a), Verdict::Unknown);
        assert_eq!(check(&entries, "g", 2200, &a), Verdict::Unknown);
    }

    #[test]
    fn wildcards_and_negation() {
        let entries = parse_known_hosts(&format!("*.example.org,!bad.example.org {KEY_A}\n"));
        let a = key(KEY_A);
        assert_eq!(check(&entries, "web1.example.org", 22, &a), Verdict::Known);
        assert_eq!(check(&entries, "bad.example.org", 22, &a), Verdict::Unknown);
        assert_eq!(check(&entries, "example.org", 22, &a), Verdict::Unknown);
        assert!(glob("10.0.0.?", "10.0.0.7"));
        assert!(!glob("10.0.0.?", "10.0.0.17"));
    }

    #[test]
    fn fingerprint_is_what_ssh_keygen_prints() {
        // ssh-keygen -lf on the key gives SHA256:<43 base64 characters without padding>.
        let fp = fingerprint(&key(KEY_A));
        assert!(fp.starts_with("SHA256:") && fp.len() == 7 + 43, "{fp}");
    }

    #[test]
    fn append_is_idempotent_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/known_hosts");
        let a = key(KEY_A);
        append_known_host(&path, "127.0.20.1", 22, &a).unwrap();
        append_known_host(&path, "127.0.20.1", 22, &a).unwrap();
        append_known_host(&path, "127.0.20.1", 2222, &a).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!("127.0.20.1 {KEY_A}\n[127.0.20.1]:2222 {KEY_A}\n")
        );
    }

    proptest! {
        #[test]
        fn a_written_entry_reads_back(host in "[a-z0-9][a-z0-9.-]{0,30}", port in 1u16.., hashed: bool,
                                      salt in proptest::collection::vec(any::<u8>(), 20)) {
            let name = host_pattern(&host, port);
            let field = if hashed { hash_host(&name, &salt) } else { name };
            let entries = parse_known_hosts(&format!("# x\n{field} {KEY_A} c\n"));
            prop_assert_eq!(entries.len(), 1);
            prop_assert_eq!(check(&entries, &host, port, &key(KEY_A)), Verdict::Known);
            let other = if port == 22 { 23 } else { 22 };
            prop_assert_eq!(check(&entries, &host, other, &key(KEY_A)), Verdict::Unknown);
            let changed = matches!(check(&entries, &host, port, &key(KEY_B)), Verdict::Changed { .. });
            prop_assert!(changed);
        }

        #[test]
        fn the_parser_never_panics(text in "\\PC{0,200}") {
            let _ = parse_known_hosts(&text);
        }

        #[test]
        fn a_plain_name_matches_itself_only(a in "[a-z]{1,12}", b in "[a-z]{1,12}") {
            prop_assert!(glob(&a, &a));
            prop_assert_eq!(glob(&a, &b), a == b);
        }
    }
}
