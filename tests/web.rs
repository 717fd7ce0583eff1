//! Plugin routes over real loopback sockets, through the axum, hyper and actix adapters: the
//! same answers everywhere, tenants, call contexts two hops away, stopped plugins.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    Router,
    routing::{get, post},
};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
mod support;

use support::{Adapter, get_, send, send_body, serve, serve_all, tenancy_on};
use xcore::{
    Actions, CallContext, CallError, Manifest, Plugin, PluginContext, PluginError, TenantId, Xcore,
    async_trait,
    config::TenancyConfig,
    web::{
        Body, FieldErrors, Routes, Validate,
        axum::{Json, Valid},
    },
};

// ---------------------------------------------------------------------------------------------
// Plugins: `shop` (axum routes) → `relay` → `whoami`; `plain` (a bare tower service); `broken`
// (fails to start); `quiet` (no routes).

/// Serves `GET /hello`, `POST /orders` (validated JSON) and `GET /chain` (calls `relay`).
struct Shop {
    routes_asked: Arc<AtomicUsize>,
}

#[derive(Deserialize)]
struct Order {
    item: String,
    qty: u32,
}

impl Validate for Order {
    fn validate(&self) -> Result<(), FieldErrors> {
        FieldErrors::new()
            .check(!self.item.is_empty(), "item", "must not be empty")
            .check(
                (1..=100).contains(&self.qty),
                "qty",
                "must be between 1 and 100",
            )
            .into_result()
    }
}

async fn hello(cx: CallContext) -> Json<Value> {
    Json(json!({ "hello": cx.tenant().as_str() }))
}

async fn order(tenant: TenantId, Valid(order): Valid<Order>) -> (StatusCode, Json<Value>) {
    let body = json!({ "item": order.item, "qty": order.qty, "tenant": tenant.as_str() });
    (StatusCode::CREATED, Json(body))
}

#[async_trait]
impl Actions for Shop {
    async fn handle(
        &self,
        action: &str,
        payload: Value,
        _cx: &CallContext,
    ) -> Result<Value, CallError> {
        match action {
            "echo" => Ok(payload),
            other => Err(CallError::unknown_action(other, &["echo"])),
        }
    }
}

#[async_trait]
impl Plugin for Shop {
    fn routes(&self, ctx: &PluginContext) -> Option<Routes> {
        self.routes_asked.fetch_add(1, Ordering::SeqCst);
        let ctx = ctx.clone();
        let chain = move |cx: CallContext| {
            let ctx = ctx.clone();
            async move {
                let reply = ctx.plugin("relay").call(&cx, "relay", json!({})).await?;
                Ok::<_, CallError>(Json(reply))
            }
        };
        let router = Router::new()
            .route("/hello", get(hello))
            .route("/orders", post(order))
            .route("/chain", get(chain));
        Some(
            Routes::from_axum(router)
                .endpoint(Method::GET, "/hello")
                .endpoint(Method::POST, "/orders")
                .endpoint(Method::GET, "/chain"),
        )
    }
}

/// `relay`: calls `whoami` with the context of the call it serves.
#[derive(Default)]
struct Relay {
    ctx: Option<PluginContext>,
}

#[async_trait]
impl Actions for Relay {
    async fn handle(
        &self,
        action: &str,
        _payload: Value,
        cx: &CallContext,
    ) -> Result<Value, CallError> {
        let ctx = self
            .ctx
            .as_ref()
            .ok_or_else(|| CallError::internal("not loaded"))?;
        match action {
            "relay" => ctx.plugin("whoami").call(cx, "whoami", json!({})).await,
            other => Err(CallError::unknown_action(other, &["relay"])),
        }
    }
}

#[async_trait]
impl Plugin for Relay {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        self.ctx = Some(ctx.clone());
        Ok(())
    }
}

/// `whoami`: says who called, for which tenant, in which trace.
struct WhoAmI;

