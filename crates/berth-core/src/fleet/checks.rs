//! Checking machines: enrollment and health over one SSH connection each, concurrency
//! limited; trusting a host key.

use std::time::{Duration, Instant, SystemTime};

use berth_fleet::enrollment::from_ssh_error;
use berth_fleet::{
    EnrollmentCheck, EnrollmentStatus, Health, HealthStatus, Probe, check_enrollment,
};
use berth_ssh::{ClientKey, HostKeyPolicy, Passphrase, Target};
use berth_store::{
    AuditOutcome, EnrollmentUpdate, HealthUpdate, MachineRecord, MachineSpec, ProbeRecord,
};
use berth_types::MachineId;
use serde_json::json;
use tokio::task::JoinSet;

use super::{Fleet, FleetError, FleetEvent, Inventory};
use crate::audit::{Actor, AuditAction, AuditEvent};

/// Jump hosts followed at most (cycles are refused when links.yaml is read; this bounds a
/// chain all the same).
const MAX_JUMPS: usize = 16;

/// The outcome of verifying one machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOutcome {
    /// The machine.
    pub id: MachineId,
    /// Its row after the check (`None` if it left the inventory meanwhile).
    pub record: Option<MachineRecord>,
}

/// The health a stored row describes (its recent probes).
pub(super) fn health_of(record: &MachineRecord) -> Health {
    Health::from_probes(record.probes.iter().map(|p| {
        Probe {
            at: SystemTime::from(p.at),
            latency: p
                .latency_ms
                .and_then(|ms| u64::try_from(ms).ok())
                .map(Duration::from_millis),
        }
    }))
}

/// The specs of `id` and of every jump host before it: what a check of `id` depended on.
fn route_of(inventory: &Inventory, id: &MachineId) -> Vec<MachineSpec> {
    let mut route = Vec::new();
    let mut next = Some(id.clone());
    while let Some(id) = next {
        let Some(spec) = inventory.machines.get(&id) else {
            break;
        };
        if route.len() > MAX_JUMPS || route.iter().any(|s: &MachineSpec| s.id == id) {
            break;
        }
        next = spec.proxy_jump.clone();
        route.push(spec.clone());
    }
    route
}

