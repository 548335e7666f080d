//! containers.yaml: names, images, paths, mounts inside the allowed directories, networks,
//! capabilities.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use berth_types::ImageRef;

use super::{At, container_path_problem, first_at, host_path_problem};
use crate::error::ConfigError;
use crate::model::Template;
use crate::names::{self, closest};
use crate::yaml::truncate;

pub(crate) fn check_templates(
    templates: &[Template],
    at: &At<'_>,
    allowed: Option<&[PathBuf]>,
    errors: &mut Vec<ConfigError>,
) {
    let mut seen: HashMap<&str, Option<usize>> = HashMap::new();
    for (i, template) in templates.iter().enumerate() {
        let at = at.index(i);
        let name = at.key("name");
        if let Some(problem) = names::template_name_problem(&template.name) {
            errors.push(name.error(problem));
        } else if let Some(first) = seen.get(template.name.as_str()) {
            errors.push(name.error(format!(
                "duplicate template name {:?}{}",
                template.name,
                first_at(*first)
            )));
        } else {
            seen.insert(&template.name, name.line);
        }
        check_template(template, &at, allowed, errors);
    }
}

fn check_template(
    t: &Template,
    at: &At<'_>,
    allowed: Option<&[PathBuf]>,
    errors: &mut Vec<ConfigError>,
) {
    if let Err(e) = ImageRef::parse(&t.image) {
        errors.push(at.key("image").error(format!(
            "{e}; expected an image reference such as \"debian:12\", \"ghcr.io/org/img:1.2\" \
             or \"localhost:5000/img@sha256:<64 hex digits>\", found {:?}",
            truncate(&t.image)
        )));
    }
    if t.command.as_ref().is_some_and(Vec::is_empty) {
        errors.push(
            at.key("command")
                .error("an empty command; leave the field out to use the image's"),
        );
    }
    check_shell(&t.shell, &at.key("shell"), errors);
    if let Some(workdir) = &t.workdir
        && let Some(problem) = container_path_problem(workdir)
    {
        errors.push(at.key("workdir").error(problem));
    }
    for name in t.env.keys() {
        if !names::is_env_name(name) {
            errors.push(at.key("env").key(name).error(format!(
                "{name:?} is not an environment variable name (letters, digits and '_', not starting with a digit)"
            )));
        }
    }
    let mut targets: HashSet<&str> = HashSet::new();
    let mut volume_names: HashSet<&str> = HashSet::new();
    for (i, volume) in t.volumes.iter().enumerate() {
        let at = at.key("volumes").index(i);
        if !names::is_docker_name(&volume.name) {
            errors.push(at.key("name").error(format!(
                "{:?} is not a volume name (letters, digits, '_', '.', '-', starting with a letter or digit)",
                volume.name
            )));
        } else if !volume_names.insert(&volume.name) {
            errors.push(
                at.key("name")
                    .error(format!("duplicate volume name {:?}", volume.name)),
            );
        }
        check_target(&volume.target, &at.key("target"), &mut targets, errors);
    }
    for (i, mount) in t.bind_mounts.iter().enumerate() {
        let at = at.key("bind_mounts").index(i);
        let source = at.key("source");
        if let Some(problem) = host_path_problem(&mount.source) {
            errors.push(source.error(problem));
        } else if let Some(allowed) = allowed
            && !allowed
                .iter()
                .any(|prefix| mount.source.starts_with(prefix))
        {
            let list = if allowed.is_empty() {
                "none are allowed: list host directories in runtime.allowed_bind_mounts of main.yaml".to_owned()
            } else {
                let list: Vec<String> = allowed.iter().map(|p| p.display().to_string()).collect();
                format!(
                    "allowed: {} (runtime.allowed_bind_mounts of main.yaml)",
                    list.join(", ")
                )
            };
            errors.push(source.error(format!(
                "{} is not inside an allowed directory; {list}",
                mount.source.display()
            )));
        }
        check_target(&mount.target, &at.key("target"), &mut targets, errors);
    }
    if let Some(user) = &t.user
        && (user.is_empty() || user.contains(char::is_whitespace) || user.matches(':').count() > 1)
    {
        errors.push(at.key("user").error(format!(
            "expected a user as name, uid or uid:gid, found {user:?}"
        )));
    }
    if let Some(hostname) = &t.hostname
        && !names::is_hostname(hostname)
    {
        errors.push(at.key("hostname").error(format!(
            "{hostname:?} is not a hostname (letters, digits and inner '-', at most 63 characters)"
        )));
    }
    if let Some(problem) = network_problem(&t.network) {
        errors.push(at.key("network").error(problem));
    }
    let mut networks = HashSet::new();
    for (i, network) in t.networks.iter().enumerate() {
        if let Some(problem) = network_problem(network) {
            errors.push(at.key("networks").index(i).error(problem));
        } else if !networks.insert(network) {
            errors.push(
                at.key("networks")
                    .index(i)
                    .error(format!("{network:?} is listed twice")),
            );
        }
    }
    for (i, cap) in t.cap_add.iter().enumerate() {
        if let Some(problem) = capability_problem(cap, t.allow_dangerous_caps) {
            errors.push(at.key("cap_add").index(i).error(problem));
        }
    }
    if t.persist == crate::Persist::Always && t.pool > 0 {
        errors.push(at.key("pool").error(
            "pool containers are ephemeral and a persist: always template never starts one; set pool: 0",
        ));
    }
}

/// The most arguments a shell may have, and the longest one.
const MAX_SHELL_ARGS: usize = 31;
const MAX_SHELL_ARG_BYTES: usize = 1024;

