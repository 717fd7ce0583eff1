//! Reload bench: what a reload costs the traffic of the plugin reloaded.
//!
//! One `Xcore` with plugin `lab` (an action and a route answering the instance's
//! generation) served by the axum adapter on loopback. Two clients run all along: one
//! calling `lab.generation` through `Xcore::call`, one sending `GET /plugin/lab/generation`
//! over a kept-alive HTTP/1.1 connection. First a steady phase (no reload), then a phase of
//! `XCORE_RELOADS` reloads (default 100) spaced by 20 ms.
//!
//! Printed: for each client, the latency (p50, p99, max) of the requests of the steady
//! phase, of the reload phase outside swaps, and of the requests that overlapped a swap (from
//! the start of `reload_plugin` to its return); the time a reload takes (p50, p99, max); the
//! failures (any error, any non-200), which must be 0 — the run fails otherwise.
//!
//! A plain `main` (`harness = false`): `cargo bench --bench reload` runs it whole; any other
//! run (`cargo test --benches`) does 10 reloads.
//!
//! ```sh
//! cargo bench --bench reload
//! ```

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, routing::get};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use xcore::{
    Actions, CallContext, CallError, Manifest, Plugin, PluginContext, Xcore, async_trait,
    web::Routes,
};

/// Answers its generation (1 for the first instance).
struct Lab {
    generation: u32,
}

#[async_trait]
impl Actions for Lab {
    fn action_names(&self) -> &'static [&'static str] {
        &["generation"]
    }

    async fn handle(&self, action: &str, _: Value, _: &CallContext) -> Result<Value, CallError> {
        match action {
            "generation" => Ok(json!(self.generation)),
            other => Err(CallError::unknown_action(other, self.action_names())),
        }
    }
}

#[async_trait]
impl Plugin for Lab {
    fn routes(&self, _: &PluginContext) -> Option<Routes> {
        let generation = self.generation;
        let router = Router::new().route(
            "/generation",
            get(move || async move { generation.to_string() }),
        );
        Some(Routes::from_axum(router).endpoint(Method::GET, "/generation"))
    }
}

/// One request: when it started (since the run began) and how long it took.
type Sample = (Duration, Duration);

#[derive(Default)]
struct Samples {
    calls: Vec<Sample>,
    requests: Vec<Sample>,
    failures: Vec<String>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at]
}

fn row(label: &str, mut latencies: Vec<Duration>) {
    latencies.sort_unstable();
    println!(
        "| {label} | {} | {:.1} | {:.1} | {:.1} |",
        latencies.len(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e6,
        percentile(&latencies, 0.99).as_secs_f64() * 1e6,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e6,
    );
}

async fn client(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let reloads: u32 = std::env::var("XCORE_RELOADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 100 } else { 10 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(reloads));
}

async fn run(reloads: u32) {
    let made = Arc::new(AtomicU32::new(0));
    let factory = {
        let made = made.clone();
        move || Lab {
            generation: made.fetch_add(1, Ordering::SeqCst) + 1,
        }
    };
    let xcore = Xcore::builder()
        .without_registered()
        .plugin_factory(Manifest::builder("lab", "1.0.0").build().unwrap(), factory)
        .build()
        .unwrap();
    xcore.boot().await.unwrap().ensure_all_started().unwrap();
    let web = xcore.web().build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = xcore::web::axum::router(&web);
    let edge = web.edge().clone();
    tokio::spawn(xcore::web::axum::serve(
        listener,
        app,
        edge,
        std::future::pending(),
    ));

    let epoch = Instant::now();
    let samples = Arc::new(Mutex::new(Samples::default()));
    let done = Arc::new(AtomicBool::new(false));
    let caller = tokio::spawn({
        let (xcore, samples, done) = (xcore.clone(), samples.clone(), done.clone());
        async move {
            while !done.load(Ordering::Relaxed) {
                let started = Instant::now();
                let out = xcore.call("lab", "generation", json!(null)).await;
                let took = started.elapsed();
                let mut s = samples.lock().unwrap();
                match out {
                    Ok(_) => s.calls.push((started - epoch, took)),
                    Err(err) => s.failures.push(format!("call: {err}")),
                }
            }
        }
    });
    let requester = tokio::spawn({
        let (samples, done) = (samples.clone(), done.clone());
        async move {
            let mut sender = client(addr).await;
            while !done.load(Ordering::Relaxed) {
                let request = Request::get("/plugin/lab/generation")
                    .header("host", "127.0.0.1")
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let started = Instant::now();
                let response = sender.send_request(request).await.unwrap();
                let status = response.status();
                let _ = response.into_body().collect().await.unwrap();
                let took = started.elapsed();
                let mut s = samples.lock().unwrap();
                if status == StatusCode::OK {
                    s.requests.push((started - epoch, took));
                } else {
                    s.failures.push(format!("GET: {status}"));
                }
            }
        }
    });

    let steady = Duration::from_millis(if reloads >= 100 { 2000 } else { 200 });
    tokio::time::sleep(steady).await;
    let reload_phase = epoch.elapsed();
    let mut swaps = Vec::new();
    for _ in 0..reloads {
        let started = Instant::now();
        xcore.reload_plugin("lab").await.unwrap();
        swaps.push((started - epoch, started.elapsed()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done.store(true, Ordering::SeqCst);
    caller.await.unwrap();
    requester.await.unwrap();
    xcore.shutdown().await;

    let samples = samples.lock().unwrap();
    let overlaps =
        |(at, took): &Sample| swaps.iter().any(|(s, d)| *at < *s + *d && *at + *took > *s);
    println!("reload bench: {reloads} reloads, axum adapter, 2 tokio workers\n");
    println!("| requests | count | p50 (µs) | p99 (µs) | max (µs) |");
    println!("|---|---:|---:|---:|---:|");
    for (label, list) in [("call", &samples.calls), ("GET", &samples.requests)] {
        let pick = |f: &dyn Fn(&Sample) -> bool| -> Vec<Duration> {
            list.iter().filter(|s| f(s)).map(|s| s.1).collect()
        };
        row(&format!("{label}, steady"), pick(&|s| s.0 < reload_phase));
        row(
            &format!("{label}, reload phase, outside swaps"),
            pick(&|s| s.0 >= reload_phase && !overlaps(s)),
        );
        row(
            &format!("{label}, overlapping a swap"),
            pick(&|s| overlaps(s)),
        );
    }
    row("reload_plugin itself", swaps.iter().map(|s| s.1).collect());
    println!("\nfailures: {}", samples.failures.len());
    assert!(
        samples.failures.is_empty(),
        "failures: {:?}",
        &samples.failures[..samples.failures.len().min(5)]
    );
    assert_eq!(made.load(Ordering::SeqCst), reloads + 1);
}
