//! [`OpenApiDocs`]: the OpenAPI 3.1 documents of one [`Web`](crate::web::Web), built from
//! the running plugins and cached until one of them changes.

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex, Weak},
};

use bytes::Bytes;
use http::{HeaderName, Method, StatusCode};
use schemars::{JsonSchema, Schema, SchemaGenerator, generate::SchemaSettings, json_schema};
use serde_json::{Map, Value, json};

use super::operation::{Content, Operation};
use crate::{
    PluginIdentity, Xcore,
    plugin::{ActionSchema, schema::SchemaFn},
    runtime::Instance,
    tenancy::MAX_TENANT_LEN,
    web::{HttpError, admin::ENDPOINTS, prefix::Prefix},
};

/// The OpenAPI version written.
pub(crate) const OPENAPI_VERSION: &str = "3.1.0";

/// The documents of one web layer: `GET {admin}/openapi.json` and
/// `GET {admin}/openapi/<plugin>.json`. Built on the first request after the running plugins
/// changed (boot, stop, start, reload), then served from the cache: a request costs a lookup
/// of each plugin's instance, never a rebuild.
#[derive(Debug)]
pub(crate) struct OpenApiDocs {
    xcore: Xcore,
    admin: Prefix,
    plugins: Prefix,
    /// The tenant header, when the web layer resolves tenants.
    tenant_header: Option<HeaderName>,
    cache: Mutex<Option<Arc<Built>>>,
}

/// The documents built for one set of running instances.
#[derive(Debug)]
struct Built {
    /// Each plugin of the plan, in order: the instance the documents describe (`None` for a
    /// plugin that did not run).
    instances: Vec<Option<Weak<Instance>>>,
    full: Bytes,
    /// The running plugins' documents.
    per_plugin: HashMap<String, Bytes>,
}

impl OpenApiDocs {
    pub(crate) fn new(
        xcore: Xcore,
        admin: Prefix,
        plugins: Prefix,
        tenant_header: Option<HeaderName>,
    ) -> Self {
        Self {
            xcore,
            admin,
            plugins,
            tenant_header,
            cache: Mutex::new(None),
        }
    }

    /// The document of everything: the running plugins' routes and typed actions, and the
    /// admin API.
    pub(crate) fn full(&self) -> Result<Bytes, HttpError> {
        Ok(self.current()?.full.clone())
    }

