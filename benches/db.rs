//! `SELECT 1` through a database handle (`Db::ping`) beside the same query on a raw sqlx pool
//! of the same size on the same database, in one run: on SQLite (in memory), and on Postgres
//! when `XCORE_TEST_POSTGRES_URL` is set or a throwaway server can be started.

mod common;

use std::hint::black_box;

use common::paired;

use criterion::{Criterion, criterion_group, criterion_main};
use xcore::services::db::Db;
use xcore::{
    Xcore,
    services::db::{
        DatabaseOptions, DatabaseService,
        sqlx::{self, any::AnyPoolOptions},
    },
};
use xcore_testkit::PostgresServer;

fn bench_url(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    label: &str,
    url: &str,
    raw_url: &str,
) {
    let xcore = rt.block_on(async {
        let options = DatabaseOptions {
            url: url.to_owned(),
            max_connections: 4,
            ..DatabaseOptions::default()
        };
        let xcore = Xcore::builder()
            .without_registered()
            .service(DatabaseService::new([("default", options)]))
            .build()
            .unwrap();
        xcore.boot().await.unwrap();
        xcore
    });
    let db = xcore.named::<Db>("default").unwrap();
    let raw = rt.block_on(async {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new()
            .max_connections(4)
            .connect(raw_url)
            .await
            .unwrap()
    });
    let mut group = c.benchmark_group(format!("select_1/{label}"));
    group.bench_function("raw_pool", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(sqlx::query("SELECT 1").execute(&raw).await.unwrap()) })
    });
    group.bench_function("handle", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(db.ping().await.unwrap()) })
    });
    group.finish();
    paired(
        rt,
        &format!("paired select_1/{label}"),
        200,
        async || {
            black_box(sqlx::query("SELECT 1").execute(&raw).await.unwrap());
        },
        async || {
            black_box(db.ping().await.unwrap());
        },
    );
    rt.block_on(async {
        raw.close().await;
        xcore.shutdown().await;
    });
}

fn select_one(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = format!("sqlite://{}/bench.db", dir.path().display());
    bench_url(c, &rt, "sqlite", &file, &format!("{file}?mode=rwc"));
    let server = rt.block_on(PostgresServer::start());
    if let Ok(server) = server {
        let url = rt.block_on(server.database()).unwrap();
        bench_url(c, &rt, "postgres", &url, &url);
    }
}

criterion_group!(benches, select_one);
criterion_main!(benches);
