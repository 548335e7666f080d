//! An operation for people: the history table, one operation's details, its machines'
//! output grouped as `dshbak -c` groups it, and the one line that says how it ended.

use std::fmt::Write as _;

use berth_client::OperationId;
use berth_client::api::{MachineRunView, OperationView};
use berth_types::operation::MachineRunStatus;
use berth_types::units::HumanDuration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::follow::{ending, how};
use crate::cli::output::{self, Style};

/// The first 8 characters of an id: what the table shows and what the commands accept.
pub fn short(view: &OperationView) -> String {
    short_id(view.id)
}

fn short_id(id: OperationId) -> String {
    id.to_string().chars().take(8).collect()
}

/// `0.3 s`, `42.0 s`, `3m20s`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    match u64::try_from(ms / 1000)
        .ok()
        .and_then(HumanDuration::from_secs)
    {
        Some(long) if ms >= 60_000 => long.to_string(),
        _ => format!("{:.1} s", ms as f64 / 1000.0),
    }
}

/// How long the operation took, or `-` while it runs.
fn took(view: &OperationView) -> String {
    view.finished.map_or_else(
        || "-".to_owned(),
        |end| duration(i64::try_from((end - view.created).whole_milliseconds()).unwrap_or(0)),
    )
}

fn succeeded(view: &OperationView) -> usize {
    view.machines
        .iter()
        .filter(|m| m.status == MachineRunStatus::Succeeded)
        .count()
}

/// The history, newest first.
pub fn table(style: Style, operations: &[OperationView]) -> String {
    let now = OffsetDateTime::now_utc();
    let rows: Vec<Vec<String>> = operations
        .iter()
        .map(|op| {
            vec![
                short(op),
                output::safe(&op.script),
                op.user.to_string(),
                style.state(op.status.as_str()),
                op.machines.len().to_string(),
                succeeded(op).to_string(),
                format!("{} ago", output::age(op.created, now)),
                took(op),
            ]
        })
        .collect();
    output::table(
        style,
        &[
            "ID",
            "SCRIPT",
            "USER",
            "STATUS",
            "MACHINES",
            "SUCCEEDED",
            "CREATED",
            "DURATION",
        ],
        &rows,
    )
}

/// `---- m1,m2 (succeeded, exit 0) ----` and the output those machines printed, for each
/// group of machines that printed the same and ended the same way; standard error lines are
/// marked `(stderr)`. Before the operation finished (no groups yet), each machine on its own.
pub fn grouped(style: Style, view: &OperationView) -> String {
    let mut out = String::new();
    let truncated = |ids: &[&str]| {
        view.machines
            .iter()
            .any(|m| m.truncated && ids.contains(&m.machine.as_str()))
    };
    if view.groups.is_empty() {
        for m in &view.machines {
            let printed = match (&m.stdout, &m.stderr) {
                (None, None) if m.output_bytes > 0 => Printed::Left(m.output_bytes),
                (stdout, stderr) => Printed::Text(
                    stdout.as_deref().unwrap_or_default(),
                    stderr.as_deref().unwrap_or_default(),
                ),
            };
            section(
                &mut out,
                style,
                view.id,
                &[m.machine.as_str()],
                (m.status, ending(m.exit_code, m.signal.as_deref())),
                printed,
                m.truncated,
            );
        }
    } else {
        for group in &view.groups {
            let ids: Vec<&str> = group.machines.iter().map(|m| m.as_str()).collect();
            let printed = match (&group.stdout, &group.stderr) {
                (None, None) if group.output_bytes > 0 => Printed::Left(group.output_bytes),
                (stdout, stderr) => Printed::Text(
                    stdout.as_deref().unwrap_or_default(),
                    stderr.as_deref().unwrap_or_default(),
                ),
            };
            section(
                &mut out,
                style,
                view.id,
                &ids,
                (
                    group.status,
                    ending(group.exit_code, group.signal.as_deref()),
                ),
                printed,
                truncated(&ids),
            );
        }
    }
    out
}

/// What a section shows of the output.
enum Printed<'a> {
    /// Standard output and error.
    Text(&'a str, &'a str),
    /// This many bytes, left out of the answer (too much at once).
    Left(u64),
}

