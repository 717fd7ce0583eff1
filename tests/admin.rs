//! The admin API over real loopback sockets, through the axum, hyper and actix adapters:
//! the bearer token, calls, health, listings, and plugins that try to shadow it.

use std::{net::SocketAddr, time::Duration};

use axum::{Router, routing::get};
use http::{Method, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};
use xcore::{
    Actions, CallContext, CallError, Health, Manifest, Plugin, PluginContext, PluginError, Xcore,
    async_trait, plugin::decode_input, web::Routes,
};
use xcore_testkit::FakeService;

mod support;

use support::{Adapter, Reply, send, serve, serve_all, tenancy_on};

const TOKEN: &str = "4f9c2b7e-admin-token-for-tests";

// ---------------------------------------------------------------------------------------------
// Plugins.

/// `shop`: `echo` (any payload), `add` (typed input), `tenant` (the caller's tenant).
struct Shop;

#[derive(Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

#[async_trait]
impl Actions for Shop {
    async fn handle(
        &self,
        action: &str,
        payload: Value,
        cx: &CallContext,
    ) -> Result<Value, CallError> {
        match action {
            "echo" => Ok(payload),
            "add" => {
                let Add { a, b } = decode_input(payload)?;
                Ok(json!(a + b))
            }
            "tenant" => Ok(json!(cx.tenant().as_str())),
            other => Err(CallError::unknown_action(other, &["echo", "add", "tenant"])),
        }
    }
}

#[async_trait]
impl Plugin for Shop {
    fn routes(&self, _ctx: &PluginContext) -> Option<Routes> {
        let router = Router::new().route("/hello", get(|| async { "hello" }));
        Some(Routes::from_axum(router).endpoint(Method::GET, "/hello"))
    }
}

