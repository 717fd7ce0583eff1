//! The main example: the `user_manager` plugin of the reference page 000 served over HTTP.
//!
//! ```text
//! cargo run --example user_manager
//! curl -s -X POST localhost:8080/plugin/user_manager/v2/register -H 'X-Tenant-ID: acme' \
//!      -H 'content-type: application/json' -d '{"username": "alice", "email": "alice@xcore.dev"}'
//! ```
//!
//! Embedded defaults: SQLite in memory, the memory cache, the in-process worker. With
//! `XCORE_CONFIG=examples/user_manager/production.yaml` it reads that config file instead
//! (Postgres and Redis). It listens on `XCORE_ADDR` (default `127.0.0.1:8080`), resolves
//! tenants from `X-Tenant-ID`, mounts the admin API under `/xcore` with the token of
//! `XCORE_ADMIN_TOKEN` (a random one, printed, when unset) — with its Prometheus metrics at
//! `/xcore/metrics` and its OpenAPI document at `/xcore/openapi.json` — and shuts down
//! gracefully on Ctrl-C or SIGTERM.

mod plugin;

use std::net::SocketAddr;

use xcore::{
    config::Config,
    events::{Event, Flow},
    prelude::*,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::var("XCORE_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:8080".into())
        .parse()?;
    let config = match std::env::var("XCORE_CONFIG") {
        Ok(path) => Config::from_file(&path)?,
        Err(_) => plugin::embedded_config(),
    };
    let _tracing = xcore::observability::init_tracing(&config.observability)?;
    let token = match std::env::var("XCORE_ADMIN_TOKEN") {
        Ok(token) => token,
        Err(_) => {
            let token = random_token()?;
            println!("admin token (set XCORE_ADMIN_TOKEN to choose it): {token}");
            token
        }
    };

    let xcore = Xcore::builder()
        .only_registered(["user_manager"])
        .config(config.clone())
        // Prometheus metrics of its own, scraped at `GET /xcore/metrics` (admin token).
        .metrics(xcore::observability::Metrics::prometheus())
        .build()?;
    println!("{}", xcore.plan());
    xcore
        .events()
        .subscribe("user.*", |event: Event| async move {
            println!(
                "event {} for {}: {}",
                event.name(),
                event.tenant(),
                event.payload()
            );
            Ok::<_, std::convert::Infallible>(Flow::Continue)
        })?;
    let report = xcore.boot().await?;
    println!("{report}");
    // This host needs every plugin: a plugin that failed to boot stops it, with the reason.
    if let Err(err) = report.ensure_all_started() {
        xcore.shutdown().await;
        return Err(err.into());
    }

    let web = xcore.web().config(&config).admin_token(&token).build()?;
    let app = xcore::web::axum::mount(axum::Router::new(), &web);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    // axum's router on xcore's server: the header, body and write limits of the `web`
    // config section (10 s, 10 s / 60 s, 30 s by default).
    xcore::web::axum::serve(listener, app, web.edge().clone(), shutdown_signal()).await?;
    let stopped = xcore.shutdown().await;
    println!("shut down (clean: {})", stopped.is_clean());
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// An admin token: 128 bits from the operating system's cryptographic generator.
fn random_token() -> Result<String, getrandom::Error> {
    plugin::session_token()
}
