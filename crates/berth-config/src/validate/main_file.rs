//! main.yaml: URLs, paths, log levels, the admin's hash, session lengths.

use super::{At, host_path_problem};
use crate::error::ConfigError;
use crate::model::MainConfig;

pub(crate) fn check_main(main: &MainConfig, at: &At<'_>, errors: &mut Vec<ConfigError>) {
    if let Some(url) = &main.public_url
        && let Some(problem) = url_problem(url)
    {
        errors.push(at.key("public_url").error(problem));
    }
    if let Some(tls) = &main.tls {
        for (key, path) in [("cert", &tls.cert), ("key", &tls.key)] {
            if let Some(problem) = host_path_problem(path) {
                errors.push(at.key("tls").key(key).error(problem));
            }
        }
    }
    if let Some(hash) = &main.admin.password_hash
        && let Some(problem) = hash.problem()
    {
        errors.push(at.key("admin").key("password_hash").error(problem));
    }
    if let Some(database) = &main.database {
        let known = ["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| database.starts_with(p));
        if !known || database.contains(char::is_whitespace) {
            errors.push(at.key("database").error(format!(
                "expected a sqlite: or postgres:// URL, found {:?}",
                crate::yaml::truncate(database)
            )));
        }
    }
    if let Some(problem) = level_problem(&main.logging.level) {
        errors.push(at.key("logging").key("level").error(problem));
    }
    let runtime = at.key("runtime");
    if let Some(socket) = &main.runtime.docker_socket {
        // Unix sockets only: a TCP engine socket is root on the host without TLS client
        // certificates, which Berth does not speak.
        let ok = (socket.starts_with('/') || socket.starts_with("unix:///"))
            && !socket.contains(char::is_whitespace);
        if !ok {
            errors.push(runtime.key("docker_socket").error(format!(
                "expected a socket path (/var/run/docker.sock) or a unix:// address, found {socket:?}"
            )));
        }
    }
    let instance = &main.runtime.instance;
    let instance_ok = (1..=63).contains(&instance.len())
        && instance.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && instance
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
    if !instance_ok {
        errors.push(runtime.key("instance").error(format!(
            "expected 1 to 63 characters a-z, 0-9, '_', '.', '-' starting with a letter or digit, found {:?}",
            crate::yaml::truncate(instance)
        )));
    }
    for (i, prefix) in main.runtime.allowed_bind_mounts.iter().enumerate() {
        let at = runtime.key("allowed_bind_mounts").index(i);
        if let Some(problem) = host_path_problem(prefix) {
            errors.push(at.error(problem));
        } else if prefix.parent().is_none() {
            errors.push(at.error("allowing \"/\" would let templates mount every file of the host; name narrower directories"));
        }
    }
    if let Some(age) = main.recordings.max_age
        && age.get() < std::time::Duration::from_secs(86_400)
    {
        errors.push(at.key("recordings").key("max_age").error(format!(
            "keep recordings at least a day (a shorter age could delete a session being \
             recorded), found {age}"
        )));
    }
    check_fleet(&main.fleet, &at.key("fleet"), errors);
    check_ssh(&main.ssh, &at.key("ssh"), errors);
    check_clusters(&main.clusters, &at.key("clusters"), errors);
    let invite_ttl = main.registration.invite_ttl;
    if invite_ttl.get() < std::time::Duration::from_secs(60) {
        errors.push(
            at.key("registration")
                .key("invite_ttl")
                .error(format!("expected 1m to 365d, found {invite_ttl}")),
        );
    }
    let security = &main.security;
    if let Some(hash) = &security.metrics_token_hash
        && let Some(problem) = super::token_hash_problem(hash)
    {
        errors.push(at.key("security").key("metrics_token_hash").error(problem));
    }
    if security.session_idle > security.session_ttl {
        errors.push(at.key("security").key("session_idle").error(format!(
            "session_idle ({}) is longer than session_ttl ({})",
            security.session_idle, security.session_ttl
        )));
    }
}

fn url_problem(url: &str) -> Option<String> {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return Some(format!(
            "expected an http:// or https:// URL, found {url:?}"
        ));
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!("a URL cannot contain spaces, found {url:?}"));
    }
    if rest.split('/').next().is_none_or(str::is_empty) {
        return Some(format!("the URL {url:?} has no host"));
    }
    if rest.contains(['?', '#']) {
        return Some(format!(
            "the URL {url:?} has a query or fragment; give the base address only"
        ));
    }
    None
}

fn level_problem(level: &str) -> Option<String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let bad = || {
        Some(format!(
            "expected a level (error, warn, info, debug, trace) or directives like \"info,berth_server=debug\", found {level:?}"
        ))
    };
    for directive in level.split(',') {
        let (target, lvl) = directive
            .trim()
            .rsplit_once('=')
            .unwrap_or(("", directive.trim()));
        if !LEVELS.contains(&lvl.to_ascii_lowercase().as_str())
            || !target
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        {
            return bad();
        }
    }
    None
}

