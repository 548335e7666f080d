//! The JSON Schema: its shape, and the copy kept in docs/.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::Value;

fn schema() -> Value {
    berth_config::json_schema()
}

#[test]
fn describes_every_file_with_its_definition() {
    let schema = schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let files = schema["properties"].as_object().unwrap();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(k, v)| (k.as_str(), v["$ref"].as_str().unwrap()))
        .collect();
    assert_eq!(
        refs,
        [
            ("containers.yaml", "#/$defs/ContainersFile"),
            ("main.yaml", "#/$defs/MainConfig"),
            ("users.d/<username>.yaml", "#/$defs/UserOverrides"),
            ("users.yaml", "#/$defs/UsersFile"),
        ]
    );
    let defs = &schema["$defs"];
    assert_eq!(
        defs["User"]["required"],
        serde_json::json!(["username", "id"])
    );
    assert_eq!(
        defs["Template"]["required"],
        serde_json::json!(["name", "image"])
    );
    assert_eq!(
        defs["Template"]["additionalProperties"], false,
        "unknown fields are refused"
    );
    assert_eq!(defs["Logging"]["properties"]["files_kept"]["maximum"], 100);
    assert_eq!(
        defs["Memory"]["pattern"],
        "^[0-9]+([kKmMgGtT]([iI]?[bB])?|[bB])?$"
    );
    let docs = defs["Template"]["properties"]["shared"]["description"]
        .as_str()
        .unwrap();
    assert!(
        docs.contains("tmux"),
        "doc comments become descriptions: {docs}"
    );
    assert_eq!(
        defs["MainConfig"]["properties"]["listen"]["default"],
        "127.0.0.1:8080"
    );
    let consts = |def: &str| -> Vec<String> {
        defs[def]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["const"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(consts("RegistrationMode"), ["off", "invite", "open"]);
    assert_eq!(consts("ClusterNetwork"), ["bridge", "host"]);
    assert_eq!(consts("ClusterProvider"), ["docker"]);
    let main = &defs["MainConfig"]["properties"];
    assert_eq!(main["registration"]["default"]["mode"], "off");
    assert_eq!(main["clusters"]["default"]["enabled"], false);
    assert_eq!(
        defs["Clusters"]["properties"]["max_per_user"]["maximum"],
        100
    );
    assert_eq!(defs["Clusters"]["additionalProperties"], false);
    assert_eq!(defs["User"]["properties"]["clusters"]["type"], "boolean");
}

#[test]
fn the_copy_in_docs_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config-schema.json");
    let current = serde_json::to_string_pretty(&schema()).unwrap() + "\n";
    if std::env::var_os("BERTH_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &current).unwrap();
    }
    let saved = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        saved == current,
        "docs/config-schema.json is stale or missing; regenerate it with \
         `BERTH_UPDATE_SCHEMA=1 cargo test -p berth-config --test schema` and commit it"
    );
}
