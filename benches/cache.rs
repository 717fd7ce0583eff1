//! Cache benches: what the [`Cache`] handle (grants, tenant/namespace scoping, key validation,
//! serde, the async call) costs over the raw backend it drives, measured side by side in one
//! run.
//!
//! - `cache_memory`: hot `get` (`key:{i % 100}`) and `set` (`key:{i}`, default TTL, `max_size`
//!   100k) through the handle, beside the same LRU map under its mutex driven with full keys
//!   and bytes (`raw`).
//! - `cache_redis`: `get` and `set` through the handle on the Redis backend, beside a raw
//!   `redis` multiplexed connection to the same server sending the same `GET` / `SET … PX`;
//!   plus a tiered `get` served by L1. It starts a throwaway `redis-server` (or uses
//!   `XCORE_TEST_REDIS_URL`) and is skipped with a note if none can be had.
//!
//! Run with `cargo bench --bench cache`. Beside criterion's figures, each group ends with a
//! *paired* line: raw and handle run alternately in rounds, and the median of the per-round
//! ratios handle / raw is printed. That ratio is the figure to read on a busy machine, where
//! load drifts between two criterion measurements taken one after the other.

use std::{cell::Cell, hint::black_box, sync::Arc, time::Duration};

mod common;

use common::paired;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use xcore::services::cache::{
    CacheBackendKind, CacheOptions, CacheService, RedisOptions, Ttl, raw::RawMemory,
};
use xcore_testkit::RedisServer;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime")
}

/// `count` keys, handed out round-robin.
struct Keys {
    keys: Vec<String>,
    next: Cell<usize>,
}

impl Keys {
    fn new(count: usize, prefix: &str) -> Self {
        Self {
            keys: (0..count).map(|i| format!("{prefix}key:{i}")).collect(),
            next: Cell::new(0),
        }
    }

    fn next(&self) -> &str {
        let i = self.next.get();
        self.next
            .set(if i + 1 == self.keys.len() { 0 } else { i + 1 });
        &self.keys[i]
    }
}

fn cache_memory(c: &mut Criterion) {
    let rt = runtime();
    let options = CacheOptions {
        max_size: 100_000,
        ..CacheOptions::default()
    };
    let service = rt
        .block_on(CacheService::connect(options))
        .expect("a memory cache");
    let cache = service.handle("bench").expect("a handle");
    let raw = RawMemory::new(100_000);
    let scope = "xcore:default:bench:";
    let value = 12_345_u64;
    let bytes: Arc<[u8]> = Arc::from(serde_json::to_vec(&value).expect("json").as_slice());
    let ttl = Some(Duration::from_secs(300));

    let hot = Keys::new(100, "");
    let hot_full = Keys::new(100, scope);
    for i in 0..100 {
        rt.block_on(cache.set(&hot.keys[i], &value, Ttl::Default))
            .expect("set");
        raw.set(&hot_full.keys[i], bytes.clone(), ttl);
    }
    let cold = Keys::new(100_000, "");
    let cold_full = Keys::new(100_000, scope);

    let mut group = c.benchmark_group("cache_memory");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function(BenchmarkId::new("get_hot", "raw"), |b| {
        b.iter(|| black_box(raw.get(hot_full.next())));
    });
    group.bench_function(BenchmarkId::new("get_hot", "handle"), |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(cache.get::<u64>(hot.next()).await) });
    });
    group.bench_function(BenchmarkId::new("set", "raw"), |b| {
        b.iter(|| raw.set(cold_full.next(), bytes.clone(), ttl));
    });
    group.bench_function(BenchmarkId::new("set", "handle"), |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(cache.set(cold.next(), &value, Ttl::Default).await) });
    });
    group.finish();

    paired(
        &rt,
        "paired cache_memory/get_hot",
        200_000,
        async || {
            black_box(raw.get(hot_full.next()));
        },
        async || {
            black_box(cache.get::<u64>(hot.next()).await.ok());
        },
    );
}

