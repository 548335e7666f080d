//! Operations: one run of an inventory script on a set of machines.
//!
//! [`Operations`] checks a request (the script is in the inventory in force, every target is
//! known, enrolled and one the caller may run on), records the operation (`queued`) and runs
//! it: one task per machine under the operation's concurrency and the fleet's
//! `max_concurrency`, each running [`berth_fleet::run_on_machine`]. One writer task per
//! operation turns what the machines report into store writes and numbered events, in order:
//! every state change is written before it is published, and every kept output chunk (the
//! first half of `fleet.max_output`) is stored as it arrives, so a watcher can resume from the
//! store (`Last-Event-ID`) and a restart loses nothing but what was never kept. At start-up
//! [`Operations::start`] turns what a previous process left queued or running into
//! `interrupted`.
//!
//! A sibling of [`crate::Workspaces`] and [`crate::Fleet`]: same store, audit and clock; no HTTP.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_fleet::{RunEvent, RunSpec, run_on_machine};
use berth_store::{
    KeptOutput, MachineRunRecord, MachineRunUpdate, NewOperation, OperationEventKind,
    OperationEventRecord, OperationRecord, OperationSummary, Store, StoreError,
};
use berth_types::api::{
    MAX_OPERATION_MACHINES, MachineStatusEvent, OperationStatusEvent, StartOperation,
};
use berth_types::fleet::MachineSelector;
use berth_types::operation::{MachineRunStatus, OperationStatus, OutputStream};
use berth_types::{EnrollmentStatus, MachineId, OperationId, Username};
use bytes::Bytes;
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::{Semaphore, broadcast, mpsc, watch};

use crate::audit::{Actor, Audit, AuditAction, AuditEvent};
use crate::fleet::{Fleet, Inventory, InventoryScript};
use berth_store::AuditOutcome;

/// How much event data start-up reads at once when it rebuilds interrupted output.
const LOG_PAGE_BYTES: u64 = 4 << 20;

/// How long a script gets between SIGTERM and SIGKILL, at its timeout or on stop.
pub const KILL_GRACE: Duration = Duration::from_secs(5);
/// Events a live watcher may fall behind before it catches up from the store.
const LIVE_EVENTS: usize = 1024;
/// Notes queued from the machine tasks to an operation's writer.
const NOTES: usize = 1024;
/// The most events written to the store at once.
const BATCH: usize = 256;

/// How operations run.
#[derive(Debug, Clone)]
pub struct OperationsSettings {
    /// Output kept per machine and stream (`fleet.max_output`).
    pub max_output: usize,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
}

impl Default for OperationsSettings {
    fn default() -> Self {
        Self {
            max_output: 1 << 20,
            grace: KILL_GRACE,
        }
    }
}

/// Who asks: their name, whether they are an admin, and (for a user) the machines their
/// users.yaml `machines:` selectors let them see and run on.
#[derive(Debug, Clone)]
pub struct Requester {
    /// The caller.
    pub user: Username,
    /// Admins see and run on every machine and see every operation.
    pub admin: bool,
    /// A user's machine selectors.
    pub machines: Vec<MachineSelector>,
}

impl Requester {
    fn may_run_on(&self, id: &MachineId, tags: &[String]) -> bool {
        self.admin || self.machines.iter().any(|s| s.matches(id, tags))
    }

    fn may_see(&self, operation: &OperationRecord) -> bool {
        self.admin || operation.user == self.user
    }
}

/// Why an operation request failed.
#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    /// No such operation (or one the caller may not see).
    #[error("no such operation")]
    NotFound,
    /// The script is not in the inventory in force.
    #[error("{0}")]
    UnknownScript(String),
    /// A target is not in the inventory, or not one the caller may run on.
    #[error("{0}")]
    UnknownMachine(String),
    /// A target has not proved to be the machine links.yaml means.
    #[error("{0}")]
    NotEnrolled(String),
    /// A value out of range, or a request that makes no sense.
    #[error("{0}")]
    Invalid(String),
    /// The request does not fit the operation's state (or the inventory's).
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs operations. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Operations {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    fleet: Fleet,
    store: Arc<dyn Store>,
    audit: Audit,
    settings: OperationsSettings,
    live: Mutex<HashMap<OperationId, Arc<Live>>>,
    /// Berth is stopping: what its stop ends is `interrupted`, not `cancelled`.
    shutting_down: std::sync::atomic::AtomicBool,
}

/// A running operation: its stop switch and its live events.
#[derive(Debug)]
struct Live {
    stop: watch::Sender<bool>,
    events: broadcast::Sender<OperationEventRecord>,
}

/// What a machine task tells its operation's writer.
#[derive(Debug)]
enum Note {
    State {
        machine: MachineId,
        update: MachineRunUpdate,
    },
    Output {
        machine: MachineId,
        stream: OutputStream,
        data: Bytes,
        kept: bool,
    },
    Done {
        machine: MachineId,
        update: MachineRunUpdate,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        truncated: bool,
    },
}

