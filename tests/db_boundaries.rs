//! The boundaries of the database layer against plugin SQL and hostile traffic, on SQLite
//! (memory and file) and a real Postgres: read-only handles stay read-only whatever the plugin
//! sends, a tampered connection never reaches the next user, tenants never share storage,
//! concurrent provisioning, bounded tenant pools, in-memory data that survives cancelled
//! requests, concurrent writers on the embedded default.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use serde_json::Value;
use xcore::{
    Actions, CallContext, CallError, Manifest, Plugin, PluginContext, PluginError, TenantId,
    async_trait,
    services::db::{DatabaseOptions, DatabaseService, Db, DbError, Migration, sqlx},
};
use xcore_testkit::{PostgresServer, TestApp};

const NOTES: &[Migration] = &[Migration::new(
    1,
    "create notes",
    "CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL)",
)];

/// A plugin that hands the test the handle its grants give it.
struct Holder {
    slot: Arc<OnceLock<Db>>,
    migrate: bool,
}

#[async_trait]
impl Actions for Holder {
    async fn handle(&self, action: &str, _: Value, _: &CallContext) -> Result<Value, CallError> {
        Err(CallError::unknown_action(action, &[]))
    }
}

#[async_trait]
impl Plugin for Holder {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        let db = ctx.handle::<Db>()?;
        if self.migrate {
            db.migrate(NOTES).await?;
        }
        let _ = self.slot.set(db);
        Ok(())
    }
}

fn options(url: &str) -> DatabaseOptions {
    DatabaseOptions {
        url: url.to_owned(),
        max_connections: 4,
        tenant_max_connections: 2,
        acquire_timeout: Duration::from_secs(2),
        ..DatabaseOptions::default()
    }
}

/// An app with a writer plugin (migrates `notes`) and a reader plugin (`db.default: read`).
async fn boot(options: DatabaseOptions) -> (TestApp, Db, Db) {
    let (writer, reader) = (Arc::new(OnceLock::new()), Arc::new(OnceLock::new()));
    let manifest = |name: &str, grant: &str| {
        Manifest::builder(name, "1.0.0")
            .services(["db"])
            .permissions([grant])
            .build()
            .unwrap()
    };
    let app = TestApp::builder()
        .service(DatabaseService::new([("default", options)]))
        .plugin(
            manifest("writer", "db.default: read, write"),
            Holder {
                slot: writer.clone(),
                migrate: true,
            },
        )
        .plugin(
            manifest("reader", "db.default: read"),
            Holder {
                slot: reader.clone(),
                migrate: false,
            },
        )
        .boot()
        .await
        .unwrap();
    let (writer, reader) = (writer.get().cloned(), reader.get().cloned());
    let (Some(writer), Some(reader)) = (writer, reader) else {
        panic!("plugins did not load: {}", app.report());
    };
    assert!(reader.is_read_only() && !writer.is_read_only());
    (app, writer, reader)
}

async fn count(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM notes")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

/// Tries `escape` then an INSERT through every way a read-only handle offers (its pool, a held
/// connection, a transaction); every INSERT must fail, and afterwards every connection of the
/// read-only pool must still refuse writes.
async fn escapes_fail(reader: &Db, writer: &Db, escapes: &[&str]) {
    let before = count(writer).await;
    // The read-only handle works: it reads what the writer wrote.
    let read: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notes")
        .fetch_one(reader.pool())
        .await
        .unwrap_or_else(|e| panic!("the read-only handle cannot read: {e}"));
    assert_eq!(read, before);
    for (i, escape) in escapes.iter().enumerate() {
        let id = 1_000 + i as i64 * 10;
        let insert = |id: i64| sqlx::query("INSERT INTO notes VALUES ($1, 'escaped')").bind(id);

        // Through the pool: the escape and the INSERT may land on the same connection.
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(escape.to_string()))
            .execute(reader.pool())
            .await;
        assert!(
            insert(id).execute(reader.pool()).await.is_err(),
            "pool: `{escape}` let a write through"
        );
        // In one batch.
        let batch = format!("{escape}; INSERT INTO notes VALUES ({}, 'batch')", id + 1);
        assert!(
            sqlx::raw_sql(sqlx::AssertSqlSafe(batch))
                .execute(reader.pool())
                .await
                .is_err(),
            "batch: `{escape}` let a write through"
        );
        // On a held connection.
        let mut conn = reader.acquire().await.unwrap();
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(escape.to_string()))
            .execute(&mut *conn)
            .await;
        assert!(
            insert(id + 2).execute(&mut *conn).await.is_err(),
            "held connection: `{escape}` let a write through"
        );
        drop(conn);
        // Inside a transaction the handle began.
        let mut tx = reader.begin().await.unwrap();
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(escape.to_string()))
            .execute(&mut *tx)
            .await;
        assert!(
            insert(id + 3).execute(&mut *tx).await.is_err(),
            "transaction: `{escape}` let a write through"
        );
        drop(tx);
    }
    // The chain: switch the session to read-write, end whatever transaction is open, write.
    let mut conn = reader.acquire().await.unwrap();
    for sql in escapes {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut *conn)
            .await;
    }
    let _ = sqlx::raw_sql("COMMIT").execute(&mut *conn).await;
    assert!(
        sqlx::query("INSERT INTO notes VALUES (2000, 'chain')")
            .execute(&mut *conn)
            .await
            .is_err(),
        "the chain of escapes let a write through"
    );
    drop(conn);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Every connection handed out next (the pool's whole size, held at once) refuses writes.
    let mut held = Vec::new();
    for _ in 0..reader.pool().options().get_max_connections() {
        held.push(reader.acquire().await.unwrap());
    }
    for conn in &mut held {
        assert!(
            sqlx::query("INSERT INTO notes VALUES (3000, 'next user')")
                .execute(&mut **conn)
                .await
                .is_err(),
            "a tampered connection reached the next user"
        );
    }
    drop(held);
    assert_eq!(count(writer).await, before, "nothing was written");
}