    /// The document of plugin `name`: 404 `not_found` for a plugin not in the plan, 503
    /// `unavailable` for one that does not run (its routes and actions are those of an
    /// instance).
    pub(crate) fn plugin(&self, name: &str) -> Result<Bytes, HttpError> {
        let built = self.current()?;
        if let Some(doc) = built.per_plugin.get(name) {
            return Ok(doc.clone());
        }
        let known = self
            .xcore
            .shared
            .identities()
            .iter()
            .any(|i| i.name() == name);
        Err(if known {
            HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("plugin `{name}` is not running: its routes and actions are documented while it runs"),
            )
            .public()
        } else {
            HttpError::not_found(format!("no plugin `{name}`"))
        })
    }

    /// The documents for the instances running now: the cached ones if they are the same. A
    /// panic while building (a plugin's hand-written `JsonSchema` or `action_schemas`) is
    /// logged and answered 500 `internal`; the next request tries again.
    fn current(&self) -> Result<Arc<Built>, HttpError> {
        let shared = &self.xcore.shared;
        let running: Vec<(&PluginIdentity, Option<Arc<Instance>>)> = shared
            .identities()
            .iter()
            .map(|identity| (identity, shared.runtime().running(identity.name())))
            .collect();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(built) = cache.as_ref() {
            let same = built.instances.len() == running.len()
                && built
                    .instances
                    .iter()
                    .zip(&running)
                    .all(|(seen, (_, now))| match (seen, now) {
                        (Some(seen), Some(now)) => Weak::ptr_eq(seen, &Arc::downgrade(now)),
                        (None, None) => true,
                        _ => false,
                    });
            if same {
                return Ok(built.clone());
            }
        }
        let built = match std::panic::catch_unwind(AssertUnwindSafe(|| self.build(&running))) {
            Ok(built) => Arc::new(built),
            Err(panic) => {
                let why = crate::call::layers::catch_panic_message(&*panic);
                tracing::error!(panic = %why, "building the OpenAPI document panicked");
                return Err(HttpError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("building the OpenAPI document panicked: {why}"),
                ));
            }
        };
        *cache = Some(built.clone());
        Ok(built)
    }

    fn build(&self, running: &[(&PluginIdentity, Option<Arc<Instance>>)]) -> Built {
        let live: Vec<(&PluginIdentity, &Instance)> = running
            .iter()
            .filter_map(|(identity, instance)| Some((*identity, instance.as_deref()?)))
            .collect();
        let info = json!({
            "title": "xcore",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The plugins' routes and typed actions, and the admin API, of an xcore host.",
        });
        let full = self.document(info, &live, true);
        let per_plugin = live
            .iter()
            .map(|(identity, instance)| {
                let manifest = identity.manifest();
                let info = json!({
                    "title": identity.name(),
                    "version": manifest.version().to_string(),
                    "description": manifest.description(),
                });
                let doc = self.document(info, &[(identity, instance)], false);
                (identity.name().to_owned(), doc)
            })
            .collect();
        Built {
            instances: running
                .iter()
                .map(|(_, instance)| instance.as_ref().map(Arc::downgrade))
                .collect(),
            full,
            per_plugin,
        }
    }

    /// One document: the plugins' routes and actions, and the admin API when `admin`.
    fn document(
        &self,
        info: Value,
        plugins: &[(&PluginIdentity, &Instance)],
        admin: bool,
    ) -> Bytes {
        let mut generator = SchemaSettings::draft2020_12()
            .with(|s| {
                s.definitions_path = "/components/schemas".into();
                s.meta_schema = None;
            })
            .into_generator();
        // Named first: a plugin's type named `Error` becomes `Error2`.
        generator.subschema_for::<ErrorEnvelope>();
        let mut doc = Document {
            generator,
            paths: Map::new(),
            tenant: self.tenant_header.is_some(),
            operation_ids: HashSet::new(),
        };
        let mut tags = Vec::new();
        for (identity, instance) in plugins {
            tags.push(json!({ "name": identity.name(), "description": identity.manifest().description() }));
            self.plugin_paths(&mut doc, identity.name(), instance);
        }
        if admin {
            tags.push(json!({ "name": "admin", "description": "The admin API" }));
            for (method, template) in ENDPOINTS {
                let path = format!("{}{template}", self.admin);
                let op = admin_operation(method, template);
                doc.insert(&path, method, op);
            }
        }
        let mut components = json!({
            "schemas": doc.generator.take_definitions(true),
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The admin token (`app.admin_token`), as `authorization: Bearer <token>`",
                },
            },
        });
        if let Some(header) = &self.tenant_header {
            components["parameters"] = json!({
                "Tenant": {
                    "name": header.as_str(),
                    "in": "header",
                    "required": false,
                    "description": "The tenant of the request (else the host's resolver, the subdomain or the default tenant decide); given twice or invalid, the request is a 400 `invalid_tenant`.",
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_TENANT_LEN,
                        "pattern": "^[a-z0-9_-]+$",
                    },
                },
            });
        }
        let document = json!({
            "openapi": OPENAPI_VERSION,
            "info": info,
            "tags": tags,
            "paths": doc.paths,
            "components": components,
        });
        Bytes::from(serde_json::to_vec(&document).unwrap_or_default())
    }

    /// The routes of `plugin` under `{plugins}/<plugin>`, and its typed actions at
    /// `POST {admin}/ipc/<plugin>/<action>`.
    fn plugin_paths(&self, doc: &mut Document, plugin: &str, instance: &Instance) {
        let mount = format!("{}/{plugin}", self.plugins);
        for endpoint in instance.routes().map(|r| r.endpoints()).unwrap_or_default() {
            let path = match endpoint.path() {
                "" | "/" => mount.clone(),
                path => format!("{mount}{}", openapi_template(path)),
            };
            let op = doc.route_operation(
                plugin,
                endpoint.method(),
                endpoint.path(),
                endpoint.operation(),
            );
            doc.insert(&path, endpoint.method().as_str(), op);
        }
        for action in instance.plugin.action_schemas() {
            let path = format!("{}/ipc/{plugin}/{}", self.admin, action.name());
            let op = doc.action_operation(plugin, &action);
            doc.insert(&path, "POST", op);
        }
    }
}

