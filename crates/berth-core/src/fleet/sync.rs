//! Syncing the inventory: fetch, read, validate everything, then put it in force at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use berth_fleet::inventory::{self, LINKS_FILE, SCRIPTS_FILE};
use berth_fleet::scripts::{MAX_SCRIPT_BYTES, check_script};
use berth_fleet::secrets::{MAX_SECRETS_BYTES, Secrets, is_age_file};
use berth_fleet::{CommitId, check_secret_file, key_path};
use berth_store::{MachineSpec, SyncOutcome, SyncRecord};
use berth_types::fleet::{Changes, SyncChanges, SyncFileError, SyncResult, SyncTrigger};
use serde_json::json;

use super::{Fleet, FleetError, FleetEvent, Inventory, InventoryScript, WEBHOOK_SECRET_FILE};
use crate::audit::{Actor, AuditAction, AuditEvent};
use berth_store::AuditOutcome;

/// The largest `links.yaml` or `scripts.yaml` read.
const MAX_INVENTORY_FILE: u64 = 4 * 1024 * 1024;
/// The secrets file in the repository.
pub(crate) const SECRETS_FILE: &str = "secrets.ini";

/// What a sync read from a commit, all of it valid.
struct Candidate {
    commit: String,
    machines: Vec<MachineSpec>,
    scripts: Vec<InventoryScript>,
    secrets: Secrets,
}

fn whole(message: impl Into<String>) -> SyncFileError {
    SyncFileError {
        file: None,
        line: None,
        path: None,
        message: message.into(),
    }
}

fn in_file(file: &str, line: Option<usize>, message: impl Into<String>) -> SyncFileError {
    SyncFileError {
        file: Some(file.to_owned()),
        line: line.and_then(|l| u32::try_from(l).ok()),
        path: None,
        message: message.into(),
    }
}

fn from_file_error(error: berth_yaml::FileError) -> SyncFileError {
    SyncFileError {
        file: Some(error.file),
        line: error.line.and_then(|l| u32::try_from(l).ok()),
        path: (!error.path.is_empty()).then_some(error.path),
        message: error.message,
    }
}

fn spec_of(machine: inventory::Machine) -> MachineSpec {
    MachineSpec {
        id: machine.id,
        name: machine.name,
        host: machine.host,
        port: machine.port,
        user: machine.user,
        kind: machine.kind,
        tags: machine.tags,
        key: machine.key,
        host_key: machine.host_key,
        proxy_jump: machine.proxy_jump,
        client_id: machine.client_id,
        description: machine.description,
    }
}

impl Fleet {
    /// Syncs the inventory now and waits for it: one sync at a time (a second caller waits
    /// for the first, then syncs again). A sync that finds an invalid repository is recorded
    /// `failed` with every error and leaves the inventory in force as it was. The sync runs in
    /// a task of its own: a caller that goes away does not leave it half done.
    pub async fn sync(&self, trigger: SyncTrigger, actor: Actor) -> Result<SyncRecord, FleetError> {
        let fleet = self.clone();
        super::detached(async move { fleet.sync_now(trigger, &actor).await }).await?
    }