const SQLITE_ESCAPES: &[&str] = &[
    "PRAGMA query_only = 0",
    "PRAGMA query_only = OFF",
    "PRAGMA query_only = false",
];

const POSTGRES_ESCAPES: &[&str] = &[
    "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
    "SET default_transaction_read_only = off",
    "RESET ALL",
    "SET TRANSACTION READ WRITE",
    "RESET ROLE",
    "RESET SESSION AUTHORIZATION",
    "SET transaction_read_only = off",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
];

#[tokio::test]
async fn sqlite_read_only_handles_cannot_be_made_writable() {
    let (app, writer, reader) = boot(options("sqlite::memory:")).await;
    escapes_fail(&reader, &writer, SQLITE_ESCAPES).await;
    app.shutdown().await;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/app.db", dir.path().display());
    let (app, writer, reader) = boot(options(&url)).await;
    escapes_fail(&reader, &writer, SQLITE_ESCAPES).await;
    // Tenants' read-only handles are read-only below SQL too.
    let acme = TenantId::new("acme").unwrap();
    escapes_fail(
        &reader.for_tenant(&acme).await.unwrap(),
        &writer.for_tenant(&acme).await.unwrap(),
        SQLITE_ESCAPES,
    )
    .await;
    app.shutdown().await;
}

#[tokio::test]
async fn postgres_read_only_handles_cannot_be_made_writable() {
    let Ok(server) = PostgresServer::start().await else {
        return;
    };
    let url = server.database().await.unwrap();
    let (app, writer, reader) = boot(options(&url)).await;
    escapes_fail(&reader, &writer, POSTGRES_ESCAPES).await;
    let acme = TenantId::new("acme").unwrap();
    escapes_fail(
        &reader.for_tenant(&acme).await.unwrap(),
        &writer.for_tenant(&acme).await.unwrap(),
        POSTGRES_ESCAPES,
    )
    .await;
    app.shutdown().await;
}

/// Whatever a plugin does to its tenant connection's session, the next user of that
/// connection is back in its own tenant, with no temporary table, no open transaction.
#[tokio::test]
async fn postgres_tenant_state_never_leaks_to_the_next_user() {
    let Ok(server) = PostgresServer::start().await else {
        return;
    };
    let url = server.database().await.unwrap();
    let (app, writer, _) = boot(options(&url)).await;
    let (acme_id, globex_id) = (
        TenantId::new("acme").unwrap(),
        TenantId::new("globex").unwrap(),
    );
    let acme = writer.for_tenant(&acme_id).await.unwrap();
    let globex = writer.for_tenant(&globex_id).await.unwrap();
    sqlx::query("INSERT INTO notes VALUES (1, 'globex')")
        .execute(globex.pool())
        .await
        .unwrap();
    let tampering = [
        "SET search_path TO \"tenant_globex\"",
        "RESET ALL",
        "SET search_path TO public",
        "SELECT set_config('search_path', 'tenant_globex', false)",
        "CREATE TEMP TABLE notes (id BIGINT, body TEXT); INSERT INTO notes VALUES (7, 'temp')",
        "BEGIN",
        "PREPARE sneaky AS SELECT 1",
        "SET ROLE NONE",
    ];
    for sql in tampering {
        // Tamper with every connection of acme's pool, then use them all again.
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut conn = acme.acquire().await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&mut *conn)
                .await
                .unwrap();
            held.push(conn);
        }
        drop(held);
        tokio::time::sleep(Duration::from_millis(50)).await;
        for _ in 0..6 {
            assert_eq!(count(&acme).await, 0, "after `{sql}`, acme saw other rows");
        }
        // And writes of acme land in acme, committed (no transaction left open).
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(acme.acquire().await.unwrap());
        }
        for conn in &mut held {
            // Simple protocol: outside a transaction block, the statement is its own transaction.
            let row = sqlx::raw_sql("SELECT now() <> statement_timestamp()")
                .fetch_one(&mut **conn)
                .await
                .unwrap();
            let in_tx: bool = sqlx::Row::get(&row, 0);
            assert!(!in_tx, "after `{sql}`, a transaction was left open");
        }
    }
    assert_eq!(count(&globex).await, 1);
    app.shutdown().await;
}

