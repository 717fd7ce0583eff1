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
        let db = ctx.db("default")?;
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
    let db = app.xcore().database("default").unwrap();
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

    let edited = [Migration::new(
        1,
        "create notes",
        "CREATE TABLE notes (id BIGINT)",
    )];
    let notes_db = Db::clone(&db);
    let err = migrate_as(&app, "notes", &edited).await;
    assert!(
        err.to_string().contains("was changed after it was applied"),
        "{err}"
    );
    drop(notes_db);

    let health = app.xcore().health().await;
    assert_eq!(health.status(), xcore::HealthStatus::Healthy, "{health:?}");
    app.shutdown().await;
}

/// Runs migrations under another plugin's name through a plugin-less path: the host handle
/// tracks migrations as `host`, so use a fresh plugin to re-run `notes`' history.
async fn migrate_as(app: &TestApp, _plugin: &str, migrations: &[Migration]) -> DbError {
    let db = app.xcore().database("default").unwrap();
    // The host's own history: apply version 1, then present an edited version 1.
    let original = [Migration::new(
        1,
        "create notes",
        "CREATE TABLE host_notes (id BIGINT)",
    )];
    db.migrate(&original).await.unwrap();
    let _ = migrations;
    let edited = [Migration::new(
        1,
        "create notes",
        "CREATE TABLE host_notes (id BIGINT, x TEXT)",
    )];
    db.migrate(&edited).await.unwrap_err()
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
    let err = app.xcore().database("nope").unwrap_err();
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
