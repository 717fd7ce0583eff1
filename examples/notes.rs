//! An example host on axum: two plugins — `notes` and `audit` — with databases, the cache,
//! HTTP routes, a plugin-to-plugin call and tenancy, plus the admin API.
//!
//! ```text
//! cargo run --example notes
//! curl -s -X POST localhost:8080/plugin/notes/notes -H 'X-Tenant-ID: acme' \
//!      -H 'content-type: application/json' -d '{"title": "hello", "body": "first note"}'
//! curl -s localhost:8080/plugin/notes/notes -H 'X-Tenant-ID: acme'
//! curl -s localhost:8080/plugin/notes/notes -H 'X-Tenant-ID: globex'     # sees nothing of acme
//! curl -s localhost:8080/xcore/health/ready
//! curl -s -H "Authorization: Bearer $XCORE_ADMIN_TOKEN" localhost:8080/xcore/plugins
//! ```
//!
//! It listens on `XCORE_ADDR` (default `127.0.0.1:8080`); the admin token comes from
//! `XCORE_ADMIN_TOKEN`, or a random one is printed at start-up. Ctrl-C shuts down gracefully.

use std::net::SocketAddr;

use axum::{Router, http::StatusCode, routing::get};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use xcore::{
    config::Config,
    prelude::*,
    services::{
        cache::{Cache, Ttl},
        db::{DatabaseOptions, Db, Migration, sqlx},
    },
    web::{
        FieldErrors, Routes, Validate,
        axum::{Bound, Json, Valid},
    },
};

const NOTES_MIGRATIONS: &[Migration] = &[Migration::new(
    1,
    "create notes",
    "CREATE TABLE notes (id BIGINT PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL)",
)];

const AUDIT_MIGRATIONS: &[Migration] = &[Migration::new(
    1,
    "create audit",
    "CREATE TABLE audit_log (id BIGINT PRIMARY KEY, what TEXT NOT NULL)",
)];

// ---------------------------------------------------------------------------------------------
// `audit`: keeps a log per tenant; other plugins call `record`. It never names a tenant: the
// database handle it takes from each call is the call's tenant's.

#[derive(Default)]
#[plugin(
    name = "audit",
    version = "1.0.0",
    description = "An audit log per tenant",
    services = ["db"],
    permissions = ["db.default: read, write"],
    allowed_callers = ["notes"],
)]
struct Audit;

#[async_trait]
impl Plugin for Audit {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        ctx.handle::<Db>()?.migrate(AUDIT_MIGRATIONS).await?;
        Ok(())
    }
}

#[derive(Deserialize)]
struct Record {
    what: String,
}

#[actions]
impl Audit {
    #[action]
    async fn record(&self, cx: &CallContext, input: Record) -> Result<i64, CallError> {
        let db = cx.handle::<Db>().await?;
        let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM audit_log")
            .fetch_one(db.pool())
            .await
            .map_err(CallError::handler)?;
        sqlx::query("INSERT INTO audit_log (id, what) VALUES ($1, $2)")
            .bind(next)
            .bind(input.what)
            .execute(db.pool())
            .await
            .map_err(CallError::handler)?;
        Ok(next)
    }

    #[action]
    async fn recent(&self, cx: &CallContext) -> Result<Vec<String>, CallError> {
        let db = cx.handle::<Db>().await?;
        sqlx::query_scalar("SELECT what FROM audit_log ORDER BY id DESC LIMIT 10")
            .fetch_all(db.pool())
            .await
            .map_err(CallError::handler)
    }
}

// ---------------------------------------------------------------------------------------------
// `notes`: notes per tenant over HTTP, a cached count, every creation audited. Its routes take
// their handles from the request (`Bound<Db>`, the `CallContext`): no state, no tenant.

#[derive(Default)]
#[plugin(
    name = "notes",
    version = "1.0.0",
    description = "Notes per tenant, over HTTP",
    services = ["db", "cache"],
    requires = ["audit@^1"],
    permissions = ["db.default: read, write", "cache.notes: *", "plugin:audit: record, recent"],
)]
struct Notes;

#[derive(Deserialize)]
struct NewNote {
    title: String,
    body: String,
}

impl Validate for NewNote {
    fn validate(&self) -> Result<(), FieldErrors> {
        FieldErrors::new()
            .check(!self.title.trim().is_empty(), "title", "must not be empty")
            .check(
                self.title.len() <= 200,
                "title",
                "must be at most 200 characters",
            )
            .check(
                self.body.len() <= 10_000,
                "body",
                "must be at most 10,000 characters",
            )
            .into_result()
    }
}

