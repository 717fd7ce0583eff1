//! Task worker throughput: tasks per second through the in-process queue, the durable
//! Postgres queue and the Redis Streams queue, beside the same database work done directly
//! (sqlx, raw stream commands), in one run.
//!
//! One criterion iteration is a batch: the host sends `N` tasks one after the other (each
//! send returns once the task is queued), and the iteration ends when the `N`-th has run
//! (each handler bumps a counter; the last one signals). Criterion reports the batch time and,
//! through `Throughput::Elements(N)`, tasks per second.
//!
//! - `worker_memory/tasks`: the in-process queue, concurrency 8, `N` = 1000.
//! - `worker_postgres/tasks`: the durable queue (`xcore_tasks`), concurrency 8, poll interval
//!   250 ms (the default), `N` = 200. The sender has the handler and free slots: each task is
//!   inserted claimed by it (`status = 'running'`, its lease set: one statement) and its
//!   outcome written by a fenced `UPDATE`: two statements per task, on connections the queue
//!   keeps (no pool pings).
//! - `worker_postgres/raw_sqlx`: `N` tasks' worth of a minimal queue's round trips done
//!   directly on one connection: `INSERT … RETURNING id`, a claim (`UPDATE … WHERE id IN
//!   (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING …`, its lease set) and `UPDATE … SET
//!   status = 'succeeded'` fenced by the claimant, per task, sequentially, on a table of the
//!   same shape. Each task is durably inserted, leased and marked done, as the queue does:
//!   the raw loop does no less for the same guarantees, and skips the rest (JSON, the
//!   queue's other indexes and its `NOTIFY` trigger, handlers, lease renewal, concurrency).
//!
//! - `worker_redis/tasks`: the Redis Streams queue (a stream and consumer group per name,
//!   blocking `XREADGROUP`, a Lua script per send and per outcome, leases), concurrency 8,
//!   `N` = 1000, on a private `redis-server`.
//! - `worker_redis/raw_streams`: `N` tasks' worth of the bare stream commands, per task,
//!   sequentially, on one connection: `XADD`, `XREADGROUP … COUNT 1` and `XACK` + `XDEL` (one
//!   pipeline). The floor of a consumer-group queue on this machine, without task records,
//!   scripts, handlers, leases or concurrency.
//!
//! - `worker_postgres/interleaved` (printed, not a criterion bench): in alternating rounds of
//!   one process (30 times: a raw batch, a batch run by its sender as in `tasks`, and a batch
//!   sent by an instance without the handler and run by another one, woken by `NOTIFY`:
//!   insert, notification, claim, outcome), the median of the per-round ratios of each
//!   queue path's throughput to the raw loop's: the figures to compare, as all see the same
//!   machine state. A fourth column, the raw loop inserting each task claimed (`INSERT …
//!   'running'` with its lease, then the `UPDATE`), is the floor of the path of a task run
//!   where it is sent. It runs when the filter is absent or matches
//!   `worker_postgres/interleaved` (`cargo bench --bench worker -- worker_postgres`).
//!
//! The Postgres groups run when `XCORE_TEST_POSTGRES_URL` is set or a throwaway server can be
//! started (`initdb` installed); the Redis groups when `redis-server` is installed.
//!
//! ```sh
//! cargo bench --bench worker
//! ```

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::sync::Notify;
use xcore::{
    Xcore,
    services::{
        db::sqlx::{self, AnyPool, any::AnyPoolOptions},
        worker::{TaskError, Worker, WorkerOptions, WorkerService},
    },
};
use xcore_testkit::{PostgresServer, RedisServer};

const MEMORY_BATCH: usize = 1000;
const POSTGRES_BATCH: usize = 200;
const REDIS_BATCH: usize = 1000;

/// Counts handler runs and signals when a batch is done.
#[derive(Clone, Default)]
struct Done {
    count: Arc<AtomicUsize>,
    target: Arc<AtomicUsize>,
    notify: Arc<Notify>,
}

