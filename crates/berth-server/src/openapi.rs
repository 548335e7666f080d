//! The OpenAPI 3.1 document, generated from the route table and the schemas of the wire types.
//!
//! JSON Schema 2020-12 is OpenAPI 3.1's schema dialect, so schemars' output is used as is, with
//! shared definitions under `components/schemas`.

use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::guard::{Access, Limit};
use crate::routes::{Route, Success, error_schema};

fn generator(inline: bool) -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
            s.inline_subschemas = inline;
        })
        .into_generator()
}

/// `{id}` → `id`, for each parameter of `path`.
fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

fn path_parameter(name: &str) -> Value {
    let (schema, description) = match name {
        "id" => (
            json!({"type": "string", "format": "uuid"}),
            "The workspace id.",
        ),
        "client_id" => (
            json!({"type": "string", "format": "uuid"}),
            "The client id.",
        ),
        _ => (json!({"type": "string"}), "The name."),
    };
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
}

/// The fields of the query type as `in: query` parameters, schemas inlined.
fn query_parameters(route: &Route) -> Vec<Value> {
    let Some(query) = route.query else {
        return Vec::new();
    };
    let mut inline = generator(true);
    let schema = query(&mut inline);
    let object = schema.as_object().cloned().unwrap_or_default();
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let properties = object
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    properties
        .into_iter()
        .map(|(name, mut schema)| {
            let description = schema
                .as_object_mut()
                .and_then(|s| s.remove("description"))
                .unwrap_or(Value::Null);
            json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "description": description,
                "schema": schema,
            })
        })
        .collect()
}

fn operation(route: &Route, generator: &mut SchemaGenerator) -> Value {
    let mut op = Map::new();
    op.insert("summary".into(), route.summary.into());
    op.insert(
        "operationId".into(),
        format!(
            "{}{}",
            route.method.to_ascii_lowercase(),
            route
                .path
                .replace("/api/v1", "")
                .replace(['/', '.', '{', '}'], "_")
                .trim_end_matches('_')
        )
        .into(),
    );
    op.insert("tags".into(), json!([route.tag]));
    let security = match route.access {
        Access::Public => json!([]),
        // `{}`: no credential, while main.yaml sets no metrics token.
        Access::Metrics => json!([{}, { "bearer": [] }]),
        Access::User | Access::Admin => json!([{ "bearer": [] }]),
        // The UI's rows are not documented (`document` skips them); a page takes the cookie.
        Access::Page | Access::AdminPage => json!([]),
    };
    op.insert("security".into(), security);
    let mut parameters: Vec<Value> = path_parameters(route.path)
        .into_iter()
        .map(path_parameter)
        .collect();
    parameters.extend(query_parameters(route));
    if !parameters.is_empty() {
        op.insert("parameters".into(), parameters.into());
    }
    if let Some(body) = route.body {
        op.insert(
            "requestBody".into(),
            json!({ "required": true, "content": { "application/json": { "schema": body(generator) } } }),
        );
    }
    let mut responses = Map::new();
    let (status, success) = match route.success {
        Success::Json(status, schema) => (
            status,
            json!({ "description": "Success", "content": { "application/json": { "schema": schema(generator) } } }),
        ),
        Success::Empty(status) => (status, json!({ "description": "Done; no body" })),
        Success::Text(content_type) => (
            200,
            json!({ "description": "Success", "content": { content_type: { "schema": { "type": "string" } } } }),
        ),
    };
    responses.insert(status.to_string(), success);
    let error = json!({ "$ref": "#/components/responses/Error" });
    if route.access != Access::Public {
        responses.insert("401".into(), error.clone());
    }
    if route.access == Access::Admin {
        responses.insert("403".into(), error.clone());
    }
    if route.limit == Limit::Login || route.access != Access::Public {
        responses.insert("429".into(), error.clone());
    }
    responses.insert("default".into(), error);
    op.insert("responses".into(), responses.into());
    op.into()
}

/// The document, serialized.
pub(crate) fn document(table: &[Route]) -> Vec<u8> {
    let mut generator = generator(false);
    let error = error_schema(&mut generator);
    let mut paths = Map::new();
    for route in table.iter().filter(|r| !r.page) {
        let item = paths
            .entry(route.path)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(item) = item.as_object_mut() {
            item.insert(
                route.method.to_ascii_lowercase(),
                operation(route, &mut generator),
            );
        }
    }
    let document = json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Berth API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Berth's REST API. JSON in and out; every error is \
                {\"error\": {\"code\", \"message\", \"details\"}}. See docs/api.md.",
        },
        "paths": paths,
        "components": {
            "schemas": generator.take_definitions(true),
            "responses": {
                "Error": {
                    "description": "An error: 400 malformed, 401 unauthenticated, 403 forbidden, \
                        404 not found, 409 conflict, 413 too large, 415 not JSON, 422 invalid, \
                        429 rate-limited (with Retry-After), 5xx server or engine failure.",
                    "content": { "application/json": { "schema": error } },
                },
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A client token (users.yaml) or a JWT from POST /api/v1/auth/login.",
                },
            },
        },
    });
    serde_json::to_vec_pretty(&document).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::table;

    #[test]
    fn every_route_is_documented_with_resolvable_references() {
        let table = table();
        let doc: Value = serde_json::from_slice(&document(&table)).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        for route in &table {
            let op = &doc["paths"][route.path][route.method.to_ascii_lowercase()];
            assert!(op.is_object(), "{} {} is missing", route.method, route.path);
            for name in path_parameters(route.path) {
                assert!(
                    op["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p["name"] == name),
                    "{} {}: parameter {name}",
                    route.method,
                    route.path
                );
            }
        }
        // Every $ref points at a schema or response the document has.
        let text = doc.to_string();
        for reference in text.split("\"$ref\":\"").skip(1) {
            let target = reference.split('"').next().unwrap();
            let pointer = target.trim_start_matches('#');
            assert!(doc.pointer(pointer).is_some(), "dangling $ref {target}");
        }
        let workspaces = &doc["paths"]["/api/v1/workspaces"]["get"]["parameters"];
        let names: Vec<&str> = workspaces
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["owner", "shared", "state", "template"]);
    }
}
