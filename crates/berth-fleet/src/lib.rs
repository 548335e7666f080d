//! Berth's fleet: the machines and scripts an ops team keeps in a git repository.
//!
//! - [`git`]: the inventory repository, mirrored with the `git` binary into a bare repository
//!   (fetch with prune; files read from the fetched commit, no work tree), credentials from the
//!   keys dir and never on a command line, host keys checked for git over SSH too;
//! - [`webhook`]: push webhooks signed with HMAC-SHA256 (GitHub, Gitea/Forgejo, GitLab);
//! - [`enrollment`]: does the machine's client id file match links.yaml (over SSH, host key
//!   checked)?
//! - [`health`]: online, degraded or offline from the recent connect checks;
//! - [`operation`]: a script run on one machine over SSH (live output, timeout and cancel that
//!   end every process of the script, at most `fleet.max_output` kept) and the grouping of
//!   machines that ended alike;
//! - [`scripts`]: inventory scripts are bash only (shebang and `bash -n`, with its line);
//! - [`secrets`]: `secrets.ini`, read only when encrypted to the server's age identity;
//! - [`inventory`]: `links.yaml` and `scripts.yaml`, with file:line errors;
//! - [`keys`]: the secret files of the keys dir, refused unless only their owner may read them.
//!
//! Nothing here knows HTTP or the store (it reaches machines through `berth-ssh`); `berth-core`
//! ties it to them (`berth_core::fleet`).
#![forbid(unsafe_code)]

pub mod enrollment;
pub mod git;
pub mod health;
pub mod inventory;
pub mod keys;
pub mod operation;
pub mod scripts;
pub mod secrets;
pub mod webhook;

pub use enrollment::{EnrollmentCheck, EnrollmentStatus, check_enrollment};
pub use git::{CommitId, EntryKind, GitError, Mirror, RepositoryUrl};
pub use health::{Health, HealthStatus, Probe, Transition};
pub use keys::{KeyFileError, check_secret_file, key_path, read_secret_file};
pub use operation::{RunEnd, RunEvent, RunSpec, run_on_machine};
pub use webhook::{Sender, WebhookError};
