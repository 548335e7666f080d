//! The inventory files at the repository root: `links.yaml` (machines) and `scripts.yaml`
//! (scripts), read with file:line errors like the configuration.
//!
//! ```yaml
//! # links.yaml
//! machines:
//!   - id: web-1                 # stable, a-z 0-9 -, at most 63
//!     name: Web 1               # default: the id
//!     host: 10.0.0.11
//!     port: 22                  # default 22
//!     user: ops
//!     type: web                 # optional, a-z 0-9 _ . -
//!     tags: [web, eu]
//!     key: ops.key              # a file name in the keys dir
//!     host_key: ssh-ed25519 AAAA…   # optional: pinned, else known_hosts
//!     proxy_jump: bastion       # optional: the id of another machine; chains allowed
//!     client_id: 5de3…          # what `berth agent --enroll` wrote on the machine
//!     description: front end
//! # scripts.yaml
//! scripts:
//!   - name: uptime
//!     description: How long since boot
//!     file: scripts/uptime.sh   # a path in the repository
//!     timeout: 300s             # default 300s
//!     concurrency: 10           # optional
//!     tags: [web]               # the default targets
//! ```
//!
//! Every problem of both files is reported at once; an inventory with any problem is never put
//! in force (the caller keeps the old one).

use std::collections::{HashMap, HashSet};

use berth_types::MachineId;
use berth_types::units::HumanDuration;
use berth_yaml::{FileError, Node};
use serde::{Deserialize, Serialize};

use crate::git;
use crate::keys;

/// The machines file.
pub const LINKS_FILE: &str = "links.yaml";
/// The scripts file.
pub const SCRIPTS_FILE: &str = "scripts.yaml";
/// The default timeout of a script.
pub const DEFAULT_SCRIPT_TIMEOUT: HumanDuration = HumanDuration::from_secs_unchecked(300);
/// The longest timeout a script may have.
pub const MAX_SCRIPT_TIMEOUT_SECS: u64 = 24 * 3600;
/// The most machines and scripts an inventory holds.
pub const MAX_ENTRIES: usize = 10_000;

/// A machine of `links.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    pub id: MachineId,
    /// Shown in the UI; the id when left out.
    #[serde(default)]
    pub name: String,
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub user: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The private key's file name in the keys dir.
    pub key: String,
    /// A pinned host key (`ssh-ed25519 AAAA…`); else the fleet's known_hosts decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    /// The machine to connect through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_jump: Option<MachineId>,
    /// The enrollment id expected in the machine's client id file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// A script of `scripts.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The script's path in the repository.
    pub file: String,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// At most this many machines at once (below `fleet.max_concurrency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// The machines it targets unless told otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

fn default_port() -> u16 {
    22
}