#[derive(Serialize)]
struct Note {
    id: i64,
    title: String,
    body: String,
}

/// The number of notes of the call's tenant, cached.
async fn count_notes(cx: &CallContext) -> Result<i64, CallError> {
    let db = cx.handle::<Db>().await?;
    let cache = cx.named::<Cache>("notes").await?;
    Ok(cache
        .get_or_set("count", Ttl::Default, || async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM notes")
                .fetch_one(db.pool())
                .await
        })
        .await?)
}

async fn list(cx: CallContext, Bound(db): Bound<Db>) -> Result<Json<Value>, CallError> {
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, title, body FROM notes ORDER BY id")
            .fetch_all(db.pool())
            .await
            .map_err(CallError::handler)?;
    let notes: Vec<Note> = rows
        .into_iter()
        .map(|(id, title, body)| Note { id, title, body })
        .collect();
    Ok(Json(
        json!({ "tenant": cx.tenant().as_str(), "notes": notes }),
    ))
}

async fn create(
    cx: CallContext,
    ctx: PluginContext,
    Bound(db): Bound<Db>,
    Valid(note): Valid<NewNote>,
) -> Result<(StatusCode, Json<Value>), CallError> {
    let id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM notes")
        .fetch_one(db.pool())
        .await
        .map_err(CallError::handler)?;
    sqlx::query("INSERT INTO notes (id, title, body) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(&note.title)
        .bind(&note.body)
        .execute(db.pool())
        .await
        .map_err(CallError::handler)?;
    cx.named::<Cache>("notes").await?.delete("count").await?;
    ctx.plugin("audit")
        .call(
            &cx,
            "record",
            json!({ "what": format!("note {id} created: {}", note.title) }),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "title": note.title })),
    ))
}

async fn count(cx: CallContext) -> Result<Json<Value>, CallError> {
    Ok(Json(json!({ "count": count_notes(&cx).await? })))
}

async fn history(cx: CallContext, ctx: PluginContext) -> Result<Json<Value>, CallError> {
    let recent = ctx.plugin("audit").call(&cx, "recent", json!(null)).await?;
    Ok(Json(json!({ "recent": recent })))
}

#[async_trait]
impl Plugin for Notes {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        ctx.handle::<Db>()?.migrate(NOTES_MIGRATIONS).await?;
        // Checked now, so that a missing grant fails the boot rather than the first request.
        ctx.named::<Cache>("notes")?;
        Ok(())
    }

    fn routes(&self, _ctx: &PluginContext) -> Option<Routes> {
        let router = Router::new()
            .route("/notes", get(list).post(create))
            .route("/notes/count", get(count))
            .route("/history", get(history));
        Some(
            Routes::from_axum(router)
                .endpoint(axum::http::Method::GET, "/notes")
                .endpoint(axum::http::Method::POST, "/notes")
                .endpoint(axum::http::Method::GET, "/notes/count")
                .endpoint(axum::http::Method::GET, "/history"),
        )
    }
}

#[actions]
impl Notes {
    #[action]
    async fn count(&self, cx: &CallContext) -> Result<i64, CallError> {
        count_notes(cx).await
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::var("XCORE_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:8080".into())
        .parse()?;
    let token = match std::env::var("XCORE_ADMIN_TOKEN") {
        Ok(token) => token,
        Err(_) => {
            let token = random_token()?;
            println!("admin token (set XCORE_ADMIN_TOKEN to choose one): {token}");
            token
        }
    };

    let mut config = Config::default();
    config
        .services
        .databases
        .insert("default".into(), DatabaseOptions::default());
    config.tenancy.enabled = true;
    let _tracing = xcore::observability::init_tracing(&config.observability)?;

    let xcore = Xcore::builder()
        .only_registered(["notes", "audit"])
        .config(config.clone())
        .build()?;
    println!("{}", xcore.plan());
    let report = xcore.boot().await?;
    println!("{report}");
    // This host needs every plugin: a plugin that failed to boot stops it, with the reason.
    if let Err(err) = report.ensure_all_started() {
        xcore.shutdown().await;
        return Err(err.into());
    }

    let web = xcore.web().config(&config).admin_token(&token).build()?;
    let app = xcore::web::axum::mount(Router::new(), &web);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    // axum's router on xcore's server: the header, body and write limits of the `web`
    // config section (10 s, 10 s / 60 s, 30 s by default).
    xcore::web::axum::serve(listener, app, web.edge().clone(), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    let stopped = xcore.shutdown().await;
    println!("shut down (clean: {})", stopped.is_clean());
    Ok(())
}

/// A random admin token: 128 bits from the operating system's cryptographic generator.
fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
