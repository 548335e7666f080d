//! How the CLI reaches its server: `https://` verified against the system's roots and the CA
//! file given at login (`--ca FILE`, kept in config.yaml), and plain `http://` only to this
//! machine (loopback) unless the login said `--insecure-http`, since a token sent in clear
//! can be read by anyone on the way.

use std::net::IpAddr;
use std::path::Path;

use berth_client::Client;

use super::errors::CliError;

/// The host of `http(s)://HOST[:PORT][/...]`, brackets kept off an IPv6 address.
fn host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    }
    authority.split(':').next()
}

/// Whether `url` names this machine: `localhost` or a loopback address.
pub fn is_loopback(url: &str) -> bool {
    match host(url) {
        Some(h) if h.eq_ignore_ascii_case("localhost") => true,
        Some(h) => h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// `host:port` → `https://host:port`, or `http://` for this machine; no trailing slash.
pub fn normalize(server: &str) -> String {
    let server = server.trim().trim_end_matches('/');
    if server.contains("://") {
        return server.to_owned();
    }
    let guess = format!("http://{server}");
    if is_loopback(&guess) {
        guess
    } else {
        format!("https://{server}")
    }
}

/// An API client of `server`, trusting the CA file `ca` besides the system's roots; plain
/// http to another machine is refused unless `insecure_http`.
pub fn client_for(
    server: &str,
    ca: Option<&Path>,
    insecure_http: bool,
) -> Result<Client, CliError> {
    if server.starts_with("http://") && !insecure_http && !is_loopback(server) {
        return Err(CliError::new(format!(
            "refusing plain http to {server}: your password and token would cross the network \
             in clear"
        ))
        .hint(format!(
            "use the server's https:// address (with --ca FILE for a private CA), or, on a \
             network you trust, `berth login {server} --insecure-http --username NAME` (or \
             `--token TOKEN` for a token an admin gave you)"
        )));
    }
    let certs = match ca {
        None => Vec::new(),
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                CliError::new(format!("cannot read the CA file {}: {e}", path.display()))
                    .hint("log in again with --ca naming the server's CA certificate (PEM)")
            })?;
            berth_client::read_ca(&pem, &path.display().to_string())
                .map_err(|e| CliError::from_client(&e, server))?
        }
    };
    Client::with_ca(server, &certs).map_err(|e| CliError::from_client(&e, server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_servers_are_told_apart_from_others() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://localhost:1",
            "http://LOCALHOST",
            "http://[::1]:8080/x",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "http://10.0.0.1:8080",
            "http://berth.lab",
            "http://127.0.0.1.evil.example",
            "http://[::2]",
            "http://user@berth.lab",
            "nonsense",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }

    #[test]
    fn a_missing_scheme_means_https_except_on_this_machine() {
        assert_eq!(normalize("127.0.0.1:8080/"), "http://127.0.0.1:8080");
        assert_eq!(normalize("localhost:8080"), "http://localhost:8080");
        assert_eq!(normalize("berth.lab:8443"), "https://berth.lab:8443");
        assert_eq!(normalize("http://berth.lab"), "http://berth.lab");
    }

    #[test]
    fn plain_http_elsewhere_needs_insecure_http() {
        let err = client_for("http://10.0.0.1:8080", None, false).unwrap_err();
        assert!(
            err.message().contains("refusing plain http"),
            "{}",
            err.message()
        );
        assert!(client_for("http://10.0.0.1:8080", None, true).is_ok());
        assert!(client_for("http://127.0.0.1:8080", None, false).is_ok());
        let missing = client_for(
            "https://berth.lab",
            Some(Path::new("/nonexistent/ca.pem")),
            false,
        )
        .unwrap_err();
        assert!(missing.message().contains("/nonexistent/ca.pem"));
    }
}
