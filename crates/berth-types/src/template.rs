//! A template: the container definition workspaces are started from, as `containers.yaml`
//! holds it (`berth-config` reads and validates the file) and as the API answers it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::units::{HumanDuration, Memory, cpus, within, within_opt};

/// A container definition users start workspaces from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Unique name, used by `berth start NAME` and in `users.yaml`: 1 to 63 characters,
    /// `a-z`, `0-9`, `_`, `-`, `.`, starting with a letter or `_`.
    #[schemars(regex(pattern = Template::NAME_PATTERN))]
    pub name: String,
    /// One line shown next to the name in the UI and the CLI.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The Docker image, e.g. `debian:bookworm` or `registry.local/python:3.12`.
    pub image: String,
    /// The container's main process, replacing the image's command. Default: the image's.
    /// Berth opens terminals with `exec`, so the main process only has to keep running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// The shell a terminal runs: an absolute path inside the image (`/bin/zsh`, run as a
    /// login shell with `-l`), or a list of the path and its arguments (`[/usr/bin/fish,
    /// --login]`). When the image lacks it, terminals fall back to `/bin/sh -l`.
    #[serde(default, skip_serializing_if = "Shell::is_default")]
    pub shell: Shell,
    /// Environment variables of the container.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Docker volumes mounted into the workspace. Berth names each volume after the user, the
    /// template and `name`, so users never share one; whether it outlives the workspace
    /// follows `persist`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Host directories mounted into the workspace. Each `source` must be inside one of
    /// `runtime.allowed_bind_mounts` of `main.yaml`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bind_mounts: Vec<BindMount>,
    /// Working directory of terminals, an absolute path. Default: the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// User terminals run as, `name`, `uid` or `uid:gid`. Default: the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Hostname inside the container (one DNS label). Default: the workspace's short id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Network of a new workspace: `none` (no network, the default), `host`, or the name of an
    /// existing Docker network.
    #[serde(
        default = "default_network",
        skip_serializing_if = "is_default_network"
    )]
    pub network: String,
    /// Other networks a user may pick instead (`berth net`), same forms as `network`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<String>,
    /// CPU limit, in CPUs (0.01 to 64). Default: no limit.
    #[serde(
        default,
        deserialize_with = "cpus",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 0.01, max = 64.0))]
    pub cpus: Option<f64>,
    /// Memory limit. Default: `runtime.default_memory` of `main.yaml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    /// Process limit (16 to 65536). Default: `runtime.default_pids_limit` of `main.yaml`.
    #[serde(
        default,
        deserialize_with = "within_opt::<_, _, 16, 65536>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 16, max = 65536))]
    pub pids_limit: Option<u32>,
    /// Linux capabilities added to Docker's default set, e.g. `NET_RAW` (with or without
    /// `CAP_`). `ALL`, `SYS_ADMIN` and the other capabilities that let a process escape its
    /// container are refused unless `allow_dangerous_caps` is true.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Allow `cap_add` to grant capabilities that amount to root on the host (`ALL`,
    /// `SYS_ADMIN`, `SYS_MODULE`, `SYS_PTRACE`, ...). Only for trusted users.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_dangerous_caps: bool,
    /// Mount the image's root filesystem read-only (volumes and bind mounts stay writable
    /// unless marked `read_only`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only_root: bool,
    /// Every terminal of a workspace of this template joins one tmux session, so everyone
    /// attached sees one screen. The owner invites others as peers (may type) or viewers.
    #[serde(default, skip_serializing_if = "is_false")]
    pub shared: bool,
    /// Whether a workspace keeps its container and files when stopped: `never`, when the user
    /// asks (`optional`, the default: `berth start --persist`), or `always`. A persistent
    /// workspace's named volumes also outlive its deletion, for the owner's next one.
    #[serde(default, skip_serializing_if = "is_optional")]
    pub persist: Persist,
    /// Stop a workspace nobody has typed into for this long. Default:
    /// `runtime.default_idle_timeout` of `main.yaml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<HumanDuration>,
    /// Remove a workspace this long after it started, idle or not. Default: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<HumanDuration>,
    /// Containers kept started in advance so that a start is instant (0 to 50). Only
    /// ephemeral starts on the default network claim one; `persist: always` templates have no
    /// pool.
    #[serde(
        default,
        deserialize_with = "within::<_, _, 0, 50>",
        skip_serializing_if = "is_zero"
    )]
    #[schemars(range(min = 0, max = 50))]
    pub pool: u32,
    /// Record terminal sessions (asciicast files in `recordings/`).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub record: bool,
    /// Workspaces of this template one user may have at once (1 to 100). Default: only the
    /// user's overall limit applies.
    #[serde(
        default,
        deserialize_with = "within_opt::<_, _, 1, 100>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 100))]
    pub max_per_user: Option<u32>,
}

