//! The server of `scripts/bench-web.sh`: one trivial route (`GET /plugin/bench/hello` →
//! `hello`) served by bare axum, or through xcore's axum, hyper or actix adapter, on a port
//! given on the command line. Not a benchmark by itself: wrk measures it from outside.
//!
//! Its own package, so that it is built as a host using only the adapters it serves with
//! builds it: in the workspace's root package, the actix adapter the tests use turns on
//! `tracing`'s `log` feature, which makes every span (even disabled) cost more. The actix mode
//! is behind this package's `actix` feature for the same reason.
//!
//! ```text
//! cargo run --release -p xcore-bench-web -- axum-bare 127.0.0.1:8081
//! BENCH_LOG=warn cargo run --release -p xcore-bench-web -- axum 127.0.0.1:8081
//! BENCH_METRICS=1 cargo run --release -p xcore-bench-web -- hyper 127.0.0.1:8081
//! cargo run --release -p xcore-bench-web --features actix -- actix 127.0.0.1:8081
//! ```

use std::net::SocketAddr;

use axum::{Router, routing::get};
use http::Method;
use serde_json::Value;
use xcore::{
    Actions, CallContext, CallError, Manifest, Plugin, PluginContext, Xcore, async_trait,
    observability::Metrics, web::Routes,
};

struct Bench;

#[async_trait]
impl Actions for Bench {
    async fn handle(&self, action: &str, _: Value, _: &CallContext) -> Result<Value, CallError> {
        Err(CallError::unknown_action(action, &[]))
    }
}

#[async_trait]
impl Plugin for Bench {
    fn routes(&self, _ctx: &PluginContext) -> Option<Routes> {
        let router = Router::new().route("/hello", get(hello));
        Some(Routes::from_axum(router).endpoint(Method::GET, "/hello"))
    }
}

async fn hello() -> &'static str {
    "hello"
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(mode), Some(addr)) = (args.next(), args.next()) else {
        return Err("usage: xcore-bench-web <axum-bare|axum|hyper|actix> <addr>".into());
    };
    let addr: SocketAddr = addr.parse()?;
    // `BENCH_LOG=warn` (or `info`, ...): a tracing subscriber at that level, as a host that
    // logs has; unset: none.
    if let Ok(level) = std::env::var("BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_max_level(level.parse::<tracing::Level>()?)
            .with_writer(std::io::sink)
            .init();
    }
    let metrics = std::env::var_os("BENCH_METRICS").is_some();
    if mode == "actix" {
        return actix(addr, metrics);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        match mode.as_str() {
            // The same route, the same path, no xcore.
            "axum-bare" => {
                let app = Router::new().route("/plugin/bench/hello", get(hello));
                axum::serve(listener, app).await?;
            }
            "axum" => {
                let xcore = boot(metrics).await?;
                let web = xcore.web().build()?;
                let app = xcore::web::axum::router(&web);
                xcore::web::axum::serve(listener, app, web.edge().clone(), std::future::pending())
                    .await?;
            }
            "hyper" => {
                let xcore = boot(metrics).await?;
                let web = xcore.web().build()?;
                xcore::web::hyper::serve(listener, web, std::future::pending()).await?;
            }
            other => return Err(format!("unknown mode `{other}`").into()),
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

/// The actix adapter, one worker.
#[cfg(feature = "actix")]
fn actix(addr: SocketAddr, metrics: bool) -> Result<(), Box<dyn std::error::Error>> {
    actix_web::rt::System::new().block_on(async move {
        let xcore = boot(metrics).await?;
        let web = xcore.web().build()?;
        let edge = web.edge().clone();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new().configure(xcore::web::actix::configure(web.clone()))
        });
        xcore::web::actix::apply_limits(server, &edge)
            .workers(1)
            .bind(addr)?
            .run()
            .await?;
        Ok(())
    })
}

#[cfg(not(feature = "actix"))]
fn actix(_: SocketAddr, _: bool) -> Result<(), Box<dyn std::error::Error>> {
    Err("the actix mode needs the `actix` feature: --features actix".into())
}

async fn boot(metrics: bool) -> Result<Xcore, Box<dyn std::error::Error>> {
    let mut builder = Xcore::builder()
        .without_registered()
        .plugin(Manifest::builder("bench", "1.0.0").build()?, Bench);
    if metrics {
        builder = builder.metrics(Metrics::prometheus());
    }
    let xcore = builder.build()?;
    xcore.boot().await?;
    Ok(xcore)
}