/// A document being built.
struct Document {
    generator: SchemaGenerator,
    paths: Map<String, Value>,
    tenant: bool,
    /// The `operationId`s given so far: each is unique in the document.
    operation_ids: HashSet<String>,
}

impl Document {
    /// Adds the operation at `path` for `method` (the first one declared wins; methods OpenAPI
    /// 3.1 has no field for are left out). Its `operationId` is made unique (`_2`, `_3`, …
    /// appended to one already taken).
    fn insert(&mut self, path: &str, method: &str, mut operation: Value) {
        let method = method.to_ascii_lowercase();
        if !matches!(
            method.as_str(),
            "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace"
        ) {
            return;
        }
        let item = self
            .paths
            .entry(path.to_owned())
            .or_insert_with(|| json!({}));
        let Some(item) = item.as_object_mut() else {
            return;
        };
        if item.contains_key(&method) {
            return;
        }
        if let Some(id) = operation["operationId"].as_str().map(str::to_owned) {
            let mut unique = id.clone();
            let mut n = 2;
            while self.operation_ids.contains(&unique) {
                unique = format!("{id}_{n}");
                n += 1;
            }
            operation["operationId"] = json!(unique);
            self.operation_ids.insert(unique);
        }
        item.insert(method, operation);
    }

    fn schema(&mut self, schema: Option<SchemaFn>) -> Value {
        schema.map_or_else(|| json!({}), |f| f(&mut self.generator).to_value())
    }

    /// The tenant header (when tenants are resolved) and the path parameters of `template`.
    fn parameters(&self, template: &str) -> Vec<Value> {
        let mut parameters = Vec::new();
        if self.tenant {
            parameters.push(json!({ "$ref": "#/components/parameters/Tenant" }));
        }
        for (name, rest) in path_parameters(template) {
            let description = if rest {
                "The rest of the path (one or more segments)"
            } else {
                "One path segment"
            };
            parameters.push(json!({
                "name": name,
                "in": "path",
                "required": true,
                "description": description,
                "schema": { "type": "string" },
            }));
        }
        parameters
    }

