//! Metrics overhead: the same pipeline call and the same HTTP route (served in process by
//! `Web`, no socket, so that nothing dilutes the difference), with metrics disabled and with
//! the Prometheus exporter, in the same run.
//!
//! - `metrics_call/{off,prometheus}`: `xcore.call("ping", "ping", {})`.
//! - `metrics_route/{off,prometheus}`: `GET /plugin/hello/hi/{name}` through `Web` (tracing
//!   span, body limit, tenant, envelope, dispatch, an axum router).
//!
//! A subscriber-less process: the `xcore.http` span is disabled, as in a host logging at INFO
//! without it; the route label is then computed for the metrics only.

use std::{hint::black_box, time::Duration};

use axum::{extract::Path, routing::get};
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Method, Request};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use xcore::{
    Actions, CallContext, CallError, Manifest, Plugin, PluginContext, Xcore, async_trait,
    observability::Metrics,
    web::{Body, Routes, Web},
};

/// Answers `ping`, and serves `GET /hi/{name}`.
struct Hello;

#[async_trait]
impl Actions for Hello {
    fn action_names(&self) -> &'static [&'static str] {
        &["ping"]
    }

    async fn handle(&self, action: &str, _: Value, _: &CallContext) -> Result<Value, CallError> {
        match action {
            "ping" => Ok(json!("pong")),
            other => Err(CallError::unknown_action(other, self.action_names())),
        }
    }
}

#[async_trait]
impl Plugin for Hello {
    fn routes(&self, _: &PluginContext) -> Option<Routes> {
        let router = axum::Router::new().route(
            "/hi/{name}",
            get(|Path(name): Path<String>| async move { format!("hi {name}") }),
        );
        Some(Routes::from_axum(router).endpoint(Method::GET, "/hi/{name}"))
    }
}

fn boot(rt: &Runtime, metrics: Metrics) -> (Xcore, Web) {
    rt.block_on(async {
        let xcore = Xcore::builder()
            .without_registered()
            .plugin(Manifest::builder("hello", "1.0.0").build().unwrap(), Hello)
            .metrics(metrics)
            .build()
            .unwrap();
        xcore.boot().await.unwrap();
        let web = xcore.web().build().unwrap();
        (xcore, web)
    })
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn call(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("metrics_call");
    for (name, metrics) in [
        ("off", Metrics::disabled()),
        ("prometheus", Metrics::prometheus()),
    ] {
        let (xcore, _) = boot(&rt, metrics);
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                black_box(xcore.call("hello", "ping", json!({})).await.unwrap())
            });
        });
        rt.block_on(xcore.shutdown());
    }
    group.finish();
}

fn route(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("metrics_route");
    for (name, metrics) in [
        ("off", Metrics::disabled()),
        ("prometheus", Metrics::prometheus()),
    ] {
        let (xcore, web) = boot(&rt, metrics);
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let request = Request::get("/plugin/hello/hi/ann")
                    .body(Body::empty())
                    .unwrap();
                let response = web.handle(request).await.unwrap();
                assert!(response.status().is_success());
                black_box(response)
            });
        });
        rt.block_on(xcore.shutdown());
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = call, route
}
criterion_main!(benches);