/// Whether two routes reach the same machine the same way (names and tags aside).
fn same_route(a: &[MachineSpec], b: &[MachineSpec]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| !a.ssh_settings_differ(b))
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Fleet {
    /// How Berth reaches `id`: its address, user and key, its host key policy, and the chain
    /// of jump hosts (outermost first).
    pub fn target(&self, inventory: &Inventory, id: &MachineId) -> Result<Target, FleetError> {
        let spec = inventory
            .machines
            .get(id)
            .ok_or_else(|| FleetError::NotFound(id.clone()))?;
        let mut target = self.hop(inventory, spec);
        let mut via = spec.proxy_jump.clone();
        while let Some(jump) = via {
            if target.jump.len() >= MAX_JUMPS {
                return Err(FleetError::Invalid(format!(
                    "machine {id}: more than {MAX_JUMPS} jump hosts"
                )));
            }
            let hop = inventory.machines.get(&jump).ok_or_else(|| {
                FleetError::Invalid(format!(
                    "machine {id}: jump host {jump} is not in links.yaml"
                ))
            })?;
            target.jump.insert(0, self.hop(inventory, hop));
            via = hop.proxy_jump.clone();
        }
        Ok(target)
    }

    fn hop(&self, inventory: &Inventory, spec: &MachineSpec) -> Target {
        let settings = &self.inner.settings;
        let path = berth_fleet::key_path(&settings.keys_dir, &spec.key)
            .unwrap_or_else(|_| settings.keys_dir.join("(invalid key name)"));
        let passphrase = inventory
            .secrets
            .passphrases
            .get(&spec.key)
            .map(|p| Passphrase::new(p.expose()));
        Target {
            host: spec.host.clone(),
            port: spec.port,
            user: spec.user.clone(),
            key: ClientKey { path, passphrase },
            host_key: match &spec.host_key {
                Some(pinned) => HostKeyPolicy::Pinned(pinned.clone()),
                None => HostKeyPolicy::KnownHosts {
                    path: settings.known_hosts(),
                    trust_on_first_use: settings.trust_on_first_use,
                },
            },
            jump: Vec::new(),
        }
    }

    /// Checks one machine's enrollment now (and counts it as a health check); audited as
    /// `machine.verify` by `actor`. The check runs in a task of its own: a caller that goes
    /// away (an HTTP client disconnecting) does not cut it short.
    pub async fn verify(&self, id: &MachineId, actor: &Actor) -> Result<MachineRecord, FleetError> {
        if !self.inventory().machines.contains_key(id) {
            return Err(FleetError::NotFound(id.clone()));
        }
        let (fleet, id, actor) = (self.clone(), id.clone(), actor.clone());
        super::detached(async move {
            fleet.check_one(&id, &actor, true).await;
            fleet.machine(&id).await
        })
        .await?
    }

    /// Checks every machine (at most `fleet.max_concurrency` at once); audited per machine as
    /// `machine.verify` by `actor`. Runs in a task of its own, as [`Fleet::verify`] does.
    pub async fn verify_all(&self, actor: &Actor) -> Result<Vec<VerifyOutcome>, FleetError> {
        let ids: Vec<MachineId> = self.inventory().machines.keys().cloned().collect();
        let (fleet, actor) = (self.clone(), actor.clone());
        super::detached(async move { fleet.check_many(&ids, &actor, true).await }).await
    }

    pub(super) async fn check_many(
        &self,
        ids: &[MachineId],
        actor: &Actor,
        requested: bool,
    ) -> Vec<VerifyOutcome> {
        let mut tasks = JoinSet::new();
        for id in ids {
            let (fleet, id, actor) = (self.clone(), id.clone(), actor.clone());
            tasks.spawn(async move {
                fleet.check_one(&id, &actor, requested).await;
                let record = fleet.inner.store.machine(&id).await.ok().flatten();
                VerifyOutcome { id, record }
            });
        }
        let mut outcomes = Vec::with_capacity(ids.len());
        while let Some(joined) = tasks.join_next().await {
            if let Ok(outcome) = joined {
                outcomes.push(outcome);
            }
        }
        outcomes.sort_by(|a, b| a.id.cmp(&b.id));
        outcomes
    }

    /// One connection to `id`: reads its client id, records enrollment and a health probe,
    /// logs and audits changes, publishes the row. A result obtained with settings that a
    /// sync replaced meanwhile (the machine's or a jump host's) is dropped: it says nothing
    /// about the machine as links.yaml now describes it, and the sync verifies it anew.
    async fn check_one(&self, id: &MachineId, actor: &Actor, requested: bool) {
        let inventory = self.inventory();
        let Some(spec) = inventory.machines.get(id).cloned() else {
            return;
        };
        let route = route_of(&inventory, id);
        let (check, latency) = {
            let _permit = self.inner.permits.acquire().await;
            let started = Instant::now();
            let check = match self.target(&inventory, id) {
                Ok(target) => self.enrollment_of(&target, &spec).await,
                Err(e) => EnrollmentCheck {
                    status: EnrollmentStatus::Unreachable,
                    message: e.to_string(),
                    fingerprint: None,
                    latency: None,
                },
            };
            // Only a login counts as an answer: a refused key or host key is a failed probe.
            let latency = if check.status.logged_in() {
                check.latency.or_else(|| Some(started.elapsed()))
            } else {
                None
            };
            (check, latency)
        };
        let _in_force = self.inner.in_force.read().await;
        if !same_route(&route_of(&self.inventory(), id), &route) {
            tracing::debug!(machine = %id, "a sync changed how the machine is reached during its check; the result is dropped");
            return;
        }
        if let Err(e) = self
            .record_check(&spec, &check, latency, actor, requested)
            .await
        {
            tracing::error!(machine = %id, error = %e, "cannot record a machine check");
        }
    }

    async fn enrollment_of(&self, target: &Target, spec: &MachineSpec) -> EnrollmentCheck {
        let settings = &self.inner.settings;
        match &spec.client_id {
            Some(expected) => {
                check_enrollment(
                    target,
                    &settings.connect,
                    &settings.client_id_path,
                    expected,
                )
                .await
            }
            None => {
                // No client id to compare: only reachability, auth and the host key are checked.
                let started = Instant::now();
                match berth_ssh::connect(target, &settings.connect).await {
                    Ok(session) => {
                        let latency = started.elapsed();
                        let _ = session.close().await;
                        EnrollmentCheck {
                            status: EnrollmentStatus::Missing,
                            message: "links.yaml gives this machine no client_id: run `berth \
                                      agent --enroll` on it and put the id it prints into \
                                      links.yaml"
                                .to_owned(),
                            fingerprint: None,
                            latency: Some(latency),
                        }
                    }
                    Err(e) => from_ssh_error(&e),
                }
            }
        }
    }

    async fn record_check(
        &self,
        spec: &MachineSpec,
        check: &EnrollmentCheck,
        latency: Option<Duration>,
        actor: &Actor,
        requested: bool,
    ) -> Result<(), FleetError> {
        let store = &self.inner.store;
        let id = &spec.id;
        let Some(before) = store.machine(id).await? else {
            return Ok(());
        };
        let now = self.now();
        let probe = Probe {
            at: SystemTime::from(now),
            latency,
        };
        let (transition, health) = {
            let mut all = crate::workspaces::lock(&self.inner.health);
            let health = all.entry(id.clone()).or_insert_with(|| health_of(&before));
            let transition = health.record(probe);
            (transition, health.clone())
        };
        store
            .record_enrollment(
                id,
                &EnrollmentUpdate {
                    status: check.status,
                    message: check.message.clone(),
                    fingerprint: check.fingerprint.clone(),
                    at: now,
                },
            )
            .await?;
        store
            .record_health(id, &health_update(&health, now, before.last_seen))
            .await?;
        if let Some(transition) = transition {
            tracing::info!(machine = %id, from = transition.from.as_str(), to = transition.to.as_str(), "machine health changed");
            AuditEvent::system(AuditAction::MachineHealth, id.as_str())
                .at(now)
                .details(json!({
                    "from": transition.from.as_str(),
                    "to": transition.to.as_str(),
                    "latency_ms": latency.map(millis),
                    "consecutive_failures": health.consecutive_failures(),
                }))
                .record_to(&self.inner.audit)
                .await;
        }
        if before.enrollment != check.status {
            let level_warn = !matches!(check.status, EnrollmentStatus::Enrolled);
            if level_warn {
                tracing::warn!(machine = %id, from = before.enrollment.as_str(), to = check.status.as_str(), message = %check.message, "machine enrollment changed");
            } else {
                tracing::info!(machine = %id, from = before.enrollment.as_str(), to = check.status.as_str(), "machine enrollment changed");
            }
            AuditEvent::system(AuditAction::MachineEnrollment, id.as_str())
                .at(now)
                .details(json!({
                    "from": before.enrollment.as_str(),
                    "to": check.status.as_str(),
                    "message": check.message,
                    "fingerprint": check.fingerprint,
                }))
                .record_to(&self.inner.audit)
                .await;
        }
        if requested {
            let outcome = if check.status == EnrollmentStatus::Enrolled {
                AuditOutcome::Success
            } else {
                AuditOutcome::Failure
            };
            AuditEvent::new(actor.clone(), AuditAction::MachineVerify, id.as_str())
                .at(now)
                .outcome(outcome)
                .details(json!({"status": check.status.as_str(), "message": check.message}))
                .record_to(&self.inner.audit)
                .await;
        }
        if let Some(after) = store.machine(id).await? {
            self.publish(FleetEvent::Machine(Box::new(after)));
        }
        Ok(())
    }

    /// Trusts the host key `id` presents if its fingerprint is `fingerprint` (what the admin
    /// compared with the machine's own, e.g. `ssh-keygen -lf` on it): records it in the
    /// fleet's known_hosts, audits `machine.trust` and verifies the machine again. A machine
    /// whose key is pinned in links.yaml is changed there, not here.
    pub async fn trust(
        &self,
        id: &MachineId,
        fingerprint: &str,
        actor: &Actor,
    ) -> Result<MachineRecord, FleetError> {
        let (fleet, id, fingerprint, actor) = (
            self.clone(),
            id.clone(),
            fingerprint.to_owned(),
            actor.clone(),
        );
        super::detached(async move { fleet.trust_here(&id, &fingerprint, &actor).await }).await?
    }

    async fn trust_here(
        &self,
        id: &MachineId,
        fingerprint: &str,
        actor: &Actor,
    ) -> Result<MachineRecord, FleetError> {
        let inventory = self.inventory();
        let spec = inventory
            .machines
            .get(id)
            .ok_or_else(|| FleetError::NotFound(id.clone()))?;
        if spec.host_key.is_some() {
            return Err(FleetError::Invalid(format!(
                "machine {id} has its host key pinned in links.yaml (host_key): change it there"
            )));
        }
        let fingerprint = fingerprint.trim();
        if !fingerprint.starts_with("SHA256:") || fingerprint.len() > 100 {
            return Err(FleetError::Invalid(
                "fingerprint must be a SHA256 fingerprint as ssh-keygen -l prints it \
                 (SHA256:...)"
                    .to_owned(),
            ));
        }
        let target = self.target(&inventory, id)?;
        let settings = &self.inner.settings;
        let trusted = {
            let _permit = self.inner.permits.acquire().await;
            berth_ssh::trust_fingerprint(
                &target,
                &settings.connect,
                &settings.known_hosts(),
                fingerprint,
            )
            .await
        };
        let now = self.now();
        match trusted {
            Ok(_) => {
                tracing::info!(machine = %id, fingerprint, by = %actor, "host key trusted");
                AuditEvent::new(actor.clone(), AuditAction::MachineTrust, id.as_str())
                    .at(now)
                    .details(json!({"fingerprint": fingerprint}))
                    .record_to(&self.inner.audit)
                    .await;
                self.check_one(id, actor, false).await;
                self.machine(id).await
            }
            Err(e) => {
                AuditEvent::new(actor.clone(), AuditAction::MachineTrust, id.as_str())
                    .at(now)
                    .outcome(AuditOutcome::Failure)
                    .details(json!({"fingerprint": fingerprint, "error": e.to_string()}))
                    .record_to(&self.inner.audit)
                    .await;
                Err(match e {
                    berth_ssh::SshError::Unreachable { .. }
                    | berth_ssh::SshError::Closed { .. }
                    | berth_ssh::SshError::Protocol { .. } => {
                        FleetError::Unreachable(e.to_string())
                    }
                    _ => FleetError::HostKey(e.to_string()),
                })
            }
        }
    }

    pub(super) async fn health_loop(&self) {
        let mut round: u64 = 0;
        loop {
            let interval = self.inner.settings.health_interval;
            round = round.wrapping_add(1);
            tokio::time::sleep(berth_fleet::health::jittered(interval, round)).await;
            let ids: Vec<MachineId> = self.inventory().machines.keys().cloned().collect();
            self.check_many(&ids, &Actor::System, false).await;
        }
    }

    /// Machines per health status, for metrics.
    #[must_use]
    pub fn health_counts(&self) -> Vec<(HealthStatus, usize)> {
        let all = crate::workspaces::lock(&self.inner.health);
        HealthStatus::ALL
            .into_iter()
            .map(|status| {
                (
                    status,
                    all.values().filter(|h| h.status() == status).count(),
                )
            })
            .collect()
    }
}

fn health_update(
    health: &Health,
    now: time::OffsetDateTime,
    last_seen: Option<time::OffsetDateTime>,
) -> HealthUpdate {
    HealthUpdate {
        status: health.status(),
        latency_ms: health.latency().map(millis),
        last_seen: health
            .last_seen()
            .map(time::OffsetDateTime::from)
            .or(last_seen),
        consecutive_failures: i64::try_from(health.consecutive_failures()).unwrap_or(i64::MAX),
        checked_at: now,
        probes: health
            .probes()
            .map(|p| ProbeRecord {
                at: time::OffsetDateTime::from(p.at),
                latency_ms: p.latency.map(millis),
            })
            .collect(),
    }
}
