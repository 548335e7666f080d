//! Berth's container runtime: the [`ContainerRuntime`] trait and [`DockerRuntime`], its
//! implementation on a Docker Engine.
//!
//! This crate knows nothing of config, store or HTTP: the core maps a template to a
//! [`ContainerSpec`] and drives the trait; its unit tests use a fake behind the same trait
//! (`Arc<dyn ContainerRuntime>`; a fake builds its execs with [`berth_terminal::Pty::new`]).
//!
//! # Supported engines
//!
//! Docker Engine **20.10 (API 1.41) and newer**, over a unix socket (`DOCKER_HOST=unix://…` or
//! `runtime.docker_socket`). The API version is negotiated: the first request is the unversioned
//! `GET /version`, then the client speaks the engine's newest version, capped at the newest this
//! crate's bollard knows. Older engines get [`RuntimeError::UnsupportedEngine`]. The tests run
//! against Debian 12's `docker.io` 20.10.
//!
//! Berth never pulls images (the machines may have no registry): an image must be loaded with
//! `docker load` or `docker import` first; see `docs/runtime.md`.
//!
//! # Hardening defaults
//!
//! Every container gets, unless its spec's [`Hardening`] / [`Limits`] say otherwise:
//!
//! - all capabilities dropped (`cap_drop: ALL`), only the spec's `cap_add` added back (`ALL`
//!   refused);
//! - `no-new-privileges`; the engine's default seccomp profile (never `unconfined`);
//! - never privileged;
//! - a memory limit (1 GiB) with swap equal to it, a pids limit (512), an optional CPU limit;
//! - a tmpfs at `/tmp` (`rw,nosuid,nodev`, 256 MiB);
//! - the container log (the main process's output) capped at two files of 10 MiB (`json-file`);
//! - an init process as PID 1 (`init: true`: Docker's `docker-init`, i.e. tini) reaping zombies;
//! - optionally a read-only root file system;
//! - network `none` unless the spec says `host` or names an existing network (never created);
//! - the label `berth.managed=true`;
//! - no Docker socket inside: a bind mount of `/var/run/docker.sock`, `/run/docker.sock`, the
//!   socket in use, or any directory above them is refused ([`RuntimeError::DockerSocketMount`]).
//!
//! # Errors
//!
//! [`RuntimeError`] says what happened and what to do: engine not running (socket missing or
//! connection refused), permission denied on the socket, timeout, not an engine, engine too old,
//! image missing (with how to load it), network missing, name conflict, container missing or not
//! running, invalid spec, Docker socket mount, and other engine or transport errors.
//!
//! # Events
//!
//! [`ContainerRuntime::events`] follows the engine's event stream (`GET /events`, filtered to
//! container `create`, `start`, `die` and `destroy` events of Berth's labels), so the core
//! learns of a container killed or removed behind its back (`docker kill`, `docker rm -f`, the
//! OOM killer), or created or started by a request the engine finished after Berth died. The
//! stream ends when the engine goes away; the caller reconnects and reconciles.
//!
//! # Exec
//!
//! [`ContainerRuntime::exec`] starts a process, with a PTY when [`ExecSpec::tty`] is set, and
//! returns a [`berth_terminal::Pty`]: output `Stream`, input `AsyncWrite`, resize and exit
//! code (the terminal seam, so the core never sees Docker's types). Output
//! is pulled from the engine only as fast as it is consumed. Dropping a session (all its parts)
//! hangs its process up, which the engine alone would not do. [`ExecSpec::login_shell`] runs the
//! template's shell (`/bin/bash -l`, else `/bin/sh -l`); [`ExecSpec::shared_session`] joins the shared tmux session.
#![forbid(unsafe_code)]

mod docker;
mod error;
mod exec;
mod runtime;
mod spec;
mod state;

pub use berth_terminal::DEFAULT_TERM;
pub use docker::{
    DEFAULT_SOCKET, DockerOptions, DockerRuntime, parse_endpoint, socket_from_docker_host,
};
pub use error::{Result, RuntimeError, Unreachable};
pub use exec::{
    DEFAULT_SHELL, ExecSpec, FALLBACK_SHELL, SHARED_SESSION_COMMAND, SHARED_SESSION_NAME,
    login_shell_command,
};
pub use runtime::{ContainerEvents, ContainerRuntime};
pub use spec::{
    BindMount, ContainerSpec, DEFAULT_DOCKER_SOCKETS, Env, Hardening, IDLE_COMMAND, Limits,
    NetworkMode, VolumeMount,
};
pub use state::{
    ContainerEvent, ContainerEventKind, ContainerId, ContainerInfo, ContainerState, MANAGED_LABEL,
};
