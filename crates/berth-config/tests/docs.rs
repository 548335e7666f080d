//! The examples of docs/config.md are valid configuration.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use berth_config::{ClusterNetwork, RegistrationMode};
use common::{Dir, MAIN};

/// The fenced `yaml` blocks of docs/config.md whose first line is `top:`.
fn examples(top: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.md");
    let text = std::fs::read_to_string(path).unwrap();
    text.split("```yaml\n")
        .skip(1)
        .filter_map(|block| block.split_once("```").map(|(body, _)| body))
        .filter(|body| body.starts_with(&format!("{top}:\n")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_clusters_and_registration_examples_validate() {
    let clusters = examples("clusters");
    let registration = examples("registration");
    assert_eq!((clusters.len(), registration.len()), (1, 1));
    let dir = Dir::valid();
    dir.write(
        "main.yaml",
        &format!("{MAIN}{}{}", clusters[0], registration[0]),
    );
    let config = berth_config::check(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let c = &config.main.clusters;
    assert!(c.enabled);
    assert_eq!(c.network, ClusterNetwork::Bridge);
    assert_eq!(c.max_ttl.as_secs(), 24 * 3600);
    let r = &config.main.registration;
    assert_eq!(r.mode, RegistrationMode::Invite);
    assert_eq!(r.defaults.templates, ["base"]);
    assert!(r.defaults.clusters);
}
