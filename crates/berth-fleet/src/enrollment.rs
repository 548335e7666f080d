//! Enrollment: a machine proves it is the one the inventory means.
//!
//! Over SSH (host key checked, as always) Berth reads the machine's client id file (main.yaml
//! `fleet.client_id_path`, written by `berth agent --enroll`) and compares it with the
//! `client_id` of the machine in links.yaml. The outcome is one [`EnrollmentStatus`] with a
//! message a person can act on.

use std::time::{Duration, Instant};

use berth_ssh::{ConnectOptions, ExecRequest, ExitStatus, SshError, Target, connect};

/// The most of a client id file read; a client id is a UUID.
const MAX_CLIENT_ID_BYTES: usize = 256;

pub use berth_types::fleet::EnrollmentStatus;

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentCheck {
    pub status: EnrollmentStatus,
    /// What was found and what to do about it.
    pub message: String,
    /// The SHA256 fingerprint of the presented host key, for an unknown or changed one.
    pub fingerprint: Option<String>,
    /// How long connecting and authenticating took, when it succeeded.
    pub latency: Option<Duration>,
}

/// Connects to `target` and compares the file at `client_id_path` with `expected`.
pub async fn check_enrollment(
    target: &Target,
    options: &ConnectOptions,
    client_id_path: &str,
    expected: &str,
) -> EnrollmentCheck {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-".contains(c);
    if !client_id_path.starts_with('/') || !client_id_path.chars().all(plain) {
        return EnrollmentCheck {
            status: EnrollmentStatus::Missing,
            message: format!(
                "fleet.client_id_path {client_id_path:?} is not an absolute path of letters, \
                 digits and / . _ -"
            ),
            fingerprint: None,
            latency: None,
        };
    }
    let started = Instant::now();
    let session = match connect(target, options).await {
        Ok(session) => session,
        Err(e) => return from_ssh_error(&e),
    };
    let latency = Some(started.elapsed());
    // `cat` of a missing file says so on stderr; `exit 3` tells an empty path from a bad read.
    let command = format!("test -e '{client_id_path}' || exit 3; cat -- '{client_id_path}'");
    let outcome = match session.exec(ExecRequest::new(command)).await {
        Ok(execution) => Ok(execution.collect(MAX_CLIENT_ID_BYTES).await),
        Err(e) => Err(e),
    };
    let _ = session.close().await;
    let collected = match outcome {
        Ok(collected) => collected,
        Err(e) => return from_ssh_error(&e),
    };
    let check = |status, message: String| EnrollmentCheck {
        status,
        message,
        fingerprint: None,
        latency,
    };
    match collected.status {
        ExitStatus::Code(0) => {}
        ExitStatus::Code(3) => {
            return check(
                EnrollmentStatus::Missing,
                format!(
                    "{client_id_path} does not exist: run `berth agent --enroll` on the machine"
                ),
            );
        }
        other => {
            let stderr = String::from_utf8_lossy(&collected.stderr).trim().to_owned();
            return check(
                EnrollmentStatus::Missing,
                format!(
                    "cannot read {client_id_path} ({}): {stderr}",
                    describe(&other)
                ),
            );
        }
    }
    let found = String::from_utf8_lossy(&collected.stdout).trim().to_owned();
    if found.is_empty() {
        return check(
            EnrollmentStatus::Missing,
            format!("{client_id_path} is empty: run `berth agent --enroll` on the machine"),
        );
    }
    if collected.truncated || found.chars().any(char::is_control) {
        return check(
            EnrollmentStatus::Mismatch,
            format!("{client_id_path} does not hold a client id (expected {expected})"),
        );
    }
    if found == expected.trim() {
        check(
            EnrollmentStatus::Enrolled,
            format!("client id {found} matches links.yaml"),
        )
    } else {
        check(
            EnrollmentStatus::Mismatch,
            format!(
                "{client_id_path} holds {found}, links.yaml expects {expected}: this is another \
                 machine, or links.yaml is out of date"
            ),
        )
    }
}

fn describe(status: &ExitStatus) -> String {
    match status {
        ExitStatus::Code(code) => format!("exit code {code}"),
        ExitStatus::Signal { name, .. } => format!("killed by SIG{name}"),
        ExitStatus::Unknown => "no exit status".to_owned(),
    }
}

/// The status an SSH failure puts a machine in.
pub fn from_ssh_error(error: &SshError) -> EnrollmentCheck {
    let (status, fingerprint) = match error {
        SshError::Unreachable { .. } | SshError::Closed { .. } | SshError::Protocol { .. } => {
            (EnrollmentStatus::Unreachable, None)
        }
        SshError::AuthFailed { .. } | SshError::ClientKey { .. } => {
            (EnrollmentStatus::AuthFailed, None)
        }
        SshError::HostKeyUnknown { fingerprint, .. } => {
            (EnrollmentStatus::HostKeyUnknown, Some(fingerprint.clone()))
        }
        SshError::HostKeyChanged { got, .. } => {
            (EnrollmentStatus::HostKeyChanged, Some(got.clone()))
        }
        SshError::HostKeyRevoked { fingerprint, .. } => {
            (EnrollmentStatus::HostKeyChanged, Some(fingerprint.clone()))
        }
        SshError::HostKeys(_) => (EnrollmentStatus::HostKeyUnknown, None),
    };
    EnrollmentCheck {
        status,
        message: error.to_string(),
        fingerprint,
        latency: None,
    }
}