    fn route_operation(
        &mut self,
        plugin: &str,
        method: &Method,
        template: &str,
        doc: Option<&Operation>,
    ) -> Value {
        let default_id = {
            let segments: Vec<&str> = template
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| s.trim_matches(|c| matches!(c, '{' | '}' | '*')))
                .collect();
            format!(
                "{plugin}.{}.{}",
                method.as_str().to_ascii_lowercase(),
                if segments.is_empty() {
                    "root".to_owned()
                } else {
                    segments.join("_")
                }
            )
        };
        let mut op = json!({
            "tags": [plugin],
            "parameters": self.parameters(template),
        });
        let Some(doc) = doc else {
            op["operationId"] = json!(default_id);
            op["responses"] = json!({
                "default": { "description": "The route's response (not documented), or the error envelope" },
            });
            return op;
        };
        op["operationId"] = json!(doc.operation_id.as_deref().unwrap_or(&default_id));
        if let Some(summary) = &doc.summary {
            op["summary"] = json!(summary);
        }
        if let Some(description) = &doc.description {
            op["description"] = json!(description);
        }
        if let Some(tags) = op["tags"].as_array_mut() {
            tags.extend(doc.tags.iter().map(|t| json!(t)));
        }
        if doc.deprecated {
            op["deprecated"] = json!(true);
        }
        if let Some(body) = &doc.body {
            let schema = self.schema(body.get());
            op["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": schema } },
            });
        }
        let mut responses = Map::new();
        for response in &doc.responses {
            let description = response
                .description
                .clone()
                .unwrap_or_else(|| Cow::Borrowed(reason(response.status)));
            let mut value = json!({ "description": description });
            match &response.content {
                Content::Empty => {}
                Content::Json(schema) => {
                    let schema = self.schema(schema.get());
                    value["content"] = json!({ "application/json": { "schema": schema } });
                }
                Content::Error => value["content"] = error_content(),
            }
            responses.insert(response.status.to_string(), value);
        }
        responses.insert(
            "default".to_owned(),
            error_response("An error: the error envelope"),
        );
        op["responses"] = Value::Object(responses);
        op
    }

    /// `POST {admin}/ipc/<plugin>/<action>` for one typed action.
    fn action_operation(&mut self, plugin: &str, action: &ActionSchema) -> Value {
        let result = self.schema(action.output());
        let mut op = json!({
            "tags": [plugin],
            "operationId": format!("ipc.{plugin}.{}", action.name()),
            "summary": format!("The `{}` action of `{plugin}`", action.name()),
            "security": [{ "adminToken": [] }],
            "parameters": self.parameters(""),
            "responses": {
                "200": {
                    "description": "The action's result",
                    "content": { "application/json": { "schema": {
                        "type": "object",
                        "required": ["status", "plugin", "action", "result"],
                        "properties": {
                            "status": { "const": "ok" },
                            "plugin": { "const": plugin },
                            "action": { "const": action.name() },
                            "result": result,
                        },
                    } } },
                },
                "401": error_response("No or a wrong admin token"),
                "422": error_response("The payload does not fit the action's input"),
                "default": error_response("The call's error: its code and status"),
            },
        });
        if !action.doc().is_empty() {
            op["description"] = json!(action.doc());
        }
        if action.has_input() {
            let input = self.schema(action.input());
            op["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": input } },
            });
        }
        op
    }
}

/// An axum-style template as an OpenAPI path: `{*rest}` becomes `{rest}`.
fn openapi_template(template: &str) -> String {
    template.replace("{*", "{")
}

/// The parameters of a template, and whether each takes the rest of the path.
fn path_parameters(template: &str) -> Vec<(&str, bool)> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let name = &rest[start + 1..start + len];
        match name.strip_prefix('*') {
            Some(name) if !name.is_empty() => found.push((name, true)),
            None if !name.is_empty() => found.push((name, false)),
            _ => {}
        }
        rest = &rest[start + len + 1..];
    }
    found
}

fn reason(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Response")
}