#[async_trait]
impl Actions for WhoAmI {
    async fn handle(
        &self,
        _action: &str,
        _payload: Value,
        cx: &CallContext,
    ) -> Result<Value, CallError> {
        Ok(json!({
            "tenant": cx.tenant().as_str(),
            "caller": cx.caller().plugin_name(),
            "trace_id": format!("{:032x}", cx.trace().trace_id()),
        }))
    }
}

#[async_trait]
impl Plugin for WhoAmI {}

/// `plain`: routes from a bare tower service, no framework.
struct Plain;

#[async_trait]
impl Actions for Plain {
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
impl Plugin for Plain {
    fn routes(&self, _ctx: &PluginContext) -> Option<Routes> {
        let service = tower::service_fn(|req: Request<Body>| async move {
            let tenant = req
                .extensions()
                .get::<CallContext>()
                .map(|cx| cx.tenant().to_string())
                .unwrap_or_default();
            let text = format!("{} {} for {tenant}", req.method(), req.uri());
            Ok::<_, Infallible>(Response::new(Body::from(text)))
        });
        Some(Routes::from_service(service).endpoint(Method::GET, "/{*any}"))
    }
}

/// `broken`: has routes, but its `on_start` fails.
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

    fn routes(&self, _ctx: &PluginContext) -> Option<Routes> {
        Some(Routes::from_axum(
            Router::new().route("/hello", get(|| async { "unreachable" })),
        ))
    }
}

/// `quiet`: no routes at all.
struct Quiet;

#[async_trait]
impl Actions for Quiet {
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
impl Plugin for Quiet {}

fn manifest(
    name: &str,
    edit: impl FnOnce(xcore::ManifestBuilder) -> xcore::ManifestBuilder,
) -> Manifest {
    edit(Manifest::builder(name, "1.2.0"))
        .build()
        .expect("valid manifest")
}

/// Boots the plugins above; `routes_asked` counts `Shop::routes` calls.
async fn boot(routes_asked: Arc<AtomicUsize>) -> Xcore {
    let xcore = Xcore::builder()
        .without_registered()
        .start_timeout(Duration::from_secs(5))
        .plugin(
            manifest("shop", |m| m.permissions(["plugin:relay: relay"])),
            Shop { routes_asked },
        )
        .plugin(
            manifest("relay", |m| {
                m.permissions(["plugin:whoami: whoami"])
                    .allowed_callers(["shop"])
            }),
            Relay::default(),
        )
        .plugin(manifest("whoami", |m| m.allowed_callers(["relay"])), WhoAmI)
        .plugin(manifest("plain", |m| m), Plain)
        .plugin(manifest("broken", |m| m), Broken)
        .plugin(manifest("quiet", |m| m), Quiet)
        .build()
        .expect("build");
    xcore.boot().await.expect("boot");
    xcore
}

// ---------------------------------------------------------------------------------------------
// Servers and a client: tests/support.

/// A body of two chunks and no declared length (sent chunked).
struct Chunked(Vec<Bytes>);

impl http_body::Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        let chunks = &mut self.get_mut().0;
        Poll::Ready((!chunks.is_empty()).then(|| Ok(http_body::Frame::data(chunks.remove(0)))))
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

// ---------------------------------------------------------------------------------------------
// Tests.

/// A request: what it checks, method, path, headers, body.
type Case<'a> = (&'a str, Method, &'a str, Vec<(&'a str, &'a str)>, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_plugin_answers_the_same_under_axum_hyper_and_actix() {
    let xcore = boot(Arc::default()).await;
    let web = xcore.web().body_limit(1024).build().unwrap();
    let servers = serve_all(&web).await;

