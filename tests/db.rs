//! Databases on SQLite and on a real Postgres: transactions, read-only handles, migrations,
//! pool exhaustion, a server down at boot.

use std::time::Duration;

use serde_json::{Value, json};
use xcore::{
    Actions, CallContext, CallError, ErrorCode, Manifest, NodeState, OnFailure, Plugin,
    PluginContext, PluginError, async_trait,
    services::db::{DatabaseOptions, DatabaseService, Db, DbError, Migration, sqlx},
};
use xcore_testkit::{PostgresServer, TestApp};

const NOTES: &[Migration] = &[
    Migration::new(
        1,
        "create notes",
        "CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL)",
    ),
    Migration::new(2, "seed", "INSERT INTO notes (id, body) VALUES (0, 'seed')"),
];

/// Another plugin whose migrations have the same versions and names.
const TAGS: &[Migration] = &[
    Migration::new(
        1,
        "create notes",
        "CREATE TABLE tags (id BIGINT PRIMARY KEY, label TEXT NOT NULL)",
    ),
    Migration::new(2, "seed", "INSERT INTO tags (id, label) VALUES (0, 'seed')"),
];

const HOST_V1: &[Migration] = &[Migration::new(
    1,
    "host notes",
    "CREATE TABLE host_notes (id BIGINT)",
)];
const HOST_V1_EDITED: &[Migration] = &[Migration::new(
    1,
    "host notes",
    "CREATE TABLE host_notes (id BIGINT, x TEXT)",
)];

/// A plugin that keeps notes in the database.
struct Notes {
    migrations: &'static [Migration],
    table: &'static str,
    db: Option<Db>,
}

impl Notes {
    fn new(migrations: &'static [Migration], table: &'static str) -> Self {
        Self {
            migrations,
            table,
            db: None,
        }
    }
}

#[async_trait]
impl Actions for Notes {
    async fn handle(
        &self,
        action: &str,
        payload: Value,
        _: &CallContext,
    ) -> Result<Value, CallError> {
        let db = self
            .db
            .as_ref()
            .ok_or_else(|| CallError::internal("not loaded"))?;
        let id = payload["id"].as_i64().unwrap_or(1);
        match action {
            "insert" => {
                let sql = format!("INSERT INTO {} VALUES ($1, $2)", self.table);
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .bind("body")
                    .execute(db.pool())
                    .await
                    .map_err(CallError::handler)?;
                Ok(json!(true))
            }
            "insert_then_fail" => {
                let sql = format!("INSERT INTO {} VALUES ($1, $2)", self.table);
                let result: Result<(), DbError> = db
                    .transaction(|tx| {
                        Box::pin(async move {
                            sqlx::query(sqlx::AssertSqlSafe(sql))
                                .bind(id)
                                .bind("x")
                                .execute(&mut **tx)
                                .await?;
                            Err(DbError::Sqlx(sqlx::Error::Protocol(
                                "business rule failed".into(),
                            )))
                        })
                    })
                    .await;
                Err(CallError::handler(result.unwrap_err()))
            }
            "insert_in_tx" => {
                let sql = format!("INSERT INTO {} VALUES ($1, $2)", self.table);
                db.transaction(|tx| {
                    Box::pin(async move {
                        sqlx::query(sqlx::AssertSqlSafe(sql))
                            .bind(id)
                            .bind("x")
                            .execute(&mut **tx)
                            .await?;
                        Ok::<_, DbError>(())
                    })
                })
                .await?;
                Ok(json!(true))
            }
            "count" => {
                let sql = format!("SELECT COUNT(*) FROM {}", self.table);
                let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(db.pool())
                    .await
                    .map_err(CallError::handler)?;
                Ok(json!(n))
            }
            other => Err(CallError::unknown_action(
                other,
                &["insert", "insert_then_fail", "insert_in_tx", "count"],
            )),
        }
    }
}

#[async_trait]
impl Plugin for Notes {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        let db = ctx.handle::<Db>()?;
        if !self.migrations.is_empty() {
            db.migrate(self.migrations).await?;
        }
        self.db = Some(db);
        Ok(())
    }
}

fn plugin(name: &str, grants: &[&str]) -> Manifest {
    Manifest::builder(name, "1.0.0")
        .services(["db"])
        .permissions(grants.iter().copied())
        .build()
        .unwrap()
}

fn options(url: &str) -> DatabaseOptions {
    DatabaseOptions {
        url: url.to_owned(),
        max_connections: 4,
        acquire_timeout: Duration::from_millis(500),
        ..DatabaseOptions::default()
    }
}