fn error_content() -> Value {
    json!({ "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } })
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": error_content() })
}

/// `{"status":"ok","result":…}`.
fn ok_envelope(result: Value) -> Value {
    json!({
        "type": "object",
        "required": ["status", "result"],
        "properties": { "status": { "const": "ok" }, "result": result },
    })
}

/// The admin API's operation at `{admin}{template}`.
fn admin_operation(method: &str, template: &str) -> Value {
    let json_ok = |description: &str, schema: Value| json!({ "description": description, "content": { "application/json": { "schema": schema } } });
    let object = json!({ "type": "object" });
    let (summary, token, ok, errors): (&str, bool, Value, &[(u16, &str)]) = match (method, template)
    {
        ("GET", "") => (
            "The admin endpoints",
            true,
            json_ok(
                "The endpoints",
                ok_envelope(json!({
                    "type": "object",
                    "properties": { "endpoints": { "type": "array", "items": {
                        "type": "object",
                        "properties": { "method": { "type": "string" }, "path": { "type": "string" } },
                    } } },
                })),
            ),
            &[],
        ),
        ("GET", "/health/live") => (
            "Liveness",
            false,
            json_ok(
                "Live",
                ok_envelope(
                    json!({ "type": "object", "properties": { "live": { "const": true } } }),
                ),
            ),
            &[],
        ),
        ("GET", "/health/ready") => (
            "Readiness: ready or not, and each node's status name",
            false,
            json_ok("Ready (not unhealthy)", ok_envelope(object.clone())),
            &[(503, "Not ready: the same view in `details`")],
        ),
        ("GET", "/health") => (
            "The health report: every node's status, message and timing",
            true,
            json_ok("The report", ok_envelope(object.clone())),
            &[],
        ),
        ("GET", "/plugins") => (
            "Every plugin: name, live state, reason, version, wave, routes",
            true,
            json_ok(
                "The plugins",
                ok_envelope(json!({ "type": "array", "items": { "type": "object" } })),
            ),
            &[],
        ),
        ("GET", "/boot") => (
            "The boot report",
            true,
            json_ok("The report", ok_envelope(object.clone())),
            &[(503, "Not booted")],
        ),
        ("GET", "/metrics") => (
            "The Prometheus text of the metrics",
            true,
            json!({ "description": "The metrics", "content": { "text/plain": { "schema": { "type": "string" } } } }),
            &[(404, "No Prometheus exporter")],
        ),
        ("GET", "/openapi.json") => (
            "This document: the plugins' routes and typed actions, and the admin API",
            true,
            json_ok("The OpenAPI 3.1 document", object.clone()),
            &[],
        ),
        ("GET", "/openapi/{plugin}.json") => (
            "A plugin's document: its routes and typed actions",
            true,
            json_ok("The OpenAPI 3.1 document", object.clone()),
            &[(404, "No such plugin"), (503, "The plugin is not running")],
        ),
        ("POST", "/ipc/{plugin}/{action}") => (
            "Calls a plugin's action as the host, the JSON body as payload (`null` when empty)",
            true,
            json_ok(
                "The call's result",
                json!({
                    "type": "object",
                    "required": ["status", "plugin", "action", "result"],
                    "properties": {
                        "status": { "const": "ok" },
                        "plugin": { "type": "string" },
                        "action": { "type": "string" },
                        "result": {},
                    },
                }),
            ),
            &[
                (404, "No such plugin or action"),
                (422, "Invalid JSON, or a payload that does not fit"),
            ],
        ),
        ("POST", "/plugins/{plugin}/{action}") => (
            "Stops, starts, reloads or restarts a plugin",
            true,
            json_ok("The change's report", ok_envelope(object.clone())),
            &[
                (404, "No such plugin"),
                (409, "The plugin's state does not allow it"),
                (503, "The fresh instance failed"),
            ],
        ),
        _ => (
            "An admin endpoint",
            true,
            json!({ "description": "The answer" }),
            &[],
        ),
    };
    let mut responses = Map::new();
    responses.insert("200".to_owned(), ok);
    if token {
        responses.insert(
            "401".to_owned(),
            error_response("No or a wrong admin token"),
        );
    }
    for (status, description) in errors {
        responses.insert(status.to_string(), error_response(description));
    }
    responses.insert(
        "default".to_owned(),
        error_response("An error: the error envelope"),
    );
    let mut parameters: Vec<Value> = path_parameters(template)
        .into_iter()
        .map(|(name, _)| {
            json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } })
        })
        .collect();
    if template == "/plugins/{plugin}/{action}" {
        parameters[1]["schema"] = json!({ "enum": ["stop", "start", "reload", "restart"] });
    }
    let id: String = format!("admin.{}.{}", method.to_ascii_lowercase(), template)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut op = json!({
        "tags": ["admin"],
        "operationId": id,
        "summary": summary,
        "security": if token { json!([{ "adminToken": [] }]) } else { json!([]) },
        "responses": responses,
    });
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    if method == "POST" && template.starts_with("/ipc/") {
        op["requestBody"] = json!({
            "required": false,
            "content": { "application/json": { "schema": {} } },
        });
    }
    op
}

