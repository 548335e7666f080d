//! The JSON Schema of every file, generated from the types (and their doc comments).

use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use crate::model::{ContainersFile, MainConfig, UserOverrides, UsersFile};

/// The JSON Schema (draft 2020-12) of Berth's configuration: an object with one property per
/// file (`main.yaml`, `users.yaml`, `containers.yaml`, `users.d/<username>.yaml`), each
/// referring to its definition in `$defs`. `berth config schema` prints it; a copy is kept in
/// `docs/config-schema.json`. Property descriptions are the doc comments of the types.
#[must_use]
pub fn json_schema() -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let files = json!({
        "main.yaml": generator.subschema_for::<MainConfig>(),
        "containers.yaml": generator.subschema_for::<ContainersFile>(),
        "users.yaml": generator.subschema_for::<UsersFile>(),
        "users.d/<username>.yaml": generator.subschema_for::<UserOverrides>(),
    });
    let definitions = generator.take_definitions(true);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Berth configuration",
        "description": "The files of Berth's configuration directory ($BERTH_HOME/config). Each \
                        property describes one file; YAML files are validated against it on load \
                        and before every save.",
        "type": "object",
        "properties": files,
        "additionalProperties": false,
        "$defs": definitions,
    })
}
