//! The kubeconfig k3s writes (`/etc/rancher/k3s/k3s.yaml`): read, its credentials taken out
//! for the readiness check, and rewritten for its owner.
//!
//! k3s writes one cluster, one user and one context, all named `default`, with the server at
//! `https://127.0.0.1:PORT` and the CA, client certificate and client key inline as base64 PEM
//! (`certificate-authority-data`, `client-certificate-data`, `client-key-data`). The rewrite
//! points the server at the published address and names all three `berth-<cluster name>`, so
//! several clusters' kubeconfigs merge without colliding.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

/// What Berth needs of the kubeconfig k3s wrote, in its PEM form.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<credentials>")
    }
}

/// Reads the credentials out of k3s.yaml; the error says what is missing or malformed. Read
/// from the tree, not a typed struct, so fields a later k3s adds do not break it.
pub(crate) fn credentials(text: &str) -> Result<Credentials, String> {
    let root = berth_yaml::parse("k3s.yaml", text).map_err(|e| e.to_string())?;
    let cluster = only(&root, "clusters")?;
    let user = only(&root, "users")?;
    let decode = |entry: &berth_yaml::Node, section: &str, field: &str| {
        let value = entry
            .get(section)
            .and_then(|s| s.get(field))
            .and_then(berth_yaml::Node::scalar)
            .ok_or_else(|| format!("k3s.yaml:{}: no {section}.{field}", entry.line))?;
        STANDARD
            .decode(value.text.trim())
            .map_err(|e| format!("{field} is not base64: {e}"))
    };
    Ok(Credentials {
        ca_pem: decode(cluster, "cluster", "certificate-authority-data")?,
        cert_pem: decode(user, "user", "client-certificate-data")?,
        key_pem: decode(user, "user", "client-key-data")?,
    })
}

/// The one entry of the list `key` (k3s writes one cluster and one user).
fn only<'a>(root: &'a berth_yaml::Node, key: &str) -> Result<&'a berth_yaml::Node, String> {
    let list = root.get(key).ok_or_else(|| format!("k3s.yaml: no {key}"))?;
    match list.items() {
        [one] => Ok(one),
        items => Err(format!(
            "k3s.yaml: expected one entry in {key}, found {}",
            items.len()
        )),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Out<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    clusters: [OutCluster<'a>; 1],
    contexts: [OutContext<'a>; 1],
    current_context: &'a str,
    preferences: Empty,
    users: [OutUser<'a>; 1],
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct OutCluster<'a> {
    name: &'a str,
    cluster: OutClusterEntry<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct OutClusterEntry<'a> {
    certificate_authority_data: &'a str,
    server: &'a str,
}

#[derive(Serialize)]
struct OutContext<'a> {
    name: &'a str,
    context: OutContextEntry<'a>,
}

#[derive(Serialize)]
struct OutContextEntry<'a> {
    cluster: &'a str,
    user: &'a str,
}

#[derive(Serialize)]
struct OutUser<'a> {
    name: &'a str,
    user: OutUserEntry<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct OutUserEntry<'a> {
    client_certificate_data: &'a str,
    client_key_data: &'a str,
}

/// The kubeconfig for the cluster's owner: the same credentials, the server at `api_url`, and
/// every entry named `entry` (`berth-<cluster name>`).
pub(crate) fn rewrite(
    credentials: &Credentials,
    api_url: &str,
    entry: &str,
) -> Result<String, String> {
    let ca = STANDARD.encode(&credentials.ca_pem);
    let cert = STANDARD.encode(&credentials.cert_pem);
    let key = STANDARD.encode(&credentials.key_pem);
    let out = Out {
        api_version: "v1",
        kind: "Config",
        clusters: [OutCluster {
            name: entry,
            cluster: OutClusterEntry {
                certificate_authority_data: &ca,
                server: api_url,
            },
        }],
        contexts: [OutContext {
            name: entry,
            context: OutContextEntry {
                cluster: entry,
                user: entry,
            },
        }],
        current_context: entry,
        preferences: Empty {},
        users: [OutUser {
            name: entry,
            user: OutUserEntry {
                client_certificate_data: &cert,
                client_key_data: &key,
            },
        }],
    };
    // A base64 line stays one line, never folded: kubectl reads either, people grep it.
    let options = serde_saphyr::ser_options! {
        compact_list_indent: false,
        folded_wrap_chars: usize::MAX,
    };
    serde_saphyr::to_string_with_options(&out, options).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The shape k3s v1.31 writes.
    fn k3s_yaml() -> String {
        format!(
            "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: https://127.0.0.1:6443\n  name: default\ncontexts:\n- context:\n    cluster: default\n    user: default\n  name: default\ncurrent-context: default\nkind: Config\npreferences: {{}}\nusers:\n- name: default\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
            STANDARD.encode("CA PEM"),
            STANDARD.encode("CERT PEM"),
            STANDARD.encode("KEY PEM")
        )
    }

    #[test]
    fn reads_k3s_credentials() {
        let c = credentials(&k3s_yaml()).unwrap();
        assert_eq!(c.ca_pem, b"CA PEM");
        assert_eq!(c.cert_pem, b"CERT PEM");
        assert_eq!(c.key_pem, b"KEY PEM");
    }

    #[test]
    fn rewrite_names_entries_and_points_at_the_published_address() {
        let c = credentials(&k3s_yaml()).unwrap();
        let text = rewrite(&c, "https://192.0.2.7:40123", "berth-dev").unwrap();
        assert!(!text.contains("default"), "{text}");
        assert!(!text.contains("127.0.0.1"), "{text}");
        assert!(text.contains("server: https://192.0.2.7:40123"), "{text}");
        assert!(text.contains("current-context: berth-dev"), "{text}");
        assert_eq!(text.matches("berth-dev").count(), 6, "{text}");
        // What it wrote reads back with the same credentials.
        let again = credentials(&text).unwrap();
        assert_eq!(again.key_pem, b"KEY PEM");
        assert_eq!(again.ca_pem, b"CA PEM");
    }

    #[test]
    fn malformed_kubeconfigs_say_what_is_wrong() {
        let cases = [
            ("kind: Config\n", "no clusters"),
            (
                "clusters: []\nusers: []\n",
                "expected one entry in clusters, found 0",
            ),
            ("{", "k3s.yaml"),
            (
                "clusters:\n- cluster:\n    certificate-authority-data: '%%%'\n  name: default\nusers:\n- name: default\n  user:\n    client-certificate-data: QQ==\n    client-key-data: QQ==\n",
                "certificate-authority-data is not base64",
            ),
        ];
        for (text, expected) in cases {
            let err = credentials(text).err().unwrap();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }
}