/// The error envelope every error of the web layer is answered with
/// (`#/components/schemas/Error`).
struct ErrorEnvelope;

impl JsonSchema for ErrorEnvelope {
    fn schema_name() -> Cow<'static, str> {
        "Error".into()
    }

    fn schema_id() -> Cow<'static, str> {
        "xcore::web::HttpError".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "title": "Error",
            "description": "The error envelope: a stable code (`not_found`, `invalid_payload`, `conflict`, …), a message, and details (`errors` of a 422 with each field's path; `error_id` of a 5xx, whose cause is logged, never sent).",
            "type": "object",
            "required": ["status", "code", "message"],
            "properties": {
                "status": { "const": "error" },
                "code": { "type": "string" },
                "message": { "type": "string" },
                "details": {},
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_become_openapi_paths() {
        assert_eq!(openapi_template("/files/{*path}"), "/files/{path}");
        assert_eq!(
            path_parameters("/users/{id}/files/{*path}"),
            [("id", false), ("path", true)]
        );
        assert_eq!(
            path_parameters("/openapi/{plugin}.json"),
            [("plugin", false)]
        );
        assert!(path_parameters("/plain").is_empty());
        assert!(path_parameters("/broken/{").is_empty());
    }

    #[test]
    fn operation_ids_are_unique() {
        let mut doc = Document {
            generator: SchemaGenerator::default(),
            paths: Map::new(),
            tenant: false,
            operation_ids: HashSet::new(),
        };
        let op = || json!({ "operationId": "p.get.a_b", "responses": {} });
        doc.insert("/plugin/p/a_b", "GET", op());
        doc.insert("/plugin/p/a/b", "GET", op());
        doc.insert("/plugin/p/a/b", "GET", op()); // the first declared wins
        doc.insert("/plugin/p/a/b", "CONNECT", op()); // no field in OpenAPI 3.1
        assert_eq!(
            doc.paths["/plugin/p/a_b"]["get"]["operationId"],
            "p.get.a_b"
        );
        assert_eq!(
            doc.paths["/plugin/p/a/b"]["get"]["operationId"],
            "p.get.a_b_2"
        );
        assert_eq!(doc.paths["/plugin/p/a/b"].as_object().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn documents_are_built_once_per_set_of_instances() {
        let xcore = Xcore::builder().without_registered().build().unwrap();
        xcore.boot().await.unwrap();
        let docs = OpenApiDocs::new(
            xcore.clone(),
            Prefix::new("/xcore").unwrap(),
            Prefix::new("/plugin").unwrap(),
            None,
        );
        let first = docs.current().unwrap();
        let second = docs.current().unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        let doc: Value = serde_json::from_slice(&docs.full().unwrap()).unwrap();
        assert_eq!(doc["openapi"], OPENAPI_VERSION);
        assert!(doc["paths"]["/xcore/plugins"]["get"].is_object());
        assert_eq!(docs.plugin("nobody").unwrap_err().status(), 404);
        xcore.shutdown().await;
    }

    #[test]
    fn every_admin_endpoint_is_documented() {
        for (method, template) in ENDPOINTS {
            let op = admin_operation(method, template);
            assert_ne!(op["summary"], "An admin endpoint", "{method} {template}");
            let public = matches!(template, "/health/live" | "/health/ready");
            assert_eq!(op["security"] == json!([]), public, "{method} {template}");
        }
    }
}