impl Operations {
    /// Operations on the machines of `fleet`, recorded in `store`.
    #[must_use]
    pub fn new(fleet: Fleet, store: Arc<dyn Store>, settings: OperationsSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                audit: Audit::new(Arc::clone(&store)),
                fleet,
                store,
                settings,
                live: Mutex::default(),
                shutting_down: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    fn now(&self) -> OffsetDateTime {
        self.inner.fleet.settings().clock.now()
    }

    /// At start-up: operations a previous process left queued or running become
    /// `interrupted` (their unfinished machines too, with the output their events hold),
    /// with the events that tell watchers so, each in one transaction, and an
    /// `operation.end` audit entry each. A start-up that dies half-way leaves the rest
    /// unfinished, for the next one.
    pub async fn start(&self) -> Result<Vec<OperationId>, OperationError> {
        let now = self.now();
        let mut interrupted = Vec::new();
        for id in self.inner.store.unfinished_operations().await? {
            // Each on its own: one that cannot be settled is logged and does not keep Berth
            // (or the others) from starting.
            match self.interrupt(id, now).await {
                Ok(true) => interrupted.push(id),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(operation = %id, error = %e, "cannot interrupt an operation a previous process left unfinished");
                }
            }
        }
        Ok(interrupted)
    }

    /// Interrupts operation `id`, left unfinished by a previous process: `false` if it was
    /// not (any more).
    async fn interrupt(
        &self,
        id: OperationId,
        now: OffsetDateTime,
    ) -> Result<bool, OperationError> {
        let store = &self.inner.store;
        let Some(mut record) = store.operation(id).await? else {
            return Ok(false);
        };
        let outputs = self.logged_output(&record).await?;
        let mut seq = store.last_operation_event(id).await?;
        let mut events = Vec::new();
        for machine in record
            .machines
            .iter_mut()
            .filter(|m| !m.status.is_finished())
        {
            // As the store interrupts it.
            machine.status = MachineRunStatus::Interrupted;
            machine.message = berth_store::INTERRUPTED_MESSAGE.to_owned();
            machine.finished_at = Some(now);
            seq += 1;
            events.push(machine_event(seq, now, machine));
        }
        seq += 1;
        events.push(operation_event(seq, now, id, OperationStatus::Interrupted));
        if !store
            .interrupt_operation(id, now, &outputs, &events)
            .await?
        {
            return Ok(false);
        }
        tracing::warn!(operation = %id, script = %record.script, "an operation left running by a previous process is interrupted");
        AuditEvent::system(AuditAction::OperationEnd, id.to_string())
            .at(now)
            .outcome(AuditOutcome::Failure)
            .details(
                json!({"status": OperationStatus::Interrupted.as_str(), "script": record.script}),
            )
            .record_to(&self.inner.audit)
            .await;
        Ok(true)
    }

    /// The output of each unfinished machine of `record`: what its kept output events hold
    /// (the run never got to store it whole), so the operation shows it like any other.
    async fn logged_output(
        &self,
        record: &OperationRecord,
    ) -> Result<Vec<KeptOutput>, OperationError> {
        let store = &self.inner.store;
        let mut output: HashMap<&MachineId, (Vec<u8>, Vec<u8>)> = record
            .machines
            .iter()
            .filter(|m| !m.status.is_finished())
            .map(|m| (&m.machine, (Vec::new(), Vec::new())))
            .collect();
        if output.is_empty() {
            return Ok(Vec::new());
        }
        let mut after = 0;
        loop {
            let events = store
                .operation_events(record.id, after, 1000, LOG_PAGE_BYTES)
                .await?;
            let Some(last) = events.last() else { break };
            after = last.seq;
            for event in &events {
                let (Some(machine), Some(stream)) = (&event.machine, event.stream) else {
                    continue;
                };
                if let Some((stdout, stderr)) = output.get_mut(machine) {
                    match stream {
                        OutputStream::Stdout => stdout.extend_from_slice(&event.data),
                        OutputStream::Stderr => stderr.extend_from_slice(&event.data),
                    }
                }
            }
        }
        let head = self.inner.settings.max_output - self.inner.settings.max_output / 2;
        Ok(output
            .into_iter()
            .map(|(machine, (stdout, stderr))| KeptOutput {
                machine: machine.clone(),
                // Only the head is logged as it arrives: a full head means more was printed.
                truncated: stdout.len() >= head || stderr.len() >= head,
                stdout,
                stderr,
            })
            .collect())
    }

    /// Checks `request` for `requester` and starts it: the operation as recorded (`queued`).
    pub async fn start_operation(
        &self,
        requester: &Requester,
        request: &StartOperation,
    ) -> Result<OperationRecord, OperationError> {
        let checked = self.check(requester, request).await?;
        self.launch(requester, checked, None).await
    }

