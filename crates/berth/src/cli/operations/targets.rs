//! `--on`: the machines an operation runs on, by id, `tag:NAME` or `type:NAME`, resolved
//! against the machines the caller may see before anything starts, so that a typo is an
//! error rather than a run on fewer machines.

use std::collections::HashSet;

use berth_client::MachineId;
use berth_client::api::{MAX_OPERATION_MACHINES, MachineView};
use berth_types::fleet::is_label;

use crate::cli::errors::CliError;

/// One item of `--on`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A machine, by its links.yaml `id`.
    Machine(MachineId),
    /// Every machine with this tag.
    Tag(String),
    /// Every machine of this type.
    Type(String),
}

/// Parses one item of `--on` (clap splits the list on commas).
pub fn target(text: &str) -> Result<Target, String> {
    let text = text.trim();
    let label = |kind: &str, name: &str| {
        if is_label(name) {
            Ok(name.to_owned())
        } else {
            Err(format!(
                "{kind}:{name:?}: a {kind} has 1 to 63 characters of a-z, 0-9, _ . -, starting \
                 with a letter or a digit"
            ))
        }
    };
    if let Some(tag) = text.strip_prefix("tag:") {
        return label("tag", tag).map(Target::Tag);
    }
    if let Some(kind) = text.strip_prefix("type:") {
        return label("type", kind).map(Target::Type);
    }
    MachineId::new(text)
        .map(Target::Machine)
        .map_err(|e| format!("{text:?}: give a machine id, tag:NAME or type:NAME ({e})"))
}

/// The machines `targets` name among `visible` (the machines the caller may see): in the
/// order of `targets`, a tag's or type's machines in the order of `visible`, each machine
/// once. Every id that is not visible and every tag or type that matches nothing is named in
/// one error.
pub fn resolve(targets: &[Target], visible: &[MachineView]) -> Result<Vec<MachineId>, CliError> {
    let mut chosen = Vec::new();
    let mut seen = HashSet::new();
    let mut unknown = Vec::new();
    let mut empty = Vec::new();
    for target in targets {
        let matches: Vec<&MachineId> = match target {
            Target::Machine(id) => visible
                .iter()
                .filter(|m| &m.id == id)
                .map(|m| &m.id)
                .collect(),
            Target::Tag(tag) => visible
                .iter()
                .filter(|m| m.tags.iter().any(|t| t == tag))
                .map(|m| &m.id)
                .collect(),
            Target::Type(kind) => visible
                .iter()
                .filter(|m| m.kind.as_deref() == Some(kind))
                .map(|m| &m.id)
                .collect(),
        };
        if matches.is_empty() {
            match target {
                Target::Machine(id) => unknown.push(id.to_string()),
                Target::Tag(tag) => empty.push(format!("tag:{tag}")),
                Target::Type(kind) => empty.push(format!("type:{kind}")),
            }
        }
        for id in matches {
            if seen.insert(id.clone()) {
                chosen.push(id.clone());
            }
        }
    }
    let mut problems = Vec::new();
    if !unknown.is_empty() {
        problems.push(format!(
            "no machine {} among those you may see",
            unknown.join(", ")
        ));
    }
    if !empty.is_empty() {
        problems.push(format!(
            "no machine you may see matches {}",
            empty.join(", ")
        ));
    }
    if !problems.is_empty() {
        return Err(CliError::new(problems.join("; "))
            .hint("`berth machines` lists the machines you may see, with their tags and types"));
    }
    if chosen.len() > MAX_OPERATION_MACHINES {
        return Err(CliError::new(format!(
            "--on selects {} machines; an operation runs on at most {MAX_OPERATION_MACHINES}",
            chosen.len()
        )));
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use berth_client::api::{EnrollmentView, HealthView};
    use berth_types::fleet::{EnrollmentStatus, HealthStatus};

    use super::*;

    fn machine(id: &str, kind: Option<&str>, tags: &[&str]) -> MachineView {
        MachineView {
            id: MachineId::new(id).unwrap(),
            name: id.into(),
            host: "127.0.0.1".into(),
            port: 22,
            user: "ops".into(),
            kind: kind.map(str::to_owned),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            key: "id_ed25519".into(),
            host_key_pinned: false,
            proxy_jump: None,
            client_id: None,
            description: String::new(),
            enrollment: EnrollmentView {
                status: EnrollmentStatus::Enrolled,
                message: String::new(),
                fingerprint: None,
                verified_at: None,
            },
            health: HealthView {
                status: HealthStatus::Online,
                latency_ms: None,
                last_seen: None,
                consecutive_failures: 0,
                checked_at: None,
                history: Vec::new(),
            },
            commit: "0123".into(),
        }
    }

    fn ids(ids: &[MachineId]) -> Vec<&str> {
        ids.iter().map(MachineId::as_str).collect()
    }

    #[test]
    fn items_are_ids_tags_or_types() {
        assert_eq!(
            target("web-1"),
            Ok(Target::Machine(MachineId::new("web-1").unwrap()))
        );
        assert_eq!(target(" tag:web "), Ok(Target::Tag("web".into())));
        assert_eq!(target("type:db"), Ok(Target::Type("db".into())));
        for bad in [
            "", "Web", "tag:", "tag:Web!", "type:", "host:x", "verify", "a b",
        ] {
            assert!(target(bad).is_err(), "{bad:?}");
        }
        assert!(target("tag:").unwrap_err().contains("a tag has"));
        assert!(target("host:x").unwrap_err().contains("tag:NAME"));
    }

    #[test]
    fn targets_resolve_in_order_each_machine_once() {
        let visible = [
            machine("m1", None, &["web", "eu"]),
            machine("m2", Some("db"), &["db"]),
            machine("m3", None, &["web"]),
        ];
        let on =
            |items: &[&str]| -> Vec<Target> { items.iter().map(|i| target(i).unwrap()).collect() };
        assert_eq!(
            ids(&resolve(&on(&["m2", "tag:web"]), &visible).unwrap()),
            ["m2", "m1", "m3"]
        );
        assert_eq!(
            ids(&resolve(&on(&["tag:web", "m1", "type:db", "tag:eu"]), &visible).unwrap()),
            ["m1", "m3", "m2"]
        );
        let err = resolve(&on(&["m1", "m9", "tag:nope", "type:vm", "m8"]), &visible).unwrap_err();
        assert_eq!(
            err.message(),
            "no machine m9, m8 among those you may see; no machine you may see matches \
             tag:nope, type:vm"
        );
        assert!(
            resolve(&on(&["m1"]), &[]).is_err(),
            "nothing visible, nothing chosen"
        );
    }
}
