//! Grouping machines that ended alike, the way `dshbak -c` folds identical output: one group
//! per distinct (status, exit code, signal, stdout, stderr).

use std::collections::HashMap;

use berth_types::operation::MachineRunStatus;

/// How one machine's run ended, borrowed from wherever the caller keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Outcome<'a> {
    pub status: MachineRunStatus,
    pub exit_code: Option<i64>,
    /// The signal that ended the script (`TERM`, `KILL`, ...), when one did.
    pub signal: Option<&'a str>,
    pub stdout: &'a [u8],
    pub stderr: &'a [u8],
}

/// Machines whose runs ended identically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group<'a, K> {
    /// The machines, in the order they were given.
    pub machines: Vec<K>,
    /// What they share.
    pub outcome: Outcome<'a>,
}

/// Folds machines with identical outcomes into groups, in the order of each group's first
/// machine.
pub fn group_outputs<'a, K>(
    machines: impl IntoIterator<Item = (K, Outcome<'a>)>,
) -> Vec<Group<'a, K>> {
    let mut groups: Vec<Group<'a, K>> = Vec::new();
    let mut index: HashMap<Outcome<'a>, usize> = HashMap::new();
    for (machine, outcome) in machines {
        match index.get(&outcome) {
            Some(&i) => groups[i].machines.push(machine),
            None => {
                index.insert(outcome, groups.len());
                groups.push(Group {
                    machines: vec![machine],
                    outcome,
                });
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use MachineRunStatus as S;

    fn ok(stdout: &[u8]) -> Outcome<'_> {
        Outcome {
            status: S::Succeeded,
            exit_code: Some(0),
            signal: None,
            stdout,
            stderr: b"",
        }
    }

    #[test]
    fn identical_outcomes_fold_in_order_of_their_first_machine() {
        let failed = Outcome {
            status: S::Failed,
            exit_code: Some(1),
            ..ok(b"up\n")
        };
        let groups = group_outputs([
            ("m3", ok(b"up\n")),
            ("m1", failed),
            ("m2", ok(b"up\n")),
            ("m4", ok(b"down\n")),
            ("m5", failed),
        ]);
        let folded: Vec<(Vec<&str>, &[u8], S)> = groups
            .iter()
            .map(|g| (g.machines.clone(), g.outcome.stdout, g.outcome.status))
            .collect();
        assert_eq!(
            folded,
            vec![
                (vec!["m3", "m2"], &b"up\n"[..], S::Succeeded),
                (vec!["m1", "m5"], &b"up\n"[..], S::Failed),
                (vec!["m4"], &b"down\n"[..], S::Succeeded),
            ]
        );
    }

    #[test]
    fn any_difference_keeps_machines_apart() {
        let base = ok(b"same");
        let variants = [
            base,
            Outcome {
                stderr: b"warn",
                ..base
            },
            Outcome {
                exit_code: None,
                ..base
            },
            Outcome {
                status: S::Failed,
                exit_code: None,
                signal: Some("TERM"),
                ..base
            },
            Outcome {
                status: S::Failed,
                exit_code: None,
                signal: Some("KILL"),
                ..base
            },
            Outcome {
                status: S::TimedOut,
                ..base
            },
        ];
        let groups = group_outputs(variants.iter().enumerate().map(|(i, o)| (i, *o)));
        assert_eq!(groups.len(), variants.len());
        assert!(group_outputs(Vec::<(u8, Outcome<'_>)>::new()).is_empty());
    }
}