fn default_timeout() -> HumanDuration {
    DEFAULT_SCRIPT_TIMEOUT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinksFile {
    #[serde(default)]
    machines: Vec<Machine>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptsFile {
    #[serde(default)]
    scripts: Vec<Script>,
}

/// Reads `links.yaml`: every machine, or every problem found.
pub fn parse_links(text: &str) -> Result<Vec<Machine>, Vec<FileError>> {
    let Read {
        value,
        mut errors,
        root,
        excluded,
    } = read::<LinksFile>(LINKS_FILE, text)?;
    let items = entries(&root, &excluded, "machines");
    let mut machines = value.machines;
    if machines.len() > MAX_ENTRIES {
        errors.push(at_key(
            LINKS_FILE,
            &root,
            "machines",
            format!("{} machines, at most {MAX_ENTRIES}", machines.len()),
        ));
    }
    let mut first: HashMap<MachineId, usize> = HashMap::new();
    for (n, machine) in machines.iter_mut().enumerate() {
        let (i, node) = entry(&items, n);
        let err = |key: &str, message: String| {
            FileError::new(
                LINKS_FILE,
                line_of(node, key),
                format!("machines[{i}].{key}"),
                message,
            )
        };
        if let Some(j) = first.insert(machine.id.clone(), i) {
            errors.push(err(
                "id",
                format!("the id {} is also machine {j}'s", machine.id),
            ));
            first.insert(machine.id.clone(), j);
        }
        if machine.name.is_empty() {
            machine.name = machine.id.to_string();
        } else if machine.name.len() > 128 || machine.name.chars().any(char::is_control) {
            errors.push(err(
                "name",
                "a name is at most 128 characters without control characters".to_owned(),
            ));
        }
        if let Some(problem) = host_problem(&machine.host) {
            errors.push(err("host", problem));
        }
        if machine.port == 0 {
            errors.push(err("port", "a port is 1 to 65535".to_owned()));
        }
        if !is_login_name(&machine.user) {
            errors.push(err("user", format!("{:?} is not a login name (a-z, 0-9, _ . -, starting with a letter or _, at most 32)", truncate(&machine.user))));
        }
        if let Some(kind) = &machine.kind
            && !is_label(kind)
        {
            errors.push(err(
                "type",
                format!(
                    "{:?} is not a type (a-z, 0-9, _ . -, at most 63)",
                    truncate(kind)
                ),
            ));
        }
        for (t, tag) in machine.tags.iter().enumerate() {
            if !is_label(tag) {
                errors.push(FileError::new(
                    LINKS_FILE,
                    line_of(node, "tags"),
                    format!("machines[{i}].tags[{t}]"),
                    format!(
                        "{:?} is not a tag (a-z, 0-9, _ . -, at most 63)",
                        truncate(tag)
                    ),
                ));
            }
        }
        if let Err(e) = keys::key_path(std::path::Path::new("."), &machine.key) {
            errors.push(err("key", e.to_string()));
        }
        if let Some(key) = &machine.host_key
            && berth_ssh::host_keys::parse_public_key(key).is_err()
        {
            errors.push(err(
                "host_key",
                "not an OpenSSH public key such as \"ssh-ed25519 AAAA…\"".to_owned(),
            ));
        }
        if let Some(id) = &machine.client_id
            && (id.is_empty()
                || id.len() > 256
                || id.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            errors.push(err(
                "client_id",
                "a client id is 1 to 256 characters without spaces".to_owned(),
            ));
        }
        if machine.description.len() > 1024
            || machine
                .description
                .chars()
                .any(|c| c.is_control() && c != '\n')
        {
            errors.push(err(
                "description",
                "a description is at most 1024 bytes, without control characters but line breaks"
                    .to_owned(),
            ));
        }
    }
    // Jump hosts: each names another machine, and no chain comes back to where it started.
    let by_id: HashMap<&MachineId, &Machine> = machines.iter().map(|m| (&m.id, m)).collect();
    for (n, machine) in machines.iter().enumerate() {
        let Some(via) = &machine.proxy_jump else {
            continue;
        };
        let (i, node) = entry(&items, n);
        let err = |message: String| {
            FileError::new(
                LINKS_FILE,
                line_of(node, "proxy_jump"),
                format!("machines[{i}].proxy_jump"),
                message,
            )
        };
        if via == &machine.id {
            errors.push(err("a machine cannot be its own jump host".to_owned()));
            continue;
        }
        if !by_id.contains_key(via) {
            errors.push(err(format!("no machine has the id {via}")));
            continue;
        }
        let mut seen: HashSet<&MachineId> = HashSet::from([&machine.id]);
        let mut chain = vec![machine.id.to_string()];
        let mut next = Some(via);
        while let Some(hop) = next {
            chain.push(hop.to_string());
            if !seen.insert(hop) {
                errors.push(err(format!(
                    "the jump hosts go round in a circle: {}",
                    chain.join(" → ")
                )));
                break;
            }
            next = by_id.get(hop).and_then(|m| m.proxy_jump.as_ref());
        }
    }
    if errors.is_empty() {
        Ok(machines)
    } else {
        errors.sort();
        Err(errors)
    }
}

/// Reads `scripts.yaml`: every script, or every problem found. The scripts' files are read
/// and checked by the caller (they live in the repository, see [`crate::scripts`]).
pub fn parse_scripts(text: &str) -> Result<Vec<Script>, Vec<FileError>> {
    let Read {
        value: file,
        mut errors,
        root,
        excluded,
    } = read::<ScriptsFile>(SCRIPTS_FILE, text)?;
    let items = entries(&root, &excluded, "scripts");
    if file.scripts.len() > MAX_ENTRIES {
        errors.push(at_key(
            SCRIPTS_FILE,
            &root,
            "scripts",
            format!("{} scripts, at most {MAX_ENTRIES}", file.scripts.len()),
        ));
    }
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (n, script) in file.scripts.iter().enumerate() {
        let (i, node) = entry(&items, n);
        let err = |key: &str, message: String| {
            FileError::new(
                SCRIPTS_FILE,
                line_of(node, key),
                format!("scripts[{i}].{key}"),
                message,
            )
        };
        if !is_label(&script.name) {
            errors.push(err("name", format!("{:?} is not a script name (a-z, 0-9, _ . -, starting with a letter or digit, at most 63)", truncate(&script.name))));
        } else if let Some(j) = first.insert(&script.name, i) {
            errors.push(err(
                "name",
                format!("the name {} is also script {j}'s", script.name),
            ));
        }
        if script.description.len() > 1024
            || script
                .description
                .chars()
                .any(|c| c.is_control() && c != '\n')
        {
            errors.push(err(
                "description",
                "a description is at most 1024 bytes".to_owned(),
            ));
        }
        if let Err(e) = git::check_path(&script.file) {
            errors.push(err("file", e.to_string()));
        }
        if script.timeout.as_secs() > MAX_SCRIPT_TIMEOUT_SECS {
            errors.push(err(
                "timeout",
                format!("at most 24h, found {}s", script.timeout.as_secs()),
            ));
        }
        if script.concurrency.is_some_and(|c| !(1..=1000).contains(&c)) {
            errors.push(err("concurrency", "1 to 1000 machines at once".to_owned()));
        }
        for (t, tag) in script.tags.iter().enumerate() {
            if !is_label(tag) {
                errors.push(FileError::new(
                    SCRIPTS_FILE,
                    line_of(node, "tags"),
                    format!("scripts[{i}].tags[{t}]"),
                    format!(
                        "{:?} is not a tag (a-z, 0-9, _ . -, at most 63)",
                        truncate(tag)
                    ),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(file.scripts)
    } else {
        errors.sort();
        Err(errors)
    }
}

pub use berth_types::fleet::Changes;

/// A file read: its value with the entries that could not be read left out, the errors
/// found so far, and the tree.
struct Read<T> {
    value: T,
    errors: Vec<FileError>,
    root: Node,
    excluded: HashSet<u32>,
}

/// The list under `key`: the entries that were read, each with its index in the file.
fn entries<'a>(root: &'a Node, excluded: &HashSet<u32>, key: &str) -> Vec<(usize, &'a Node)> {
    list(root, key)
        .iter()
        .enumerate()
        .filter(|(_, node)| !excluded.contains(&node.id))
        .collect()
}

/// Parses and deserializes one file, with every error.
fn read<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<Read<T>, Vec<FileError>> {
    if text.trim().is_empty() {
        return Err(vec![FileError::new(
            file,
            None,
            "",
            format!(
                "the file is empty; an inventory without entries is written `{}: []`",
                if file == LINKS_FILE {
                    "machines"
                } else {
                    "scripts"
                }
            ),
        )]);
    }
    let root = berth_yaml::parse(file, text).map_err(|e| vec![e])?;
    // No key (only comments, `---`, `~`, `{}`), or the key with nothing after it: a file cut
    // short or mistaken, not an empty inventory.
    let key = if file == LINKS_FILE {
        "machines"
    } else {
        "scripts"
    };
    if root.get(key).is_none_or(Node::is_null) {
        return Err(vec![FileError::new(
            file,
            Some(root.get(key).map_or(root.line, |n| n.line)),
            "",
            format!("no {key}: an inventory without entries is written `{key}: []`"),
        )]);
    }
    let outcome = berth_yaml::from_node::<T>(file, &root);
    match outcome.value {
        Some(value) => Ok(Read {
            value,
            errors: outcome.errors,
            root,
            excluded: outcome.excluded,
        }),
        None => Err(outcome.errors),
    }
}

/// The `n`th entry that was read: its index in the file and its node.
fn entry<'a>(items: &[(usize, &'a Node)], n: usize) -> (usize, Option<&'a Node>) {
    items
        .get(n)
        .map_or((n, None), |(i, node)| (*i, Some(*node)))
}

fn list<'a>(root: &'a Node, key: &str) -> &'a [Node] {
    root.get(key).map_or(&[], Node::items)
}

fn line_of(node: Option<&Node>, key: &str) -> Option<usize> {
    let node = node?;
    Some(node.get(key).map_or(node.line, |n| n.line))
}

fn at_key(file: &str, root: &Node, key: &str, message: String) -> FileError {
    FileError::new(file, line_of(Some(root), key), key, message)
}

fn truncate(text: &str) -> String {
    berth_yaml::truncate(text)
}

/// A tag, a type, a script name: `a-z 0-9 _ . -`, starting with a letter or digit, 1 to 63.
fn is_label(text: &str) -> bool {
    berth_types::fleet::is_label(text)
}

/// A login name as `useradd` takes it (the portable subset).
fn is_login_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 32
        && text.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
}

/// A host name or address to connect to.
fn host_problem(host: &str) -> Option<String> {
    if host.is_empty() || host.len() > 253 {
        return Some("a host is 1 to 253 characters".to_owned());
    }
    if host.starts_with('-')
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:_[]%".contains(c))
    {
        return Some(format!(
            "{:?} is not a host name or address",
            truncate(host)
        ));
    }
    None
}
