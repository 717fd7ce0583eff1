//! 5xx answers carry no internals: a route whose query fails on a real SQLite database
//! answers 500 with its code, a generic message and an error id; the cause is logged at ERROR
//! with the same id, the plugin, the route and the trace id. 4xx keep their messages.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use axum::{Router, extract::State, routing::get};
use http::Method;
use serde_json::Value;
use xcore::{
    Actions, CallContext, CallError, Manifest, Plugin, PluginContext, PluginError, Xcore,
    async_trait,
    config::Config,
    services::db::{DatabaseOptions, Db, sqlx},
    web::Routes,
};

mod support;
use support::{Adapter, send, serve};

/// `ledger`: `GET /entries` queries a table that does not exist.
#[derive(Default)]
struct Ledger {
    db: Option<Db>,
}

#[async_trait]
impl Actions for Ledger {
    async fn handle(&self, action: &str, _: Value, _: &CallContext) -> Result<Value, CallError> {
        Err(CallError::unknown_action(action, &[]))
    }
}

async fn entries(State(db): State<Db>, cx: CallContext) -> Result<String, CallError> {
    let db = db.for_tenant(cx.tenant()).await?;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secret_ledger_table")
        .fetch_one(db.pool())
        .await
        .map_err(CallError::handler)?;
    Ok(n.to_string())
}

#[async_trait]
impl Plugin for Ledger {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        self.db = Some(ctx.handle::<Db>()?);
        Ok(())
    }

    fn routes(&self, _ctx: &PluginContext) -> Option<Routes> {
        let router = Router::new()
            .route("/entries", get(entries))
            .with_state(self.db.clone()?);
        Some(Routes::from_axum(router).endpoint(Method::GET, "/entries"))
    }
}

/// A log sink the test reads.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_error_is_logged_with_an_id_and_never_sent() {
    let logs = Captured::default();
    let sink = logs.clone();
    // The only test of this binary: the subscriber sees the servers' tasks on every thread.
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish(),
    )
    .unwrap();

    let mut config = Config::default();
    config
        .services
        .databases
        .insert("default".into(), DatabaseOptions::default());
    let manifest = Manifest::builder("ledger", "1.0.0")
        .services(["db"])
        .permissions(["db.default: read"])
        .build()
        .unwrap();
    let xcore = Xcore::builder()
        .without_registered()
        .config(config)
        .plugin(manifest, Ledger::default())
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    let web = xcore.web().build().unwrap();

    for adapter in [Adapter::Axum, Adapter::Hyper, Adapter::Actix] {
        let addr = serve(adapter, web.clone()).await;
        let reply = send(addr, Method::GET, "/plugin/ledger/entries", &[], "").await;
        assert_eq!(reply.status, 500, "{adapter:?}");
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        for internal in ["secret_ledger_table", "SELECT", "no such table", "sqlite"] {
            assert!(!text.contains(internal), "{adapter:?}: {text}");
        }
        let body = reply.json();
        assert_eq!(body["code"], "handler_error", "{adapter:?}");
        let id = body["details"]["error_id"].as_str().unwrap().to_owned();
        assert_eq!(id.len(), 16);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(body["message"].as_str().unwrap().contains(&id));

        // The log line with that id holds the cause and the request's span.
        let log = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let line = log
            .lines()
            .find(|l| l.contains(&id))
            .unwrap_or_else(|| panic!("{adapter:?}: no log line with {id}:\n{log}"));
        assert!(line.contains("ERROR"), "{line}");
        assert!(line.contains("secret_ledger_table"), "{line}");
        assert!(line.contains("plugin=\"ledger\""), "{line}");
        assert!(line.contains("route=\"/plugin/ledger/entries\""), "{line}");
        assert!(line.contains("trace_id="), "{line}");
    }

    // A 4xx keeps its precise message.
    let addr = serve(Adapter::Hyper, web).await;
    let missing = send(addr, Method::GET, "/plugin/nobody/x", &[], "").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], "no plugin `nobody`");
    xcore.shutdown().await;
}
