//! Metrics overhead: the same pipeline call and the same HTTP route (served in process by
//! `Web`, no socket, so that nothing dilutes the difference), with metrics disabled and with
//! the Prometheus exporter, in the same run.
//!
//! - `metrics_call/{off,prometheus}`: `xcore.call("ping", "ping", {})`.
//! - `metrics_route/{off,prometheus}`: `GET /plugin/hello/hi/{name}` through `Web` (tracing
//!   span, body limit, tenant, envelope, dispatch, an axum router).
//!
//! - `interleaved`: both, off and on in alternating rounds of one process, printing the median
//!   of the per-round ratios (`cargo bench --bench metrics -- interleaved`).
//!
//! A subscriber-less process: the `xcore.http` span is disabled, as in a host without a
//! subscriber or logging at WARN; the route label is then computed for the metrics only.

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

/// Off and on in alternating rounds of the same process (the machine's load moves both sides
/// of a pair together): the median of the per-round ratios, with the spread.
fn interleaved(_: &mut Criterion) {
    // Only when asked for (`-- interleaved`): it takes a minute, and `--profile-time` runs of
    // the other benches must not include it.
    if !std::env::args().any(|a| a == "interleaved") {
        return;
    }
    const ROUNDS: usize = 30;
    const CALLS: u32 = 20_000;
    const REQUESTS: u32 = 5_000;
    let rt = runtime();
    let (off, off_web) = boot(&rt, Metrics::disabled());
    let (on, on_web) = boot(&rt, Metrics::prometheus());
    let call = |xcore: &Xcore| {
        rt.block_on(async {
            let started = std::time::Instant::now();
            for _ in 0..CALLS {
                black_box(xcore.call("hello", "ping", json!({})).await.unwrap());
            }
            started.elapsed() / CALLS
        })
    };
    let route = |web: &Web| {
        rt.block_on(async {
            let started = std::time::Instant::now();
            for _ in 0..REQUESTS {
                let request = Request::get("/plugin/hello/hi/ann")
                    .body(Body::empty())
                    .unwrap();
                black_box(web.handle(request).await.unwrap());
            }
            started.elapsed() / REQUESTS
        })
    };
    let report = |what: &str, mut pairs: Vec<(Duration, Duration)>| {
        let mut ratios: Vec<f64> = pairs
            .iter()
            .map(|(off, on)| on.as_secs_f64() / off.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        pairs.sort();
        let median = |v: &[f64]| v[v.len() / 2];
        let offs: Vec<f64> = pairs.iter().map(|p| p.0.as_nanos() as f64).collect();
        let mut ons: Vec<f64> = pairs.iter().map(|p| p.1.as_nanos() as f64).collect();
        ons.sort_by(f64::total_cmp);
        println!(
            "{what}: off {:.0} ns, prometheus {:.0} ns (medians of {ROUNDS} rounds); \
             ratio median {:.3}, quartiles {:.3}–{:.3}",
            median(&offs),
            median(&ons),
            median(&ratios),
            ratios[ROUNDS / 4],
            ratios[3 * ROUNDS / 4],
        );
    };
    // Warm both.
    call(&off);
    call(&on);
    route(&off_web);
    route(&on_web);
    let calls = (0..ROUNDS).map(|_| (call(&off), call(&on))).collect();
    report("interleaved call", calls);
    let routes = (0..ROUNDS)
        .map(|_| (route(&off_web), route(&on_web)))
        .collect();
    report("interleaved route", routes);
    rt.block_on(off.shutdown());
    rt.block_on(on.shutdown());
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = call, route, interleaved
}
criterion_main!(benches);
