//! Pools of pre-started, unowned containers, so a start is a claim instead of a create.
//!
//! A pool container is created from the template's plan with no owner, on the template's
//! default network, with ephemeral volumes: it carries no user data. A claim takes it out of
//! the pool under a lock, so no container is ever handed to two users. The Docker Engine cannot
//! relabel a container, so a claimed container keeps its `berth.pool` label; its owner is the
//! workspace record in the store (and, after a restart, reconciliation matches by container id).
//!
//! Each pool container also holds a *waiting terminal*: an exec on a PTY, started when the
//! container joins the pool, that blocks reading one line. The first terminal opened on the
//! claimed workspace takes it over and writes the owner's environment as that line; the shell
//! then starts at once, so a claim costs no exec round trip (which is most of a claim's time).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use berth_runtime::{
    ContainerId, ContainerSpec, ExecSpec, SHARED_SESSION_COMMAND, login_shell_command,
};
use berth_terminal::Pty;
use berth_types::WorkspaceId;

use crate::WorkspaceError;
use crate::audit::{AuditAction, AuditEvent};
use crate::plan::Plan;
use crate::terminal::INITIAL_SIZE;
use crate::workspaces::{INSTANCE_LABEL, POOL_LABEL, TEMPLATE_LABEL, Workspaces};

/// The pre-started containers of every pooled template.
#[derive(Debug, Default)]
pub(crate) struct Pools {
    entries: Mutex<HashMap<String, PoolEntry>>,
    /// One fill at a time; a second caller waits and then finds the pools full.
    fill: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct PoolEntry {
    /// The spec the containers were made from: a changed template drains the pool.
    spec: ContainerSpec,
    containers: Vec<Pooled>,
}

/// A pool container and its waiting terminal.
#[derive(Debug)]
pub(crate) struct Pooled {
    pub(crate) container: ContainerId,
    pub(crate) waiting: Option<Pty>,
}

impl Pools {
    /// Takes a container for `plan` out of its template's pool, if one fits.
    pub(crate) fn claim(&self, plan: &Plan, instance: &str) -> Option<Pooled> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get_mut(&plan.template)?;
        let fits = plan.persistence == crate::Persistence::Ephemeral
            && entry.spec.network == plan.network
            && entry.spec == pool_spec_of(plan, instance);
        if fits { entry.containers.pop() } else { None }
    }

    /// Takes `container` out of whichever pool holds it (it died); whether one did.
    pub(crate) fn forget(&self, container: &ContainerId) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.values_mut().any(|entry| {
            let before = entry.containers.len();
            entry.containers.retain(|p| &p.container != container);
            entry.containers.len() != before
        })
    }

    /// How many containers wait in `template`'s pool.
    pub(crate) fn size(&self, template: &str) -> usize {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(template).map_or(0, |e| e.containers.len())
    }
}

/// The spec a pool container of `plan` is created from, before its name: the plan's container
/// on the plan's network, labelled as pooled.
fn pool_spec_of(plan: &Plan, instance: &str) -> ContainerSpec {
    let mut spec = plan.spec.clone();
    spec.name = String::new();
    spec.network = plan.network.clone();
    spec.labels.extend(BTreeMap::from([
        (POOL_LABEL.to_owned(), plan.template.clone()),
        (TEMPLATE_LABEL.to_owned(), plan.template.clone()),
        (INSTANCE_LABEL.to_owned(), instance.to_owned()),
    ]));
    for volume in &mut spec.volumes {
        volume.persistent = false;
    }
    spec
}

impl Workspaces {
    /// Brings every pool to its template's size: creates missing containers, removes extra
    /// ones and drains pools whose template changed or lost its pool.
    pub async fn fill_pools(&self) -> Result<(), WorkspaceError> {
        let pools = &self.inner.pools;
        let instance = self.inner.settings.instance.as_str();
        let _filling = pools.fill.lock().await;
        let wanted: HashMap<String, (Plan, u32)> = self
            .inner
            .policy
            .pools()
            .into_iter()
            .map(|(plan, size)| (plan.template.clone(), (plan, size)))
            .collect();

        // Take out what must go while holding the lock, remove it from the engine after.
        let mut surplus = Vec::new();
        {
            let mut entries = pools.entries.lock().unwrap_or_else(PoisonError::into_inner);
            entries.retain(|template, entry| {
                let keep = wanted
                    .get(template)
                    .is_some_and(|(plan, _)| pool_spec_of(plan, instance) == entry.spec);
                if !keep {
                    surplus.extend(entry.containers.drain(..).map(|p| p.container));
                }
                keep
            });
            for (template, (plan, size)) in &wanted {
                let entry = entries
                    .entry(template.clone())
                    .or_insert_with(|| PoolEntry {
                        spec: pool_spec_of(plan, instance),
                        containers: Vec::new(),
                    });
                let size = *size as usize;
                if entry.containers.len() > size {
                    surplus.extend(entry.containers.drain(size..).map(|p| p.container));
                }
            }
        }
        for container in surplus {
            if let Err(err) = self.inner.runtime.remove(&container).await {
                tracing::warn!(%container, error = %err, "could not remove a surplus pool container");
            }
        }

        for (template, (plan, size)) in wanted {
            let before = pools.size(&template);
            let filled = self.fill_pool(&template, &plan, size).await;
            let added = pools.size(&template).saturating_sub(before);
            if added > 0 {
                AuditEvent::system(AuditAction::PoolFill, template.clone())
                    .at(self.now())
                    .details(serde_json::json!({
                        "added": added,
                        "size": size,
                        "reason": format!("the pool of {template} holds {size} pre-started containers"),
                    }))
                    .record_to(&self.inner.audit)
                    .await;
            }
            filled?;
        }
        Ok(())
    }

