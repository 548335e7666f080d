//! An inventory repository the fleet tests commit to (with the `git` binary, no user config),
//! and the `links.yaml` and known_hosts text that describe the test machines in it. Shared by
//! the fleet tests of berth-fleet, berth-core, berth-server and the CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Lab;

/// A git repository with a `main` branch in a directory of the test's.
pub struct Repo {
    pub dir: PathBuf,
}

impl Repo {
    /// A new repository in `root/name`.
    pub fn new(root: &Path, name: &str) -> Self {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let repo = Self { dir };
        repo.git(&["init", "--quiet", "--initial-branch=main"]);
        repo
    }

    pub fn git(&self, args: &[&str]) -> String {
        self.git_with(args, &[])
    }

    pub fn git_with(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .envs(env.iter().copied())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Ops")
            .env("GIT_AUTHOR_EMAIL", "ops@example.invalid")
            .env("GIT_COMMITTER_NAME", "Ops")
            .env("GIT_COMMITTER_EMAIL", "ops@example.invalid")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Writes `files` (path, content), commits everything and answers the commit id.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, content) in files {
            let path = self.dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// The repository as a `fleet.repository` value.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.dir.display())
    }
}

/// `links.yaml` for the named test machines, each with the key file `id_ed25519`, the tags
/// `lab` and `near` (or `far` behind a jump host), and its own client id unless `client_id`
/// names another one.
pub fn links(lab: &Lab, machines: &[(&str, Option<&str>)]) -> String {
    let mut text = String::from("machines:\n");
    for (name, client_id) in machines {
        let m = lab.machine(name);
        text.push_str(&format!(
            "  - id: {name}\n    name: {name}\n    host: {}\n    port: {}\n    user: {}\n    key: id_ed25519\n    tags: [lab, {}]\n",
            m.host,
            m.port,
            m.user,
            if m.jump.is_some() { "far" } else { "near" }
        ));
        if let Some(jump) = &m.jump {
            text.push_str(&format!("    proxy_jump: {jump}\n"));
        }
        text.push_str(&format!(
            "    client_id: {}\n",
            client_id.unwrap_or(&m.client_id)
        ));
    }
    text
}

/// known_hosts lines for the named machines, as an admin would have them.
pub fn known_hosts(lab: &Lab, names: &[&str]) -> String {
    names
        .iter()
        .map(|name| {
            let m = lab.machine(name);
            format!(
                "{} {}\n",
                berth_ssh::host_keys::host_pattern(&m.host, m.port),
                m.host_key
            )
        })
        .collect()
}

/// Copies the test client key into `keys_dir` as `id_ed25519`, mode 0600, as an admin would.
pub fn install_key(lab: &Lab, keys_dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(keys_dir).unwrap();
    let key = keys_dir.join("id_ed25519");
    std::fs::copy(lab.keys.join("id_ed25519"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
}
