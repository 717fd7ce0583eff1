//! Metrics: calls, HTTP requests (by route template), denials, events, a scheduled job and a
//! worker task recorded into an `Xcore`'s own Prometheus exporter, scraped at
//! `GET /xcore/metrics` with the admin token (401 without, 404 without an exporter); two
//! `Xcore` values in one process keep their figures apart.

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use axum::{extract::Path, routing::get};
use http::Method;
use serde_json::{Value, json};
use xcore::services::{scheduler::Scheduler, worker::Worker};
use xcore::{
    Actions, CallContext, CallError, ErrorCode, Manifest, Plugin, PluginContext, PluginError,
    async_trait,
    observability::{Metrics, SECONDS_BUCKETS},
    services::{
        scheduler::{SchedulerOptions, SchedulerService, Trigger},
        worker::{WorkerOptions, WorkerService},
    },
    web::Routes,
};
use xcore_testkit::{TEST_ADMIN_TOKEN, TestApp, TestClient};

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A plugin with two actions and routes: `GET /items/{id}`, `GET /items/special`.
struct Shop;

#[async_trait]
impl Actions for Shop {
    fn action_names(&self) -> &'static [&'static str] {
        &["buy", "fail"]
    }

    async fn handle(
        &self,
        action: &str,
        payload: Value,
        _: &CallContext,
    ) -> Result<Value, CallError> {
        match action {
            "buy" => Ok(json!({ "bought": payload })),
            "fail" => Err(CallError::new(ErrorCode::HandlerError, "out of stock")),
            other => Err(CallError::unknown_action(other, self.action_names())),
        }
    }
}

#[async_trait]
impl Plugin for Shop {
    fn routes(&self, _: &PluginContext) -> Option<Routes> {
        let router = axum::Router::new()
            .route("/items/special", get(|| async { "special" }))
            .route(
                "/items/{id}",
                get(|Path(id): Path<String>| async move { format!("item {id}") }),
            );
        Some(
            Routes::from_axum(router)
                .endpoint(Method::GET, "/items/{id}")
                .endpoint(Method::GET, "/items/special"),
        )
    }
}

/// A plugin that may call nobody: its context is kept to call `shop` as itself.
struct Intruder(Arc<OnceLock<CallContext>>);

#[async_trait]
impl Actions for Intruder {
    async fn handle(&self, action: &str, _: Value, _: &CallContext) -> Result<Value, CallError> {
        Err(CallError::unknown_action(action, &[]))
    }
}

#[async_trait]
impl Plugin for Intruder {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        let _ = self.0.set(ctx.call_context());
        Ok(())
    }
}

struct Booted {
    app: TestApp,
    intruder: CallContext,
}

async fn boot(metrics: Metrics) -> Booted {
    let intruder = Arc::new(OnceLock::new());
    let app = TestApp::builder()
        .plugin(Manifest::builder("shop", "1.0.0").build().unwrap(), Shop)
        .plugin(
            Manifest::builder("intruder", "1.0.0").build().unwrap(),
            Intruder(intruder.clone()),
        )
        .service(SchedulerService::new(SchedulerOptions::default()).unwrap())
        .service(WorkerService::new(WorkerOptions::memory()).unwrap())
        .configure(|b| b.metrics(metrics))
        .boot()
        .await
        .unwrap();
    let intruder = intruder.get().unwrap().clone();
    Booted { app, intruder }
}

/// The samples of a Prometheus text: `name{labels}` → value.
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("value of `{line}`"));
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.strip_suffix('}').unwrap()),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|l| !l.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap();
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            (name.to_owned(), labels, value)
        })
        .collect()
}

/// The value of the one series `name` with exactly these labels (and no others).
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let found: Vec<f64> = samples(text)
        .into_iter()
        .filter(|(n, l, _)| n == name && *l == wanted)
        .map(|(_, _, v)| v)
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} appears twice");
    found.first().copied()
}

/// The bucket counts of histogram `name` with these labels, by upper bound, in order.
fn buckets(text: &str, name: &str, labels: &[(&str, &str)]) -> Vec<(String, f64)> {
    let bucket = format!("{name}_bucket");
    samples(text)
        .into_iter()
        .filter(|(n, l, _)| {
            *n == bucket
                && l.len() == labels.len() + 1
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, l, v)| (l["le"].clone(), v))
        .collect()
}