/// A shell is a program and its arguments, passed to `exec` as they are (never parsed by a
/// shell): the program is an absolute, normalized path of plain characters; the arguments may
/// hold anything printable.
fn check_shell(shell: &berth_types::template::Shell, at: &At<'_>, errors: &mut Vec<ConfigError>) {
    let argv = shell.argv();
    if argv.is_empty() {
        errors.push(at.error("an empty list; write the path of a shell, such as \"/bin/bash\""));
        return;
    }
    // A one-word shell is written as a string; a list names its program as item 0.
    let program_at = if argv.len() == 1 {
        at.clone()
    } else {
        at.index(0)
    };
    if let Some(problem) = shell_problem(shell.program(), argv.len() == 1) {
        errors.push(program_at.error(problem));
    }
    if shell.args().len() > MAX_SHELL_ARGS {
        errors.push(at.error(format!(
            "{} arguments; a shell takes at most {MAX_SHELL_ARGS}",
            shell.args().len()
        )));
        return;
    }
    for (i, arg) in shell.args().iter().enumerate() {
        if arg.len() > MAX_SHELL_ARG_BYTES || arg.chars().any(char::is_control) {
            errors.push(at.index(i + 1).error(format!(
                "an argument is at most {MAX_SHELL_ARG_BYTES} bytes without control characters, \
                 found {:?}",
                truncate(arg)
            )));
        }
    }
}

/// The shell's program: an absolute, normalized path of plain characters, never options or
/// shell syntax (arguments go in a list).
fn shell_problem(shell: &str, alone: bool) -> Option<String> {
    let plain =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | '@');
    if !shell.starts_with('/') {
        return Some(format!(
            "expected the absolute path of a shell in the image, such as \"/bin/bash\", found {:?}",
            truncate(shell)
        ));
    }
    if !shell.chars().all(plain) {
        let hint = if alone && shell.contains(' ') {
            "; to pass arguments, write a list: [/bin/bash, --norc]"
        } else {
            ""
        };
        return Some(format!(
            "a shell's path has letters, digits and '/', '.', '_', '-', '+', '@' only, found \
             {:?}{hint}",
            truncate(shell)
        ));
    }
    container_path_problem(shell)
}

fn check_target<'t>(
    target: &'t str,
    at: &At<'_>,
    targets: &mut HashSet<&'t str>,
    errors: &mut Vec<ConfigError>,
) {
    if let Some(problem) = container_path_problem(target) {
        errors.push(at.error(problem));
    } else if target == "/" {
        errors.push(at.error("cannot mount over the container's root directory"));
    } else if !targets.insert(target.trim_end_matches('/')) {
        errors.push(at.error(format!(
            "{target} is already a mount target of this template"
        )));
    }
}

fn network_problem(network: &str) -> Option<String> {
    (!names::is_docker_name(network)).then(|| {
        format!("expected \"none\", \"host\" or the name of a Docker network, found {network:?}")
    })
}

/// Linux capabilities, without the `CAP_` prefix.
const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Capabilities that reach beyond the container: kernel modules, raw devices, other processes,
/// the host's network or clock.
const DANGEROUS: [&str; 13] = [
    "ALL",
    "SYS_ADMIN",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_PTRACE",
    "SYS_BOOT",
    "SYS_TIME",
    "DAC_READ_SEARCH",
    "NET_ADMIN",
    "BPF",
    "PERFMON",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
];

fn capability_problem(cap: &str, allow_dangerous: bool) -> Option<String> {
    let upper = cap.to_ascii_uppercase();
    let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if name != "ALL" && !CAPABILITIES.contains(&name) {
        let hint = closest(name, CAPABILITIES)
            .map(|c| format!(" (did you mean {c:?}?)"))
            .unwrap_or_default();
        return Some(format!("{cap:?} is not a Linux capability{hint}"));
    }
    (DANGEROUS.contains(&name) && !allow_dangerous).then(|| {
        format!("{name} lets a workspace escape its container; set allow_dangerous_caps: true to grant it anyway")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shells() {
        for ok in [
            "/bin/bash",
            "/usr/local/bin/fish",
            "/nix/store/abc-bash-5.2/bin/bash",
        ] {
            assert_eq!(shell_problem(ok, true), None, "{ok}");
        }
        for (bad, says) in [
            ("", "absolute path"),
            ("bash", "absolute path"),
            ("--privileged", "absolute path"),
            ("/bin/bash --privileged", "write a list"),
            ("/bin/sh\0", "letters, digits"),
            ("/bin/sh|nc", "letters, digits"),
            ("/bin/sh;id", "letters, digits"),
            ("/bin/../../sh", "\"..\""),
        ] {
            let problem = shell_problem(bad, true).unwrap_or_default();
            assert!(problem.contains(says), "{bad:?}: {problem}");
        }
    }

    #[test]
    fn capabilities() {
        assert_eq!(capability_problem("NET_RAW", false), None);
        assert_eq!(capability_problem("cap_net_raw", false), None);
        assert_eq!(capability_problem("SYS_ADMIN", true), None);
        assert!(
            capability_problem("SYS_ADMIN", false)
                .unwrap()
                .contains("allow_dangerous_caps")
        );
        assert!(capability_problem("ALL", false).is_some());
        assert_eq!(
            capability_problem("NET_RAWW", false).unwrap(),
            "\"NET_RAWW\" is not a Linux capability (did you mean \"NET_RAW\"?)"
        );
    }
}