fn cache_redis(c: &mut Criterion) {
    let rt = runtime();
    let Ok(server) = rt.block_on(RedisServer::start()) else {
        eprintln!("cache_redis skipped: no Redis server");
        return;
    };
    let options = |backend| CacheOptions {
        backend,
        prefix: format!("bench{}", std::process::id()),
        redis: RedisOptions {
            url: server.url().to_owned(),
            ..RedisOptions::default()
        },
        ..CacheOptions::default()
    };
    let redis = rt
        .block_on(CacheService::connect(options(CacheBackendKind::Redis)))
        .expect("a Redis cache");
    let tiered = rt
        .block_on(CacheService::connect(options(CacheBackendKind::Tiered)))
        .expect("a tiered cache");
    let cache = redis.handle("bench").expect("a handle");
    let near = tiered.handle("near").expect("a handle");
    let mut conn = rt
        .block_on(async {
            redis::Client::open(server.url())?
                .get_multiplexed_async_connection()
                .await
        })
        .expect("a raw connection");
    let value = 12_345_u64;
    let bytes = serde_json::to_vec(&value).expect("json");
    let full = format!("bench{}:default:bench:raw", std::process::id());
    rt.block_on(cache.set("hot", &value, Ttl::Default))
        .expect("set");
    rt.block_on(near.set("hot", &value, Ttl::Default))
        .expect("set");
    rt.block_on(
        redis::cmd("SET")
            .arg(&full)
            .arg(&bytes)
            .arg("PX")
            .arg(300_000)
            .query_async::<()>(&mut conn),
    )
    .expect("raw set");

    let mut group = c.benchmark_group("cache_redis");
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function(BenchmarkId::new("get", "raw"), |b| {
        b.to_async(&rt).iter(|| {
            let mut conn = conn.clone();
            let full = full.as_str();
            async move {
                black_box(
                    redis::cmd("GET")
                        .arg(full)
                        .query_async::<Option<Vec<u8>>>(&mut conn)
                        .await,
                )
            }
        });
    });
    group.bench_function(BenchmarkId::new("get", "handle"), |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(cache.get::<u64>("hot").await) });
    });
    group.bench_function(BenchmarkId::new("set", "raw"), |b| {
        b.to_async(&rt).iter(|| {
            let mut conn = conn.clone();
            let (full, bytes) = (full.as_str(), bytes.as_slice());
            async move {
                black_box(
                    redis::cmd("SET")
                        .arg(full)
                        .arg(bytes)
                        .arg("PX")
                        .arg(300_000)
                        .query_async::<()>(&mut conn)
                        .await,
                )
            }
        });
    });
    group.bench_function(BenchmarkId::new("set", "handle"), |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(cache.set("hot", &value, Ttl::Default).await) });
    });
    group.bench_function(BenchmarkId::new("get", "tiered_l1"), |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(near.get::<u64>("hot").await) });
    });
    group.finish();

    let mut get_conn = conn.clone();
    paired(
        &rt,
        "paired cache_redis/get",
        2_000,
        async || {
            black_box(
                redis::cmd("GET")
                    .arg(&full)
                    .query_async::<Option<Vec<u8>>>(&mut get_conn)
                    .await
                    .ok(),
            );
        },
        async || {
            black_box(cache.get::<u64>("hot").await.ok());
        },
    );
    let mut set_conn = conn.clone();
    paired(
        &rt,
        "paired cache_redis/set",
        2_000,
        async || {
            black_box(
                redis::cmd("SET")
                    .arg(&full)
                    .arg(&bytes)
                    .arg("PX")
                    .arg(300_000)
                    .query_async::<()>(&mut set_conn)
                    .await
                    .ok(),
            );
        },
        async || {
            black_box(cache.set("hot", &value, Ttl::Default).await.ok());
        },
    );
    rt.block_on(async {
        let _ = cache.clear().await;
        let _ = near.clear().await;
        let _ = redis::cmd("DEL")
            .arg(&full)
            .query_async::<()>(&mut conn)
            .await;
    });
    rt.block_on(xcore::Service::shutdown(&tiered))
        .expect("shutdown");
}

criterion_group!(benches, cache_memory, cache_redis);
criterion_main!(benches);