/// A plugin whose name and routes imitate the admin API: `xcore` or `admin`, answering
/// every path (and the actions `plugins`, `reload`) with its own name.
struct Impostor(&'static str);

#[async_trait]
impl Actions for Impostor {
    async fn handle(
        &self,
        action: &str,
        _payload: Value,
        _cx: &CallContext,
    ) -> Result<Value, CallError> {
        Ok(json!({ "impostor": self.0, "action": action }))
    }
}

#[async_trait]
impl Plugin for Impostor {
    fn routes(&self, _ctx: &PluginContext) -> Option<Routes> {
        let name = self.0;
        let answer = move || async move { format!("impostor {name}") };
        let router = Router::new()
            .route("/plugins", get(answer))
            .route("/health/live", get(answer))
            .route("/{*any}", get(answer));
        Some(Routes::from_axum(router).endpoint(Method::GET, "/plugins"))
    }
}

/// `broken`: fails to start.
struct Broken;

#[async_trait]
impl Actions for Broken {
    async fn handle(
        &self,
        action: &str,
        _payload: Value,
        _cx: &CallContext,
    ) -> Result<Value, CallError> {
        Err(CallError::unknown_action(action, &[]))
    }
}

#[async_trait]
impl Plugin for Broken {
    async fn on_start(&self, _ctx: &PluginContext) -> Result<(), PluginError> {
        Err(PluginError::msg("no license"))
    }
}

fn manifest(name: &str, version: &str) -> Manifest {
    Manifest::builder(name, version)
        .build()
        .expect("valid manifest")
}

fn xcore() -> Xcore {
    Xcore::builder()
        .without_registered()
        .start_timeout(Duration::from_secs(5))
        .service(FakeService::new("db"))
        .plugin(
            Manifest::builder("shop", "2.5.0")
                .services(["db"])
                .build()
                .unwrap(),
            Shop,
        )
        .plugin(manifest("xcore", "0.0.1"), Impostor("xcore"))
        .plugin(manifest("admin", "0.0.1"), Impostor("admin"))
        .plugin(manifest("broken", "1.0.0"), Broken)
        .build()
        .expect("build")
}

async fn booted() -> Xcore {
    let xcore = xcore();
    xcore.boot().await.expect("boot");
    xcore
}

// ---------------------------------------------------------------------------------------------
// Servers and a client: tests/support.

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

async fn admin_get(addr: SocketAddr, path: &str) -> Reply {
    send(addr, Method::GET, path, &[("authorization", &bearer())], "").await
}

async fn ipc(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let auth = bearer();
    let mut all = vec![("authorization", auth.as_str())];
    all.extend_from_slice(headers);
    send(addr, Method::POST, path, &all, body).await
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_a_wrong_token_is_401() {
    let xcore = booted().await;
    let web = xcore.web().admin_token(TOKEN).build().unwrap();
    for (adapter, addr) in serve_all(&web).await {
        let targets = [
            (Method::GET, "/xcore"),
            (Method::GET, "/xcore/plugins"),
            (Method::GET, "/xcore/boot"),
            (Method::POST, "/xcore/ipc/shop/echo"),
            (Method::GET, "/xcore/nothing-here"),
        ];
        for (method, path) in targets {
            let wrong = format!("Bearer {TOKEN}x");
            for headers in [
                vec![],
                vec![("authorization", wrong.as_str())],
                vec![("authorization", TOKEN)],
            ] {
                let reply = send(addr, method.clone(), path, &headers, "{}").await;
                assert_eq!(
                    reply.status,
                    StatusCode::UNAUTHORIZED,
                    "{adapter:?} {method} {path} {headers:?}"
                );
                assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer");
                let env = reply.json();
                assert_eq!(
                    (env["status"].as_str(), env["code"].as_str()),
                    (Some("error"), Some("unauthorized"))
                );
            }
        }
        let ok = admin_get(addr, "/xcore/plugins").await;
        assert_eq!(ok.status, StatusCode::OK, "{adapter:?}");
        let unknown = admin_get(addr, "/xcore/nothing-here").await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{adapter:?}");
    }

    // No token configured: token access is disabled, health still answers.
    let disabled = xcore.web().build().unwrap();
    let addr = serve(Adapter::Hyper, disabled).await;
    let reply = admin_get(addr, "/xcore/plugins").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("disabled")
    );
    assert_eq!(
        send(addr, Method::GET, "/xcore/health/live", &[], "")
            .await
            .status,
        StatusCode::OK
    );
    xcore.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipc_calls_a_plugin_and_answers_its_envelope() {
    let xcore = booted().await;
    let web = xcore
        .web()
        .admin_token(TOKEN)
        .tenancy(&tenancy_on())
        .build()
        .unwrap();
    for (adapter, addr) in serve_all(&web).await {
        let reply = ipc(
            addr,
            "/xcore/ipc/shop/echo",
            &[],
            r#"{"payload": {"a": 1}}"#,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{adapter:?}");
        assert_eq!(reply.headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            reply.json(),
            json!({"status": "ok", "plugin": "shop", "action": "echo", "result": {"payload": {"a": 1}}})
        );
        let sum = ipc(addr, "/xcore/ipc/shop/add", &[], r#"{"a": 2, "b": 3}"#).await;
        assert_eq!(sum.json()["result"], 5, "{adapter:?}");
        let empty = ipc(addr, "/xcore/ipc/shop/echo", &[], "").await;
        assert_eq!(empty.json()["result"], Value::Null, "{adapter:?}");

        let cases = [
            (
                "/xcore/ipc/nobody/echo",
                "{}",
                StatusCode::NOT_FOUND,
                "not_found",
            ),
            (
                "/xcore/ipc/shop/nope",
                "{}",
                StatusCode::NOT_FOUND,
                "unknown_action",
            ),
            (
                "/xcore/ipc/shop/add",
                r#"{"a": "two", "b": 3}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_payload",
            ),
            (
                "/xcore/ipc/shop/add",
                "{not json",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_payload",
            ),
            (
                "/xcore/ipc/broken/anything",
                "{}",
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
            ),
            ("/xcore/ipc/shop", "{}", StatusCode::NOT_FOUND, "not_found"),
        ];
        for (path, body, status, code) in cases {
            let reply = ipc(addr, path, &[], body).await;
            assert_eq!(
                reply.status, status,
                "{adapter:?} {path} {body}: {:?}",
                reply.body
            );
            assert_eq!(reply.json()["status"], "error");
            assert_eq!(reply.json()["code"], code, "{adapter:?} {path}");
        }
        let typed = ipc(addr, "/xcore/ipc/shop/add", &[], r#"{"a": "two", "b": 3}"#).await;
        assert_eq!(typed.json()["details"]["errors"][0]["path"], "a");

        // The request's tenant is the call's.
        let tenant = ipc(
            addr,
            "/xcore/ipc/shop/tenant",
            &[("X-Tenant-ID", "acme")],
            "",
        )
        .await;
        assert_eq!(tenant.json()["result"], "acme", "{adapter:?}");
        let bad = ipc(
            addr,
            "/xcore/ipc/shop/tenant",
            &[("X-Tenant-ID", "ACME")],
            "",
        )
        .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert_eq!(bad.json()["code"], "invalid_tenant");

        // Calls are POST only.
        let get = admin_get(addr, "/xcore/ipc/shop/echo").await;
        assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED, "{adapter:?}");
        assert_eq!(get.headers[header::ALLOW], "POST");
    }
    xcore.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints_need_no_token_and_ready_follows_health() {
    let xcore = booted().await;
    let web = xcore.web().admin_token(TOKEN).build().unwrap();
    let servers = serve_all(&web).await;
    for &(adapter, addr) in &servers {
        let live = send(addr, Method::GET, "/xcore/health/live", &[], "").await;
        assert_eq!(live.status, StatusCode::OK, "{adapter:?}");
        assert_eq!(
            live.json(),
            json!({"status": "ok", "result": {"live": true}})
        );
        let ready = send(addr, Method::GET, "/xcore/health/ready", &[], "").await;
        // A failed plugin degrades health; degraded is still ready.
        assert_eq!(
            ready.status,
            StatusCode::OK,
            "{adapter:?}: {:?}",
            ready.body
        );
        assert_eq!(ready.json()["result"]["status"], "degraded");
        let nodes = ready.json()["result"]["nodes"].as_array().unwrap().clone();
        assert!(
            nodes
                .iter()
                .any(|n| n["name"] == "db" && n["status"] == "healthy")
        );
        // Status names only: no messages, kinds or timings without the token.
        assert!(
            nodes.iter().all(|n| n
                .as_object()
                .unwrap()
                .keys()
                .all(|k| k == "name" || k == "status")),
            "{adapter:?}: {nodes:?}"
        );
        assert!(
            nodes
                .iter()
                .any(|n| n["name"] == "broken" && n["status"] == "unhealthy")
        );
    }
    xcore.shutdown().await;
    for &(adapter, addr) in &servers {
        let ready = send(addr, Method::GET, "/xcore/health/ready", &[], "").await;
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{adapter:?}");
        assert_eq!(ready.json()["code"], "unavailable");
        assert_eq!(ready.json()["details"]["status"], "unhealthy");
        let live = send(addr, Method::GET, "/xcore/health/live", &[], "").await;
        assert_eq!(live.status, StatusCode::OK, "{adapter:?}");
    }

    // An unhealthy service makes xcore not ready.
    let sick = Xcore::builder()
        .without_registered()
        .service(FakeService::new("db").health(Health::unhealthy("disk full")))
        .build()
        .unwrap();
    sick.boot().await.unwrap();
    let addr = serve(Adapter::Hyper, sick.web().build().unwrap()).await;
    let ready = send(addr, Method::GET, "/xcore/health/ready", &[], "").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["details"]["nodes"][0]["status"], "unhealthy");
    assert!(!String::from_utf8_lossy(&ready.body).contains("disk full"));
    // The details need the token.
    let sick_web = sick.web().admin_token(TOKEN).build().unwrap();
    let addr = serve(Adapter::Hyper, sick_web).await;
    let bare = send(addr, Method::GET, "/xcore/health", &[], "").await;
    assert_eq!(bare.status, StatusCode::UNAUTHORIZED);
    let full = admin_get(addr, "/xcore/health").await;
    assert_eq!(full.status, StatusCode::OK);
    assert_eq!(full.json()["result"]["nodes"][0]["message"], "disk full");
    sick.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_named_xcore_or_admin_never_shadow_the_admin_api() {
    let xcore = booted().await;
    let web = xcore.web().admin_token(TOKEN).build().unwrap();
    for (adapter, addr) in serve_all(&web).await {
        let listing = admin_get(addr, "/xcore/plugins").await;
        assert_eq!(listing.status, StatusCode::OK, "{adapter:?}");
        assert!(
            listing.json()["result"].is_array(),
            "{adapter:?}: {:?}",
            listing.body
        );
        assert_eq!(
            send(addr, Method::GET, "/xcore/health/live", &[], "")
                .await
                .json()["result"]["live"],
            true
        );
        for name in ["xcore", "admin"] {
            let own = send(
                addr,
                Method::GET,
                &format!("/plugin/{name}/plugins"),
                &[],
                "",
            )
            .await;
            assert_eq!(own.body, format!("impostor {name}"), "{adapter:?}");
            // Calls to an action named like an admin endpoint reach the plugin (B3).
            let call = ipc(addr, &format!("/xcore/ipc/{name}/plugins"), &[], "{}").await;
            assert_eq!(
                call.json()["result"],
                json!({"impostor": name, "action": "plugins"})
            );
            let reload = ipc(addr, &format!("/xcore/ipc/{name}/reload"), &[], "{}").await;
            assert_eq!(reload.json()["result"]["action"], "reload");
        }
    }

    // Even with the admin API inside the plugin prefix, on the path of plugin `xcore`, the
    // admin API is matched first.
    let nested = xcore
        .web()
        .admin_token(TOKEN)
        .plugin_prefix("/plugin")
        .admin_prefix("/plugin/xcore")
        .build()
        .unwrap();
    for (adapter, addr) in serve_all(&nested).await {
        let listing = admin_get(addr, "/plugin/xcore/plugins").await;
        assert_eq!(listing.status, StatusCode::OK, "{adapter:?}");
        assert!(
            listing.json()["result"].is_array(),
            "{adapter:?}: {:?}",
            listing.body
        );
        let unauthorized = send(addr, Method::GET, "/plugin/xcore/anything", &[], "").await;
        assert_eq!(unauthorized.status, StatusCode::UNAUTHORIZED, "{adapter:?}");
        let admin_plugin = send(addr, Method::GET, "/plugin/admin/plugins", &[], "").await;
        assert_eq!(admin_plugin.body, "impostor admin", "{adapter:?}");
    }
    xcore.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_and_the_boot_report_are_listed() {
    let xcore = xcore();
    let web = xcore.web().admin_token(TOKEN).build().unwrap();
    let addr = serve(Adapter::Hyper, web.clone()).await;

    // Before boot.
    let boot = admin_get(addr, "/xcore/boot").await;
    assert_eq!(boot.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(boot.json()["code"], "not_ready");
    let pending = admin_get(addr, "/xcore/plugins").await.json();
    assert!(
        pending["result"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["state"] == "pending")
    );
    let early = send(addr, Method::GET, "/plugin/shop/hello", &[], "").await;
    assert_eq!(early.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(early.json()["code"], "not_ready");

    xcore.boot().await.unwrap();
    let plugins = admin_get(addr, "/xcore/plugins").await.json()["result"].clone();
    let names: Vec<&str> = plugins
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "broken", "shop", "xcore"]);
    let shop = plugins
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "shop")
        .unwrap();
    assert_eq!(
        *shop,
        json!({
            "name": "shop",
            "version": "2.5.0",
            "state": "running",
            "reason": null,
            "wave": 1,
            "routes": [{"method": "GET", "path": "/plugin/shop/hello"}],
        })
    );
    let broken = plugins
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "broken")
        .unwrap();
    assert_eq!(broken["state"], "failed");
    assert!(broken["reason"].as_str().unwrap().contains("no license"));
    assert_eq!(broken["routes"], json!([]));

    let report = admin_get(addr, "/xcore/boot").await;
    assert_eq!(report.status, StatusCode::OK);
    let report = report.json()["result"].clone();
    assert_eq!(
        report["waves"][0],
        json!([
            "service:db",
            "plugin:admin",
            "plugin:broken",
            "plugin:xcore"
        ])
    );
    assert_eq!(report["waves"][1], json!(["plugin:shop"]));
    let db = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "db")
        .unwrap();
    assert_eq!(
        (db["kind"].as_str(), db["state"].as_str()),
        (Some("service"), Some("started"))
    );
    assert!(db["load_ms"].is_number());

    let index = admin_get(addr, "/xcore").await.json();
    assert!(index["result"]["endpoints"].as_array().unwrap().len() >= 6);

    xcore.shutdown().await;
    let after = admin_get(addr, "/xcore/plugins").await.json();
    let shop = after["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "shop")
        .unwrap()
        .clone();
    assert_eq!(shop["state"], "stopped");
}

#[tokio::test]
async fn a_router_without_xcore_routes_keeps_its_own() {
    // `mount` adds only the two prefixes.
    let xcore = booted().await;
    let web = xcore.web().build().unwrap();
    let app: Router =
        xcore::web::axum::mount(Router::new().route("/x", get(|| async { "x" })), &web);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    assert_eq!(send(addr, Method::GET, "/x", &[], "").await.body, "x");
    assert_eq!(
        send(addr, Method::GET, "/y", &[], "").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(addr, Method::GET, "/xcore/health/live", &[], "")
            .await
            .status,
        StatusCode::OK
    );
    xcore.shutdown().await;
}
