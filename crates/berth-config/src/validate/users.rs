//! users.yaml: unique names and ids, hashes, template references, client tokens.

use std::collections::{HashMap, HashSet};

use berth_types::Username;
use uuid::Uuid;

use super::{At, Known, check_references, first_at};
use crate::error::ConfigError;
use crate::model::User;
use crate::ssh_keys::{MAX_SSH_KEYS_PER_USER, SshKey};

pub(crate) fn check_users(
    users: &[User],
    at: &At<'_>,
    templates: Known<'_>,
    admin: Option<&Username>,
    errors: &mut Vec<ConfigError>,
) {
    let mut usernames: HashMap<&str, Option<usize>> = HashMap::new();
    let mut ids: HashMap<Uuid, Option<usize>> = HashMap::new();
    let mut token_ids: HashSet<Uuid> = HashSet::new();
    for (i, user) in users.iter().enumerate() {
        let at = at.index(i);
        let name = at.key("username");
        if admin == Some(&user.username) {
            errors.push(name.error(format!(
                "{:?} is the admin of main.yaml; choose another username",
                user.username.as_str()
            )));
        } else if let Some(first) = usernames.get(user.username.as_str()) {
            errors.push(name.error(format!(
                "duplicate username {:?}{}",
                user.username.as_str(),
                first_at(*first)
            )));
        } else {
            usernames.insert(user.username.as_str(), name.line);
        }
        let id = user.id.as_uuid();
        if id.is_nil() {
            errors.push(at.error(
                "missing field \"id\": every user needs a stable id, a UUID (generate one with `uuidgen`; \
                 users added through Berth get one automatically)",
            ));
        } else if let Some(first) = ids.get(&id) {
            errors.push(
                at.key("id")
                    .error(format!("duplicate user id {id}{}", first_at(*first))),
            );
        } else {
            ids.insert(id, at.key("id").line);
        }
        if let Some(hash) = &user.password_hash
            && let Some(problem) = hash.problem()
        {
            errors.push(at.key("password_hash").error(problem));
        }
        check_references(
            &user.templates,
            &at.key_any(&["templates", "containers"]),
            templates,
            errors,
        );
        for (j, token) in user.client_tokens.iter().enumerate() {
            let at = at.key("client_tokens").index(j);
            if let Some(problem) = super::token_hash_problem(&token.hash) {
                errors.push(at.key("hash").error(problem));
            }
            if !token_ids.insert(token.id.as_uuid()) {
                errors.push(
                    at.key("id")
                        .error(format!("duplicate client id {}", token.id)),
                );
            }
        }
        check_ssh_keys(&user.ssh_keys, &at.key("ssh_keys"), errors);
        for key in user.metadata.keys() {
            if key.trim().is_empty() || key.chars().count() > 64 {
                errors.push(
                    at.key("metadata")
                        .key(key)
                        .error("a metadata key has 1 to 64 characters"),
                );
            }
        }
    }
}

fn check_ssh_keys(keys: &[SshKey], at: &At<'_>, errors: &mut Vec<ConfigError>) {
    if keys.len() > MAX_SSH_KEYS_PER_USER {
        errors.push(at.error(format!(
            "a user has at most {MAX_SSH_KEYS_PER_USER} SSH keys, found {}",
            keys.len()
        )));
    }
    let mut seen: HashMap<&str, Option<usize>> = HashMap::new();
    for (i, key) in keys.iter().enumerate() {
        let at = at.index(i);
        if let Some(first) = seen.get(key.fingerprint()) {
            errors.push(at.error(format!(
                "duplicate SSH key {}{}",
                key.fingerprint(),
                first_at(*first)
            )));
        } else {
            seen.insert(key.fingerprint(), at.line);
        }
    }
}