async fn long_ids_stay_apart(url: &str) {
    let (app, writer, _) = boot(options(url)).await;
    let a = TenantId::new(&format!("{}a1b2", "x".repeat(56))).unwrap();
    let b = TenantId::new(&format!("{}c3d4", "x".repeat(56))).unwrap();
    assert_eq!(a.as_str().len(), 60);
    let (da, db) = (
        writer.for_tenant(&a).await.unwrap(),
        writer.for_tenant(&b).await.unwrap(),
    );
    sqlx::query("INSERT INTO notes VALUES (1, 'a')")
        .execute(da.pool())
        .await
        .unwrap();
    assert_eq!(count(&da).await, 1);
    assert_eq!(count(&db).await, 0, "two long tenant ids share storage");
    app.shutdown().await;
}

#[tokio::test]
async fn long_tenant_ids_never_share_storage() {
    long_ids_stay_apart("sqlite::memory:").await;
    let dir = tempfile::tempdir().unwrap();
    long_ids_stay_apart(&format!("sqlite://{}/app.db", dir.path().display())).await;
    let Ok(server) = PostgresServer::start().await else {
        return;
    };
    long_ids_stay_apart(&server.database().await.unwrap()).await;
}

/// Two instances on one Postgres open the same new tenants at once: all succeed.
#[tokio::test]
async fn two_instances_provision_the_same_tenant_at_once() {
    let Ok(server) = PostgresServer::start().await else {
        return;
    };
    let url = server.database().await.unwrap();
    let (one, w1, _) = boot(options(&url)).await;
    let (two, w2, _) = boot(options(&url)).await;
    for i in 0..5 {
        let tenant = TenantId::new(&format!("fresh-{i}")).unwrap();
        let (a, b) = tokio::join!(w1.for_tenant(&tenant), w2.for_tenant(&tenant));
        let (a, b) = (a.unwrap(), b.unwrap());
        sqlx::query("INSERT INTO notes VALUES (1, 'one')")
            .execute(a.pool())
            .await
            .unwrap();
        assert_eq!(count(&b).await, 1, "both instances see one schema");
    }
    one.shutdown().await;
    two.shutdown().await;
}

/// In-memory SQLite: 100 queries cancelled mid-flight lose nothing, and the tenant keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_data_survives_cancelled_queries() {
    let (app, writer, _) = boot(DatabaseOptions {
        // Cancelled queries run to their end on SQLite's thread: later ones queue behind.
        acquire_timeout: Duration::from_secs(60),
        ..options("sqlite::memory:")
    })
    .await;
    let acme = writer
        .for_tenant(&TenantId::new("acme").unwrap())
        .await
        .unwrap();
    for db in [&writer, &acme] {
        sqlx::query("INSERT INTO notes VALUES (1, 'kept')")
            .execute(db.pool())
            .await
            .unwrap();
    }
    let slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000) \
                SELECT COUNT(*) FROM n";
    for round in 0..100 {
        let db = if round % 2 == 0 { &writer } else { &acme }.clone();
        let task = tokio::spawn(async move {
            let mut tx = db.begin().await?;
            sqlx::query("INSERT INTO notes VALUES ($1, 'cancelled')")
                .bind(10_000 + round)
                .execute(&mut *tx)
                .await?;
            sqlx::query(slow).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, DbError>(())
        });
        tokio::time::sleep(Duration::from_millis(2)).await;
        task.abort();
        let _ = task.await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(count(&writer).await, 1, "the main database kept its row");
    assert_eq!(count(&acme).await, 1, "the tenant database kept its row");
    sqlx::query("INSERT INTO notes VALUES (2, 'still works')")
        .execute(acme.pool())
        .await
        .unwrap();
    app.shutdown().await;
}

