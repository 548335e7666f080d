//! Operations: one run of an inventory script on a set of machines. Where each machine of a
//! run stands ([`MachineRunStatus`]), where the run stands ([`OperationStatus`], which always
//! follows from its machines'), and the streams of their output ([`OutputStream`]).

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where one machine of an operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MachineRunStatus {
    /// Waiting for its turn (the operation's concurrency, `fleet.max_concurrency`).
    Queued,
    /// Connecting over SSH (retried, with backoff, only before the script starts).
    Connecting,
    /// The script runs.
    Running,
    /// The script exited 0.
    Succeeded,
    /// The script exited non-zero or was killed by a signal it did not get from Berth.
    Failed,
    /// The script ran past its timeout and was ended (SIGTERM, then SIGKILL).
    TimedOut,
    /// Stopped by an operator: ended while running, or never started.
    Cancelled,
    /// The machine could not be reached or refused Berth (host key, auth); the script never
    /// started.
    Unreachable,
    /// Berth stopped while the machine was queued, connecting or running.
    Interrupted,
}

named_enum!(MachineRunStatus, "machine run status", [
    Queued => "queued",
    Connecting => "connecting",
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
    TimedOut => "timed_out",
    Cancelled => "cancelled",
    Unreachable => "unreachable",
    Interrupted => "interrupted",
]);

impl MachineRunStatus {
    /// Whether the machine is done: nothing more happens to it in this operation.
    #[must_use]
    pub fn is_finished(self) -> bool {
        !matches!(self, Self::Queued | Self::Connecting | Self::Running)
    }

    /// Whether a move from `self` to `next` is one a run makes: forward only, never out of a
    /// finished state.
    #[must_use]
    pub fn may_become(self, next: Self) -> bool {
        use MachineRunStatus as S;
        match self {
            S::Queued => next != S::Queued,
            S::Connecting => !matches!(next, S::Queued | S::Connecting),
            S::Running => next.is_finished() && next != S::Unreachable,
            _ => false,
        }
    }
}

/// Where an operation stands. It follows from its machines' states ([`OperationStatus::of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationStatus {
    /// No machine has started yet.
    Queued,
    /// Some machine is connecting or running, or waits while others have started.
    Running,
    /// Every machine succeeded.
    Succeeded,
    /// Every machine is done and at least one did not succeed.
    Failed,
    /// Stopped by an operator (at least one machine was cancelled).
    Cancelled,
    /// Berth stopped during the run (at least one machine was interrupted).
    Interrupted,
}

named_enum!(OperationStatus, "operation status", [
    Queued => "queued",
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
    Cancelled => "cancelled",
    Interrupted => "interrupted",
]);

impl OperationStatus {
    /// Whether the operation is over.
    #[must_use]
    pub fn is_finished(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }

    /// The status machines in these states give their operation: `queued` while none has
    /// left the queue, `running` while any is unfinished; once all are done, `interrupted` if
    /// any was interrupted, else `cancelled` if any was cancelled, else `succeeded` if all
    /// succeeded, else `failed`.
    #[must_use]
    pub fn of(machines: impl IntoIterator<Item = MachineRunStatus>) -> Self {
        let (mut all_queued, mut unfinished, mut interrupted, mut cancelled, mut all_ok) =
            (true, false, false, false, true);
        for status in machines {
            all_queued &= status == MachineRunStatus::Queued;
            unfinished |= !status.is_finished();
            interrupted |= status == MachineRunStatus::Interrupted;
            cancelled |= status == MachineRunStatus::Cancelled;
            all_ok &= status == MachineRunStatus::Succeeded;
        }
        if unfinished {
            if all_queued {
                Self::Queued
            } else {
                Self::Running
            }
        } else if interrupted {
            Self::Interrupted
        } else if cancelled {
            Self::Cancelled
        } else if all_ok {
            Self::Succeeded
        } else {
            Self::Failed
        }
    }
}

/// Which output of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

named_enum!(OutputStream, "output stream", [
    Stdout => "stdout",
    Stderr => "stderr",
]);

#[cfg(test)]
mod tests {
    use super::*;
    use MachineRunStatus as M;

    #[test]
    fn an_operation_follows_from_its_machines() {
        assert_eq!(
            OperationStatus::of([M::Queued, M::Queued]),
            OperationStatus::Queued
        );
        assert_eq!(
            OperationStatus::of([M::Queued, M::Connecting]),
            OperationStatus::Running
        );
        assert_eq!(
            OperationStatus::of([M::Succeeded, M::Queued]),
            OperationStatus::Running
        );
        assert_eq!(
            OperationStatus::of([M::Succeeded, M::Succeeded]),
            OperationStatus::Succeeded
        );
        assert_eq!(
            OperationStatus::of([M::Succeeded, M::TimedOut]),
            OperationStatus::Failed
        );
        assert_eq!(
            OperationStatus::of([M::Unreachable, M::Cancelled]),
            OperationStatus::Cancelled
        );
        assert_eq!(
            OperationStatus::of([M::Cancelled, M::Interrupted]),
            OperationStatus::Interrupted
        );
    }

    #[test]
    fn machines_only_move_forward() {
        assert!(M::Queued.may_become(M::Connecting));
        assert!(M::Queued.may_become(M::Cancelled));
        assert!(M::Connecting.may_become(M::Unreachable));
        assert!(M::Running.may_become(M::TimedOut));
        assert!(
            !M::Running.may_become(M::Unreachable),
            "a started script is never re-run"
        );
        assert!(!M::Running.may_become(M::Connecting));
        for done in M::ALL.into_iter().filter(|s| s.is_finished()) {
            assert!(
                M::ALL.into_iter().all(|next| !done.may_become(next)),
                "{done}"
            );
        }
    }
}