async fn scrape(client: &TestClient) -> String {
    let response = client.get("/xcore/metrics").await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    response.text()
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_requests_denials_events_jobs_and_tasks_are_scraped_with_the_admin_token() {
    let Booted { app, intruder } = boot(Metrics::prometheus()).await;
    let xcore = app.xcore().clone();
    let admin = app.client().bearer(TEST_ADMIN_TOKEN);

    // Calls: three ok, one handler error, two undeclared names (one label for both), one
    // denial.
    for n in 0..3 {
        xcore.call("shop", "buy", json!(n)).await.unwrap();
    }
    xcore.call("shop", "fail", json!(null)).await.unwrap_err();
    for name in ["nothing", "nothing-else"] {
        let err = xcore.call("shop", name, json!(null)).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::UnknownAction);
    }
    let denied = xcore
        .call_with(intruder, "shop", "buy", json!(1))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), ErrorCode::PermissionDenied);
    // A call to no plugin is not counted: its name is the caller's, unbounded.
    xcore.call("ghost", "buy", json!(1)).await.unwrap_err();

    // HTTP: two items, the special one, a path no endpoint declares, an unknown plugin.
    let client = app.client();
    for id in ["1", "2"] {
        assert_eq!(
            client
                .get(&format!("/plugin/shop/items/{id}"))
                .await
                .status(),
            200
        );
    }
    assert_eq!(
        client.get("/plugin/shop/items/special").await.text(),
        "special"
    );
    assert_eq!(client.get("/plugin/shop/nowhere").await.status(), 404);
    assert_eq!(client.get("/plugin/ghost-123/x").await.status(), 404);

    // An event, a host job that fires once, a host task.
    xcore
        .events()
        .emit(&CallContext::host(), "shop.sold", json!({}))
        .await
        .unwrap();
    xcore
        .handle::<Scheduler>()
        .unwrap()
        .add(
            "restock",
            Trigger::after(Duration::from_millis(50)),
            |_| async { Ok(()) },
        )
        .await
        .unwrap();
    let worker = xcore.handle::<Worker>().unwrap();
    worker
        .register("ship", |_, n: u32| async move { Ok(n + 1) })
        .unwrap();
    let id = worker.send("ship", &1).await.unwrap();
    assert!(
        worker
            .wait(id, Duration::from_secs(10))
            .await
            .unwrap()
            .is_finished(),
        "the task did not run"
    );

    // Without the token: 401, and nothing leaks.
    let refused = app.client().get("/xcore/metrics").await;
    assert_eq!(refused.status(), 401);
    assert!(!refused.text().contains("xcore_calls_total"));

    let mut text = String::new();
    eventually("the job has run", async || {
        text = scrape(&admin).await;
        value(
            &text,
            "xcore_job_runs_total",
            &[("plugin", ""), ("job", "restock"), ("outcome", "succeeded")],
        ) == Some(1.0)
    })
    .await;

    // Calls, by outcome, with undeclared names under one label.
    let calls = |action, code| {
        value(
            &text,
            "xcore_calls_total",
            &[("plugin", "shop"), ("action", action), ("code", code)],
        )
    };
    assert_eq!(calls("buy", "ok"), Some(3.0), "{text}");
    assert_eq!(calls("fail", "handler_error"), Some(1.0));
    assert_eq!(calls("_unknown", "unknown_action"), Some(2.0));
    assert_eq!(calls("buy", "permission_denied"), Some(1.0));
    assert!(
        !text.contains("nothing-else") && !text.contains("ghost"),
        "{text}"
    );
    // The histogram: cumulative buckets of the configured bounds, then +Inf, the count.
    let labels = [("plugin", "shop"), ("action", "buy")];
    let got = buckets(&text, "xcore_call_duration_seconds", &labels);
    for histogram in [
        "xcore_call_duration_seconds",
        "xcore_http_request_duration_seconds",
    ] {
        let typed = format!("# TYPE {histogram} histogram");
        assert_eq!(text.matches(&typed).count(), 1, "{text}");
    }
    assert_eq!(got.len(), SECONDS_BUCKETS.len() + 1, "{got:?}");
    assert_eq!(got.last().unwrap(), &("+Inf".to_owned(), 4.0));
    assert!(got.windows(2).all(|w| w[0].1 <= w[1].1), "{got:?}");
    for ((le, _), bound) in got.iter().zip(SECONDS_BUCKETS) {
        assert_eq!(le.parse::<f64>().unwrap(), bound);
    }
    assert_eq!(
        value(&text, "xcore_call_duration_seconds_count", &labels),
        Some(4.0)
    );
    // A call takes well under 10 s.
    assert_eq!(got[SECONDS_BUCKETS.len() - 1].1, 4.0);

    // Requests, by route template.
    let requests = |plugin, route, status| {
        value(
            &text,
            "xcore_http_requests_total",
            &[("plugin", plugin), ("route", route), ("status", status)],
        )
    };
    assert_eq!(
        requests("shop", "/plugin/shop/items/{id}", "200"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        requests("shop", "/plugin/shop/items/special", "200"),
        Some(1.0)
    );
    assert_eq!(requests("shop", "/plugin/shop", "404"), Some(1.0));
    assert_eq!(requests("", "/plugin", "404"), Some(1.0));
    assert_eq!(requests("", "/xcore/metrics", "401"), Some(1.0));
    assert!(requests("", "/xcore/metrics", "200").is_some());
    assert_eq!(
        value(
            &text,
            "xcore_http_request_duration_seconds_count",
            &[("plugin", "shop"), ("route", "/plugin/shop/items/{id}")]
        ),
        Some(2.0)
    );

    // Denials, events, tasks, plugin states.
    assert_eq!(
        value(
            &text,
            "xcore_denials_total",
            &[("plugin", "intruder"), ("kind", "permission")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "xcore_events_emitted_total",
            &[("event", "shop.sold")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "xcore_tasks_total",
            &[("plugin", ""), ("task", "ship"), ("outcome", "succeeded")]
        ),
        Some(1.0)
    );
    let state = |state| {
        value(
            &text,
            "xcore_plugin_state",
            &[("plugin", "shop"), ("state", state)],
        )
    };
    assert_eq!(state("running"), Some(1.0));
    assert_eq!(state("failed"), Some(0.0));
    // Help text is there.
    assert!(text.contains("# HELP xcore_calls_total "), "{text}");
    assert!(
        text.contains("# TYPE xcore_call_duration_seconds histogram"),
        "{text}"
    );

    // After shutdown, the plugin is listed stopped.
    let xcore2 = xcore.clone();
    app.shutdown().await;
    xcore2.sample_metrics();
    let text = xcore2.metrics().render_prometheus().unwrap();
    assert_eq!(
        value(
            &text,
            "xcore_plugin_state",
            &[("plugin", "shop"), ("state", "stopped")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "xcore_plugin_state",
            &[("plugin", "shop"), ("state", "running")]
        ),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_xcores_in_one_process_keep_their_figures_apart() {
    let one = boot(Metrics::prometheus()).await;
    let two = boot(Metrics::prometheus()).await;
    for _ in 0..2 {
        one.app.call("shop", "buy", json!(1)).await.unwrap();
    }
    two.app.call("shop", "buy", json!(1)).await.unwrap();
    let labels = [("plugin", "shop"), ("action", "buy"), ("code", "ok")];
    let text = |booted: &Booted| booted.app.xcore().metrics().render_prometheus().unwrap();
    assert_eq!(value(&text(&one), "xcore_calls_total", &labels), Some(2.0));
    assert_eq!(value(&text(&two), "xcore_calls_total", &labels), Some(1.0));
    one.app.shutdown().await;
    two.app.shutdown().await;
}

#[tokio::test]
async fn without_a_prometheus_exporter_the_endpoint_is_404_and_nothing_is_recorded() {
    let booted = boot(Metrics::disabled()).await;
    booted.app.call("shop", "buy", json!(1)).await.unwrap();
    let admin = booted.app.client().bearer(TEST_ADMIN_TOKEN);
    let response = admin.get("/xcore/metrics").await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.json()["code"], "not_found");
    assert!(!booted.app.xcore().metrics().is_enabled());
    assert_eq!(booted.app.xcore().metrics().render_prometheus(), None);
    // The admin API lists the endpoint either way.
    let listed = admin.get("/xcore").await.json();
    assert!(listed.to_string().contains("/xcore/metrics"), "{listed}");
    booted.app.shutdown().await;
}

#[tokio::test]
async fn a_host_recorder_receives_the_series() {
    // A recorder of the host's: here a second Prometheus recorder, built by the host.
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let booted = boot(Metrics::with_recorder(recorder)).await;
    booted.app.call("shop", "buy", json!(1)).await.unwrap();
    assert!(booted.app.xcore().metrics().is_enabled());
    assert_eq!(booted.app.xcore().metrics().render_prometheus(), None);
    let text = handle.render();
    assert_eq!(
        value(
            &text,
            "xcore_calls_total",
            &[("plugin", "shop"), ("action", "buy"), ("code", "ok")]
        ),
        Some(1.0),
        "{text}"
    );
    booted.app.shutdown().await;
}

/// `xcore_db_pool_connections{db,state}`: the database service reports its pools (tenants'
/// included) each time the gauges are sampled; a connection held shows as in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_pools_are_sampled() {
    use xcore::services::db::{DatabaseOptions, DatabaseService, Db};
    let xcore = xcore::Xcore::builder()
        .without_registered()
        .metrics(Metrics::prometheus())
        .service(DatabaseService::new([("main", DatabaseOptions::default())]))
        .build()
        .unwrap();
    xcore.boot().await.unwrap().ensure_all_started().unwrap();
    let gauge = |text: &str, state| {
        value(
            text,
            "xcore_db_pool_connections",
            &[("db", "main"), ("state", state)],
        )
    };
    xcore.sample_metrics();
    let text = xcore.metrics().render_prometheus().unwrap();
    assert_eq!(gauge(&text, "in_use"), Some(0.0), "{text}");
    assert!(gauge(&text, "idle").is_some(), "{text}");
    let db = xcore.named::<Db>("main").unwrap();
    let held = db.pool().acquire().await.unwrap();
    xcore.sample_metrics();
    let text = xcore.metrics().render_prometheus().unwrap();
    assert_eq!(gauge(&text, "in_use"), Some(1.0), "{text}");
    drop(held);
    xcore.shutdown().await;
}

#[tokio::test]
async fn cache_operations_are_counted_by_operation_and_result() {
    use xcore::services::cache::{Cache, CacheOptions, CacheService, Ttl};
    let xcore = xcore::Xcore::builder()
        .without_registered()
        .metrics(Metrics::prometheus())
        .service(CacheService::new(CacheOptions::default()))
        .build()
        .unwrap();
    xcore.boot().await.unwrap().ensure_all_started().unwrap();
    let cache = xcore.named::<Cache>("counted").unwrap();
    cache.set("a", &1, Ttl::Default).await.unwrap();
    cache.set("text", &"x", Ttl::Default).await.unwrap();
    for key in ["a", "a", "missing"] {
        cache.get::<i32>(key).await.unwrap();
    }
    cache.mget::<i32, _>(&["a", "b", "c"]).await.unwrap();
    cache.incr("text", 1).await.unwrap_err();
    // Refused before the backend: not an operation.
    cache.get::<i32>("").await.unwrap_err();
    xcore.sample_metrics();
    let text = xcore.metrics().render_prometheus().unwrap();
    let count = |op, result| {
        value(
            &text,
            "xcore_cache_operations_total",
            &[("backend", "memory"), ("op", op), ("result", result)],
        )
    };
    assert_eq!(count("set", "ok"), Some(2.0), "{text}");
    assert_eq!(count("get", "hit"), Some(2.0), "{text}");
    assert_eq!(count("get", "miss"), Some(1.0), "{text}");
    assert_eq!(count("mget", "hit"), Some(1.0), "{text}");
    assert_eq!(count("mget", "miss"), Some(2.0), "{text}");
    assert_eq!(count("incr", "error"), Some(1.0), "{text}");
    assert_eq!(count("get", "error"), None, "{text}");
    // Totals keep growing between samples.
    cache.get::<i32>("a").await.unwrap();
    xcore.sample_metrics();
    let text = xcore.metrics().render_prometheus().unwrap();
    assert_eq!(
        value(
            &text,
            "xcore_cache_operations_total",
            &[("backend", "memory"), ("op", "get"), ("result", "hit")],
        ),
        Some(3.0),
        "{text}"
    );
    xcore.shutdown().await;
}