async fn boot(options: WorkerOptions, done: &Done) -> (Xcore, Worker) {
    boot_with(options, Some(("noop", done))).await
}

/// A worker with a counting handler for `name`, or none.
async fn boot_with(options: WorkerOptions, handler: Option<(&str, &Done)>) -> (Xcore, Worker) {
    let xcore = Xcore::builder()
        .without_registered()
        .service(WorkerService::new(options).unwrap())
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    let worker = xcore.handle::<Worker>().unwrap();
    let Some((name, done)) = handler else {
        return (xcore, worker);
    };
    let d = done.clone();
    worker
        .register(name, move |_task, n: u64| {
            let d = d.clone();
            async move {
                if d.count.fetch_add(1, Ordering::SeqCst) + 1 == d.target.load(Ordering::SeqCst) {
                    d.notify.notify_one();
                }
                Ok::<_, TaskError>(n)
            }
        })
        .unwrap();
    (xcore, worker)
}

/// Sends `n` tasks and waits until they have run; the time it took.
async fn batch(worker: &Worker, done: &Done, n: usize) -> Duration {
    batch_of(worker, "noop", done, n).await
}

/// Sends `n` tasks `name` and waits until they have run (`done` counts them).
async fn batch_of(worker: &Worker, name: &str, done: &Done, n: usize) -> Duration {
    done.count.store(0, Ordering::SeqCst);
    done.target.store(n, Ordering::SeqCst);
    let started = Instant::now();
    for i in 0..n {
        worker.send(name, &(i as u64)).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(120), done.notify.notified())
        .await
        .expect("a batch did not finish within 120 s");
    started.elapsed()
}

fn bench_worker(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    group: &str,
    options: WorkerOptions,
    n: usize,
) -> Xcore {
    let done = Done::default();
    let (xcore, worker) = rt.block_on(boot(options, &done));
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.bench_function("tasks", |b| {
        b.to_async(rt).iter_custom(|iters| {
            let (worker, done) = (worker.clone(), done.clone());
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += batch(&worker, &done, n).await;
                }
                total
            }
        })
    });
    g.finish();
    xcore
}

