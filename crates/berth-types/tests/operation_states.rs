//! The operation state machine, tried on random runs: machines move forward only, and the
//! operation's state always follows from its machines'.

use berth_types::operation::{MachineRunStatus as M, OperationStatus as O};
use proptest::prelude::*;

/// A run of one machine: the states it passes through, as the engine may take it.
fn machine_run() -> impl Strategy<Value = Vec<M>> {
    let end = prop::sample::select(vec![
        M::Succeeded,
        M::Failed,
        M::TimedOut,
        M::Cancelled,
        M::Interrupted,
    ]);
    let early = prop::sample::select(vec![M::Cancelled, M::Unreachable, M::Interrupted]);
    prop_oneof![
        // Cancelled or interrupted in the queue, or unreachable while connecting.
        early.clone().prop_map(|e| vec![M::Queued, e]),
        early.prop_map(|e| vec![M::Queued, M::Connecting, e]),
        end.prop_map(|e| vec![M::Queued, M::Connecting, M::Running, e]),
    ]
}

proptest! {
    #[test]
    fn an_operation_follows_from_its_machines(
        runs in prop::collection::vec(machine_run(), 1..12),
        steps in prop::collection::vec(0usize..12, 0..80),
    ) {
        let mut at = vec![0usize; runs.len()];
        let mut last = O::of(runs.iter().map(|r| r[0]));
        prop_assert_eq!(last, O::Queued);
        for step in steps {
            let i = step % runs.len();
            if at[i] + 1 < runs[i].len() {
                let (from, to) = (runs[i][at[i]], runs[i][at[i] + 1]);
                prop_assert!(from.may_become(to), "{from} -> {to}");
                at[i] += 1;
            }
            let states: Vec<M> = at.iter().zip(&runs).map(|(a, r)| r[*a]).collect();
            let status = O::of(states.iter().copied());
            // Finished exactly when every machine is; once finished it stays so.
            prop_assert_eq!(status.is_finished(), states.iter().all(|s| s.is_finished()));
            prop_assert!(!last.is_finished() || status == last, "{last} -> {status}");
            if status.is_finished() {
                let any = |s: M| states.contains(&s);
                let expected = if any(M::Interrupted) {
                    O::Interrupted
                } else if any(M::Cancelled) {
                    O::Cancelled
                } else if states.iter().all(|s| *s == M::Succeeded) {
                    O::Succeeded
                } else {
                    O::Failed
                };
                prop_assert_eq!(status, expected);
            } else if states.iter().all(|s| *s == M::Queued) {
                prop_assert_eq!(status, O::Queued);
            } else {
                prop_assert_eq!(status, O::Running);
            }
            last = status;
        }
    }
}
