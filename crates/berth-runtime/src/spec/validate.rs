//! [`ContainerSpec::validate`]: a spec is refused before it reaches an engine when it is
//! malformed or would hand the container the Docker socket.

use std::path::{Component, Path, PathBuf};

use super::{ContainerSpec, NetworkMode};
use crate::error::{Result, RuntimeError};

const MIB: i64 = 1024 * 1024;
/// The smallest memory limit the Docker Engine accepts.
const MIN_MEMORY: i64 = 6 * MIB;

/// The longest image reference passed to the engine: a 255-character name, a 128-character
/// tag and a sha512 digest fit.
const MAX_IMAGE_REFERENCE: usize = 1024;

impl ContainerSpec {
    /// Checks the spec; `docker_sockets` are the sockets that must never be mounted (the
    /// runtime passes its own and [`DEFAULT_DOCKER_SOCKETS`](super::DEFAULT_DOCKER_SOCKETS)).
    pub fn validate(&self, docker_sockets: &[PathBuf]) -> Result<()> {
        self.validate_process()?;
        self.env.validate()?;
        self.validate_mounts(docker_sockets)?;
        self.validate_limits()?;
        self.validate_hardening()?;
        for (key, value) in &self.labels {
            if key.is_empty() || key.contains('\0') || value.contains('\0') {
                return invalid(format!("label `{key}` is empty or contains NUL"));
            }
        }
        Ok(())
    }

    /// Name, image, command, user, host name and network.
    fn validate_process(&self) -> Result<()> {
        if !is_engine_name(&self.name) {
            return invalid(format!(
                "container name `{}` must match [a-zA-Z0-9][a-zA-Z0-9_.-]+ and be at most 128 characters",
                self.name
            ));
        }
        // Docker allows a 255-character name plus a tag and a digest; the configuration checks
        // the grammar (berth_types::ImageRef), this only keeps nonsense from the engine.
        if self.image.is_empty()
            || self.image.len() > MAX_IMAGE_REFERENCE
            || self
                .image
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return invalid(format!(
                "image reference `{}` is empty, too long or contains spaces",
                self.image
            ));
        }
        if let Some(command) = &self.command
            && (command.is_empty() || command.iter().any(|a| a.contains('\0')))
        {
            return invalid("command is empty or contains NUL".into());
        }
        if let Some(dir) = &self.working_dir {
            check_target("working directory", dir)?;
        }
        if let Some(user) = &self.user
            && !is_user(user)
        {
            return invalid(format!(
                "user `{user}` must be `user`, `user:group`, `uid` or `uid:gid`"
            ));
        }
        if let Some(host) = &self.hostname
            && !is_hostname(host)
        {
            return invalid(format!("hostname `{host}` is not a valid host name label"));
        }
        if let NetworkMode::Named(net) = &self.network
            && !is_engine_name(net)
        {
            return invalid(format!(
                "network name `{net}` must match [a-zA-Z0-9][a-zA-Z0-9_.-]+"
            ));
        }
        Ok(())
    }

    fn validate_hardening(&self) -> Result<()> {
        for cap in &self.hardening.cap_add {
            let bare = cap.strip_prefix("CAP_").unwrap_or(cap);
            if bare.is_empty() || !bare.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                return invalid(format!(
                    "capability `{cap}` must be an upper-case name like NET_BIND_SERVICE"
                ));
            }
            if bare == "ALL" {
                return invalid(
                    "cap_add ALL is refused: name the capabilities the template needs".into(),
                );
            }
        }
        Ok(())
    }

    fn validate_mounts(&self, docker_sockets: &[PathBuf]) -> Result<()> {
        // /tmp is always the tmpfs; two mounts on one target would fail late in the engine.
        let mut targets = vec!["/tmp"];
        for volume in &self.volumes {
            if !is_engine_name(&volume.name) {
                return invalid(format!(
                    "volume name `{}` must match [a-zA-Z0-9][a-zA-Z0-9_.-]+",
                    volume.name
                ));
            }
            check_target("volume target", &volume.target)?;
            targets.push(&volume.target);
        }
        for bind in &self.binds {
            if !bind.source.is_absolute() || bind.source.as_os_str().as_encoded_bytes().contains(&0)
            {
                return invalid(format!(
                    "bind source `{}` must be an absolute path",
                    bind.source.display()
                ));
            }
            if let Some(socket) = exposed_docker_socket(&bind.source, docker_sockets) {
                return Err(RuntimeError::DockerSocketMount {
                    path: bind.source.clone(),
                    socket,
                });
            }
            check_target("bind target", &bind.target)?;
            targets.push(&bind.target);
        }
        let mut normalized: Vec<PathBuf> = targets.iter().map(|t| lexical(Path::new(t))).collect();
        normalized.sort();
        if let Some(pair) = normalized.windows(2).find(|w| w[0] == w[1]) {
            return invalid(format!(
                "two mounts target {} (/tmp is reserved for the tmpfs)",
                pair[0].display()
            ));
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<()> {
        let l = &self.limits;
        if l.memory_bytes < MIN_MEMORY {
            return invalid(format!(
                "memory limit {} bytes is below the engine's minimum of 6 MiB",
                l.memory_bytes
            ));
        }
        if l.pids < 1 {
            return invalid(format!("pids limit {} must be at least 1", l.pids));
        }
        if l.nano_cpus.is_some_and(|n| n < 1) {
            return invalid("CPU limit must be positive".into());
        }
        if l.tmp_bytes < 1 || l.tmp_bytes > l.memory_bytes {
            return invalid(format!(
                "/tmp size {} bytes must be positive and at most the memory limit",
                l.tmp_bytes
            ));
        }
        Ok(())
    }
}

pub(super) fn invalid<T>(message: String) -> Result<T> {
    Err(RuntimeError::InvalidSpec(message))
}

/// Docker's rule for container, volume and network names.
fn is_engine_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() >= 2
        && name.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn is_user(user: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    };
    user.len() <= 64 && user.split(':').count() <= 2 && user.split(':').all(part)
}