    let order = r#"{"item": "tea", "qty": 3}"#;
    let cases: Vec<Case<'_>> = vec![
        (
            "get",
            Method::GET,
            "/plugin/shop/hello",
            vec![],
            String::new(),
        ),
        (
            "post json",
            Method::POST,
            "/plugin/shop/orders",
            vec![JSON],
            order.to_owned(),
        ),
        (
            "422 validation",
            Method::POST,
            "/plugin/shop/orders",
            vec![JSON],
            r#"{"item": "", "qty": 0}"#.to_owned(),
        ),
        (
            "422 type",
            Method::POST,
            "/plugin/shop/orders",
            vec![JSON],
            r#"{"item": "tea", "qty": "three"}"#.to_owned(),
        ),
        (
            "422 syntax",
            Method::POST,
            "/plugin/shop/orders",
            vec![JSON],
            "{".to_owned(),
        ),
        (
            "415",
            Method::POST,
            "/plugin/shop/orders",
            vec![],
            order.to_owned(),
        ),
        (
            "413",
            Method::POST,
            "/plugin/shop/orders",
            vec![JSON],
            "x".repeat(2000),
        ),
        (
            "404 in plugin",
            Method::GET,
            "/plugin/shop/nope",
            vec![],
            String::new(),
        ),
        (
            "405 in plugin",
            Method::GET,
            "/plugin/shop/orders",
            vec![],
            String::new(),
        ),
        (
            "404 no plugin",
            Method::GET,
            "/plugin/nobody/hello",
            vec![],
            String::new(),
        ),
        (
            "404 segment",
            Method::GET,
            "/plugin/shopx/hello",
            vec![],
            String::new(),
        ),
        (
            "404 no name",
            Method::GET,
            "/plugin/",
            vec![],
            String::new(),
        ),
        (
            "plain",
            Method::GET,
            "/plugin/plain/a/b?x=1",
            vec![],
            String::new(),
        ),
        (
            "503 failed",
            Method::GET,
            "/plugin/broken/hello",
            vec![],
            String::new(),
        ),
        (
            "404 no routes",
            Method::GET,
            "/plugin/quiet/hello",
            vec![],
            String::new(),
        ),
    ];
    for (what, method, path, headers, body) in cases {
        let mut replies = Vec::new();
        for &(adapter, addr) in &servers {
            replies.push((
                adapter,
                send(addr, method.clone(), path, &headers, &body).await,
            ));
        }
        let (_, first) = &replies[0];
        for (adapter, reply) in &replies[1..] {
            assert_eq!(
                reply.essence(),
                first.essence(),
                "{what}: {adapter:?} differs from axum"
            );
        }
        let reply = first;
        match what {
            "get" => {
                assert_eq!(reply.status, StatusCode::OK);
                assert_eq!(reply.json(), json!({"hello": "default"}));
                assert_eq!(reply.headers[header::CONTENT_TYPE], "application/json");
            }
            "post json" => {
                assert_eq!(reply.status, StatusCode::CREATED);
                assert_eq!(
                    reply.json(),
                    json!({"item": "tea", "qty": 3, "tenant": "default"})
                );
            }
            "422 validation" => {
                assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
                let env = reply.json();
                assert_eq!(env["status"], "error");
                assert_eq!(env["code"], "invalid_payload");
                let paths: Vec<&str> = env["details"]["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["path"].as_str().unwrap())
                    .collect();
                assert_eq!(paths, ["item", "qty"]);
            }
            "422 type" => {
                assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
                assert_eq!(reply.json()["details"]["errors"][0]["path"], "qty");
            }
            "422 syntax" => {
                assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
                assert_eq!(reply.json()["details"]["errors"][0]["path"], ".");
            }
            "415" => assert_eq!(reply.json()["code"], "unsupported_media_type"),
            "413" => {
                assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
                assert_eq!(reply.json()["code"], "payload_too_large");
            }
            "404 no plugin" => {
                assert_eq!(reply.status, StatusCode::NOT_FOUND);
                // No list of the plugins for anyone on the network.
                assert_eq!(reply.json()["message"], "no plugin `nobody`");
            }
            "404 in plugin" | "404 segment" | "404 no name" | "404 no routes" => {
                assert_eq!(reply.status, StatusCode::NOT_FOUND, "{what}");
                assert_eq!(reply.json()["status"], "error", "{what}");
                assert_eq!(reply.json()["code"], "not_found", "{what}");
            }
            "405 in plugin" => {
                assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
                assert_eq!(reply.json()["code"], "method_not_allowed");
                assert!(reply.headers.contains_key(header::ALLOW));
            }
            "plain" => {
                assert_eq!(reply.status, StatusCode::OK);
                assert_eq!(reply.body, "GET /a/b?x=1 for default");
            }
            "503 failed" => {
                assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
                assert_eq!(reply.json()["code"], "unavailable");
                // The reason is for the admin API, not for anyone on the network.
                assert_eq!(reply.json()["message"], "plugin `broken` is not running");
            }
            other => unreachable!("{other}"),
        }
    }

    // A chunked body over the limit (no declared length) is cut off too.
    for &(adapter, addr) in &servers {
        let chunks = Chunked(vec![
            Bytes::from("[".repeat(700)),
            Bytes::from("1".repeat(700)),
        ]);
        let reply = send_body(addr, Method::POST, "/plugin/shop/orders", &[JSON], chunks).await;
        assert_eq!(
            reply.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{adapter:?}: {:?}",
            reply.body
        );
    }
    // The host's own routes are untouched.
    let (_, axum_addr) = servers[0];
    assert_eq!(get_(axum_addr, "/").await.body, "home");
    xcore.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_come_from_the_header_and_invalid_ones_are_400() {
    let xcore = boot(Arc::default()).await;
    let web = xcore.web().tenancy(&tenancy_on()).build().unwrap();
    for (adapter, addr) in serve_all(&web).await {
        let acme = send(
            addr,
            Method::GET,
            "/plugin/shop/hello",
            &[("X-Tenant-ID", "acme")],
            "",
        )
        .await;
        assert_eq!(acme.json(), json!({"hello": "acme"}), "{adapter:?}");
        let none = get_(addr, "/plugin/shop/hello").await;
        assert_eq!(none.json(), json!({"hello": "default"}), "{adapter:?}");
        for bad in ["Acme", "a b", "../etc", &"a".repeat(64)] {
            let reply = send(
                addr,
                Method::GET,
                "/plugin/shop/hello",
                &[("X-Tenant-ID", bad)],
                "",
            )
            .await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{adapter:?} {bad}");
            let env = reply.json();
            assert_eq!(
                (env["status"].as_str(), env["code"].as_str()),
                (Some("error"), Some("invalid_tenant"))
            );
        }
    }
    // Tenancy off: the header is ignored.
    let off = xcore.web().build().unwrap();
    let addr = serve(Adapter::Hyper, off).await;
    let reply = send(
        addr,
        Method::GET,
        "/plugin/shop/hello",
        &[("X-Tenant-ID", "Not Valid")],
        "",
    )
    .await;
    assert_eq!(reply.json(), json!({"hello": "default"}));
    xcore.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenant_and_trace_of_a_request_reach_a_plugin_two_calls_away() {
    let xcore = boot(Arc::default()).await;
    let web = xcore.web().tenancy(&tenancy_on()).build().unwrap();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace}-00f067aa0ba902b7-01");
    for (adapter, addr) in serve_all(&web).await {
        let headers = [
            ("X-Tenant-ID", "globex"),
            ("traceparent", traceparent.as_str()),
        ];
        let reply = send(addr, Method::GET, "/plugin/shop/chain", &headers, "").await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{adapter:?}: {:?}",
            reply.body
        );
        assert_eq!(
            reply.json(),
            json!({"tenant": "globex", "caller": "relay", "trace_id": trace}),
            "{adapter:?}"
        );
    }
    xcore.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_are_asked_for_once_and_withdrawn_when_the_plugin_stops() {
    let asked = Arc::new(AtomicUsize::new(0));
    let xcore = boot(asked.clone()).await;
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    let web = xcore.web().build().unwrap();
    let servers = serve_all(&web).await;
    for &(adapter, addr) in &servers {
        assert_eq!(
            get_(addr, "/plugin/shop/hello").await.status,
            StatusCode::OK,
            "{adapter:?}"
        );
    }
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "routes() is called once, not per request"
    );
    assert!(xcore.shutdown().await.is_clean());
    for &(adapter, addr) in &servers {
        let reply = get_(addr, "/plugin/shop/hello").await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{adapter:?}");
        assert_eq!(reply.json()["code"], "not_ready", "{adapter:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_resolver_decides_first_and_can_reject() {
    let xcore = boot(Arc::default()).await;
    let web = xcore
        .web()
        .tenant_resolver(
            |parts: &http::request::Parts| match parts.headers.get("x-api-key") {
                Some(key) if key == "gold-key" => Ok(Some(TenantId::new("gold")?)),
                Some(_) => Err(xcore::web::HttpError::unauthorized("unknown API key")),
                None => Ok(None),
            },
        )
        .build()
        .unwrap();
    for (adapter, addr) in serve_all(&web).await {
        let gold = send(
            addr,
            Method::GET,
            "/plugin/shop/hello",
            &[("x-api-key", "gold-key"), ("X-Tenant-ID", "acme")],
            "",
        )
        .await;
        assert_eq!(gold.json(), json!({"hello": "gold"}), "{adapter:?}");
        let header = send(
            addr,
            Method::GET,
            "/plugin/shop/hello",
            &[("X-Tenant-ID", "acme")],
            "",
        )
        .await;
        assert_eq!(header.json(), json!({"hello": "acme"}), "{adapter:?}");
        let denied = send(
            addr,
            Method::GET,
            "/plugin/shop/hello",
            &[("x-api-key", "stolen")],
            "",
        )
        .await;
        assert_eq!(denied.status, StatusCode::UNAUTHORIZED, "{adapter:?}");
        assert_eq!(denied.json()["code"], "unauthorized");
    }
    xcore.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hyper_server_shuts_down_gracefully() {
    let xcore = boot(Arc::default()).await;
    let web = xcore.web().build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(xcore::web::hyper::serve(listener, web, async {
        let _ = stopped.await;
    }));
    // A keep-alive connection, idle after its first answer.
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let request = Request::get("/plugin/shop/hello")
        .header(header::HOST, "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(
        sender.send_request(request).await.unwrap().status(),
        StatusCode::OK
    );

    stop.send(()).unwrap();
    let served = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(
        matches!(served, Ok(Ok(Ok(())))),
        "serve did not return: {served:?}"
    );
    // The idle connection was closed, and no new one is accepted.
    assert!(
        tokio::time::timeout(Duration::from_secs(5), connection)
            .await
            .is_ok()
    );
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    xcore.shutdown().await;
}

#[tokio::test]
async fn web_build_errors_are_reported_not_panicked() {
    let xcore = Xcore::builder().without_registered().build().unwrap();
    for (plugin, admin) in [
        ("plugin", "/xcore"),
        ("/", "/xcore"),
        ("/p", "/p"),
        ("/xcore/p", "/xcore"),
        ("/a//b", "/x"),
    ] {
        let err = xcore
            .web()
            .plugin_prefix(plugin)
            .admin_prefix(admin)
            .build()
            .unwrap_err();
        assert!(!err.to_string().is_empty());
    }
    assert!(xcore.web().admin_token("").build().is_err());
    let mut bad_header = TenancyConfig::default();
    bad_header.header = "X Tenant".into();
    assert!(xcore.web().tenancy(&bad_header).build().is_err());
    let mut bad_default = TenancyConfig::default();
    bad_default.default = "Not Valid".into();
    assert!(xcore.web().tenancy(&bad_default).build().is_err());
    // The admin API may live inside the plugin prefix (it is matched first).
    assert!(
        xcore
            .web()
            .plugin_prefix("/p")
            .admin_prefix("/p/xcore")
            .build()
            .is_ok()
    );
}
