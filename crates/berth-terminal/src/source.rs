//! [`TerminalSource`]: opens terminals on one kind of target, after saying who may do what.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use berth_types::{Role, SessionRole, TargetKind, TerminalTarget, Unavailability, Username};

use crate::{Pty, TtySize};

/// Who asks for a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Their username.
    pub username: Username,
    /// Their account role (admins may attach to any target as a peer).
    pub role: Role,
}

/// What a caller may do on a target, and what the session is about: from
/// [`TerminalSource::authorize`], for the recording, the audit log and pane titles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The target.
    pub target: TerminalTarget,
    /// The most the caller may do.
    pub role: SessionRole,
    /// Whose target it is: recordings of its sessions belong to them (and to admins).
    pub owner: Username,
    /// A pane's title: `alice@python`, `web-1`.
    pub title: String,
    /// The target for people, in recording titles: `alice's python workspace 0b6c…`.
    pub label: String,
    /// Whether its sessions are recorded.
    pub record: bool,
    /// Whether every terminal on it joins one shared session (tmux).
    pub shared: bool,
    /// Why no terminal can open on it now (a stopped workspace, a machine not enrolled), for
    /// pages and grids that show it before trying; `None` when one can.
    pub unavailable: Option<(Unavailability, String)>,
}

/// A session's activity clock: the source is told of input and output (at most once a second),
/// so that, say, an idle workspace is not culled while someone types.
pub trait Activity: Send + Sync + std::fmt::Debug {
    /// Something was typed or printed now.
    fn touch(&self);
}

/// An opened terminal and what the source keeps alive with it.
#[derive(Debug)]
pub struct Opened {
    /// The process on its PTY.
    pub pty: Pty,
    /// Touched on input and output.
    pub activity: Option<Arc<dyn Activity>>,
    /// Dropped when the session ends (a workspace counts its attached terminals with it).
    pub hold: Option<Box<dyn Any + Send + Sync>>,
}

impl OpenError {
    /// An [`OpenError::Unavailable`].
    #[must_use]
    pub fn unavailable(reason: Unavailability, message: impl Into<String>) -> Self {
        Self::Unavailable {
            reason,
            message: message.into(),
        }
    }
}

impl Opened {
    /// A terminal with no activity clock and nothing held.
    #[must_use]
    pub fn bare(pty: Pty) -> Self {
        Self {
            pty,
            activity: None,
            hold: None,
        }
    }
}

/// Why a terminal could not be opened; each has its close code on the terminal socket.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No such target, or one the caller may not see (answered alike, so ids are not probed).
    #[error("no such {0}")]
    NotFound(TargetKind),
    /// The caller may see the target but not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The target has no terminal now (a stopped workspace, an unreachable machine): why, in
    /// a word a grid can show, and for people.
    #[error("{message}")]
    Unavailable {
        /// The kind of reason.
        reason: Unavailability,
        /// For people.
        message: String,
    },
    /// The request was malformed (a size out of range).
    #[error("{0}")]
    Invalid(String),
    /// The source failed; the details are for the log, not for the caller.
    #[error("{0}")]
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

/// Opens terminals on one kind of [`TerminalTarget`]. Object-safe: the terminal service holds
/// one `Arc<dyn TerminalSource>` per kind.
#[async_trait]
pub trait TerminalSource: Send + Sync + std::fmt::Debug {
    /// The kind of target it opens.
    fn kind(&self) -> TargetKind;

    /// What `caller` may do on `target`: `Ok(None)` when the target exists but they have no
    /// role in it (the service audits the denial and answers [`OpenError::NotFound`], as for a
    /// target that does not exist), [`OpenError::NotFound`] when there is no such target.
    async fn authorize(
        &self,
        target: &TerminalTarget,
        caller: &Caller,
    ) -> Result<Option<Grant>, OpenError>;

    /// Opens a terminal of `size` on the grant's target (for a session of `role`, at most the
    /// grant's).
    async fn open(
        &self,
        grant: &Grant,
        role: SessionRole,
        size: TtySize,
    ) -> Result<Opened, OpenError>;
}