    /// What a start asks for, checked: the script, the targets, the limits.
    async fn check(
        &self,
        requester: &Requester,
        request: &StartOperation,
    ) -> Result<Checked, OperationError> {
        let inventory = self.inner.fleet.inventory();
        if !inventory.complete {
            return Err(OperationError::Conflict(
                "the inventory's scripts are not read yet: sync the fleet first".to_owned(),
            ));
        }
        let script = inventory
            .scripts
            .iter()
            .find(|s| s.script.name == request.script)
            .cloned()
            .ok_or_else(|| {
                OperationError::UnknownScript(format!(
                    "there is no script {:?} in scripts.yaml",
                    request.script
                ))
            })?;
        let records = self.inner.store.list_machines().await?;
        let by_id: HashMap<&MachineId, _> = records.iter().map(|r| (&r.spec.id, r)).collect();
        let targets: Vec<MachineId> = match (&request.machines, &request.selector) {
            (Some(ids), None) => {
                let mut seen = HashSet::new();
                for id in ids {
                    if !seen.insert(id) {
                        return Err(OperationError::Invalid(format!(
                            "machine {id} is named twice"
                        )));
                    }
                    let visible = by_id
                        .get(id)
                        .is_some_and(|r| requester.may_run_on(id, &r.spec.tags));
                    if !visible {
                        return Err(OperationError::UnknownMachine(format!(
                            "there is no machine {id} you may run on"
                        )));
                    }
                }
                ids.clone()
            }
            (None, Some(selector)) => {
                if selector.is_empty() {
                    return Err(OperationError::Invalid(
                        "a selector needs tags or a type".to_owned(),
                    ));
                }
                let chosen: Vec<MachineId> = records
                    .iter()
                    .filter(|r| {
                        selector.matches(&r.spec.tags, r.spec.kind.as_deref())
                            && requester.may_run_on(&r.spec.id, &r.spec.tags)
                    })
                    .map(|r| r.spec.id.clone())
                    .collect();
                if chosen.is_empty() {
                    return Err(OperationError::Invalid(
                        "no machine you may run on matches the selector".to_owned(),
                    ));
                }
                chosen
            }
            _ => {
                return Err(OperationError::Invalid(
                    "give the targets as `machines` or as `selector`, one of the two".to_owned(),
                ));
            }
        };
        if targets.is_empty() || targets.len() > MAX_OPERATION_MACHINES {
            return Err(OperationError::Invalid(format!(
                "an operation runs on 1 to {MAX_OPERATION_MACHINES} machines"
            )));
        }
        let not_enrolled: Vec<String> = targets
            .iter()
            .filter_map(|id| {
                let record = by_id.get(id)?;
                (record.enrollment != EnrollmentStatus::Enrolled)
                    .then(|| format!("{id} ({})", record.enrollment))
            })
            .collect();
        if !not_enrolled.is_empty() {
            const NAMED: usize = 20;
            let mut named = not_enrolled[..not_enrolled.len().min(NAMED)].join(", ");
            if not_enrolled.len() > NAMED {
                named.push_str(&format!(" and {} more", not_enrolled.len() - NAMED));
            }
            return Err(OperationError::NotEnrolled(format!(
                "not enrolled, so a script does not run there: {named} (verify them, or fix \
                 what their status says)"
            )));
        }
        let concurrency = request
            .concurrency
            .or(script.script.concurrency)
            .unwrap_or_else(|| u32::try_from(targets.len().min(1000)).unwrap_or(1000));
        if !(1..=1000).contains(&concurrency) {
            return Err(OperationError::Invalid(
                "concurrency is 1 to 1000".to_owned(),
            ));
        }
        let timeout = request
            .timeout
            .map_or(script.script.timeout.as_secs(), |t| t.0.as_secs());
        Ok(Checked {
            inventory: Arc::clone(&inventory),
            script,
            commit: inventory.commit.clone().unwrap_or_default(),
            targets,
            concurrency,
            timeout_seconds: timeout,
        })
    }

