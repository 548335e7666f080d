//! `/metrics`: Prometheus text exposition, written by hand.
//!
//! HTTP requests are counted by route pattern (`/api/v1/workspaces/{id}`, never the concrete
//! path, so the number of series stays bounded), method and status, with a latency histogram
//! per route and method. Workspaces by state and pool sizes are read when scraped, and so
//! are, with a fleet, its machines by health and enrollment and the last sync.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use berth_core::{Fleet, WorkspaceFilter, WorkspaceState};
use berth_types::fleet::EnrollmentStatus;

use crate::error::ApiError;
use crate::state::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Default)]
struct Histogram {
    /// Observations per bucket (not cumulative; the exposition sums them).
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Http {
    requests: BTreeMap<(&'static str, &'static str, u16), u64>,
    latency: BTreeMap<(&'static str, &'static str), Histogram>,
}

/// The server's own counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    http: Mutex<Http>,
    login_failures: AtomicU64,
    rate_limited: AtomicU64,
}

impl Metrics {
    /// Records one answered request of `route` (a pattern) and `method`.
    pub(crate) fn observe(
        &self,
        route: &'static str,
        method: &'static str,
        status: u16,
        took: Duration,
    ) {
        if status == 429 {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        let seconds = took.as_secs_f64();
        let mut http = self
            .http
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *http.requests.entry((route, method, status)).or_default() += 1;
        let histogram = http.latency.entry((route, method)).or_default();
        if let Some(i) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            histogram.counts[i] += 1;
        }
        histogram.sum += seconds;
        histogram.count += 1;
    }

    pub(crate) fn login_failed(&self) {
        self.login_failures.fetch_add(1, Ordering::Relaxed);
    }

    fn render_http(&self, out: &mut String) {
        let http = self
            .http
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        out.push_str("# HELP berth_http_requests_total HTTP requests answered, by route pattern, method and status.\n");
        out.push_str("# TYPE berth_http_requests_total counter\n");
        for ((route, method, status), count) in &http.requests {
            let _ = writeln!(
                out,
                "berth_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {count}",
                escape(route)
            );
        }
        out.push_str("# HELP berth_http_request_duration_seconds Time to answer HTTP requests.\n");
        out.push_str("# TYPE berth_http_request_duration_seconds histogram\n");
        for ((route, method), histogram) in &http.latency {
            let labels = format!("route=\"{}\",method=\"{method}\"", escape(route));
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(histogram.counts) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "berth_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "berth_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "berth_http_request_duration_seconds_sum{{{labels}}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "berth_http_request_duration_seconds_count{{{labels}}} {}",
                histogram.count
            );
        }
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let workspaces = state
        .workspaces
        .list(&WorkspaceFilter::default())
        .await
        .map_err(|e| ApiError::workspace(e, true))?;
    let mut out = String::with_capacity(8192);
    state.shared.metrics.render_http(&mut out);

    out.push_str("# HELP berth_workspaces Workspaces known to the database, by state.\n");
    out.push_str("# TYPE berth_workspaces gauge\n");
    for s in WorkspaceState::ALL {
        let n = workspaces.iter().filter(|w| w.state == s).count();
        let _ = writeln!(out, "berth_workspaces{{state=\"{s}\"}} {n}");
    }
    out.push_str(
        "# HELP berth_pool_containers Pre-started containers waiting in each template's pool.\n",
    );
    out.push_str("# TYPE berth_pool_containers gauge\n");
    for (template, size) in state.workspaces.pool_sizes() {
        let _ = writeln!(
            out,
            "berth_pool_containers{{template=\"{}\"}} {size}",
            escape(&template)
        );
    }
    let m = &state.shared.metrics;
    out.push_str("# HELP berth_login_failures_total Failed or refused (locked account) logins.\n");
    out.push_str("# TYPE berth_login_failures_total counter\n");
    let _ = writeln!(
        out,
        "berth_login_failures_total {}",
        m.login_failures.load(Ordering::Relaxed)
    );
    out.push_str("# HELP berth_rate_limited_total Requests refused with 429.\n");
    out.push_str("# TYPE berth_rate_limited_total counter\n");
    let _ = writeln!(
        out,
        "berth_rate_limited_total {}",
        m.rate_limited.load(Ordering::Relaxed)
    );
    out.push_str(
        "# HELP berth_pending_pings Client pings waiting to be written to the database.\n",
    );
    out.push_str("# TYPE berth_pending_pings gauge\n");
    let _ = writeln!(
        out,
        "berth_pending_pings {}",
        state.shared.pings.pending().len()
    );
    if let Some(fleet) = &state.fleet {
        render_fleet(&mut out, fleet).await?;
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    ))
}