const RAW_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS bench_raw_tasks (
    id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, run_at BIGINT NOT NULL, locked_by TEXT,
    locked_until BIGINT, result TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS bench_raw_due ON bench_raw_tasks (run_at, id) WHERE status = 'queued';";

const RAW_INSERT: &str = "INSERT INTO bench_raw_tasks (name, payload, status, run_at, created_at, updated_at) \
     VALUES ($1, $2, 'queued', 0, 0, 0) RETURNING id";

const RAW_CLAIM: &str = "UPDATE bench_raw_tasks SET status = 'running', attempts = attempts + 1, \
     locked_by = $1, locked_until = 1 WHERE id IN (SELECT id FROM bench_raw_tasks \
     WHERE status = 'queued' AND run_at <= 1 ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
     RETURNING id, payload";

const RAW_DONE: &str = "UPDATE bench_raw_tasks SET status = 'succeeded', result = $1, \
     locked_by = NULL, locked_until = NULL, updated_at = 1 WHERE id = $2 AND locked_by = $3";

const RAW_INSERT_CLAIMED: &str = "INSERT INTO bench_raw_tasks (name, payload, status, attempts, \
     run_at, locked_by, locked_until, created_at, updated_at) \
     VALUES ($1, $2, 'running', 1, 0, $3, 1, 0, 0) RETURNING id";

/// `n` tasks' worth of an INSERT of the task claimed (its lease set) + UPDATE, directly: the
/// floor of the queue's path for a task run where it is sent.
async fn raw_claimed_batch(pool: &AnyPool, n: usize) -> Duration {
    let mut conn = pool.acquire().await.unwrap();
    let started = Instant::now();
    for i in 0..n {
        let payload = i.to_string();
        let id: i64 = sqlx::query_scalar(RAW_INSERT_CLAIMED)
            .bind("bench.noop")
            .bind(&payload)
            .bind("bench")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        sqlx::query(RAW_DONE)
            .bind(payload)
            .bind(id)
            .bind("bench")
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    started.elapsed()
}

/// `n` tasks' worth of INSERT + claim + UPDATE, directly.
async fn raw_batch(pool: &AnyPool, n: usize) -> Duration {
    let mut conn = pool.acquire().await.unwrap();
    let started = Instant::now();
    for i in 0..n {
        let _: i64 = sqlx::query_scalar(RAW_INSERT)
            .bind("bench.noop")
            .bind(i.to_string())
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let (id, payload): (i64, String) = sqlx::query_as(RAW_CLAIM)
            .bind("bench")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        sqlx::query(RAW_DONE)
            .bind(payload)
            .bind(id)
            .bind("bench")
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    started.elapsed()
}

/// The raw loop's pool, its table created.
async fn raw_pool(url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .unwrap();
    sqlx::raw_sql(RAW_SCHEMA).execute(&pool).await.unwrap();
    pool
}

/// Whether the command line's filter (if any) selects `id`, as criterion's substring match.
fn selected(id: &str) -> bool {
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--") && !a.is_empty());
    filter.is_none_or(|f| id.contains(&f))
}

/// The durable queue and the raw loop in alternating rounds; prints the medians and the
/// median ratios of throughputs (queue / raw), for tasks run by their sender and for tasks
/// run by another instance.
fn interleaved(rt: &tokio::runtime::Runtime, url: &str, n: usize) {
    const ROUNDS: usize = 30;
    if !selected("worker_postgres/interleaved") {
        return;
    }
    let options = || WorkerOptions::postgres_url(url).concurrency(8);
    let (local, remote) = (Done::default(), Done::default());
    let (xcore, worker) = rt.block_on(boot(options(), &local));
    // The sender without a handler, the runner woken by NOTIFY.
    let (sender, sending) = rt.block_on(boot_with(options(), None));
    let (runner, _) = rt.block_on(boot_with(options(), Some(("remote", &remote))));
    let pool = rt.block_on(raw_pool(url));
    type Round = [Duration; 4];
    let round = || -> Round {
        rt.block_on(async {
            [
                raw_batch(&pool, n).await,
                batch(&worker, &local, n).await,
                batch_of(&sending, "remote", &remote, n).await,
                raw_claimed_batch(&pool, n).await,
            ]
        })
    };
    // Warm all.
    round();
    round();
    let rounds: Vec<Round> = (0..ROUNDS).map(|_| round()).collect();
    // The throughput of column `queue` relative to column `raw`, per round.
    let ratio = |queue: usize, raw: usize| {
        let mut v: Vec<f64> = rounds
            .iter()
            .map(|r| r[raw].as_secs_f64() / r[queue].as_secs_f64())
            .collect();
        v.sort_by(f64::total_cmp);
        format!(
            "median {:.3}, quartiles {:.3}–{:.3}",
            v[ROUNDS / 2],
            v[ROUNDS / 4],
            v[3 * ROUNDS / 4]
        )
    };
    let median_ms = |column: usize| {
        let mut v: Vec<Duration> = rounds.iter().map(|r| r[column]).collect();
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    println!(
        "worker_postgres/interleaved ({ROUNDS} rounds of {n} tasks, medians): raw_sqlx {:.1} ms, \
         raw_sqlx inserting claimed {:.1} ms; tasks run by their sender {:.1} ms, throughput / \
         raw_sqlx {} (/ raw inserting claimed {}); tasks run by another instance {:.1} ms, \
         throughput / raw_sqlx {}",
        median_ms(0),
        median_ms(3),
        median_ms(1),
        ratio(1, 0),
        ratio(1, 3),
        median_ms(2),
        ratio(2, 0),
    );
    rt.block_on(pool.close());
    rt.block_on(xcore.shutdown());
    rt.block_on(sender.shutdown());
    rt.block_on(runner.shutdown());
}

fn bench_raw(c: &mut Criterion, rt: &tokio::runtime::Runtime, url: &str, n: usize) {
    let pool = rt.block_on(raw_pool(url));
    let mut g = c.benchmark_group("worker_postgres");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.bench_function("raw_sqlx", |b| {
        b.to_async(rt).iter_custom(|iters| {
            let pool = pool.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += raw_batch(&pool, n).await;
                }
                total
            }
        })
    });
    g.finish();
    rt.block_on(pool.close());
}

/// `n` tasks' worth of XADD + XREADGROUP + XACK/XDEL, directly.
async fn raw_streams_batch(conn: &mut redis::aio::MultiplexedConnection, n: usize) -> Duration {
    let started = Instant::now();
    for i in 0..n {
        let _: String = redis::cmd("XADD")
            .arg("bench_raw")
            .arg("*")
            .arg("t")
            .arg(i)
            .query_async(conn)
            .await
            .unwrap();
        let reply: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("bench")
            .arg("COUNT")
            .arg(1)
            .arg("STREAMS")
            .arg("bench_raw")
            .arg(">")
            .query_async(conn)
            .await
            .unwrap();
        let id = entry_id(&reply).expect("the entry just added");
        let _: (i64, i64) = redis::pipe()
            .cmd("XACK")
            .arg("bench_raw")
            .arg("g")
            .arg(&id)
            .cmd("XDEL")
            .arg("bench_raw")
            .arg(&id)
            .query_async(conn)
            .await
            .unwrap();
    }
    started.elapsed()
}

/// The id of the first entry of an `XREADGROUP` reply.
fn entry_id(reply: &redis::Value) -> Option<String> {
    use redis::Value;
    let items = |v: &Value| match v {
        Value::Array(items) => items.clone(),
        _ => Vec::new(),
    };
    let stream = items(reply).into_iter().next()?;
    let entries = items(&stream).into_iter().nth(1)?;
    let entry = items(&entries).into_iter().next()?;
    match items(&entry).into_iter().next()? {
        Value::BulkString(id) => String::from_utf8(id).ok(),
        _ => None,
    }
}

fn bench_raw_streams(c: &mut Criterion, rt: &tokio::runtime::Runtime, url: &str, n: usize) {
    let conn = rt.block_on(async {
        let client = redis::Client::open(url).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg("bench_raw")
            .arg("g")
            .arg("$")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await
            .unwrap();
        conn
    });
    let mut g = c.benchmark_group("worker_redis");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.bench_function("raw_streams", |b| {
        b.to_async(rt).iter_custom(|iters| {
            let mut conn = conn.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += raw_streams_batch(&mut conn, n).await;
                }
                total
            }
        })
    });
    g.finish();
}

fn throughput(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let memory = bench_worker(
        c,
        &rt,
        "worker_memory",
        WorkerOptions::memory().concurrency(8),
        MEMORY_BATCH,
    );
    rt.block_on(memory.shutdown());

    if let Ok(redis) = rt.block_on(RedisServer::start_local()) {
        let streams = bench_worker(
            c,
            &rt,
            "worker_redis",
            WorkerOptions::redis(redis.url()).concurrency(8),
            REDIS_BATCH,
        );
        rt.block_on(streams.shutdown());
        bench_raw_streams(c, &rt, redis.url(), REDIS_BATCH);
    }

    let Ok(server) = rt.block_on(PostgresServer::start()) else {
        return;
    };
    let url = rt.block_on(server.database()).unwrap();
    let durable = bench_worker(
        c,
        &rt,
        "worker_postgres",
        WorkerOptions::postgres_url(&url).concurrency(8),
        POSTGRES_BATCH,
    );
    rt.block_on(durable.shutdown());
    bench_raw(c, &rt, &url, POSTGRES_BATCH);
    interleaved(&rt, &url, POSTGRES_BATCH);
}

criterion_group!(benches, throughput);
criterion_main!(benches);