    /// Starts what [`Operations::check`] allowed.
    async fn launch(
        &self,
        requester: &Requester,
        checked: Checked,
        rerun_of: Option<OperationId>,
    ) -> Result<OperationRecord, OperationError> {
        let Checked {
            inventory,
            script,
            commit,
            targets,
            concurrency,
            timeout_seconds,
        } = checked;
        let now = self.now();
        let new = NewOperation {
            id: OperationId::random(),
            script: script.script.name.clone(),
            commit,
            user: requester.user.clone(),
            concurrency,
            timeout_seconds,
            rerun_of,
            machines: targets,
            created_at: now,
        };
        // Live before it exists in the store: a watcher that finds the row finds its events.
        let (stop, _) = watch::channel(false);
        let (events, _) = broadcast::channel(LIVE_EVENTS);
        let live = Arc::new(Live { stop, events });
        crate::workspaces::lock(&self.inner.live).insert(new.id, Arc::clone(&live));
        let record = match self.inner.store.create_operation(&new).await {
            Ok(record) => record,
            Err(e) => {
                crate::workspaces::lock(&self.inner.live).remove(&new.id);
                return Err(e.into());
            }
        };
        AuditEvent::new(
            Actor::from(&requester.user),
            AuditAction::OperationStart,
            record.id.to_string(),
        )
        .at(now)
        .details(json!({
            "script": record.script,
            "commit": record.commit,
            "machines": record.machines.iter().map(|m| m.machine.as_str()).collect::<Vec<_>>(),
            "concurrency": concurrency,
            "timeout_seconds": timeout_seconds,
            "rerun_of": rerun_of.map(|id| id.to_string()),
        }))
        .record_to(&self.inner.audit)
        .await;
        tracing::info!(operation = %record.id, script = %record.script, machines = record.machines.len(), by = %requester.user, "operation started");
        let operations = self.clone();
        let run = record.clone();
        tokio::spawn(async move { operations.run(run, inventory, script, live).await });
        Ok(record)
    }

    /// The operation, if `requester` may see it.
    pub async fn operation(
        &self,
        requester: &Requester,
        id: OperationId,
    ) -> Result<OperationRecord, OperationError> {
        match self.inner.store.operation(id).await? {
            Some(record) if requester.may_see(&record) => Ok(record),
            _ => Err(OperationError::NotFound),
        }
    }

    /// Operation `id` without its machines' output, with how the output groups, if
    /// `requester` may see it.
    pub async fn operation_summary(
        &self,
        requester: &Requester,
        id: OperationId,
    ) -> Result<OperationSummary, OperationError> {
        match self.inner.store.operation_summary(id).await? {
            Some(summary) if requester.may_see(&summary.operation) => Ok(summary),
            _ => Err(OperationError::NotFound),
        }
    }

    /// [`Operations::operation_summary`] of each of `ids` that `requester` may see and is
    /// still in the history, in the order of `ids`: a page of the history, read at once.
    pub async fn operation_summaries(
        &self,
        requester: &Requester,
        ids: &[OperationId],
    ) -> Result<Vec<OperationSummary>, OperationError> {
        let mut summaries = self.inner.store.operation_summaries(ids).await?;
        summaries.retain(|summary| requester.may_see(&summary.operation));
        Ok(summaries)
    }

    /// The first machine of each of `summary`'s groups with its kept output (each distinct
    /// output once), in the operation's order; `summary` is one
    /// [`Operations::operation_summary`] answered, so the caller may see it.
    pub async fn group_outputs(
        &self,
        summary: &OperationSummary,
    ) -> Result<Vec<MachineRunRecord>, OperationError> {
        Ok(self.inner.store.group_outputs(summary.operation.id).await?)
    }

    /// `machine`'s part of operation `id`, with its kept output, if `requester` may see the
    /// operation and it ran on the machine.
    pub async fn machine_run(
        &self,
        requester: &Requester,
        id: OperationId,
        machine: &MachineId,
    ) -> Result<MachineRunRecord, OperationError> {
        match self.inner.store.machine_run(id, machine).await? {
            Some((owner, run)) if requester.admin || owner == requester.user => Ok(run),
            _ => Err(OperationError::NotFound),
        }
    }

    /// Asks the operation to stop: queued machines become `cancelled`, running scripts get
    /// SIGTERM, then SIGKILL after the grace period. Idempotent; a finished operation stays
    /// as it ended. Audited as `operation.stop`.
    pub async fn stop(
        &self,
        requester: &Requester,
        id: OperationId,
    ) -> Result<OperationSummary, OperationError> {
        let summary = self.operation_summary(requester, id).await?;
        let live = crate::workspaces::lock(&self.inner.live).get(&id).cloned();
        if let Some(live) = live {
            let first = !*live.stop.borrow();
            live.stop.send_replace(true);
            if first {
                tracing::info!(operation = %id, by = %requester.user, "operation stop asked");
                AuditEvent::new(
                    Actor::from(&requester.user),
                    AuditAction::OperationStop,
                    id.to_string(),
                )
                .at(self.now())
                .details(json!({"script": summary.operation.script}))
                .record_to(&self.inner.audit)
                .await;
            }
        }
        Ok(self
            .inner
            .store
            .operation_summary(id)
            .await?
            .unwrap_or(summary))
    }