fn check_fleet(fleet: &crate::model::Fleet, at: &At<'_>, errors: &mut Vec<ConfigError>) {
    use berth_types::repository::{RepositoryUrl, branch_problem};
    use std::time::Duration;
    if let Some(url) = &fleet.repository
        && let Err(problem) = RepositoryUrl::parse(url)
    {
        errors.push(at.key("repository").error(problem));
    }
    if let Some(problem) = branch_problem(&fleet.branch) {
        errors.push(at.key("branch").error(format!(
            "{problem}, found {:?}",
            crate::yaml::truncate(&fleet.branch)
        )));
    }
    for (key, interval) in [
        ("sync_interval", fleet.sync_interval),
        ("health_interval", fleet.health_interval),
    ] {
        if interval.get() < Duration::from_secs(5) {
            errors.push(at.key(key).error(format!("at least 5s, found {interval}")));
        }
    }
    if fleet.connect_timeout.get() > Duration::from_secs(600) {
        errors.push(
            at.key("connect_timeout")
                .error(format!("at most 10m, found {}", fleet.connect_timeout)),
        );
    }
    if let Some(dir) = &fleet.keys_dir
        && let Some(problem) = host_path_problem(dir)
    {
        errors.push(at.key("keys_dir").error(problem));
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-".contains(c);
    let path = &fleet.client_id_path;
    if !path.starts_with('/') || !path.chars().all(plain) || path.contains("/../") {
        errors.push(at.key("client_id_path").error(format!(
            "expected an absolute path of letters, digits and / . _ -, found {:?}",
            crate::yaml::truncate(path)
        )));
    }
}

fn check_ssh(ssh: &crate::model::Ssh, at: &At<'_>, errors: &mut Vec<ConfigError>) {
    use std::time::Duration;
    if let Some(path) = &ssh.host_key
        && let Some(problem) = host_path_problem(path)
    {
        errors.push(at.key("host_key").error(problem));
    }
    if let Some(address) = &ssh.public_address
        && let Some(problem) = address_problem(address)
    {
        errors.push(at.key("public_address").error(problem));
    }
    for (key, value, min, max, range) in [
        ("login_timeout", ssh.login_timeout, 1, 600, "1s to 10m"),
        ("keepalive", ssh.keepalive, 1, 3600, "1s to 1h"),
    ] {
        let secs = value.get();
        if secs < Duration::from_secs(min) || secs > Duration::from_secs(max) {
            errors.push(
                at.key(key)
                    .error(format!("expected {range}, found {value}")),
            );
        }
    }
    if ssh.max_connections_per_address > ssh.max_connections {
        errors.push(at.key("max_connections_per_address").error(format!(
            "max_connections_per_address ({}) is more than max_connections ({})",
            ssh.max_connections_per_address, ssh.max_connections
        )));
    }
}

fn check_clusters(clusters: &crate::model::Clusters, at: &At<'_>, errors: &mut Vec<ConfigError>) {
    use std::time::Duration;
    if let Err(e) = berth_types::ImageRef::parse(&clusters.image) {
        errors.push(at.key("image").error(format!(
            "{e}; expected a k3s image reference such as \"rancher/k3s:v1.34.1-k3s1\", found {:?}",
            crate::yaml::truncate(&clusters.image)
        )));
    }
    let minute = Duration::from_secs(60);
    for (key, ttl) in [
        ("default_ttl", clusters.default_ttl),
        ("max_ttl", clusters.max_ttl),
    ] {
        if ttl.get() < minute {
            errors.push(at.key(key).error(format!("at least 1m, found {ttl}")));
        }
    }
    if clusters.default_ttl > clusters.max_ttl {
        errors.push(at.key("default_ttl").error(format!(
            "default_ttl ({}) is longer than max_ttl ({})",
            clusters.default_ttl, clusters.max_ttl
        )));
    }
    let ready = clusters.ready_timeout;
    if ready.get() < Duration::from_secs(10) || ready.get() > Duration::from_secs(3600) {
        errors.push(
            at.key("ready_timeout")
                .error(format!("expected 10s to 1h, found {ready}")),
        );
    }
    if clusters.env.len() > 64 {
        errors.push(at.key("env").error(format!(
            "at most 64 variables, found {}",
            clusters.env.len()
        )));
    }
    for (i, entry) in clusters.env.iter().enumerate() {
        let name = entry.split_once('=').map(|(name, _)| name);
        let good_name = name.is_some_and(|n| {
            n.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if !good_name || entry.chars().any(char::is_control) || entry.len() > 4096 {
            errors.push(at.key("env").index(i).error(format!(
                "expected NAME=value (NAME of letters, digits and _, no control characters, at \
                 most 4096 bytes), found {:?}",
                crate::yaml::truncate(entry)
            )));
        }
    }
}

/// `host` or `host:port`, as typed after `ssh -p PORT user@`.
fn address_problem(address: &str) -> Option<String> {
    let bad = || {
        Some(format!(
            "expected a host name or address, optionally with :PORT (lab.example.com:2222), found {:?}",
            crate::yaml::truncate(address)
        ))
    };
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.ends_with(']') => (host, Some(port)),
        _ => (address, None),
    };
    if let Some(port) = port
        && port.parse::<u16>().ok().is_none_or(|p| p == 0)
    {
        return bad();
    }
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ok = (1..=253).contains(&host.len())
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:_".contains(c))
        && !host.starts_with(['-', '.']);
    if ok { None } else { bad() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(url_problem("https://berth.example.com/base"), None);
        assert_eq!(url_problem("http://10.0.0.1:8080"), None);
        for bad in [
            "ftp://x",
            "https://",
            "https:///x",
            "https://a b",
            "https://x/?q=1",
            "berth.example.com",
        ] {
            assert!(url_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn public_addresses() {
        for ok in [
            "lab",
            "lab.example.com:2222",
            "10.0.0.1",
            "[::1]:2222",
            "fe80::1",
        ] {
            assert_eq!(address_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "lab:",
            "lab:0",
            "lab:70000",
            "a b",
            "alice@lab",
            "-lab",
            "lab/x",
        ] {
            assert!(address_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn levels() {
        for ok in [
            "info",
            "DEBUG",
            "info,berth_server=debug",
            "warn,tower_http::trace=off",
        ] {
            assert_eq!(level_problem(ok), None, "{ok}");
        }
        for bad in ["", "loud", "info,", "a-b=info", "info=debug=x"] {
            assert!(level_problem(bad).is_some(), "{bad}");
        }
    }
}