    /// Tops up one pool to `size`.
    async fn fill_pool(
        &self,
        template: &str,
        plan: &Plan,
        size: u32,
    ) -> Result<(), WorkspaceError> {
        let pools = &self.inner.pools;
        let instance = self.inner.settings.instance.as_str();
        {
            while pools.size(template) < size as usize {
                let mut spec = pool_spec_of(plan, instance);
                let tag = WorkspaceId::random().to_string();
                let short = &tag[..8];
                spec.name = format!("berth-pool-{template}-{short}");
                for volume in &mut spec.volumes {
                    volume.name = format!("berth-pool-{short}-{}", volume.name);
                }
                let container = self.inner.runtime.create(&spec).await?;
                if let Err(err) = self.inner.runtime.start(&container).await {
                    let _ = self.inner.runtime.remove(&container).await;
                    return Err(err.into());
                }
                // Without a waiting terminal the container still serves, with one exec more.
                let waiting = match self
                    .inner
                    .runtime
                    .exec(&container, waiting_terminal(plan))
                    .await
                {
                    Ok(session) => Some(session),
                    Err(err) => {
                        tracing::warn!(%container, error = %err, "could not start a waiting terminal");
                        None
                    }
                };
                let pooled = {
                    let mut entries = pools.entries.lock().unwrap_or_else(PoisonError::into_inner);
                    match entries.get_mut(template) {
                        Some(entry) => {
                            entry.containers.push(Pooled {
                                container: container.clone(),
                                waiting,
                            });
                            true
                        }
                        None => false,
                    }
                };
                if !pooled {
                    // The pool was dropped meanwhile: the container is surplus.
                    let _ = self.inner.runtime.remove(&container).await;
                    break;
                }
            }
        }
        Ok(())
    }

    /// Containers waiting in `template`'s pool.
    #[must_use]
    pub fn pool_size(&self, template: &str) -> usize {
        self.inner.pools.size(template)
    }

    /// Every pool's size, for metrics and the dashboard.
    #[must_use]
    pub fn pool_sizes(&self) -> Vec<(String, usize)> {
        let entries = self
            .inner
            .pools
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut sizes: Vec<_> = entries
            .iter()
            .map(|(t, e)| (t.clone(), e.containers.len()))
            .collect();
        sizes.sort();
        sizes
    }

    /// Starts a replacement for a claimed pool container in the background.
    pub(crate) fn refill_soon(&self) {
        let manager = self.clone();
        tokio::spawn(async move {
            if let Err(err) = manager.fill_pools().await {
                tracing::warn!(error = %err, "could not refill the pools");
            }
        });
    }

    /// Removes every pool container (at shutdown, or before reconciliation adopts nothing).
    pub async fn drain_pools(&self) {
        let drained: Vec<ContainerId> = {
            let mut entries = self
                .inner
                .pools
                .entries
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            entries
                .drain()
                .flat_map(|(_, e)| e.containers.into_iter().map(|p| p.container))
                .collect()
        };
        for container in drained {
            let _ = self.inner.runtime.remove(&container).await;
        }
    }
}

/// Reads one line of `NAME=value` words (the owner's environment, written by
/// [`crate::Workspaces::open_terminal`]) with echo off, exports it, then runs the terminal's
/// real command. The words are made of characters from usernames and ids only (checked before
/// writing), so word splitting is all the parsing needed.
const WAITING_SCRIPT: &str = r#"stty -echo; IFS= read -r line; stty echo; export $line; exec "$@""#;

/// The waiting terminal of a pool container of `plan`.
fn waiting_terminal(plan: &Plan) -> ExecSpec {
    let command: Vec<String> = if plan.shared {
        SHARED_SESSION_COMMAND
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    } else {
        login_shell_command(plan.shell.argv())
    };
    let mut cmd = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        WAITING_SCRIPT.to_owned(),
        "berth-wait".to_owned(),
    ];
    cmd.extend(command);
    ExecSpec::terminal(cmd, INITIAL_SIZE)
}