/// The suite, on any database URL.
async fn suite(url: &str) {
    let app = TestApp::builder()
        .service(DatabaseService::new([("default", options(url))]))
        .plugin(
            plugin("notes", &["db.default: read, write"]),
            Notes::new(NOTES, "notes"),
        )
        .plugin(
            plugin("tags", &["db.default: write"]),
            Notes::new(TAGS, "tags"),
        )
        .plugin(
            plugin("reader", &["db.default: read"]),
            Notes::new(&[], "notes"),
        )
        .boot()
        .await
        .unwrap();
    for name in ["notes", "tags", "reader"] {
        assert_eq!(
            app.report().plugin(name).unwrap().state(),
            NodeState::Started,
            "{}",
            app.report()
        );
    }

    // Migrations of two plugins with the same versions and names both applied.
    assert_eq!(
        app.call("notes", "count", json!({})).await.unwrap(),
        json!(1)
    );
    assert_eq!(
        app.call("tags", "count", json!({})).await.unwrap(),
        json!(1)
    );
    let db = app.xcore().named::<Db>("default").unwrap();
    let tracked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM xcore_migrations")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(tracked, 4);
    // Running them again applies nothing; an edited one is refused.
    let again = db.migrate(&[]).await.unwrap();
    assert!(again.applied.is_empty());

    // Commit persists; an error inside a transaction rolls back.
    app.call("notes", "insert_in_tx", json!({"id": 10}))
        .await
        .unwrap();
    let err = app
        .call("notes", "insert_then_fail", json!({"id": 11}))
        .await
        .unwrap_err();
    assert!(
        err.message().contains("business rule failed"),
        "{}",
        err.message()
    );
    assert_eq!(
        app.call("notes", "count", json!({})).await.unwrap(),
        json!(2)
    );
    // A dropped transaction rolls back too.
    {
        let mut tx = db.begin().await.unwrap();
        sqlx::query("INSERT INTO notes VALUES (12, 'dropped')")
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    assert_eq!(
        app.call("notes", "count", json!({})).await.unwrap(),
        json!(2)
    );

    // The read-only handle reads, and its INSERT fails.
    assert_eq!(
        app.call("reader", "count", json!({})).await.unwrap(),
        json!(2)
    );
    let err = app
        .call("reader", "insert", json!({"id": 20}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::HandlerError);
    let msg = err.message().to_lowercase();
    assert!(
        msg.contains("read-only") || msg.contains("readonly"),
        "{msg}"
    );
    assert_eq!(
        app.call("notes", "count", json!({})).await.unwrap(),
        json!(2)
    );

    // An exhausted pool gives an acquire timeout, not a hang.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(db.acquire().await.unwrap());
    }
    let started = std::time::Instant::now();
    let err = db.acquire().await.unwrap_err();
    assert!(matches!(err, DbError::AcquireTimeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(held);
    assert!(db.ping().await.is_ok());

    // An applied migration that changed since is refused (the host's own history, here).
    db.migrate(HOST_V1).await.unwrap();
    let err = db.migrate(HOST_V1_EDITED).await.unwrap_err();
    assert!(
        err.to_string().contains("was changed after it was applied"),
        "{err}"
    );

    let health = app.xcore().health().await;
    assert_eq!(health.status(), xcore::HealthStatus::Healthy, "{health:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn sqlite_suite() {
    suite("sqlite::memory:").await;
}

#[tokio::test]
async fn sqlite_file_suite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nested/app.db", dir.path().display());
    suite(&url).await;
}

#[tokio::test]
async fn postgres_suite() {
    let Ok(server) = PostgresServer::start().await else {
        return;
    };
    let url = server.database().await.unwrap();
    suite(&url).await;
}

#[tokio::test]
async fn a_missing_grant_or_declaration_is_refused() {
    let app = TestApp::builder()
        .service(DatabaseService::new([(
            "default",
            options("sqlite::memory:"),
        )]))
        .plugin(plugin("nogrant", &[]), Notes::new(&[], "x"))
        .plugin(
            Manifest::builder("undeclared", "1.0.0")
                .permissions(["db.default: read"])
                .build()
                .unwrap(),
            Notes::new(&[], "x"),
        )
        .plugin(plugin("other", &["db.other: read"]), Notes::new(&[], "x"))
        .boot()
        .await
        .unwrap();
    let reason = |n: &str| {
        app.report()
            .plugin(n)
            .unwrap()
            .reason()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        reason("nogrant").contains("may not read `db.default`"),
        "{}",
        reason("nogrant")
    );
    assert!(
        reason("undeclared").contains("did not declare the service `db`"),
        "{}",
        reason("undeclared")
    );
    assert!(
        reason("other").contains("may not read `db.default`"),
        "{}",
        reason("other")
    );
    assert_eq!(app.xcore().audit().denials(Some("nogrant"), 5).len(), 1);
    let err = app.xcore().named::<Db>("nope").unwrap_err();
    assert_eq!(
        err.to_string(),
        "no database connection `nope`; configured: default"
    );
}

#[tokio::test]
async fn a_database_down_at_boot_fails_the_service_and_skips_its_dependents() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut down = options(&format!("postgres://nobody@127.0.0.1:{port}/none"));
    down.acquire_timeout = Duration::from_secs(2);
    let app = TestApp::builder()
        .service(DatabaseService::new([("default", down)]))
        .plugin(
            plugin("notes", &["db.default: read, write"]),
            Notes::new(NOTES, "notes"),
        )
        .fake_plugin(xcore_testkit::FakePlugin::new("independent"))
        .configure(|b| b.on_service_failure(OnFailure::Continue))
        .boot()
        .await
        .unwrap();
    let db = app.report().service("db").unwrap();
    assert_eq!(db.state(), NodeState::Failed);
    assert!(
        db.reason().unwrap().contains("database `default`"),
        "{:?}",
        db.reason()
    );
    assert!(
        db.reason().unwrap().contains("nobody@127.0.0.1"),
        "{:?}",
        db.reason()
    );
    assert_eq!(
        app.report().plugin("notes").unwrap().reason(),
        Some("dependency `db` failed")
    );
    assert_eq!(
        app.report().plugin("independent").unwrap().state(),
        NodeState::Started
    );

    // With the default policy, the same boot is an error.
    let err = TestApp::builder()
        .service(DatabaseService::new([(
            "default",
            options(&format!("postgres://x@127.0.0.1:{port}/none")),
        )]))
        .boot()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("service `db` failed"), "{err}");
}

#[tokio::test]
async fn bad_urls_are_clear_errors() {
    let err = TestApp::builder()
        .service(DatabaseService::new([(
            "default",
            options("mysql://localhost/x"),
        )]))
        .boot()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unsupported URL"), "{err}");
}

/// Tenants `acme` and `globex` on one connection: neither sees the other's rows, through any
/// way of running a query; migrations reach tenants provisioned later.
async fn tenant_isolation(url: &str) {
    let app = TestApp::builder()
        .service(DatabaseService::new([("default", options(url))]))
        .plugin(
            plugin("notes", &["db.default: read, write"]),
            Notes::new(NOTES, "notes"),
        )
        .boot()
        .await
        .unwrap();
    let main = app.xcore().named::<Db>("default").unwrap();
    let acme_id = xcore::TenantId::new("acme").unwrap();
    let globex_id = xcore::TenantId::new("globex").unwrap();
    let acme = main.for_tenant(&acme_id).await.unwrap();
    let globex = main.for_tenant(&globex_id).await.unwrap();
    assert_eq!(acme.tenant(), &acme_id);

    // Provisioned on first use with the migrations applied so far (the seed row included).
    let count = |db: &Db| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM notes")
                .fetch_one(db.pool())
                .await
                .unwrap()
        }
    };
    assert_eq!(count(&acme).await, 1);
    assert_eq!(count(&globex).await, 1);

    // acme writes through the pool, a transaction and an acquired connection.
    sqlx::query("INSERT INTO notes VALUES (100, 'acme pool')")
        .execute(acme.pool())
        .await
        .unwrap();
    acme.transaction(|tx| {
        Box::pin(async move {
            sqlx::query("INSERT INTO notes VALUES (101, 'acme tx')")
                .execute(&mut **tx)
                .await?;
            Ok::<_, DbError>(())
        })
    })
    .await
    .unwrap();
    let mut conn = acme.acquire().await.unwrap();
    sqlx::query("INSERT INTO notes VALUES (102, 'acme conn')")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);

    assert_eq!(count(&acme).await, 4);
    assert_eq!(count(&globex).await, 1, "globex sees none of acme's rows");
    assert_eq!(count(&main).await, 1, "nor does the main database");
    let mut tx = globex.begin().await.unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notes WHERE id >= 100")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(seen, 0, "not through a transaction either");
    drop(tx);
    let read_only = app.xcore().named::<Db>("default").unwrap();
    assert_eq!(
        count(&read_only.for_tenant(&acme_id).await.unwrap()).await,
        4
    );
    app.shutdown().await;
}

#[tokio::test]
async fn sqlite_tenants_are_isolated() {
    tenant_isolation("sqlite::memory:").await;
    let dir = tempfile::tempdir().unwrap();
    tenant_isolation(&format!("sqlite://{}/app.db", dir.path().display())).await;
    assert!(
        dir.path().join("app.tenant-acme.db").exists(),
        "a file per tenant"
    );
}

#[tokio::test]
async fn postgres_tenants_are_isolated() {
    let Ok(server) = PostgresServer::start().await else {
        return;
    };
    let url = server.database().await.unwrap();
    tenant_isolation(&url).await;
    // One schema per tenant.
    let pool = xcore::services::db::sqlx::any::AnyPoolOptions::new()
        .connect(&url)
        .await
        .unwrap();
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name LIKE 'tenant_%' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(schemas, ["tenant_acme", "tenant_globex"]);
}