    /// Starts the script of a finished operation again on its machines that did not succeed,
    /// with the same concurrency and timeout and the script as the inventory in force has it.
    pub async fn rerun(
        &self,
        requester: &Requester,
        id: OperationId,
    ) -> Result<OperationRecord, OperationError> {
        let record = self.operation_summary(requester, id).await?.operation;
        if !record.status.is_finished() {
            return Err(OperationError::Conflict(format!(
                "operation {id} is still {}: stop it or wait for its end",
                record.status
            )));
        }
        let targets: Vec<MachineId> = record
            .machines
            .iter()
            .filter(|m| m.status != MachineRunStatus::Succeeded)
            .map(|m| m.machine.clone())
            .collect();
        if targets.is_empty() {
            return Err(OperationError::Conflict(format!(
                "every machine of operation {id} succeeded: there is nothing to run again"
            )));
        }
        let request = StartOperation {
            script: record.script.clone(),
            machines: Some(targets),
            selector: None,
            concurrency: Some(record.concurrency),
            timeout: berth_types::units::HumanDuration::from_secs(record.timeout_seconds)
                .map(berth_types::api::Timeout),
        };
        // The same checks as a start: the machines may have changed since.
        let checked = self.check(requester, &request).await?;
        self.launch(requester, checked, Some(id)).await
    }

