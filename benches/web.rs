//! Web bench: requests per second and latency percentiles of one trivial plugin route
//! (`GET /plugin/bench/ping` → `pong`) served over loopback through each adapter, beside the
//! same handler mounted directly in a bare axum router, in one run.
//!
//! ```text
//! cargo bench --bench web                      # 3 s per target and round, 2 rounds
//! XCORE_BENCH_SECS=5 XCORE_BENCH_ROUNDS=3 XCORE_BENCH_CONNS=64 cargo bench --bench web
//! ```
//!
//! A load loop in the same process: `XCORE_BENCH_CONNS` (32) keep-alive HTTP/1.1 connections
//! (hyper clients), each sending its next request as soon as the previous answer is read, on
//! a one-thread runtime; the servers (axum and hyper on a one-thread tokio runtime, actix with
//! one worker) share the other core. Targets are run in turn, round after round, and each
//! target's best round is reported, with its ratio to bare axum. Not a criterion bench: the
//! figure that matters is throughput under concurrency, which criterion does not measure.
//! Without `--bench` (as `cargo test --all-targets` runs it), a 0.2 s smoke run.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use axum::{Router, routing::get};
use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use xcore::{
    Actions, CallContext, CallError, Manifest, Plugin, PluginContext, Xcore, async_trait,
    web::{Routes, Web},
};

/// The route every target serves.
const PATH: &str = "/plugin/bench/ping";

async fn ping() -> &'static str {
    "pong"
}

/// A plugin serving `GET /ping`.
struct Bench;

#[async_trait]
impl Actions for Bench {
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
impl Plugin for Bench {
    fn routes(&self, _ctx: &PluginContext) -> Option<Routes> {
        Some(
            Routes::from_axum(Router::new().route("/ping", get(ping)))
                .endpoint(Method::GET, "/ping"),
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    BareAxum,
    XcoreAxum,
    XcoreHyper,
    XcoreActix,
}

impl Target {
    const ALL: [Target; 4] = [
        Target::BareAxum,
        Target::XcoreAxum,
        Target::XcoreHyper,
        Target::XcoreActix,
    ];

    fn name(self) -> &'static str {
        match self {
            Target::BareAxum => "bare axum (handler mounted directly)",
            Target::XcoreAxum => "xcore::web::axum",
            Target::XcoreHyper => "xcore::web::hyper",
            Target::XcoreActix => "xcore::web::actix",
        }
    }
}

/// Starts every target on its own loopback port; servers run on `server_rt` (actix on its
/// own thread).
fn start_servers(server_rt: &tokio::runtime::Runtime, web: &Web) -> Vec<(Target, SocketAddr)> {
    let mut out = Vec::new();
    for target in Target::ALL {
        let addr = match target {
            Target::BareAxum | Target::XcoreAxum | Target::XcoreHyper => {
                let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                std_listener.set_nonblocking(true).unwrap();
                let addr = std_listener.local_addr().unwrap();
                let web = web.clone();
                server_rt.spawn(async move {
                    let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                    match target {
                        Target::BareAxum => {
                            let app = Router::new().route(PATH, get(ping));
                            let _ = axum::serve(listener, app).await;
                        }
                        Target::XcoreAxum => {
                            let _ = axum::serve(listener, xcore::web::axum::router(&web)).await;
                        }
                        _ => {
                            let _ = xcore::web::hyper::serve(listener, web, std::future::pending())
                                .await;
                        }
                    }
                });
                addr
            }
            Target::XcoreActix => {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let web = web.clone();
                std::thread::spawn(move || {
                    actix_web::rt::System::new().block_on(async move {
                        actix_web::HttpServer::new(move || {
                            actix_web::App::new()
                                .configure(xcore::web::actix::configure(web.clone()))
                        })
                        .workers(1)
                        .disable_signals()
                        .listen(listener)?
                        .run()
                        .await
                    })
                });
                addr
            }
        };
        out.push((target, addr));
    }
    out
}

/// One connection's loop: requests back to back until `until`; latencies in µs.
async fn connection(addr: SocketAddr, warmup_until: Instant, until: Instant) -> Vec<u32> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut latencies = Vec::with_capacity(64 * 1024);
    loop {
        let started = Instant::now();
        if started >= until {
            return latencies;
        }
        sender.ready().await.expect("connection closed");
        let request = Request::get(PATH)
            .header(header::HOST, "127.0.0.1")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.expect("request failed");
        assert!(
            response.status().is_success(),
            "status {}",
            response.status()
        );
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(body, "pong");
        if started >= warmup_until {
            latencies.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
        }
    }
}

struct Run {
    rps: f64,
    p50_us: u32,
    p99_us: u32,
}

/// Loads one target for `warmup + secs`.
fn load(
    client_rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    conns: usize,
    warmup: Duration,
    secs: Duration,
) -> Run {
    let start = Instant::now();
    let (warmup_until, until) = (start + warmup, start + warmup + secs);
    let mut latencies: Vec<u32> = client_rt.block_on(async {
        let tasks: Vec<_> = (0..conns)
            .map(|_| tokio::spawn(connection(addr, warmup_until, until)))
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("client task"));
        }
        all
    });
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Run {
        rps: latencies.len() as f64 / secs.as_secs_f64(),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (secs, rounds, warmup) = if bench {
        (
            Duration::from_secs_f64(env_or("XCORE_BENCH_SECS", 3.0)),
            env_or("XCORE_BENCH_ROUNDS", 2usize).max(1),
            Duration::from_millis(500),
        )
    } else {
        (Duration::from_millis(200), 1, Duration::from_millis(50))
    };
    let conns = env_or("XCORE_BENCH_CONNS", 32usize).max(1);

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    let xcore = server_rt.block_on(async {
        let manifest = Manifest::builder("bench", "1.0.0").build().unwrap();
        let xcore = Xcore::builder()
            .without_registered()
            .plugin(manifest, Bench)
            .build()
            .unwrap();
        xcore.boot().await.unwrap();
        xcore
    });
    let web = xcore.web().build().unwrap();
    let servers = start_servers(&server_rt, &web);
    std::thread::sleep(Duration::from_millis(200));

    println!(
        "web bench: GET {PATH} over loopback, {conns} keep-alive connections, {} s per target and round, {rounds} round(s), best round shown",
        secs.as_secs_f64()
    );
    let mut best: Vec<Option<Run>> = Target::ALL.iter().map(|_| None).collect();
    for _ in 0..rounds {
        for (i, &(_, addr)) in servers.iter().enumerate() {
            let run = load(&client_rt, addr, conns, warmup, secs);
            if best[i].as_ref().is_none_or(|b| run.rps > b.rps) {
                best[i] = Some(run);
            }
        }
    }
    let bare = best[0].as_ref().map_or(1.0, |r| r.rps);
    println!(
        "{:<38} {:>10} {:>9} {:>9} {:>9}",
        "target", "req/s", "p50 µs", "p99 µs", "vs bare"
    );
    for (i, (target, _)) in servers.iter().enumerate() {
        let Some(run) = &best[i] else { continue };
        println!(
            "{:<38} {:>10.0} {:>9} {:>9} {:>8.1}%",
            target.name(),
            run.rps,
            run.p50_us,
            run.p99_us,
            100.0 * run.rps / bare
        );
    }
    server_rt.block_on(xcore.shutdown());
}
