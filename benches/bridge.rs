//! Scale-out costs: how long a bridged event takes from the emit on instance A until a
//! subscriber on instance B has it (Redis pub/sub, Redis Streams, Postgres
//! `LISTEN`/`NOTIFY`), beside a local emit until a subscriber on A has it; and what a call
//! costs with its rate limit cluster-wide (one GCRA script on Redis) beside the per-process
//! bucket.
//!
//! ```sh
//! cargo bench --bench bridge      # a local redis-server; Postgres from XCORE_TEST_POSTGRES_URL
//! ```
//!
//! Not a criterion bench: the figures asked for are percentiles (p50, p99) of one sample per
//! event, printed as table rows; the baselines are measured in the same run.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;
use xcore::{
    CallContext, Xcore,
    events::{BridgeOptions, Event, EventBridge, Flow},
    services::rate_limits::{RateLimitsOptions, RateLimitsService},
};
use xcore_testkit::{FakePlugin, PostgresServer, RedisServer, TestApp};

const SAMPLES: usize = 2_000;
const WARMUP: usize = 100;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// An instance (with `bridge`, if any) whose subscriber to `bench.*` sends each event's
/// arrival time on the returned channel.
async fn instance(bridge: Option<EventBridge>) -> (Xcore, mpsc::UnboundedReceiver<Instant>) {
    let mut builder = Xcore::builder().without_registered();
    if let Some(bridge) = bridge {
        builder = builder.service(bridge);
    }
    let xcore = builder.build().unwrap();
    xcore.boot().await.unwrap().ensure_all_started().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    xcore
        .events()
        .subscribe("bench.*", move |_: Event| {
            let _ = tx.send(Instant::now());
            std::future::ready(Ok::<_, std::convert::Infallible>(Flow::Continue))
        })
        .unwrap();
    (xcore, rx)
}

/// Emits on `from` one event at a time and waits for it on `arrivals`: the latencies.
async fn latencies(from: &Xcore, arrivals: &mut mpsc::UnboundedReceiver<Instant>) -> Vec<Duration> {
    let cx = CallContext::host();
    let mut all = Vec::with_capacity(SAMPLES);
    for i in 0..WARMUP + SAMPLES {
        let sent = Instant::now();
        from.events()
            .emit(&cx, "bench.event", json!({ "i": i }))
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), arrivals.recv())
            .await
            .expect("an event was not received within 5 s")
            .unwrap();
        if i >= WARMUP {
            all.push(got - sent);
        }
    }
    all.sort();
    all
}

fn row(label: &str, sorted: &[Duration], baseline: Option<&[Duration]>) {
    let (p50, p99) = (percentile(sorted, 0.5), percentile(sorted, 0.99));
    let ratio = baseline.map_or("1".to_owned(), |b| {
        format!(
            "{:.0} / {:.0}",
            p50.as_secs_f64() / percentile(b, 0.5).as_secs_f64(),
            p99.as_secs_f64() / percentile(b, 0.99).as_secs_f64()
        )
    });
    println!("| {label} | {p50:?} | {p99:?} | {ratio} |");
}

async fn bridged(url: &str, channel: &str, streams: bool) -> Vec<Duration> {
    let options = |url: &str| {
        let mut o = if streams {
            BridgeOptions::new(url, ["unused.*"]).route_at_least_once(url, ["bench.*"])
        } else {
            BridgeOptions::new(url, ["bench.*"])
        };
        o.channel = channel.to_owned();
        EventBridge::new(o).unwrap()
    };
    let (a, mut from_a) = instance(Some(options(url))).await;
    let (b, mut on_b) = instance(Some(options(url))).await;
    let out = latencies(&a, &mut on_b).await;
    // A received its own emits locally: drained, not measured.
    while from_a.try_recv().is_ok() {}
    a.shutdown().await;
    b.shutdown().await;
    out
}

async fn limited(redis: Option<&str>) -> TestApp {
    let mut builder = TestApp::builder()
        .fake_plugin(FakePlugin::new("limited").manifest(|m| m.rate_limit("1000000/1s")));
    if let Some(url) = redis {
        builder = builder.service(RateLimitsService::new(RateLimitsOptions::new(url)).unwrap());
    }
    builder.boot().await.unwrap()
}

async fn call_latencies(app: &TestApp) -> Vec<Duration> {
    let mut all = Vec::with_capacity(SAMPLES);
    for i in 0..WARMUP + SAMPLES {
        let started = Instant::now();
        app.call("limited", "ping", json!({})).await.unwrap();
        if i >= WARMUP {
            all.push(started.elapsed());
        }
    }
    all.sort();
    all
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let redis = RedisServer::start_local().await.ok();
        let postgres = PostgresServer::start().await.ok();

        println!("| emit until a subscriber has it ({SAMPLES} events, one at a time) | p50 | p99 | × local (p50 / p99) |");
        println!("|---|---|---|---|");
        let (local, mut arrivals) = instance(None).await;
        let baseline = latencies(&local, &mut arrivals).await;
        local.shutdown().await;
        row("local emit (same instance)", &baseline, None);
        if let Some(redis) = &redis {
            let sorted = bridged(redis.url(), "bench_bridge", false).await;
            row("bridged, Redis pub/sub (A → B)", &sorted, Some(&baseline));
            let sorted = bridged(redis.url(), "bench_stream", true).await;
            row("bridged, Redis Streams (A → B)", &sorted, Some(&baseline));
        }
        if let Some(postgres) = &postgres {
            let url = postgres.database().await.unwrap();
            let sorted = bridged(&url, "bench_bridge", false).await;
            row("bridged, Postgres LISTEN/NOTIFY (A → B)", &sorted, Some(&baseline));
        }

        if let Some(redis) = &redis {
            println!();
            println!("| call `limited.ping` with a rate limit ({SAMPLES} calls, one at a time) | p50 | p99 | × per process (p50 / p99) |");
            println!("|---|---|---|---|");
            let app = limited(None).await;
            let baseline = call_latencies(&app).await;
            app.shutdown().await;
            row("per-process bucket", &baseline, None);
            let app = limited(Some(redis.url())).await;
            let sorted = call_latencies(&app).await;
            app.shutdown().await;
            row("cluster-wide (GCRA on Redis)", &sorted, Some(&baseline));
        }
    });
}
