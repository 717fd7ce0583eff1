//! The OpenAPI 3.1 document of the user_manager example, fetched over real loopback HTTP and
//! validated twice: against the official OpenAPI 3.1 JSON Schema (2022-10-07, vendored in
//! `tests/fixtures/`) with the `jsonschema` crate, and parsed into the `oas3` model.

#[path = "../examples/user_manager/plugin.rs"]
#[allow(dead_code)]
mod plugin;
mod support;

use std::net::SocketAddr;

use http::Method;
use oas3::spec::{ObjectOrReference, ParameterIn, Schema};
use serde::Deserialize;
use serde_json::{Value, json};
use xcore::{Xcore, config::Config, prelude::*};
use xcore_testkit::TestApp;

use support::{Adapter, Reply, send};

const TOKEN: &str = "an-openapi-test-admin-token";
const REGISTER: &str = "/plugin/user_manager/v2/register";

fn config() -> Config {
    plugin::embedded_config()
}

async fn start() -> (Xcore, SocketAddr) {
    let xcore = TestApp::builder()
        .plugins(["user_manager"])
        .configure(|b| b.config(config()))
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    let web = xcore
        .web()
        .config(&config())
        .admin_token(TOKEN)
        .build()
        .unwrap();
    let addr = support::serve(Adapter::Axum, web).await;
    (xcore, addr)
}

async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    send(addr, Method::GET, path, &headers, "").await
}

