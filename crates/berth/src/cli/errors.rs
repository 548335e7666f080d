//! What the person at the shell sees when a command fails: one line saying what went wrong and,
//! when there is something to do about it, a second line saying what.

use std::fmt;
use std::process::ExitCode;

use berth_client::ClientError;

use super::output::Style;

/// A failed command: a message, an optional hint, and the exit status (1 unless said).
#[derive(Debug)]
pub struct CliError {
    message: String,
    hint: Option<String>,
    status: u8,
}

impl CliError {
    /// A failure with exit status 1.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            status: 1,
        }
    }

    /// The same failure with what to do about it.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The same failure with another exit status.
    #[must_use]
    pub fn with_status(mut self, status: u8) -> Self {
        self.status = status;
        self
    }

    /// Ctrl-C: exit status 130, as shells report it.
    pub fn interrupted() -> Self {
        Self::new("interrupted").with_status(130)
    }

    /// The message, for logs and tests.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A call to the server at `server` failed: say why in the words of someone using the CLI.
    pub fn from_client(err: &ClientError, server: &str) -> Self {
        match err {
            ClientError::Url { url, reason } => Self::new(format!("cannot use {url:?}: {reason}"))
                .hint("give the server as https://HOST:PORT (or http:// on this machine)"),
            ClientError::Tls { reason } => Self::new(format!("cannot set up TLS: {reason}"))
                .hint("name the server's CA with `berth login SERVER --ca FILE`"),
            ClientError::Transport { reason, .. } if reason.contains("TLS certificate") => {
                Self::new(format!("cannot trust {server}: {reason}")).hint(
                    "if the server uses a private CA or a self-signed certificate, log in with \
                     `berth login SERVER --ca FILE` (the CA's certificate, PEM)",
                )
            }
            ClientError::Transport { reason, .. } => {
                let why = transport_reason(reason);
                Self::new(format!("cannot reach {server} ({why})"))
                    .hint("is `berth serve` running there, and is the address right?")
            }
            ClientError::Timeout { seconds, .. } => {
                Self::new(format!("{server} did not answer within {seconds} s"))
                    .hint("the server or the network is overloaded; try again")
            }
            ClientError::Api(failure) if failure.code == "fleet_disabled" => {
                Self::new("this Berth has no fleet: set fleet.repository in main.yaml")
                    .hint("docs/fleet.md says how; restart Berth after changing the fleet section")
            }
            ClientError::Api(failure) if failure.code == "machine_unreachable" => {
                Self::new(failure.message.clone())
                    .hint("the machine did not answer over SSH: check that it is up and reachable from the server, then try again")
            }
            ClientError::Api(failure) if failure.code == "shutting_down" => {
                Self::new("the server is shutting down").hint("try again once it is back")
            }
            ClientError::Api(failure) => match failure.status {
                401 => Self::new("your token was refused (it expired or was revoked)")
                    .hint(format!("run `berth login {server}`")),
                403 | 404 | 409 | 422 => Self::new(failure.message.clone()),
                429 => {
                    let wait = failure
                        .retry_after
                        .map_or_else(|| "a moment".to_owned(), |s| format!("{s} s"));
                    Self::new(failure.message.clone()).hint(format!("try again in {wait}"))
                }
                status if status >= 500 => Self::new(format!(
                    "the server failed ({status} {}): {}",
                    failure.code, failure.message
                ))
                .hint("the server's log (logs/berth.log in its home) says why"),
                status => Self::new(format!(
                    "the server refused the request ({status} {}): {}",
                    failure.code, failure.message
                )),
            },
            ClientError::Decode { status, reason } => Self::new(format!(
                "{server} gave an answer this CLI cannot read ({status}): {reason}"
            ))
            .hint("is it a Berth server of the same version as this CLI?"),
        }
    }

    /// Prints the error on stderr and returns its exit status.
    pub fn report(&self) -> ExitCode {
        let style = Style::stderr();
        eprintln!("{} {}", style.red("berth:"), self.message);
        if let Some(hint) = &self.hint {
            eprintln!("{} {hint}", style.dim("hint:"));
        }
        ExitCode::from(self.status)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for CliError {}

impl From<std::io::Error> for CliError {
    fn from(err: std::io::Error) -> Self {
        Self::new(err.to_string())
    }
}

impl From<berth_runtime::RuntimeError> for CliError {
    fn from(err: berth_runtime::RuntimeError) -> Self {
        Self::new(err.to_string())
    }
}

/// The useful part of a transport failure: hyper's chain ends in the OS error.
fn transport_reason(reason: &str) -> String {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("connection refused") {
        "connection refused".into()
    } else if lower.contains("dns error") || lower.contains("failed to lookup") {
        "the host name does not resolve".into()
    } else if lower.contains("timed out") {
        "the connection timed out".into()
    } else if lower.contains("connection reset") {
        "the connection was reset".into()
    } else if lower.contains("no route to host") || lower.contains("network is unreachable") {
        "no route to the host".into()
    } else {
        reason.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use berth_client::ApiFailure;

    use super::*;

    fn api(status: u16, message: &str) -> ClientError {
        ClientError::Api(Box::new(ApiFailure {
            status,
            code: "x".into(),
            message: message.into(),
            details: None,
            retry_after: Some(7),
        }))
    }

    #[test]
    fn failures_read_as_what_to_do() {
        let server = "http://127.0.0.1:9";
        let refused = ClientError::Transport {
            url: format!("{server}/api/v1/config"),
            reason: "client error (Connect): tcp connect error: Connection refused (os error 111)"
                .into(),
        };
        let err = CliError::from_client(&refused, server);
        assert_eq!(
            err.to_string(),
            "cannot reach http://127.0.0.1:9 (connection refused) (is `berth serve` running \
             there, and is the address right?)"
        );
        let err = CliError::from_client(&api(401, "nope"), server);
        assert!(
            err.to_string().contains("berth login http://127.0.0.1:9"),
            "{err}"
        );
        for status in [403, 404, 409, 422] {
            let err = CliError::from_client(&api(status, "quota reached"), server);
            assert_eq!(err.message(), "quota reached");
        }
        let err = CliError::from_client(&api(429, "slow down"), server);
        assert!(err.to_string().contains("7 s"), "{err}");
        let err = CliError::from_client(&api(500, "internal"), server);
        assert!(err.message().contains("500"), "{err}");
        let disabled = ClientError::Api(Box::new(ApiFailure {
            status: 409,
            code: "fleet_disabled".into(),
            message: "there is no fleet".into(),
            details: None,
            retry_after: None,
        }));
        let err = CliError::from_client(&disabled, server);
        assert_eq!(
            err.message(),
            "this Berth has no fleet: set fleet.repository in main.yaml"
        );
    }
}