fn section(
    out: &mut String,
    style: Style,
    id: OperationId,
    machines: &[&str],
    (status, ending): (MachineRunStatus, Option<String>),
    printed: Printed<'_>,
    truncated: bool,
) {
    let how = match ending {
        Some(ending) => format!("{status}, {ending}"),
        None => status.to_string(),
    };
    let _ = writeln!(
        out,
        "{}",
        style.bold(&format!("---- {} ({how}) ----", machines.join(",")))
    );
    let (stdout, stderr) = match printed {
        Printed::Text(stdout, stderr) => (stdout, stderr),
        Printed::Left(bytes) => {
            let _ = writeln!(
                out,
                "{}",
                style.dim(&format!(
                    "({bytes} bytes of output, too much to show here: `berth ops show {} \
                     --machine {}`)",
                    short_id(id),
                    machines[0]
                ))
            );
            return;
        }
    };
    for line in stdout.lines() {
        let _ = writeln!(out, "{}", output::safe(line));
    }
    for line in stderr.lines() {
        let _ = writeln!(
            out,
            "{}",
            style.yellow(&format!("(stderr) {}", output::safe(line)))
        );
    }
    if stdout.is_empty() && stderr.is_empty() {
        let _ = writeln!(out, "{}", style.dim("(no output)"));
    }
    if truncated {
        let _ = writeln!(
            out,
            "{}",
            style.dim("(output truncated: the middle beyond fleet.max_output was dropped)")
        );
    }
}