/// The fleet's gauges: machines by health (the health checks' view) and by enrollment, and
/// the last finished sync.
async fn render_fleet(out: &mut String, fleet: &Fleet) -> Result<(), ApiError> {
    out.push_str("# HELP berth_fleet_machines Machines of the fleet, by health.\n");
    out.push_str("# TYPE berth_fleet_machines gauge\n");
    for (health, n) in fleet.health_counts() {
        let _ = writeln!(out, "berth_fleet_machines{{health=\"{health}\"}} {n}");
    }
    let machines = fleet.machines().await.map_err(ApiError::internal)?;
    out.push_str(
        "# HELP berth_fleet_machines_enrollment Machines of the fleet, by enrollment status.\n",
    );
    out.push_str("# TYPE berth_fleet_machines_enrollment gauge\n");
    for status in EnrollmentStatus::ALL {
        let n = machines.iter().filter(|m| m.enrollment == status).count();
        let _ = writeln!(
            out,
            "berth_fleet_machines_enrollment{{status=\"{status}\"}} {n}"
        );
    }
    let status = fleet.status().await.map_err(ApiError::internal)?;
    out.push_str("# HELP berth_fleet_syncing 1 while a sync of the inventory runs.\n");
    out.push_str("# TYPE berth_fleet_syncing gauge\n");
    let _ = writeln!(out, "berth_fleet_syncing {}", u8::from(status.syncing));
    let last = status
        .history
        .iter()
        .find_map(|s| s.finished_at.map(|at| (s.result, at)));
    if let Some((result, finished)) = last {
        out.push_str(
            "# HELP berth_fleet_last_sync_success 1 if the last finished sync put an inventory in force (succeeded or unchanged), 0 if it failed or was interrupted.\n",
        );
        out.push_str("# TYPE berth_fleet_last_sync_success gauge\n");
        let _ = writeln!(
            out,
            "berth_fleet_last_sync_success {}",
            u8::from(result.in_force())
        );
        out.push_str(
            "# HELP berth_fleet_last_sync_timestamp_seconds When the last finished sync ended (Unix time).\n",
        );
        out.push_str("# TYPE berth_fleet_last_sync_timestamp_seconds gauge\n");
        let _ = writeln!(
            out,
            "berth_fleet_last_sync_timestamp_seconds {}",
            finished.unix_timestamp()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let metrics = Metrics::default();
        metrics.observe("/a/{id}", "GET", 200, Duration::from_millis(3));
        metrics.observe("/a/{id}", "GET", 200, Duration::from_millis(30));
        metrics.observe("/a/{id}", "GET", 404, Duration::from_secs(60));
        let mut out = String::new();
        metrics.render_http(&mut out);
        assert!(
            out.contains(
                "berth_http_requests_total{route=\"/a/{id}\",method=\"GET\",status=\"200\"} 2"
            ),
            "{out}"
        );
        assert!(out.contains("le=\"0.005\"} 1\n"), "{out}");
        assert!(out.contains("le=\"0.05\"} 2\n"), "{out}");
        assert!(out.contains("le=\"10\"} 2\n"), "{out}");
        assert!(out.contains("le=\"+Inf\"} 3\n"), "{out}");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
