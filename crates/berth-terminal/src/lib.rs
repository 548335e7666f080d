//! The terminal seam: what Berth needs of a terminal, whatever runs it.
//!
//! A [`Pty`] is a process on a pseudo-terminal seen from outside: its output as a `Stream` of
//! byte chunks, its input as an `AsyncWrite`, and a [`PtyControl`] to resize it, hang it up and
//! learn its exit code. A Docker exec is one (`berth-runtime`), an SSH channel with a PTY is
//! another (`berth-ssh`), and tests build their own from channels.
//!
//! A [`TerminalSource`] opens terminals on one kind of [`TerminalTarget`]: it says what a
//! caller may do on a target ([`TerminalSource::authorize`]) and opens a [`Pty`] at a size
//! ([`TerminalSource::open`]). The terminal service in `berth-core` keeps sessions, presence,
//! grids, recordings and audit above this trait and never asks which kind it has.
//!
//! This crate knows no Docker, no SSH and no HTTP.
#![forbid(unsafe_code)]

mod pty;
mod source;

pub use berth_types::{MachineId, SessionRole, TargetKind, TerminalTarget, Unavailability};
pub use pty::{
    Collected, DEFAULT_TERM, Pty, PtyControl, PtyInput, PtyOutput, TerminalError, TtySize,
};
pub use source::{Activity, Caller, Grant, OpenError, Opened, TerminalSource};