/// The official schema's errors for `document` (formats checked too).
fn schema_errors(document: &Value) -> Vec<String> {
    let schema: Value =
        serde_json::from_str(include_str!("fixtures/openapi-3.1-schema-2022-10-07.json")).unwrap();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    validator
        .iter_errors(document)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// Checks `document` with both validators and returns the `oas3` model.
fn validate(text: &str) -> oas3::Spec {
    let document: Value = serde_json::from_str(text).unwrap();
    let errors = schema_errors(&document);
    assert!(errors.is_empty(), "{errors:#?}");
    // Every schema of the components is itself a valid JSON Schema 2020-12.
    for (name, schema) in document["components"]["schemas"].as_object().unwrap() {
        let mut schema = schema.clone();
        if let Some(object) = schema.as_object_mut() {
            object.insert(
                "$schema".into(),
                json!("https://json-schema.org/draft/2020-12/schema"),
            );
        }
        assert!(jsonschema::meta::is_valid(&schema), "{name}: {schema}");
    }
    let spec = oas3::from_json(text).unwrap();
    assert_eq!(spec.openapi, "3.1.0");
    spec
}

fn properties(spec: &oas3::Spec, schema: &Schema) -> Vec<String> {
    match schema.resolve(spec).unwrap() {
        Schema::Object(object) => match *object {
            ObjectOrReference::Object(object) => {
                let mut names: Vec<String> = object.properties.keys().cloned().collect();
                names.sort();
                names
            }
            ObjectOrReference::Ref { .. } => panic!("unresolved"),
        },
        Schema::Boolean(_) => Vec::new(),
    }
}

fn json_schema_ref(schema: &Value) -> &str {
    schema["$ref"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_document_is_valid_openapi_3_1() {
    let (xcore, addr) = start().await;
    let reply = get(addr, "/xcore/openapi.json", Some(TOKEN)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    assert_eq!(reply.headers["content-type"], "application/json");
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    let spec = validate(&text);
    let raw: Value = serde_json::from_str(&text).unwrap();

    // The register route: body, 201/409/422, the tenant header, the error envelope.
    let paths = spec.paths.as_ref().unwrap();
    let register = paths[REGISTER].post.as_ref().unwrap();
    assert_eq!(register.tags, ["user_manager"]);
    let body = register
        .request_body
        .as_ref()
        .unwrap()
        .resolve(&spec)
        .unwrap();
    assert_eq!(body.required, Some(true));
    let body_schema = body.content["application/json"].schema.as_ref().unwrap();
    assert_eq!(properties(&spec, body_schema), ["email", "username"]);
    let user_create = &raw["components"]["schemas"]["UserCreate"];
    assert_eq!(user_create["required"], json!(["username", "email"]));
    assert_eq!(user_create["properties"]["username"]["minLength"], 3);
    assert_eq!(user_create["properties"]["username"]["maxLength"], 50);
    assert_eq!(user_create["properties"]["email"]["format"], "email");
    let responses = register.responses.as_ref().unwrap();
    let statuses: Vec<&str> = responses.keys().map(String::as_str).collect();
    assert_eq!(statuses, ["201", "409", "422", "default"]);
    let created = responses["201"].resolve(&spec).unwrap();
    let created_schema = created.content["application/json"].schema.as_ref().unwrap();
    assert_eq!(
        properties(&spec, created_schema),
        ["session", "status", "user_id"]
    );
    let raw_register = &raw["paths"][REGISTER]["post"];
    for status in ["409", "422", "default"] {
        let schema = &raw_register["responses"][status]["content"]["application/json"]["schema"];
        assert_eq!(
            json_schema_ref(schema),
            "#/components/schemas/Error",
            "{status}"
        );
    }
    let error = &raw["components"]["schemas"]["Error"];
    assert_eq!(error["required"], json!(["status", "code", "message"]));
    let tenant = register.parameters[0].resolve(&spec).unwrap();
    assert_eq!(tenant.name, "X-Tenant-ID".to_ascii_lowercase());
    assert_eq!(tenant.location, ParameterIn::Header);
    assert_eq!(tenant.required, Some(false));

    // The other route, and the typed actions at the IPC path with their output schemas.
    let count = paths["/plugin/user_manager/v2/users/count"]
        .get
        .as_ref()
        .unwrap();
    let ok = count.responses.as_ref().unwrap()["200"]
        .resolve(&spec)
        .unwrap();
    let count_schema = ok.content["application/json"].schema.as_ref().unwrap();
    assert_eq!(properties(&spec, count_schema), ["count"]);
    let get_count = &raw["paths"]["/xcore/ipc/user_manager/get_count"]["post"];
    assert_eq!(
        get_count["description"],
        "How many users the tenant of the call has."
    );
    assert_eq!(get_count["security"], json!([{"adminToken": []}]));
    assert!(get_count.get("requestBody").is_none(), "{get_count}");
    let result = &get_count["responses"]["200"]["content"]["application/json"]["schema"]["properties"]
        ["result"];
    assert_eq!(json_schema_ref(result), "#/components/schemas/UserCount");
    let sent = &raw["paths"]["/xcore/ipc/user_manager/sent_emails"]["post"]["responses"]["200"]["content"]
        ["application/json"]["schema"]["properties"]["result"];
    assert_eq!(sent, &json!({"type": "array", "items": {"type": "string"}}));

    // The admin API itself, with its auth rule.
    let admin = &raw["paths"];
    assert_eq!(
        admin["/xcore/plugins"]["get"]["security"],
        json!([{"adminToken": []}])
    );
    assert_eq!(admin["/xcore/health/live"]["get"]["security"], json!([]));
    assert!(admin["/xcore/openapi/{plugin}.json"]["get"].is_object());
    assert!(admin["/xcore/ipc/{plugin}/{action}"]["post"].is_object());

    // The document is built once: the next request answers the same bytes.
    let again = get(addr, "/xcore/openapi.json", Some(TOKEN)).await;
    assert_eq!(again.body, reply.body);
    xcore.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validator_rejects_a_broken_document() {
    let (xcore, addr) = start().await;
    let reply = get(addr, "/xcore/openapi.json", Some(TOKEN)).await;
    let mut document = reply.json();
    assert!(schema_errors(&document).is_empty());
    // A response without its required description, and a version of another major.
    document["paths"][REGISTER]["post"]["responses"]["201"]
        .as_object_mut()
        .unwrap()
        .remove("description");
    assert!(!schema_errors(&document).is_empty());
    document["openapi"] = json!("3.0.3");
    assert!(
        schema_errors(&document).len() >= 2,
        "{:?}",
        schema_errors(&document)
    );
    xcore.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_plugins_document() {
    let (xcore, addr) = start().await;
    let reply = get(addr, "/xcore/openapi/user_manager.json", Some(TOKEN)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    let spec = validate(&text);
    assert_eq!(spec.info.title, "user_manager");
    assert_eq!(spec.info.version, "2.5.0");
    let paths = spec.paths.as_ref().unwrap();
    let mut listed: Vec<&str> = paths.keys().map(String::as_str).collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        [
            REGISTER,
            "/plugin/user_manager/v2/users/count",
            "/xcore/ipc/user_manager/get_count",
            "/xcore/ipc/user_manager/sent_emails",
        ]
    );

    // A plugin not in the plan is a 404; a stopped one a 503, back once it runs again.
    let unknown = get(addr, "/xcore/openapi/nobody.json", Some(TOKEN)).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["code"], "not_found");
    xcore.stop_plugin("user_manager").await.unwrap();
    let stopped = get(addr, "/xcore/openapi/user_manager.json", Some(TOKEN)).await;
    assert_eq!(stopped.status, 503, "{:?}", stopped.json());
    assert_eq!(stopped.json()["code"], "unavailable");
    let full = get(addr, "/xcore/openapi.json", Some(TOKEN)).await.json();
    assert!(full["paths"].get(REGISTER).is_none());
    assert!(full["paths"]["/xcore/plugins"].is_object());
    xcore.start_plugin("user_manager").await.unwrap();
    let back = get(addr, "/xcore/openapi/user_manager.json", Some(TOKEN)).await;
    assert_eq!(back.status, 200);
    assert_eq!(back.body, reply.body);
    xcore.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documents_need_the_admin_token() {
    let (xcore, addr) = start().await;
    for path in ["/xcore/openapi.json", "/xcore/openapi/user_manager.json"] {
        for token in [None, Some("a-wrong-token")] {
            let reply = get(addr, path, token).await;
            assert_eq!(reply.status, 401, "{path} {token:?}");
            assert_eq!(reply.json()["code"], "unauthorized");
        }
        let post = send(
            addr,
            Method::POST,
            path,
            &[("authorization", format!("Bearer {TOKEN}").as_str())],
            "",
        )
        .await;
        assert_eq!(post.status, 405, "{path}");
        assert_eq!(post.headers["allow"], "GET");
    }
    xcore.shutdown().await;
}

/// A plugin whose typed actions take inputs: one with a schema, one without.
#[derive(Default)]
#[plugin(
    name = "typed_actions",
    version = "1.2.3",
    description = "Typed actions"
)]
struct TypedActions;

#[async_trait]
impl Plugin for TypedActions {}

/// Two numbers.
#[derive(Deserialize, schemars::JsonSchema)]
struct Add {
    a: i64,
    b: i64,
}

/// A type without `JsonSchema`: documented as any JSON.
#[derive(Deserialize)]
struct Opaque {
    x: u8,
}

#[actions]
impl TypedActions {
    /// Adds two numbers.
    #[action]
    fn add(&self, input: Add) -> Result<i64, CallError> {
        Ok(input.a + input.b)
    }

    #[action]
    fn opaque(&self, input: Opaque) -> Result<u8, CallError> {
        Ok(input.x)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_actions_document_their_inputs() {
    let xcore = TestApp::builder()
        .plugins(["typed_actions"])
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    let web = xcore.web().admin_token(TOKEN).build().unwrap();
    let addr = support::serve(Adapter::Hyper, web).await;
    let reply = get(addr, "/xcore/openapi/typed_actions.json", Some(TOKEN)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    let spec = validate(&text);
    assert_eq!(spec.info.version, "1.2.3");
    let raw: Value = serde_json::from_str(&text).unwrap();
    let add = &raw["paths"]["/xcore/ipc/typed_actions/add"]["post"];
    assert_eq!(add["description"], "Adds two numbers.");
    let input = &add["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(json_schema_ref(input), "#/components/schemas/Add");
    assert_eq!(
        raw["components"]["schemas"]["Add"]["required"],
        json!(["a", "b"])
    );
    let result =
        &add["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["result"];
    assert_eq!(result["type"], "integer");
    let opaque = &raw["paths"]["/xcore/ipc/typed_actions/opaque"]["post"];
    assert_eq!(
        opaque["requestBody"]["content"]["application/json"]["schema"],
        json!({})
    );
    // Without tenancy, no tenant header.
    assert!(
        raw["components"].get("parameters").is_none(),
        "{}",
        raw["components"]
    );
    assert_eq!(add["parameters"], json!([]));

    // The documented path is the one that answers.
    let call = send(
        addr,
        Method::POST,
        "/xcore/ipc/typed_actions/add",
        &[
            ("authorization", format!("Bearer {TOKEN}").as_str()),
            ("content-type", "application/json"),
        ],
        r#"{"a": 2, "b": 40}"#,
    )
    .await;
    assert_eq!(call.status, 200, "{:?}", call.json());
    assert_eq!(call.json()["result"], 42);
    xcore.shutdown().await;
}

/// A plugin whose hand-written `action_schemas` panics.
#[derive(Default)]
#[plugin(name = "panicky_schemas", version = "1.0.0")]
struct PanickySchemas;

#[async_trait]
impl Plugin for PanickySchemas {}

#[async_trait]
impl Actions for PanickySchemas {
    fn action_schemas(&self) -> Vec<xcore::plugin::ActionSchema> {
        panic!("no schemas today")
    }

    async fn handle(
        &self,
        action: &str,
        _payload: Value,
        _cx: &CallContext,
    ) -> Result<Value, CallError> {
        Err(CallError::unknown_action(action, self.action_names()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_while_building_is_a_500_and_the_server_goes_on() {
    let xcore = TestApp::builder()
        .plugins(["panicky_schemas"])
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    let web = xcore.web().admin_token(TOKEN).build().unwrap();
    let addr = support::serve(Adapter::Axum, web).await;
    for _ in 0..2 {
        let reply = get(addr, "/xcore/openapi.json", Some(TOKEN)).await;
        assert_eq!(reply.status, 500);
        let body = reply.json();
        assert_eq!(body["code"], "internal");
        assert!(body["details"]["error_id"].is_string(), "{body}");
        assert!(!reply.body.windows(5).any(|w| w == b"today"), "{body}");
    }
    let plugins = get(addr, "/xcore/plugins", Some(TOKEN)).await;
    assert_eq!(plugins.status, 200);
    xcore.shutdown().await;
}