    /// When Berth stops: every running operation is stopped as `stop` does it (queued
    /// machines never start, running scripts get SIGTERM, then SIGKILL), its unfinished
    /// machines recorded `interrupted`; waits at most `limit` for them to end. New starts
    /// are not refused (the HTTP server stops taking requests first).
    pub async fn shutdown(&self, limit: Duration) {
        self.inner
            .shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let lives: Vec<Arc<Live>> = crate::workspaces::lock(&self.inner.live)
            .values()
            .cloned()
            .collect();
        if lives.is_empty() {
            return;
        }
        tracing::info!(operations = lives.len(), "stopping the running operations");
        for live in &lives {
            live.stop.send_replace(true);
        }
        let deadline = tokio::time::Instant::now() + limit;
        while !crate::workspaces::lock(&self.inner.live).is_empty() {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    "operations still running at shutdown; the next start marks them interrupted"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A machine a stop ended while Berth shuts down was interrupted, not cancelled.
    fn as_stopped(&self, mut update: MachineRunUpdate) -> MachineRunUpdate {
        if update.status == MachineRunStatus::Cancelled
            && self
                .inner
                .shutting_down
                .load(std::sync::atomic::Ordering::SeqCst)
        {
            update.status = MachineRunStatus::Interrupted;
            berth_store::INTERRUPTED_MESSAGE.clone_into(&mut update.message);
        }
        update
    }

    /// Live events of a running operation from now on (`None` once it has ended: its events
    /// are all in the store).
    #[must_use]
    pub fn subscribe(&self, id: OperationId) -> Option<broadcast::Receiver<OperationEventRecord>> {
        crate::workspaces::lock(&self.inner.live)
            .get(&id)
            .map(|live| live.events.subscribe())
    }

    /// Stored events of an operation after `after`: at most `limit`, and no more than the
    /// first whose data reaches `max_bytes` (always one when there is one).
    pub async fn stored_events(
        &self,
        id: OperationId,
        after: i64,
        limit: u32,
        max_bytes: u64,
    ) -> Result<Vec<OperationEventRecord>, OperationError> {
        Ok(self
            .inner
            .store
            .operation_events(id, after, limit, max_bytes)
            .await?)
    }

    /// The seq of the last event of operation `id`, kept or not (as
    /// [`berth_store::OperationStore::skip_operation_events`] says): a seq a watcher names
    /// above it is not one of this operation's.
    pub async fn last_event(&self, id: OperationId) -> Result<i64, OperationError> {
        Ok(self.inner.store.last_operation_event(id).await?)
    }

    async fn run(
        self,
        operation: OperationRecord,
        inventory: Arc<Inventory>,
        script: InventoryScript,
        live: Arc<Live>,
    ) {
        let id = operation.id;
        let (notes, received) = mpsc::channel(NOTES);
        let writer = {
            let operations = self.clone();
            let live = Arc::clone(&live);
            let machines = operation.machines.clone();
            tokio::spawn(async move { operations.write(id, machines, received, live).await })
        };
        let env: Vec<(String, String)> = inventory
            .secrets
            .env_for(&operation.script)
            .into_iter()
            .map(|(k, v)| (k, v.expose().to_owned()))
            .collect();
        let script = Bytes::from(script.content);
        let own = Arc::new(Semaphore::new(
            usize::try_from(operation.concurrency).unwrap_or(1).max(1),
        ));
        let global = self.inner.fleet.permits();
        let timeout = Duration::from_secs(operation.timeout_seconds);
        let mut tasks = tokio::task::JoinSet::new();
        for machine in &operation.machines {
            let machine = machine.machine.clone();
            let notes = notes.clone();
            let mut stop = live.stop.subscribe();
            let (own, global) = (Arc::clone(&own), Arc::clone(&global));
            let operations = self.clone();
            let inventory = Arc::clone(&inventory);
            let (script, env) = (script.clone(), env.clone());
            tasks.spawn(async move {
                // Its turn: the operation's concurrency, then the fleet's.
                let permits = async {
                    let own = own.acquire_owned().await.ok()?;
                    let global = global.acquire_owned().await.ok()?;
                    Some((own, global))
                };
                let stopped = async {
                    let _ = stop.wait_for(|s| *s).await;
                };
                let permits = tokio::select! {
                    permits = permits => permits,
                    () = stopped => None,
                };
                let now = operations.now();
                let Some(_permits) = permits else {
                    let _ = notes
                        .send(Note::Done {
                            machine,
                            update: operations.as_stopped(ended(
                                MachineRunStatus::Cancelled,
                                "stopped before it started",
                                None,
                                now,
                            )),
                            stdout: Vec::new(),
                            stderr: Vec::new(),
                            truncated: false,
                        })
                        .await;
                    return;
                };
                let target = match operations.inner.fleet.target(&inventory, &machine) {
                    Ok(target) => target,
                    Err(e) => {
                        let _ = notes
                            .send(Note::Done {
                                machine,
                                update: ended(
                                    MachineRunStatus::Unreachable,
                                    &e.to_string(),
                                    None,
                                    now,
                                ),
                                stdout: Vec::new(),
                                stderr: Vec::new(),
                                truncated: false,
                            })
                            .await;
                        return;
                    }
                };
                let spec = RunSpec {
                    target,
                    connect: operations.inner.fleet.settings().connect.clone(),
                    script,
                    env,
                    timeout,
                    grace: operations.inner.settings.grace,
                    max_output: operations.inner.settings.max_output,
                };
                operations.run_machine(machine, spec, stop, notes).await;
            });
        }
        drop(notes);
        while tasks.join_next().await.is_some() {}
        if let Err(e) = writer.await {
            tracing::error!(operation = %id, error = %e, "the operation's writer failed");
        }
        crate::workspaces::lock(&self.inner.live).remove(&id);
    }

    async fn run_machine(
        &self,
        machine: MachineId,
        spec: RunSpec,
        stop: watch::Receiver<bool>,
        notes: mpsc::Sender<Note>,
    ) {
        let (sender, mut events) = mpsc::channel(64);
        let run = tokio::spawn(run_on_machine(spec, stop, sender));
        let mut started_at = None;
        while let Some(event) = events.recv().await {
            let note = match event {
                RunEvent::Connecting => Note::State {
                    machine: machine.clone(),
                    update: state(MachineRunStatus::Connecting, None),
                },
                RunEvent::Started => {
                    let at = self.now();
                    started_at = Some(at);
                    Note::State {
                        machine: machine.clone(),
                        update: state(MachineRunStatus::Running, Some(at)),
                    }
                }
                RunEvent::Output { stream, data, kept } => Note::Output {
                    machine: machine.clone(),
                    stream,
                    data,
                    kept,
                },
            };
            if notes.send(note).await.is_err() {
                break;
            }
        }
        let now = self.now();
        let (update, stdout, stderr, truncated) = match run.await {
            Ok(end) => (
                MachineRunUpdate {
                    status: end.status,
                    exit_code: end.exit_code,
                    signal: end.signal,
                    message: end.message,
                    started_at,
                    finished_at: Some(now),
                    duration_ms: end
                        .duration
                        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                },
                end.stdout,
                end.stderr,
                end.truncated,
            ),
            Err(e) => (
                ended(
                    MachineRunStatus::Failed,
                    &format!("the run failed inside Berth: {e}"),
                    started_at,
                    now,
                ),
                Vec::new(),
                Vec::new(),
                false,
            ),
        };
        let _ = notes
            .send(Note::Done {
                machine,
                update: self.as_stopped(update),
                stdout,
                stderr,
                truncated,
            })
            .await;
    }

    /// The operation's one writer: store writes and numbered events, in the order the notes
    /// arrive; the operation's own state follows from its machines'.
    async fn write(
        &self,
        id: OperationId,
        machines: Vec<MachineRunRecord>,
        mut notes: mpsc::Receiver<Note>,
        live: Arc<Live>,
    ) {
        let store = &self.inner.store;
        let mut seq = store.last_operation_event(id).await.unwrap_or(0);
        let mut states: Vec<(MachineId, MachineRunStatus)> = machines
            .iter()
            .map(|m| (m.machine.clone(), m.status))
            .collect();
        let mut status = OperationStatus::of(states.iter().map(|(_, s)| *s));
        // Events to store (`true`) or only to publish, in order, flushed before any state
        // write so the log and the rows agree.
        let mut pending: Vec<(OperationEventRecord, bool)> = Vec::new();
        while let Some(first) = notes.recv().await {
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match notes.try_recv() {
                    Ok(note) => batch.push(note),
                    Err(_) => break,
                }
            }
            for note in batch {
                let now = self.now();
                match note {
                    Note::Output {
                        machine,
                        stream,
                        data,
                        kept,
                    } => {
                        seq += 1;
                        pending.push((
                            OperationEventRecord {
                                seq,
                                at: now,
                                kind: OperationEventKind::Output,
                                machine: Some(machine),
                                stream: Some(stream),
                                data: data.to_vec(),
                            },
                            kept,
                        ));
                    }
                    Note::State { machine, update } => {
                        self.flush(id, &mut pending, &live).await;
                        seq = self
                            .record_state(id, &machine, &update, seq, &live, &mut states)
                            .await;
                    }
                    Note::Done {
                        machine,
                        update,
                        stdout,
                        stderr,
                        truncated,
                    } => {
                        self.flush(id, &mut pending, &live).await;
                        if let Err(e) = store
                            .store_machine_output(id, &machine, &stdout, &stderr, truncated)
                            .await
                        {
                            tracing::error!(operation = %id, %machine, error = %e, "cannot store a machine's output");
                        }
                        seq = self
                            .record_state(id, &machine, &update, seq, &live, &mut states)
                            .await;
                    }
                }
                let now_status = OperationStatus::of(states.iter().map(|(_, s)| *s));
                if now_status != status {
                    status = now_status;
                    self.flush(id, &mut pending, &live).await;
                    let finished = status.is_finished().then(|| self.now());
                    if let Err(e) = store.set_operation_status(id, status, finished).await {
                        tracing::error!(operation = %id, error = %e, "cannot record an operation's state");
                    }
                    seq += 1;
                    let event = operation_event(seq, now, id, status);
                    pending.push((event, true));
                    self.flush(id, &mut pending, &live).await;
                    if status.is_finished() {
                        self.ended(id, status, &states).await;
                    }
                }
            }
            self.flush(id, &mut pending, &live).await;
        }
        self.flush(id, &mut pending, &live).await;
        if !status.is_finished() {
            // Every machine task is done, yet a state could not be recorded: end what is
            // unfinished, so the operation never stays `running`.
            let now = self.now();
            let unfinished: Vec<MachineId> = states
                .iter()
                .filter(|(_, s)| !s.is_finished())
                .map(|(m, _)| m.clone())
                .collect();
            for machine in unfinished {
                let update = ended(
                    MachineRunStatus::Failed,
                    "Berth could not record this machine's end",
                    None,
                    now,
                );
                seq = self
                    .record_state(id, &machine, &update, seq, &live, &mut states)
                    .await;
                if let Some((_, s)) = states.iter_mut().find(|(m, _)| *m == machine) {
                    *s = MachineRunStatus::Failed;
                }
            }
            status = OperationStatus::of(states.iter().map(|(_, s)| *s));
            if let Err(e) = store.set_operation_status(id, status, Some(now)).await {
                tracing::error!(operation = %id, error = %e, "cannot record an operation's end; the next start marks it interrupted");
            }
            seq += 1;
            let mut end = vec![(operation_event(seq, now, id, status), true)];
            self.flush(id, &mut end, &live).await;
            self.ended(id, status, &states).await;
        }
    }

    /// Writes a machine's new state, then its event; answers the last seq used.
    async fn record_state(
        &self,
        id: OperationId,
        machine: &MachineId,
        update: &MachineRunUpdate,
        mut seq: i64,
        live: &Live,
        states: &mut [(MachineId, MachineRunStatus)],
    ) -> i64 {
        if let Err(e) = self
            .inner
            .store
            .update_machine_run(id, machine, update)
            .await
        {
            tracing::error!(operation = %id, %machine, status = update.status.as_str(), error = %e, "cannot record a machine's state");
            return seq;
        }
        if let Some((_, status)) = states.iter_mut().find(|(m, _)| m == machine) {
            *status = update.status;
        }
        seq += 1;
        let event = OperationEventRecord {
            seq,
            at: self.now(),
            kind: OperationEventKind::Machine,
            machine: Some(machine.clone()),
            stream: None,
            data: serde_json::to_vec(&MachineStatusEvent {
                machine: machine.clone(),
                status: update.status,
                exit_code: update.exit_code,
                signal: update.signal.clone(),
                message: update.message.clone(),
            })
            .unwrap_or_default(),
        };
        let mut pending = vec![(event, true)];
        self.flush(id, &mut pending, live).await;
        seq
    }

    /// Stores the events to keep, then publishes all of them, in order.
    async fn flush(
        &self,
        id: OperationId,
        pending: &mut Vec<(OperationEventRecord, bool)>,
        live: &Live,
    ) {
        if pending.is_empty() {
            return;
        }
        let kept: Vec<OperationEventRecord> = pending
            .iter()
            .filter(|(_, keep)| *keep)
            .map(|(e, _)| e.clone())
            .collect();
        if !kept.is_empty()
            && let Err(e) = self.inner.store.append_operation_events(id, &kept).await
        {
            tracing::error!(operation = %id, error = %e, "cannot store an operation's events");
        }
        // Events not kept are numbered too: the log's last seq passes them, so events
        // written after a restart are numbered above every one a watcher may have seen.
        let last = pending.last().map(|(e, _)| e.seq);
        if last > kept.last().map(|e| e.seq)
            && let Some(last) = last
            && let Err(e) = self.inner.store.skip_operation_events(id, last).await
        {
            tracing::error!(operation = %id, error = %e, "cannot store an operation's events");
        }
        for (event, _) in pending.drain(..) {
            let _ = live.events.send(event);
        }
    }

    async fn ended(
        &self,
        id: OperationId,
        status: OperationStatus,
        states: &[(MachineId, MachineRunStatus)],
    ) {
        let count = |wanted: MachineRunStatus| states.iter().filter(|(_, s)| *s == wanted).count();
        tracing::info!(operation = %id, status = status.as_str(), succeeded = count(MachineRunStatus::Succeeded), machines = states.len(), "operation ended");
        let outcome = if status == OperationStatus::Succeeded {
            AuditOutcome::Success
        } else {
            AuditOutcome::Failure
        };
        AuditEvent::system(AuditAction::OperationEnd, id.to_string())
            .at(self.now())
            .outcome(outcome)
            .details(json!({
                "status": status.as_str(),
                "machines": states
                    .iter()
                    .map(|(m, s)| (m.to_string(), s.as_str()))
                    .collect::<std::collections::BTreeMap<_, _>>(),
            }))
            .record_to(&self.inner.audit)
            .await;
    }
}

/// A start request, checked.
struct Checked {
    /// The inventory it was checked against: the run uses the same (its secrets and
    /// machines), even when a sync replaces it meanwhile.
    inventory: Arc<Inventory>,
    script: InventoryScript,
    commit: String,
    targets: Vec<MachineId>,
    concurrency: u32,
    timeout_seconds: u64,
}

/// A state with nothing else known yet.
fn state(status: MachineRunStatus, started_at: Option<OffsetDateTime>) -> MachineRunUpdate {
    MachineRunUpdate {
        status,
        exit_code: None,
        signal: None,
        message: String::new(),
        started_at,
        finished_at: None,
        duration_ms: None,
    }
}

/// An end without a run (or with a run Berth lost track of).
fn ended(
    status: MachineRunStatus,
    message: &str,
    started_at: Option<OffsetDateTime>,
    at: OffsetDateTime,
) -> MachineRunUpdate {
    MachineRunUpdate {
        status,
        exit_code: None,
        signal: None,
        message: message.to_owned(),
        started_at,
        finished_at: Some(at),
        duration_ms: None,
    }
}

fn machine_event(seq: i64, at: OffsetDateTime, machine: &MachineRunRecord) -> OperationEventRecord {
    OperationEventRecord {
        seq,
        at,
        kind: OperationEventKind::Machine,
        machine: Some(machine.machine.clone()),
        stream: None,
        data: serde_json::to_vec(&MachineStatusEvent {
            machine: machine.machine.clone(),
            status: machine.status,
            exit_code: machine.exit_code,
            signal: machine.signal.clone(),
            message: machine.message.clone(),
        })
        .unwrap_or_default(),
    }
}

fn operation_event(
    seq: i64,
    at: OffsetDateTime,
    id: OperationId,
    status: OperationStatus,
) -> OperationEventRecord {
    OperationEventRecord {
        seq,
        at,
        kind: OperationEventKind::Operation,
        machine: None,
        stream: None,
        data: serde_json::to_vec(&OperationStatusEvent { id, status }).unwrap_or_default(),
    }
}

/// Machines that printed the same thing and ended the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunGroup {
    /// The machines, in the operation's order.
    pub machines: Vec<MachineId>,
    /// The index of the first of them in the operation's machines.
    pub first: usize,
}

/// The machines of `summary` grouped by identical output and end, as `dshbak -c` groups
/// them, in the order of each group's first machine.
#[must_use]
pub fn groups(summary: &OperationSummary) -> Vec<RunGroup> {
    let mut groups: Vec<RunGroup> = Vec::new();
    let mut group_of_first: HashMap<usize, usize> = HashMap::new();
    for (run, &first) in summary.operation.machines.iter().zip(&summary.same_as) {
        let group = *group_of_first.entry(first).or_insert_with(|| {
            groups.push(RunGroup {
                machines: Vec::new(),
                first,
            });
            groups.len() - 1
        });
        groups[group].machines.push(run.machine.clone());
    }
    groups
}
