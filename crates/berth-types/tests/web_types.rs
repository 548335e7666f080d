//! `web/src/generated/protocol.ts`: the TypeScript types of the terminal and grid messages,
//! written from the JSON Schemas of the Rust types. `web/`'s decoders and encoders are typed
//! with them, so `tsc` (`scripts/web-build.sh`, part of `make test`) fails when the browser
//! does not follow a change here; this test fails when the generated file is stale.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use berth_types::grid::{GridClientMessage, GridServerMessage};
use berth_types::terminal::{ClientMessage, ServerMessage};
use serde_json::Value;

/// The TypeScript type a JSON Schema describes (the subset schemars writes for these types).
fn ts(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return reference.rsplit('/').next().unwrap().to_owned();
    }
    if let Some(constant) = schema.get("const") {
        return constant.to_string();
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return union(values.iter().map(Value::to_string));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(list) = schema.get(key).and_then(Value::as_array) {
            return union(list.iter().map(ts));
        }
    }
    match schema.get("type") {
        Some(Value::String(kind)) => single(kind, schema),
        Some(Value::Array(kinds)) => {
            union(kinds.iter().map(|k| single(k.as_str().unwrap(), schema)))
        }
        _ => panic!("no TypeScript for the schema {schema}"),
    }
}

fn single(kind: &str, schema: &Value) -> String {
    match kind {
        "string" => "string".into(),
        "integer" | "number" => "number".into(),
        "boolean" => "boolean".into(),
        "null" => "null".into(),
        "array" => {
            let item = ts(&schema["items"]);
            if item.contains(' ') {
                format!("({item})[]")
            } else {
                format!("{item}[]")
            }
        }
        "object" => {
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                return "Record<string, unknown>".into();
            };
            let fields: Vec<String> = properties
                .iter()
                .map(|(name, property)| {
                    let optional = if required.contains(&name.as_str()) {
                        ""
                    } else {
                        "?"
                    };
                    format!("{name}{optional}: {}", ts(property))
                })
                .collect();
            format!("{{ {} }}", fields.join("; "))
        }
        other => panic!("no TypeScript for the JSON type {other}"),
    }
}

/// A top-level type: a union of objects gets one line per member.
fn top(schema: &Value) -> String {
    match schema.get("oneOf").and_then(Value::as_array) {
        Some(list) if list.len() > 1 && list.iter().any(|s| s.get("properties").is_some()) => {
            list.iter().map(|s| format!("\n  | {}", ts(s))).collect()
        }
        _ => format!(" {}", ts(schema)),
    }
}

fn union(parts: impl Iterator<Item = String>) -> String {
    parts.collect::<Vec<_>>().join(" | ")
}

fn generated() -> String {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut add = |name: &str, text: String| {
        let previous = types.insert(name.to_owned(), text.clone());
        assert!(
            previous.is_none_or(|p| p == text),
            "two different types are called {name}"
        );
    };
    for (name, schema) in [
        ("ServerMessage", schemars::schema_for!(ServerMessage)),
        ("ClientMessage", schemars::schema_for!(ClientMessage)),
        (
            "GridServerMessage",
            schemars::schema_for!(GridServerMessage),
        ),
        (
            "GridClientMessage",
            schemars::schema_for!(GridClientMessage),
        ),
    ] {
        let schema = serde_json::to_value(schema).unwrap();
        add(name, top(&schema));
        for (def, def_schema) in schema
            .get("$defs")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            add(def, top(def_schema));
        }
    }
    let mut out = String::from(
        "// Generated from the Rust types of berth-types (terminal and grid messages) by\n\
         // crates/berth-types/tests/web_types.rs: do not edit. Regenerate with\n\
         // `BERTH_UPDATE_FIXTURES=1 cargo test -p berth-types --test web_types`.\n",
    );
    for (name, text) in &types {
        let _ = write!(out, "\nexport type {name} ={text};\n");
    }
    out
}

#[test]
fn the_types_for_web_are_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/src/generated/protocol.ts");
    let current = generated();
    if std::env::var_os("BERTH_UPDATE_FIXTURES").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &current).unwrap();
    }
    let saved = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        saved == current,
        "web/src/generated/protocol.ts is stale or missing; regenerate it with \
         `BERTH_UPDATE_FIXTURES=1 cargo test -p berth-types --test web_types`, make web/ \
         follow it (scripts/web-build.sh) and commit both"
    );
}
