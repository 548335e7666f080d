//! The OpenAPI 3.1 document, generated from the route table and the schemas of the wire types.
//!
//! JSON Schema 2020-12 is OpenAPI 3.1's schema dialect, so schemars' output is used as is, with
//! shared definitions under `components/schemas`.

use schemars::generate::SchemaSettings;
use schemars::{Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use berth_types::template::Template;
use berth_types::{MachineId, Username};

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

/// A path parameter, with the rule the handler applies to it: a value the schema refuses is a
/// 400 `bad_path`, never looked up.
fn path_parameter(path: &str, name: &str, generator: &mut SchemaGenerator) -> Value {
    // What the parameter names: the path segment before it (`/recordings/{id}`).
    let owner = path
        .split('/')
        .take_while(|segment| *segment != format!("{{{name}}}"))
        .last()
        .unwrap_or_default();
    let (schema, description) = match (name, owner) {
        ("id", "recordings") => (uuid(), "The recording id."),
        ("id", "grids" | "g") => (uuid(), "The grid id."),
        ("id" | "machine", "machines" | "m") => (
            generator.subschema_for::<MachineId>().to_value(),
            "The machine id (links.yaml).",
        ),
        ("id", "operations") => (uuid(), "The operation id."),
        ("id", _) => (uuid(), "The workspace id."),
        ("client_id", _) => (uuid(), "The client id."),
        ("name", "templates") => (
            json!({ "type": "string", "pattern": Template::NAME_PATTERN }),
            "The template name.",
        ),
        ("name", "members") => (
            generator.subschema_for::<Username>().to_value(),
            "The member's username.",
        ),
        ("name", _) => (
            generator.subschema_for::<Username>().to_value(),
            "The username.",
        ),
        _ => (json!({ "type": "string" }), "A name."),
    };
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
}

fn uuid() -> Value {
    json!({ "type": "string", "format": "uuid" })
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
        .map(|name| path_parameter(route.path, name, generator))
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
    let refer = |name: &str| json!({ "$ref": format!("#/components/responses/{name}") });
    if route.html() {
        // A page: refusals and failures are HTML pages, and a visitor without a session is
        // sent to the login page (`/w/{id}` etc. take the cookie or a Bearer token).
        responses.insert("303".into(), refer("ToLogin"));
        responses.insert("429".into(), refer("PageRateLimited"));
        responses.insert("default".into(), refer("PageError"));
        op.insert("responses".into(), responses.into());
        return op.into();
    }
    if route.access != Access::Public || route.limit == Limit::Login {
        responses.insert("401".into(), refer("Unauthenticated"));
    }
    if route.access == Access::Admin {
        responses.insert("403".into(), refer("Error"));
    }
    // Every route spends a budget of the guard's, public ones their address's.
    responses.insert("429".into(), refer("RateLimited"));
    responses.insert("default".into(), refer("Error"));
    op.insert("responses".into(), responses.into());
    op.into()
}

/// The shared responses: Berth's JSON error, with the headers that come with a 401 and a 429,
/// and the HTML answers of the pages.
fn responses(error: Schema) -> Value {
    let retry_after = json!({
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "required": true,
            "schema": { "type": "integer", "minimum": 1 },
        },
    });
    let page = json!({ "text/html": { "schema": { "type": "string" } } });
    json!({
        "Error": {
            "description": "An error: 400 malformed, 401 unauthenticated, 403 forbidden, \
                404 not found, 405 method not allowed, 409 conflict, 413 too large, \
                415 not JSON, 422 invalid, 429 rate-limited, 500 server failure, \
                502 engine failure (docs/api.md lists the codes).",
            "content": { "application/json": { "schema": error } },
        },
        "Unauthenticated": {
            "description": "No credentials, or invalid, expired or revoked ones; at login, a \
                wrong username or password.",
            "headers": {
                "WWW-Authenticate": {
                    "description": "`Bearer realm=\"berth\"`.",
                    "required": true,
                    "schema": { "type": "string" },
                },
            },
            "content": { "application/json": { "schema": error } },
        },
        "RateLimited": {
            "description": "A rate limit (`rate_limited`) or a locked account (`account_locked`).",
            "headers": retry_after,
            "content": { "application/json": { "schema": error } },
        },
        "ToLogin": {
            "description": "No session: to the login page, which brings the visitor back.",
            "headers": {
                "Location": {
                    "description": "`/login?next=` and this page's path, percent-encoded.",
                    "required": true,
                    "schema": { "type": "string" },
                },
            },
        },
        "PageError": {
            "description": "A refusal or failure as an HTML page: 400 a malformed id, 404 \
                nothing this visitor may see, 500 a server failure.",
            "content": page,
        },
        "PageRateLimited": {
            "description": "A rate limit, as an HTML page.",
            "headers": retry_after,
            "content": page,
        },
    })
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
            "responses": responses(error),
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
