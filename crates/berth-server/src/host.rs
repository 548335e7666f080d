//! The server machine's CPU, memory, load and disk, read from /proc and statvfs.
//!
//! CPU use is a difference of two /proc/stat samples; the monitor keeps the last sample, so
//! each call reports the use since the previous one (or over a short wait for the first).

use std::path::Path;
use std::time::{Duration, Instant};

use berth_types::api::{DiskStats, HostStats, LoadAverage, MemoryStats};

/// Samples closer together than this are too noisy: wait for a fresh one.
const MIN_INTERVAL: Duration = Duration::from_millis(200);

/// Cumulative CPU time of all cores, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CpuSample {
    busy: u64,
    total: u64,
    at: Instant,
}

/// Parses the `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal ...
fn parse_stat(stat: &str, at: Instant) -> Option<CpuSample> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    if fields.len() < 4 {
        return None;
    }
    let total: u64 = fields.iter().sum();
    let idle = fields[3] + fields.get(4).copied().unwrap_or(0);
    Some(CpuSample {
        busy: total - idle,
        total,
        at,
    })
}

fn cpu_count(stat: &str) -> u32 {
    let n = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Busy share between two samples, 0 to 100.
fn cpu_percent(before: CpuSample, after: CpuSample) -> f64 {
    let total = after.total.saturating_sub(before.total);
    if total == 0 {
        return 0.0;
    }
    #[allow(clippy::cast_precision_loss)] // tick counts far below 2^52
    let share = after.busy.saturating_sub(before.busy) as f64 / total as f64;
    (share * 1000.0).round() / 10.0
}

/// MemTotal and MemAvailable of /proc/meminfo, in bytes.
fn parse_meminfo(meminfo: &str) -> Option<MemoryStats> {
    let field = |name: &str| -> Option<u64> {
        let line = meminfo.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
        Some(kib * 1024)
    };
    Some(MemoryStats {
        total_bytes: field("MemTotal:")?,
        available_bytes: field("MemAvailable:")?,
    })
}

fn parse_loadavg(loadavg: &str) -> Option<LoadAverage> {
    let mut fields = loadavg.split_whitespace().map(str::parse::<f64>);
    Some(LoadAverage {
        one: fields.next()?.ok()?,
        five: fields.next()?.ok()?,
        fifteen: fields.next()?.ok()?,
    })
}

fn parse_uptime(uptime: &str) -> Option<u64> {
    let seconds: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // whole seconds, positive
    Some(seconds as u64)
}

/// Why the host could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {what}: {reason}")]
pub(crate) struct HostError {
    what: String,
    reason: String,
}

fn read(path: &str) -> Result<String, HostError> {
    std::fs::read_to_string(path).map_err(|e| HostError {
        what: path.to_owned(),
        reason: e.to_string(),
    })
}

fn unreadable(what: &str) -> HostError {
    HostError {
        what: what.to_owned(),
        reason: "unexpected format".to_owned(),
    }
}

/// Reads the host's figures. `last` is the previous CPU sample, replaced by the new one.
pub(crate) async fn stats(
    home: &Path,
    last: Option<CpuSample>,
) -> Result<(HostStats, CpuSample), HostError> {
    let stat = read("/proc/stat")?;
    let mut now = parse_stat(&stat, Instant::now()).ok_or_else(|| unreadable("/proc/stat"))?;
    let before = match last {
        Some(last) if now.at.duration_since(last.at) >= MIN_INTERVAL => last,
        _ => {
            tokio::time::sleep(MIN_INTERVAL).await;
            let before = now;
            now = parse_stat(&read("/proc/stat")?, Instant::now())
                .ok_or_else(|| unreadable("/proc/stat"))?;
            before
        }
    };
    let memory =
        parse_meminfo(&read("/proc/meminfo")?).ok_or_else(|| unreadable("/proc/meminfo"))?;
    let load = parse_loadavg(&read("/proc/loadavg")?).ok_or_else(|| unreadable("/proc/loadavg"))?;
    let uptime_seconds =
        parse_uptime(&read("/proc/uptime")?).ok_or_else(|| unreadable("/proc/uptime"))?;
    let vfs = rustix::fs::statvfs(home).map_err(|e| HostError {
        what: home.display().to_string(),
        reason: e.to_string(),
    })?;
    let stats = HostStats {
        cpu_percent: cpu_percent(before, now),
        cpus: cpu_count(&stat),
        memory,
        disk: DiskStats {
            path: home.display().to_string(),
            total_bytes: vfs.f_blocks.saturating_mul(vfs.f_frsize),
            available_bytes: vfs.f_bavail.saturating_mul(vfs.f_frsize),
        },
        load,
        uptime_seconds,
    };
    Ok((stats, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n\
                        cpu1 50 0 25 400 25 0 0 0 0 0\nintr 12345\nctxt 99\n";

    #[test]
    fn cpu_use_is_the_busy_share_of_the_ticks_between_samples() {
        let at = Instant::now();
        let before = parse_stat(STAT, at).unwrap();
        assert_eq!((before.busy, before.total), (150, 1000));
        let after = parse_stat("cpu  200 0 100 850 50 0 0 0 0 0\n", at).unwrap();
        assert_eq!(cpu_percent(before, after), 75.0);
        assert_eq!(cpu_percent(after, after), 0.0);
        assert_eq!(cpu_count(STAT), 2);
        assert!(parse_stat("cpu  x y z\n", at).is_none());
        assert!(parse_stat("", at).is_none());
    }

    #[test]
    fn meminfo_loadavg_and_uptime() {
        let meminfo =
            "MemTotal:        2048000 kB\nMemFree:   1000 kB\nMemAvailable:    1024000 kB\n";
        assert_eq!(
            parse_meminfo(meminfo),
            Some(MemoryStats {
                total_bytes: 2_048_000 * 1024,
                available_bytes: 1_024_000 * 1024
            })
        );
        assert_eq!(parse_meminfo("MemTotal: 5 kB\n"), None);
        let load = parse_loadavg("0.50 1.25 2.00 1/123 4567\n").unwrap();
        assert_eq!((load.one, load.five, load.fifteen), (0.5, 1.25, 2.0));
        assert!(parse_loadavg("0.5").is_none());
        assert_eq!(parse_uptime("12345.67 2345.00\n"), Some(12345));
    }

    #[tokio::test]
    async fn reads_this_machine() {
        let (stats, sample) = stats(Path::new("/"), None).await.unwrap();
        assert!(stats.cpus >= 1);
        assert!((0.0..=100.0).contains(&stats.cpu_percent));
        assert!(stats.memory.total_bytes >= stats.memory.available_bytes);
        assert!(stats.disk.total_bytes >= stats.disk.available_bytes && stats.disk.total_bytes > 0);
        assert!(sample.total > 0);
    }
}