    async fn sync_now(
        &self,
        trigger: SyncTrigger,
        actor: &Actor,
    ) -> Result<SyncRecord, FleetError> {
        let _one = self.inner.sync_lock.lock().await;
        if trigger == SyncTrigger::Webhook {
            // From here on a new push needs a new sync: the fetch below may miss it.
            self.inner.webhook_pending.store(false, Ordering::SeqCst);
        }
        /// Clears `syncing` however the sync ends, a panic included.
        struct Syncing<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Syncing<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::SeqCst);
            }
        }
        self.inner.syncing.store(true, Ordering::SeqCst);
        let _syncing = Syncing(&self.inner.syncing);
        self.sync_locked(trigger, actor).await
    }

    async fn sync_locked(
        &self,
        trigger: SyncTrigger,
        actor: &Actor,
    ) -> Result<SyncRecord, FleetError> {
        let store = &self.inner.store;
        // One sync at a time: a row still running is one whose end could not be recorded.
        store.interrupt_running_syncs(self.now()).await?;
        let record = store
            .begin_sync(trigger, &actor.to_string(), self.now())
            .await?;
        self.publish(FleetEvent::Sync(Box::new(record.clone())));
        let current = self.inventory();
        let (outcome, candidate) = match self.read_candidate().await {
            Ok(candidate) => {
                let unchanged =
                    current.complete && current.commit.as_deref() == Some(&candidate.commit);
                let old_machines: Vec<MachineSpec> = current.machines.values().cloned().collect();
                let old_scripts: Vec<_> = current.scripts.iter().map(|s| &s.script).collect();
                let new_scripts: Vec<_> = candidate.scripts.iter().map(|s| &s.script).collect();
                let changes = SyncChanges {
                    machines: Changes::between(&old_machines, &candidate.machines, |m| {
                        m.id.to_string()
                    }),
                    scripts: Changes::between(&old_scripts, &new_scripts, |s| s.name.clone()),
                };
                let outcome = SyncOutcome {
                    result: if unchanged {
                        SyncResult::Unchanged
                    } else {
                        SyncResult::Succeeded
                    },
                    commit: Some(candidate.commit.clone()),
                    errors: Vec::new(),
                    changes,
                    at: self.now(),
                };
                (outcome, Some(candidate))
            }
            Err((commit, errors)) => (
                SyncOutcome {
                    result: SyncResult::Failed,
                    commit,
                    errors,
                    changes: SyncChanges::default(),
                    at: self.now(),
                },
                None,
            ),
        };
        // Checks must not record results while the inventory they were made for is replaced.
        let in_force = match candidate {
            Some(_) => Some(self.inner.in_force.write().await),
            None => None,
        };
        let (outcome, candidate) = match store
            .finish_sync(
                record.id,
                &outcome,
                candidate.as_ref().map(|c| c.machines.as_slice()),
            )
            .await
        {
            Ok(()) => (outcome, candidate),
            Err(e) => {
                // Nothing of it is in force: record the sync as failed, if the store lets us.
                tracing::error!(error = %e, "cannot put the synced inventory in force");
                let failed = SyncOutcome {
                    result: SyncResult::Failed,
                    commit: outcome.commit,
                    errors: vec![whole(format!(
                        "the store refused the new inventory, the old one stays in force: {e}"
                    ))],
                    changes: SyncChanges::default(),
                    at: self.now(),
                };
                drop(in_force);
                if let Err(again) = store.finish_sync(record.id, &failed, None).await {
                    tracing::error!(error = %again, "cannot record the fleet sync as failed; the next start marks it interrupted");
                }
                let finished = finished_record(record, &failed);
                self.log_and_audit(&finished, actor).await;
                self.publish(FleetEvent::Sync(Box::new(finished)));
                return Err(FleetError::Store(e));
            }
        };
        let finished = finished_record(record, &outcome);
        let mut in_force = in_force;
        let mut to_verify = Vec::new();
        if let Some(candidate) = candidate {
            to_verify.extend(
                outcome
                    .changes
                    .machines
                    .added
                    .iter()
                    .chain(&outcome.changes.machines.changed)
                    .filter_map(|id| berth_types::MachineId::new(id.clone()).ok()),
            );
            let machines: BTreeMap<_, _> = candidate
                .machines
                .into_iter()
                .map(|m| (m.id.clone(), m))
                .collect();
            {
                // Health is kept across changes of name, tags or description; a machine
                // reached another way starts again, as its enrollment does.
                let mut health = crate::workspaces::lock(&self.inner.health);
                health.retain(|id, _| match (current.machines.get(id), machines.get(id)) {
                    (Some(old), Some(new)) => !old.ssh_settings_differ(new),
                    _ => false,
                });
                for id in machines.keys() {
                    health.entry(id.clone()).or_default();
                }
            }
            *self.inventory_lock_mut() = Arc::new(Inventory {
                commit: Some(candidate.commit),
                machines,
                scripts: candidate.scripts,
                secrets: candidate.secrets,
                complete: true,
            });
            in_force = None;
            for id in &outcome.changes.machines.removed {
                if let Ok(id) = berth_types::MachineId::new(id.clone()) {
                    self.publish(FleetEvent::Removed(id));
                }
            }
            for id in &to_verify {
                if let Ok(Some(row)) = store.machine(id).await {
                    self.publish(FleetEvent::Machine(Box::new(row)));
                }
            }
        }
        drop(in_force);
        self.log_and_audit(&finished, actor).await;
        self.publish(FleetEvent::Sync(Box::new(finished.clone())));
        if !to_verify.is_empty() {
            let fleet = self.clone();
            tokio::spawn(async move {
                fleet.check_many(&to_verify, &Actor::System, false).await;
            });
        }
        Ok(finished)
    }

    async fn log_and_audit(&self, sync: &SyncRecord, actor: &Actor) {
        let commit = sync.commit.as_deref().unwrap_or("-");
        match sync.result {
            SyncResult::Failed => {
                let first = sync.errors.first().map(describe).unwrap_or_default();
                tracing::warn!(commit, errors = sync.errors.len(), first = %first, "fleet sync failed; the inventory in force stays");
            }
            result => tracing::info!(
                commit,
                result = result.as_str(),
                machines_added = sync.changes.machines.added.len(),
                machines_changed = sync.changes.machines.changed.len(),
                machines_removed = sync.changes.machines.removed.len(),
                "fleet synced"
            ),
        }
        let outcome = if sync.result == SyncResult::Failed {
            AuditOutcome::Failure
        } else {
            AuditOutcome::Success
        };
        AuditEvent::new(actor.clone(), AuditAction::FleetSync, commit)
            .at(sync.finished_at.unwrap_or(sync.started_at))
            .outcome(outcome)
            .details(json!({
                "trigger": sync.trigger.as_str(),
                "result": sync.result.as_str(),
                "errors": sync.errors.iter().take(20).map(describe).collect::<Vec<_>>(),
                "changes": sync.changes,
            }))
            .record_to(&self.inner.audit)
            .await;
    }

    /// Fetches the repository and reads and checks everything a commit holds. On failure:
    /// the commit fetched (if any) and every problem found.
    async fn read_candidate(&self) -> Result<Candidate, (Option<String>, Vec<SyncFileError>)> {
        let settings = &self.inner.settings;
        let commit = self
            .inner
            .mirror
            .fetch(&settings.repository, &settings.branch)
            .await
            .map_err(|e| (None, vec![whole(e.to_string())]))?;
        let fail = |errors| (Some(commit.as_str().to_owned()), errors);
        let mut errors = Vec::new();
        let machines = match self.read_text(&commit, LINKS_FILE, true).await {
            Ok(Some(text)) => match inventory::parse_links(&text) {
                Ok(machines) => machines.into_iter().map(spec_of).collect(),
                Err(found) => {
                    errors.extend(found.into_iter().map(from_file_error));
                    Vec::new()
                }
            },
            Ok(None) => Vec::new(),
            Err(error) => {
                errors.push(error);
                Vec::new()
            }
        };
        let (scripts, secrets) = match self.read_scripts_and_secrets(commit.as_str()).await {
            Ok(read) => read,
            Err(found) => {
                errors.extend(found);
                Default::default()
            }
        };
        errors.extend(self.key_file_problems(&machines));
        if errors.is_empty() {
            Ok(Candidate {
                commit: commit.as_str().to_owned(),
                machines,
                scripts,
                secrets,
            })
        } else {
            Err(fail(errors))
        }
    }

    /// The secret files a sync checks: each machine's key, and the webhook secret when there
    /// is one. A key or secret readable by others is refused, with the file and its mode.
    fn key_file_problems(&self, machines: &[MachineSpec]) -> Vec<SyncFileError> {
        let keys_dir = &self.inner.settings.keys_dir;
        let mut problems = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for machine in machines {
            if !seen.insert(machine.key.clone()) {
                continue;
            }
            let checked = key_path(keys_dir, &machine.key).and_then(|p| check_secret_file(&p));
            if let Err(e) = checked {
                problems.push(SyncFileError {
                    file: Some(LINKS_FILE.to_owned()),
                    line: None,
                    path: Some(format!("machine {} key", machine.id)),
                    message: e.to_string(),
                });
            }
        }
        let webhook = keys_dir.join(WEBHOOK_SECRET_FILE);
        if webhook.symlink_metadata().is_ok()
            && let Err(e) = check_secret_file(&webhook)
        {
            problems.push(whole(e.to_string()));
        }
        problems
    }

    /// `path` of `commit` as UTF-8 text; `None` when it is missing and not `required`.
    async fn read_text(
        &self,
        commit: &CommitId,
        path: &str,
        required: bool,
    ) -> Result<Option<String>, SyncFileError> {
        match self
            .inner
            .mirror
            .read_file(commit, path, MAX_INVENTORY_FILE)
            .await
        {
            Ok(Some(bytes)) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| in_file(path, None, "not UTF-8 text")),
            Ok(None) if required => Err(in_file(
                path,
                None,
                format!(
                    "not found at the root of the repository (commit {}); \
                     an inventory needs it, even as `machines: []`",
                    short(commit.as_str())
                ),
            )),
            Ok(None) => Ok(None),
            Err(e) => Err(in_file(path, None, e.to_string())),
        }
    }

    /// The scripts (checked: bash only) and the secrets of `commit`.
    pub(super) async fn read_scripts_and_secrets(
        &self,
        commit: &str,
    ) -> Result<(Vec<InventoryScript>, Secrets), Vec<SyncFileError>> {
        let commit = CommitId::parse(commit)
            .ok_or_else(|| vec![whole(format!("{commit:?} is not a commit id"))])?;
        let mut errors = Vec::new();
        let mut scripts = Vec::new();
        match self.read_text(&commit, SCRIPTS_FILE, false).await {
            Ok(Some(text)) => match inventory::parse_scripts(&text) {
                Ok(parsed) => {
                    for script in parsed {
                        match self.read_script(&commit, &script).await {
                            Ok(content) => scripts.push(InventoryScript { script, content }),
                            Err(error) => errors.push(error),
                        }
                    }
                }
                Err(found) => errors.extend(found.into_iter().map(from_file_error)),
            },
            Ok(None) => {}
            Err(error) => errors.push(error),
        }
        let secrets = match self.read_secrets(&commit).await {
            Ok(secrets) => secrets,
            Err(error) => {
                errors.push(error);
                Secrets::default()
            }
        };
        if errors.is_empty() {
            Ok((scripts, secrets))
        } else {
            Err(errors)
        }
    }

    async fn read_script(
        &self,
        commit: &CommitId,
        script: &inventory::Script,
    ) -> Result<Vec<u8>, SyncFileError> {
        let max = u64::try_from(MAX_SCRIPT_BYTES).unwrap_or(u64::MAX) + 1;
        let content = match self.inner.mirror.read_file(commit, &script.file, max).await {
            Ok(Some(content)) => content,
            Ok(None) => {
                return Err(in_file(
                    SCRIPTS_FILE,
                    None,
                    format!(
                        "script {:?}: its file {:?} does not exist in commit {}",
                        script.name,
                        script.file,
                        short(commit.as_str())
                    ),
                ));
            }
            Err(e) => return Err(in_file(&script.file, None, e.to_string())),
        };
        check_script(&content)
            .await
            .map_err(|problem| in_file(&script.file, problem.line, problem.message))?;
        Ok(content)
    }

    async fn read_secrets(&self, commit: &CommitId) -> Result<Secrets, SyncFileError> {
        let max = u64::try_from(MAX_SECRETS_BYTES).unwrap_or(u64::MAX);
        let bytes = match self.inner.mirror.read_file(commit, SECRETS_FILE, max).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(Secrets::default()),
            Err(e) => return Err(in_file(SECRETS_FILE, None, e.to_string())),
        };
        if !is_age_file(&bytes) {
            return Err(in_file(
                SECRETS_FILE,
                None,
                "is not encrypted: secrets never come from git in plaintext. Encrypt it to the \
                 recipient `berth fleet secrets-key` prints (age -r RECIPIENT -a -o secrets.ini \
                 FILE), commit that, and remove the plaintext from the history",
            ));
        }
        self.inner
            .secrets_key
            .open(&bytes)
            .await
            .map_err(|e| in_file(SECRETS_FILE, None, e.to_string()))
    }

    /// Verifies a webhook request with the secret in the keys dir and starts a sync in the
    /// background; the sender's name is returned for the response and the log. Pushes that
    /// arrive while a webhook sync waits for its turn join it instead of queueing more.
    pub fn webhook<'a>(
        &self,
        header: impl Fn(&str) -> Option<&'a str>,
        body: &[u8],
    ) -> Result<&'static str, FleetError> {
        let path = self.inner.settings.keys_dir.join(WEBHOOK_SECRET_FILE);
        let secret = berth_fleet::read_secret_file(&path)
            .map_err(|e| FleetError::WebhookDisabled(e.to_string()))?;
        let now = std::time::SystemTime::from(self.now());
        let sender = berth_fleet::webhook::verify(header, body, &secret, now)?;
        if self.inner.webhook_pending.swap(true, Ordering::SeqCst) {
            // A webhook sync is queued and has not fetched yet: it will see this push too.
            return Ok(sender.name());
        }
        let fleet = self.clone();
        tokio::spawn(async move {
            if let Err(e) = fleet.sync(SyncTrigger::Webhook, Actor::System).await {
                tracing::error!(error = %e, "the webhook's fleet sync could not be recorded");
            }
        });
        Ok(sender.name())
    }

    pub(super) async fn sync_loop(&self) {
        let mut trigger = SyncTrigger::Start;
        loop {
            if let Err(e) = self.sync(trigger, Actor::System).await {
                tracing::error!(error = %e, "the fleet sync could not be recorded");
            }
            trigger = SyncTrigger::Schedule;
            tokio::time::sleep(self.inner.settings.sync_interval).await;
        }
    }
}

/// `record` as `outcome` finished it.
fn finished_record(record: SyncRecord, outcome: &SyncOutcome) -> SyncRecord {
    SyncRecord {
        finished_at: Some(outcome.at),
        result: outcome.result,
        commit: outcome.commit.clone(),
        errors: outcome.errors.clone(),
        changes: outcome.changes.clone(),
        ..record
    }
}

/// The first 12 characters of a commit id.
pub(crate) fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// One error as a line: `file:line: path: message`.
pub(crate) fn describe(error: &SyncFileError) -> String {
    let mut text = String::new();
    if let Some(file) = &error.file {
        text.push_str(file);
        if let Some(line) = error.line {
            text.push_str(&format!(":{line}"));
        }
        text.push_str(": ");
    }
    if let Some(path) = &error.path {
        text.push_str(path);
        text.push_str(": ");
    }
    text.push_str(&error.message);
    text
}
