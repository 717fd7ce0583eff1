//! Many tenants on one host: what 2,000 fresh tenants cost (RSS, threads, open connections),
//! how long a new tenant's first query takes, and whether queries of existing tenants slow
//! down while other tenants are being provisioned.
//!
//! ```sh
//! cargo bench --bench tenants                         # SQLite (memory and file)
//! XCORE_TEST_POSTGRES_URL=postgres://… cargo bench --bench tenants   # and Postgres
//! ```
//!
//! Not a criterion bench: each figure is one measured run, printed as a table row.

use std::time::{Duration, Instant};

use xcore::{
    TenantId, Xcore,
    services::db::{DatabaseOptions, DatabaseService, Db, Migration, sqlx},
    tenancy::{Provision, Tenants},
};
use xcore_testkit::PostgresServer;

const MIGRATIONS: &[Migration] = &[Migration::new(
    1,
    "users",
    "CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL)",
)];

fn proc_status(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn rss_mb() -> f64 {
    proc_status("VmRSS:") as f64 / 1024.0
}

fn threads() -> u64 {
    proc_status("Threads:")
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

async fn server_connections(db: &Db) -> Option<i64> {
    if db.backend() != xcore::services::db::Backend::Postgres {
        return None;
    }
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(db.pool())
    .await
    .ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn query(db: &Db) {
    let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(db.pool())
        .await
        .unwrap();
}

async fn run(label: &str, url: &str, tenants: usize) {
    let options = DatabaseOptions {
        url: url.to_owned(),
        ..DatabaseOptions::default()
    };
    let budget = 2
        * (options.max_connections as usize
            + options.tenant_pools * options.tenant_max_connections as usize);
    let xcore = Xcore::builder()
        .without_registered()
        .tenants(Tenants::new(Provision::Auto, tenants + 300))
        .service(DatabaseService::new([("default", options)]))
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    let main = xcore.named::<Db>("default").unwrap();
    main.migrate(MIGRATIONS).await.unwrap();
    let existing = main
        .for_tenant(&TenantId::new("existing").unwrap())
        .await
        .unwrap();
    query(&existing).await;

    // Baseline: an existing tenant's query latency, nothing else going on.
    let mut quiet = Vec::new();
    for _ in 0..300 {
        let started = Instant::now();
        query(&existing).await;
        quiet.push(started.elapsed());
    }
    quiet.sort();

    let (rss0, threads0, fds0) = (rss_mb(), threads(), fds());
    let conns0 = server_connections(&main).await;

    // Fresh tenants, one after the other: the first query of each.
    let mut first = Vec::with_capacity(tenants);
    let mut mid = (0.0, 0);
    let mut peak_conns = conns0.unwrap_or(0);
    for i in 0..tenants {
        let id = TenantId::new(&format!("fresh-{i}")).unwrap();
        let started = Instant::now();
        let db = main.for_tenant(&id).await.unwrap();
        query(&db).await;
        first.push(started.elapsed());
        drop(db);
        if i == 499 {
            mid = (rss_mb(), threads());
        }
        if i % 100 == 99
            && let Some(c) = server_connections(&main).await
        {
            peak_conns = peak_conns.max(c);
        }
    }
    // An existing tenant's queries while 200 other tenants are being provisioned.
    let provisioning = {
        let main = main.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                let id = TenantId::new(&format!("late-{i}")).unwrap();
                let db = main.for_tenant(&id).await.unwrap();
                query(&db).await;
            }
        })
    };
    let mut during = Vec::new();
    while !provisioning.is_finished() {
        let started = Instant::now();
        query(&existing).await;
        during.push(started.elapsed());
    }
    provisioning.await.unwrap();
    during.sort();
    first.sort();

    let (rss1, threads1, fds1) = (rss_mb(), threads(), fds());
    let conns1 = server_connections(&main).await;
    println!(
        "| {label} | {tenants} | {:.1} → {:.1} → {:.1} MB (+{:.1}) | {threads0} → {} → {threads1} | {fds0} → {fds1} | {} | {} | {:?} / {:?} | {:?} / {:?} → {:?} / {:?} ({} samples) |",
        rss0,
        mid.0,
        rss1,
        rss1 - rss0,
        mid.1,
        match (conns0, conns1) {
            (Some(a), Some(b)) => format!("{a} → {b} (peak {peak_conns})"),
            _ => "—".to_owned(),
        },
        budget,
        percentile(&first, 0.5),
        percentile(&first, 0.99),
        percentile(&quiet, 0.5),
        percentile(&quiet, 0.99),
        percentile(&during, 0.5),
        percentile(&during, 0.99),
        during.len(),
    );
    assert!(main.open_tenants() <= 64);
    xcore.shutdown().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!(
            "| database | fresh tenants | RSS: before → after 500 → after all | threads: before → after 500 → after all | fds | server connections | connection budget | first query of a new tenant p50 / p99 | existing tenant p50 / p99: quiet → while 200 others are provisioned |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        let dir = tempfile::tempdir().unwrap();
        run(
            "SQLite file",
            &format!("sqlite://{}/app.db", dir.path().display()),
            2_000,
        )
        .await;
        run("SQLite memory", "sqlite::memory:", 2_000).await;
        if let Ok(server) = PostgresServer::start().await {
            run("Postgres", &server.database().await.unwrap(), 2_000).await;
        }
    });
}