/// `Operation ID failed: 1 of 3 machines succeeded (in 2.1 s).` and, for each machine that
/// did not succeed, its state and why.
pub fn outcome(style: Style, view: &OperationView) -> String {
    let mut out = String::new();
    let took = view
        .finished
        .map(|_| format!(" in {}", took(view)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Operation {} {}: {} of {} machine(s) succeeded{took}.",
        view.id,
        style.state(view.status.as_str()),
        succeeded(view),
        view.machines.len(),
    );
    for m in view
        .machines
        .iter()
        .filter(|m| m.status != MachineRunStatus::Succeeded)
    {
        let _ = writeln!(out, "  {}", machine_state(style, m));
    }
    out
}

/// `m3 unreachable: connection refused`, `m2 failed (exit 1)`.
fn machine_state(style: Style, m: &MachineRunView) -> String {
    format!(
        "{} {}",
        m.machine,
        how(
            style,
            m.status,
            m.exit_code,
            m.signal.as_deref(),
            &m.message
        )
    )
}

fn when(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let stamp = at.format(&Rfc3339).unwrap_or_default();
    format!("{stamp} ({} ago)", output::age(at, now))
}

/// One operation: what ran, by whom, how it stands, each machine, then the grouped output.
pub fn describe(style: Style, view: &OperationView) -> String {
    let now = OffsetDateTime::now_utc();
    let mut out = String::new();
    let _ = writeln!(out, "{}", style.bold(&format!("Operation {}", view.id)));
    let commit: String = output::safe(&view.commit.chars().take(12).collect::<String>());
    let mut fields = vec![
        (
            "script",
            format!("{} (commit {commit})", output::safe(&view.script)),
        ),
        ("user", view.user.to_string()),
        ("status", style.state(view.status.as_str())),
        ("started", when(view.created, now)),
    ];
    if let Some(finished) = view.finished {
        fields.push((
            "finished",
            format!("{} after {}", when(finished, now), took(view)),
        ));
    }
    let timeout = HumanDuration::from_secs(view.timeout_seconds)
        .map_or_else(|| format!("{} s", view.timeout_seconds), |t| t.to_string());
    fields.push((
        "limits",
        format!(
            "{} machine(s) at once, {timeout} per machine",
            view.concurrency
        ),
    ));
    if let Some(of) = view.rerun_of {
        fields.push(("rerun of", of.to_string()));
    }
    for (name, value) in fields {
        let _ = writeln!(out, "  {name:<9} {value}");
    }
    let rows: Vec<Vec<String>> = view
        .machines
        .iter()
        .map(|m| {
            vec![
                format!("  {}", m.machine),
                style.state(m.status.as_str()),
                ending(m.exit_code, m.signal.as_deref()).unwrap_or_else(|| "-".to_owned()),
                m.duration_ms.map_or_else(|| "-".to_owned(), duration),
                output::safe(&m.message),
            ]
        })
        .collect();
    let _ = writeln!(out);
    out.push_str(&output::table(
        style,
        &["  MACHINE", "STATUS", "END", "DURATION", "MESSAGE"],
        &rows,
    ));
    let _ = writeln!(out);
    out.push_str(&grouped(style, view));
    out
}

#[cfg(test)]
mod tests {
    use berth_client::api::OutputGroup;
    use berth_client::{MachineId, OperationId};
    use berth_types::operation::OperationStatus;

    use super::*;

    fn run(id: &str, status: MachineRunStatus, exit: Option<i64>, out: &str) -> MachineRunView {
        MachineRunView {
            machine: MachineId::new(id).unwrap(),
            status,
            exit_code: exit,
            signal: None,
            message: if status == MachineRunStatus::Unreachable {
                "connection refused".into()
            } else {
                String::new()
            },
            started: None,
            finished: None,
            duration_ms: Some(1500),
            stdout: Some(out.into()),
            stdout_base64: None,
            stderr: Some(String::new()),
            stderr_base64: None,
            truncated: id == "m3",
            output_bytes: out.len() as u64,
        }
    }

    fn view() -> OperationView {
        let start = OffsetDateTime::UNIX_EPOCH;
        OperationView {
            id: OperationId::random(),
            script: "disk-usage".into(),
            commit: "0123456789abcdef".into(),
            user: "alice".parse().unwrap(),
            status: OperationStatus::Failed,
            concurrency: 10,
            timeout_seconds: 300,
            rerun_of: None,
            created: start,
            finished: Some(start + time::Duration::milliseconds(2100)),
            machines: vec![
                run("m1", MachineRunStatus::Succeeded, Some(0), "42%\n"),
                run("m2", MachineRunStatus::Succeeded, Some(0), "42%\n"),
                run("m3", MachineRunStatus::Failed, Some(1), ""),
                run("m4", MachineRunStatus::Unreachable, None, ""),
            ],
            groups: vec![
                OutputGroup {
                    machines: vec![MachineId::new("m1").unwrap(), MachineId::new("m2").unwrap()],
                    status: MachineRunStatus::Succeeded,
                    exit_code: Some(0),
                    signal: None,
                    output_bytes: 4,
                    stdout: Some("42%\n".into()),
                    stderr: Some(String::new()),
                },
                OutputGroup {
                    machines: vec![MachineId::new("m3").unwrap()],
                    status: MachineRunStatus::Failed,
                    exit_code: Some(1),
                    signal: None,
                    output_bytes: 12,
                    stdout: Some(String::new()),
                    stderr: Some("df: \x1b[31mno\r\n".into()),
                },
                OutputGroup {
                    machines: vec![MachineId::new("m4").unwrap()],
                    status: MachineRunStatus::Unreachable,
                    exit_code: None,
                    signal: None,
                    output_bytes: 0,
                    stdout: None,
                    stderr: None,
                },
            ],
        }
    }

    #[test]
    fn groups_read_like_dshbak() {
        let plain = Style::plain();
        let text = grouped(plain, &view());
        assert_eq!(
            text,
            "---- m1,m2 (succeeded, exit 0) ----\n42%\n\
             ---- m3 (failed, exit 1) ----\n(stderr) df: \\u{1b}[31mno\n\
             (output truncated: the middle beyond fleet.max_output was dropped)\n\
             ---- m4 (unreachable) ----\n(no output)\n"
        );
        // Output left out of the answer (too much at once) says where to find it.
        let mut large = view();
        large.groups[0].stdout = None;
        large.groups[0].stderr = None;
        large.groups[0].output_bytes = 20_000_000;
        let text = grouped(plain, &large);
        let short = short(&large);
        assert!(
            text.starts_with(&format!(
                "---- m1,m2 (succeeded, exit 0) ----\n(20000000 bytes of output, too much to \
                 show here: `berth ops show {short} --machine m1`)\n---- m3 "
            )),
            "{text}"
        );

        let mut running = view();
        running.groups.clear();
        let text = grouped(plain, &running);
        assert!(
            text.starts_with("---- m1 (succeeded, exit 0) ----\n42%\n---- m2 "),
            "{text}"
        );
    }

    #[test]
    fn the_outcome_names_what_did_not_succeed() {
        let view = view();
        let id = view.id;
        assert_eq!(
            outcome(Style::plain(), &view),
            format!(
                "Operation {id} failed: 2 of 4 machine(s) succeeded in 2.1 s.\n  m3 failed \
                 (exit 1)\n  m4 unreachable: connection refused\n"
            )
        );
        let text = describe(Style::plain(), &view);
        for part in [
            "disk-usage (commit 0123456789ab)",
            "10 machine(s) at once, 5m per machine",
            "  m4       unreachable  -       1.5 s     connection refused",
        ] {
            assert!(text.contains(part), "no {part:?} in:\n{text}");
        }
        let table = table(Style::plain(), &[view]);
        let row = table.lines().nth(1).unwrap();
        assert!(row.starts_with(&id.to_string()[..8]), "{row}");
        assert!(
            row.contains("disk-usage  alice  failed  4         2          "),
            "{row}"
        );
        assert_eq!(duration(300), "0.3 s");
        assert_eq!(duration(200_000), "3m20s");
    }
}