/// 50 concurrent writers (read-then-write transactions and plain INSERTs) on the embedded
/// default and on a file: none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_wait_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "sqlite::memory:".to_owned(),
        format!("sqlite://{}/app.db", dir.path().display()),
    ] {
        let (app, writer, _) = boot(options(&url)).await;
        let acme = writer
            .for_tenant(&TenantId::new("acme").unwrap())
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..50_i64 {
            let db = acme.clone();
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    db.transaction(|tx| {
                        Box::pin(async move {
                            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notes")
                                .fetch_one(&mut **tx)
                                .await?;
                            sqlx::query("INSERT INTO notes VALUES ($1, $2)")
                                .bind(i)
                                .bind(format!("saw {n}"))
                                .execute(&mut **tx)
                                .await?;
                            Ok::<_, DbError>(())
                        })
                    })
                    .await
                } else {
                    sqlx::query("INSERT INTO notes VALUES ($1, 'plain')")
                        .bind(i)
                        .execute(db.pool())
                        .await
                        .map(drop)
                        .map_err(DbError::from)
                }
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(count(&acme).await, 50, "{url}");
        app.shutdown().await;
    }
}

/// At most `tenant_pools` tenants keep pools open: a new tenant evicts the least recently used
/// one nobody holds; when all are held, a new tenant is refused (503-class error); evicted
/// tenants keep their data.
#[tokio::test]
async fn tenant_pools_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "sqlite::memory:".to_owned(),
        format!("sqlite://{}/app.db", dir.path().display()),
    ] {
        let (app, writer, _) = boot(DatabaseOptions {
            tenant_pools: 2,
            ..options(&url)
        })
        .await;
        let t = |i: usize| TenantId::new(&format!("t{i}")).unwrap();
        let held: Vec<Db> = vec![
            writer.for_tenant(&t(0)).await.unwrap(),
            writer.for_tenant(&t(1)).await.unwrap(),
        ];
        sqlx::query("INSERT INTO notes VALUES (1, 't0')")
            .execute(held[0].pool())
            .await
            .unwrap();
        let err = writer.for_tenant(&t(2)).await.unwrap_err();
        assert!(matches!(err, DbError::TenantCapacity { .. }), "{err}");
        let call_error = CallError::from(err);
        assert_eq!(call_error.http_status(), 503);
        drop(held);
        // Now tenants come and go; only two stay open.
        for i in 2..20 {
            let db = writer.for_tenant(&t(i)).await.unwrap();
            assert_eq!(count(&db).await, 0);
        }
        // t0 was evicted and comes back with its data.
        assert_eq!(count(&writer.for_tenant(&t(0)).await.unwrap()).await, 1);
        app.shutdown().await;
    }
}

/// A tenant whose provisioning fails (here: a migration that needs a table only the main
/// database has) is a 503-class error with `retry_after`, never a 500; other tenants are
/// unaffected, and the failed tenant is retried on its next use.
async fn provisioning_failure_is_retryable(url: &str) {
    let (app, writer, _) = boot(options(url)).await;
    sqlx::query("CREATE TABLE main_only (id BIGINT)")
        .execute(writer.pool())
        .await
        .unwrap();
    const NEEDS_MAIN: &[Migration] = &[
        NOTES[0],
        Migration::new(
            2,
            "copy from main",
            "INSERT INTO notes SELECT id, 'copied' FROM main_only",
        ),
    ];
    writer.migrate(NEEDS_MAIN).await.unwrap();
    let err = writer
        .for_tenant(&TenantId::new("doomed").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::Provisioning { .. }), "{err}");
    let call_error = CallError::from(err);
    assert_eq!(call_error.http_status(), 503, "{call_error:?}");
    assert_eq!(call_error.details().unwrap()["retry_after_ms"], 1000);
    // Retried (and failing the same way) on next use, not remembered as provisioned.
    assert!(
        writer
            .for_tenant(&TenantId::new("doomed").unwrap())
            .await
            .is_err()
    );
    app.shutdown().await;
}

#[tokio::test]
async fn provisioning_failures_answer_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    provisioning_failure_is_retryable(&format!("sqlite://{}/app.db", dir.path().display())).await;
    let Ok(server) = PostgresServer::start().await else {
        return;
    };
    provisioning_failure_is_retryable(&server.database().await.unwrap()).await;
}