fn is_hostname(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 63
        && !host.starts_with('-')
        && !host.ends_with('-')
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn check_target(what: &str, target: &str) -> Result<()> {
    if !target.starts_with('/')
        || target.contains('\0')
        || target.contains(':')
        || lexical(Path::new(target)) == Path::new("/")
    {
        return invalid(format!(
            "{what} `{target}` must be an absolute path other than `/` without `:`"
        ));
    }
    Ok(())
}

/// The Docker socket that mounting `source` would expose: the socket itself or any directory
/// above it, compared both as written and with symlinks resolved (`/var/run` is `/run`).
fn exposed_docker_socket(source: &Path, docker_sockets: &[PathBuf]) -> Option<PathBuf> {
    let mut sources = vec![lexical(source)];
    if let Ok(real) = source.canonicalize() {
        sources.push(real);
    }
    for socket in docker_sockets {
        let mut forms = vec![lexical(socket)];
        if let Ok(real) = socket.canonicalize() {
            forms.push(real);
        }
        if forms
            .iter()
            .any(|f| sources.iter().any(|s| f.starts_with(s)))
        {
            return Some(socket.clone());
        }
    }
    None
}

/// `a/./b/../c` → `a/c` without touching the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{BindMount, DEFAULT_DOCKER_SOCKETS, VolumeMount};

    fn sockets() -> Vec<PathBuf> {
        DEFAULT_DOCKER_SOCKETS
            .iter()
            .map(PathBuf::from)
            .chain([PathBuf::from("/srv/engine/d.sock")])
            .collect()
    }

    fn spec() -> ContainerSpec {
        ContainerSpec::new("berth-ws-1", "berth-test/base")
    }

    fn refused(spec: &ContainerSpec) -> String {
        match spec.validate(&sockets()) {
            Err(RuntimeError::InvalidSpec(msg)) => msg,
            other => panic!("expected InvalidSpec, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid_and_limited() {
        let s = spec();
        s.validate(&sockets()).unwrap();
        assert_eq!(s.limits.memory_bytes, 1 << 30);
        assert_eq!(s.limits.pids, 512);
        assert!(s.hardening.init && !s.hardening.read_only_root && s.hardening.cap_add.is_empty());
        assert_eq!(s.network, NetworkMode::None);
    }

    #[test]
    fn every_reference_the_configuration_accepts_reaches_the_engine() {
        // The longest reference the configuration (berth_types::ImageRef) accepts: a 255-character name, a
        // 128-character tag and a sha512 digest.
        let name = format!("registry.example.invalid/{}", "a".repeat(255 - 25));
        let reference = format!("{name}:{}@sha512:{}", "t".repeat(128), "f".repeat(128));
        let mut s = spec();
        s.image = reference;
        s.validate(&sockets()).unwrap();
    }

    #[test]
    fn docker_sockets_and_their_directories_are_refused() {
        for source in [
            "/var/run/docker.sock",
            "/run/docker.sock",
            "/var/run",
            "/run",
            "/",
            "/srv/engine",
            "/srv/./engine/../engine/d.sock",
        ] {
            let mut s = spec();
            s.binds.push(BindMount {
                source: source.into(),
                target: "/mnt/x".into(),
                read_only: true,
            });
            match s.validate(&sockets()) {
                Err(RuntimeError::DockerSocketMount { path: got, .. }) => {
                    assert_eq!(got, Path::new(source))
                }
                other => panic!("{source}: expected DockerSocketMount, got {other:?}"),
            }
        }
        let mut s = spec();
        s.binds.push(BindMount {
            source: "/srv/data".into(),
            target: "/data".into(),
            read_only: false,
        });
        s.validate(&sockets()).unwrap();
    }

    #[test]
    fn symlinked_socket_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("docker.sock"), b"").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut s = spec();
        s.binds.push(BindMount {
            source: link.clone(),
            target: "/mnt".into(),
            read_only: true,
        });
        let err = s.validate(&[real.join("docker.sock")]).unwrap_err();
        assert!(
            matches!(err, RuntimeError::DockerSocketMount { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("refusing to mount"), "{err}");
    }

    #[test]
    fn malformed_specs_are_refused_with_the_reason() {
        type Mutation = Box<dyn Fn(&mut ContainerSpec)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("container name", Box::new(|s| s.name = "-bad".into())),
            ("container name", Box::new(|s| s.name = "x".repeat(129))),
            (
                "image reference",
                Box::new(|s| s.image = "two words".into()),
            ),
            ("image reference", Box::new(|s| s.image = String::new())),
            ("command is empty", Box::new(|s| s.command = Some(vec![]))),
            (
                "command is empty",
                Box::new(|s| s.command = Some(vec!["a\0b".into()])),
            ),
            (
                "environment variable name",
                Box::new(|s| s.env.insert("A=B", "x")),
            ),
            (
                "environment variable `A` contains NUL",
                Box::new(|s| s.env.insert("A", "x\0")),
            ),
            (
                "volume name",
                Box::new(|s| {
                    s.volumes.push(VolumeMount {
                        name: "../x".into(),
                        target: "/x".into(),
                        persistent: false,
                        read_only: false,
                    })
                }),
            ),
            (
                "volume target",
                Box::new(|s| {
                    s.volumes.push(VolumeMount {
                        name: "data".into(),
                        target: "rel".into(),
                        persistent: false,
                        read_only: false,
                    })
                }),
            ),
            (
                "volume target",
                Box::new(|s| {
                    s.volumes.push(VolumeMount {
                        name: "data".into(),
                        target: "/a/..".into(),
                        persistent: false,
                        read_only: false,
                    })
                }),
            ),
            (
                "two mounts target /tmp",
                Box::new(|s| {
                    s.volumes.push(VolumeMount {
                        name: "data".into(),
                        target: "/tmp/".into(),
                        persistent: false,
                        read_only: false,
                    })
                }),
            ),
            (
                "bind source",
                Box::new(|s| {
                    s.binds.push(BindMount {
                        source: "rel".into(),
                        target: "/x".into(),
                        read_only: true,
                    })
                }),
            ),
            (
                "working directory",
                Box::new(|s| s.working_dir = Some("home".into())),
            ),
            (
                "user `root dev`",
                Box::new(|s| s.user = Some("root dev".into())),
            ),
            ("user `a:b:c`", Box::new(|s| s.user = Some("a:b:c".into()))),
            (
                "hostname",
                Box::new(|s| s.hostname = Some("bad_host".into())),
            ),
            (
                "network name",
                Box::new(|s| s.network = NetworkMode::Named(String::new())),
            ),
            ("memory limit", Box::new(|s| s.limits.memory_bytes = 1024)),
            ("pids limit", Box::new(|s| s.limits.pids = 0)),
            ("CPU limit", Box::new(|s| s.limits.nano_cpus = Some(0))),
            ("/tmp size", Box::new(|s| s.limits.tmp_bytes = 2 << 30)),
            (
                "cap_add ALL",
                Box::new(|s| s.hardening.cap_add.push("ALL".into())),
            ),
            (
                "capability `net_admin`",
                Box::new(|s| s.hardening.cap_add.push("net_admin".into())),
            ),
            (
                "label",
                Box::new(|s| {
                    s.labels.insert(String::new(), "x".into());
                }),
            ),
        ];
        for (expected, mutate) in cases {
            let mut s = spec();
            mutate(&mut s);
            let msg = refused(&s);
            assert!(msg.contains(expected), "expected `{expected}` in `{msg}`");
        }
    }
}