impl Template {
    /// The rule for template names as a JSON Schema (ECMA 262) pattern, for the documents that
    /// describe them: configuration schema, request bodies and path parameters.
    pub const NAME_PATTERN: &'static str = r"^[a-z_][a-z0-9_.-]{0,62}$";

    /// A template with `name`, `image` and every other field at its default.
    #[must_use]
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            image: image.into(),
            command: None,
            shell: Shell::default(),
            env: BTreeMap::new(),
            volumes: Vec::new(),
            bind_mounts: Vec::new(),
            workdir: None,
            user: None,
            hostname: None,
            network: default_network(),
            networks: Vec::new(),
            cpus: None,
            memory: None,
            pids_limit: None,
            cap_add: Vec::new(),
            allow_dangerous_caps: false,
            read_only_root: false,
            shared: false,
            persist: Persist::default(),
            idle_timeout: None,
            ttl: None,
            pool: 0,
            record: true,
            max_per_user: None,
        }
    }
}

/// A Docker volume of a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// Name within the template (`home`, `data`): letters, digits, `_`, `.`, `-`.
    pub name: String,
    /// Where it is mounted, an absolute path inside the container.
    pub target: String,
    /// Mount it read-only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
}

/// A host directory mounted into a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BindMount {
    /// The host directory, an absolute path inside `runtime.allowed_bind_mounts`.
    pub source: PathBuf,
    /// Where it is mounted, an absolute path inside the container.
    pub target: String,
    /// Mount it read-only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
}

/// What happens to a workspace's volumes when the workspace is removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Persist {
    /// Volumes are removed with the workspace.
    Never,
    /// Volumes are removed unless the user asked to keep them.
    #[default]
    Optional,
    /// Volumes are always kept; the next workspace of the same user and template gets them.
    Always,
}

fn default_network() -> String {
    "none".into()
}

fn yes() -> bool {
    true
}

// serde's skip_serializing_if passes references; the rendered files leave defaults out.
fn is_default_network(network: &str) -> bool {
    network == "none"
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_optional(persist: &Persist) -> bool {
    *persist == Persist::Optional
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_true(value: &bool) -> bool {
    *value
}

// serde's skip_serializing_if passes references.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(value: &bool) -> bool {
    !*value
}

/// The shell of a template's terminals: the program (an absolute path in the image) and its
/// arguments. Written as one string when there are no arguments, else as a list; the
/// configuration's validation checks the path and the arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Shell(Vec<String>);

impl Shell {
    /// The shell when a template names none.
    pub const DEFAULT: &'static str = "/bin/bash";

    /// A program without arguments.
    pub fn new(program: impl Into<String>) -> Self {
        Self(vec![program.into()])
    }

    /// A program and its arguments, as written in a list.
    pub fn from_argv(argv: Vec<String>) -> Self {
        Self(argv)
    }

    /// The program: the first word (empty for an empty list, which validation refuses).
    pub fn program(&self) -> &str {
        self.0.first().map_or("", String::as_str)
    }

    /// The arguments after the program.
    pub fn args(&self) -> &[String] {
        self.0.get(1..).unwrap_or_default()
    }

    /// The program and its arguments.
    pub fn argv(&self) -> &[String] {
        &self.0
    }

    /// `/bin/bash` without arguments.
    pub fn is_default(&self) -> bool {
        self.0.len() == 1 && self.0[0] == Self::DEFAULT
    }
}

impl Default for Shell {
    fn default() -> Self {
        Self::new(Self::DEFAULT)
    }
}

impl std::fmt::Display for Shell {
    /// The words separated by spaces, as the admin form shows them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

impl Serialize for Shell {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [program] => serializer.serialize_str(program),
            argv => argv.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Shell {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Words;
        impl<'de> serde::de::Visitor<'de> for Words {
            type Value = Shell;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an absolute path, or a list of a path and its arguments")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Shell, E> {
                Ok(Shell::new(text))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Shell, A::Error> {
                let mut argv = Vec::new();
                while let Some(word) = seq.next_element::<String>()? {
                    argv.push(word);
                }
                Ok(Shell(argv))
            }
        }
        deserializer.deserialize_any(Words)
    }
}

impl JsonSchema for Shell {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Shell".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An absolute path in the image, or a list of the path and its arguments.",
            "default": Self::DEFAULT,
            "anyOf": [
                { "type": "string", "pattern": "^/", "maxLength": 4096 },
                {
                    "type": "array",
                    "items": { "type": "string", "maxLength": 4096 },
                    "minItems": 1,
                    "maxItems": 32
                }
            ]
        })
    }
}
