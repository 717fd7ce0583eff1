//! The task worker on Redis Streams with several `Xcore` instances on one real Redis:
//!
//! - 1,000 tasks on 3 instances, one of them killed mid-run (its runtime dropped: no ack, no
//!   release, no lease renewal): every task runs to success exactly once, the tasks the
//!   killed instance held are reclaimed by the others after the lease;
//! - retries then a dead letter, seen from another instance, re-driven; a task whose last
//!   attempt's instance died becomes a dead letter when its lease expires;
//! - idempotency keys: the same key sent from two instances at once queues one task; the key
//!   is a Redis key with a TTL (`retention`), forgotten after it;
//! - `queue_capacity` holds across instances: a send beyond it is refused (`QueueFull`);
//! - a server that stops answering (`SIGSTOP`): a send fails within the command timeout;
//! - an outage: Redis (appending every write, synced) killed for 5 s while tasks flow: no
//!   panic, sends fail at once with a typed error, health degraded, recovery without a
//!   restart, and no task whose send was acknowledged is lost.
//!
//! The common scenarios (retries, payloads, panics, concurrency, shutdown, tenants and
//! traces) run on Redis in `tests/worker.rs` (`redis_scenarios`). Each test starts its own
//! `redis-server`; without one it prints a note and returns, unless
//! `XCORE_REQUIRE_SERVERS=1`, where it fails.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use xcore::{
    HealthStatus, TenantId, Xcore,
    services::worker::{
        SendOptions, TaskError, TaskId, TaskStatus, Worker, WorkerError, WorkerOptions,
        WorkerService,
    },
};
use xcore_testkit::RedisServer;

/// Which instance ran each task, in order.
type Runs = Arc<Mutex<HashMap<TaskId, Vec<usize>>>>;

/// When set, attempts hang before recording their run, noting their task.
type Hang = (Arc<AtomicBool>, Arc<Mutex<HashSet<TaskId>>>);

fn options(url: &str) -> WorkerOptions {
    WorkerOptions::redis(url)
        .concurrency(8)
        .lease(Duration::from_secs(1))
        .backoff(Duration::from_millis(10), Duration::from_millis(100))
        .shutdown_timeout(Duration::from_secs(1))
}

async fn instance(options: WorkerOptions) -> Xcore {
    let xcore = Xcore::builder()
        .without_registered()
        .service(WorkerService::new(options).unwrap())
        .build()
        .unwrap();
    xcore.boot().await.unwrap().ensure_all_started().unwrap();
    xcore
}

fn worker(xcore: &Xcore) -> Worker {
    xcore.handle::<Worker>().unwrap()
}

/// Registers `count` on `xcore` as instance `index`: sleeps 20 ms, then records the run.
/// With `hang` set, an attempt that reaches the record stops there for good (as if its
/// instance had crashed in the middle of it), after noting its task in `hung`.
fn register_count(xcore: &Xcore, index: usize, runs: &Runs, hang: Option<Hang>) {
    let runs = runs.clone();
    worker(xcore)
        .register("count", move |task, n: u32| {
            let (runs, hang) = (runs.clone(), hang.clone());
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if let Some((flag, hung)) = &hang
                    && flag.load(Ordering::SeqCst)
                {
                    hung.lock().unwrap().insert(task.id());
                    std::future::pending::<()>().await;
                }
                runs.lock()
                    .unwrap()
                    .entry(task.id())
                    .or_default()
                    .push(index);
                Ok::<_, TaskError>(n)
            }
        })
        .unwrap();
}

/// An instance on a runtime of its own, so that the test can kill it as a crash would:
/// [`Runtime::shutdown_background`](tokio::runtime::Runtime::shutdown_background) drops
/// every task of the instance at once (attempts, lease renewal, connections).
struct Doomed {
    runtime: tokio::runtime::Runtime,
    xcore: Xcore,
}

impl Doomed {
    fn start(options: WorkerOptions, setup: impl FnOnce(&Xcore) + Send + 'static) -> Self {
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let xcore = runtime.block_on(async {
                let xcore = instance(options).await;
                setup(&xcore);
                xcore
            });
            Self { runtime, xcore }
        })
        .join()
        .unwrap()
    }

    fn kill(self) {
        self.runtime.shutdown_background();
        drop(self.xcore);
    }
}

/// Waits (at most `limit`) until `done` holds; whether it did.
async fn until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

async fn health_becomes(xcore: &Xcore, status: HealthStatus) -> xcore::HealthReport {
    let mut last = xcore.health().await;
    for _ in 0..100 {
        if last.status() == status {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = xcore.health().await;
    }
    panic!("health not {status:?} within 10 s: {last:?}");
}

fn worker_message(report: &xcore::HealthReport) -> String {
    report
        .node(&xcore::NodeId::service("worker"))
        .unwrap()
        .health()
        .message()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tasks_run_once_on_three_instances_with_one_killed_mid_run() {
    let Ok(redis) = RedisServer::start_local().await else {
        eprintln!("no Redis: skipped");
        return;
    };
    let runs = Runs::default();
    let apps = [
        instance(options(redis.url())).await,
        instance(options(redis.url())).await,
    ];
    for (i, app) in apps.iter().enumerate() {
        register_count(app, i, &runs, None);
    }
    let crash = Arc::new(AtomicBool::new(false));
    let hung = Arc::new(Mutex::new(HashSet::new()));
    let doomed = {
        let (runs, hang) = (runs.clone(), Some((crash.clone(), hung.clone())));
        Doomed::start(options(redis.url()), move |xcore| {
            register_count(xcore, 2, &runs, hang)
        })
    };

    let sender = worker(&apps[0]);
    let mut ids = Vec::with_capacity(1000);
    for n in 0..1000u32 {
        ids.push(sender.send("count", &n).await.unwrap());
    }
    let ran = |runs: &Runs| runs.lock().unwrap().len();
    assert!(until(Duration::from_secs(20), || ran(&runs) >= 300).await);
    // Instance 2 crashes: its attempts stop before recording (and the ones past the record
    // get 300 ms to be acknowledged), then everything it runs is dropped.
    crash.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    doomed.kill();
    let by_doomed = runs
        .lock()
        .unwrap()
        .values()
        .filter(|r| r.contains(&2))
        .count();

    assert!(
        until(Duration::from_secs(30), || ran(&runs) == 1000).await,
        "{} of 1000 tasks ran",
        ran(&runs)
    );
    // A lease later, nothing ran twice (a reclaim of a finished task would show here).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let runs = runs.lock().unwrap().clone();
    let twice: Vec<_> = runs.iter().filter(|(_, r)| r.len() != 1).collect();
    assert!(twice.is_empty(), "tasks not run exactly once: {twice:?}");
    assert!(ids.iter().all(|id| runs.contains_key(id)));
    let hung = hung.lock().unwrap().clone();
    assert!(
        by_doomed > 0,
        "the killed instance ran nothing before it died"
    );
    assert!(
        !hung.is_empty(),
        "the killed instance held no task when it died"
    );
    let host = worker(&apps[0]);
    for id in &ids {
        let status = host.status(*id).await.unwrap();
        let attempts = if hung.contains(id) { 2 } else { 1 };
        assert!(
            matches!(status, TaskStatus::Succeeded { attempts: a, .. } if a == attempts),
            "task {id}: {status:?}"
        );
        if hung.contains(id) {
            assert_ne!(runs[id], [2], "task {id} was not reclaimed");
        }
    }
    eprintln!(
        "1000 tasks: {by_doomed} run by the killed instance before it died, {} reclaimed from it",
        hung.len()
    );
    let report = apps[1].health().await;
    assert_eq!(report.status(), HealthStatus::Healthy, "{report:?}");
    assert!(
        worker_message(&report).contains("redis queue: 0 ready, 0 delayed, 0 running"),
        "{report:?}"
    );
    for app in apps {
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_then_a_dead_letter_seen_from_another_instance_and_redriven() {
    let Ok(redis) = RedisServer::start_local().await else {
        eprintln!("no Redis: skipped");
        return;
    };
    let apps = [
        instance(options(redis.url())).await,
        instance(options(redis.url())).await,
    ];
    let heal = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(Mutex::new(Vec::new()));
    for (i, app) in apps.iter().enumerate() {
        let (heal, attempts) = (heal.clone(), attempts.clone());
        worker(app)
            .register("flaky", move |task, _: u32| {
                let (heal, attempts) = (heal.clone(), attempts.clone());
                async move {
                    attempts.lock().unwrap().push((i, task.attempt()));
                    if heal.load(Ordering::SeqCst) {
                        Ok(task.attempt())
                    } else {
                        Err(TaskError::msg(format!("boom {}", task.attempt())))
                    }
                }
            })
            .unwrap();
    }
    let acme = TenantId::new("acme").unwrap();
    let sender = worker(&apps[0]).for_tenant(&acme);
    let id = sender
        .send_with("flaky", &1, SendOptions::new().max_attempts(3))
        .await
        .unwrap();
    let other = worker(&apps[1]);
    let status = other.wait(id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        status,
        TaskStatus::Dead {
            error: "boom 3".into(),
            attempts: 3
        }
    );
    let seen: Vec<u32> = attempts.lock().unwrap().iter().map(|(_, a)| *a).collect();
    assert_eq!(seen, [1, 2, 3]);
    let dead = other.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id, dead[0].tenant.as_str()), (id, "acme"));
    assert_eq!(dead[0].name, "flaky");
    // Not a dead letter: refused.
    assert!(matches!(
        other.redrive(TaskId::new(9999)).await,
        Err(WorkerError::UnknownTask { .. })
    ));
    let report = apps[1].health().await;
    assert!(
        worker_message(&report).contains("1 dead letters"),
        "{report:?}"
    );

    heal.store(true, Ordering::SeqCst);
    other.redrive(id).await.unwrap();
    assert_eq!(
        other.wait(id, Duration::from_secs(10)).await.unwrap(),
        TaskStatus::Succeeded {
            result: serde_json::json!(1),
            attempts: 1
        }
    );
    assert!(other.dead_letters().await.unwrap().is_empty());
    assert!(matches!(
        other.redrive(id).await,
        Err(WorkerError::NotDead {
            status: "succeeded",
            ..
        })
    ));
    for app in apps {
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_attempt_whose_instance_died_becomes_a_dead_letter_after_the_lease() {
    let Ok(redis) = RedisServer::start_local().await else {
        eprintln!("no Redis: skipped");
        return;
    };
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let doomed = Doomed::start(options(redis.url()), move |xcore| {
        worker(xcore)
            .register("slow", move |_task, _: u32| {
                let s = s.clone();
                async move {
                    s.store(true, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                    Ok::<_, TaskError>(())
                }
            })
            .unwrap();
    });
    // The survivor has no handler yet: the doomed instance takes the task.
    let survivor = instance(options(redis.url())).await;
    let id = worker(&survivor)
        .send_with("slow", &1, SendOptions::new().max_attempts(1))
        .await
        .unwrap();
    assert!(until(Duration::from_secs(5), || started.load(Ordering::SeqCst)).await);
    doomed.kill();
    worker(&survivor)
        .register(
            "slow",
            |_task, _: u32| async move { Ok::<_, TaskError>(()) },
        )
        .unwrap();
    let status = worker(&survivor)
        .wait(id, Duration::from_secs(10))
        .await
        .unwrap();
    match status {
        TaskStatus::Dead { error, attempts: 1 } => {
            assert!(error.contains("lease expired"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    survivor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_queues_one_task_across_instances_until_it_expires() {
    let Ok(redis) = RedisServer::start_local().await else {
        eprintln!("no Redis: skipped");
        return;
    };
    let retention = Duration::from_millis(800);
    let apps = [
        instance(options(redis.url()).retention(retention)).await,
        instance(options(redis.url()).retention(retention)).await,
    ];
    let runs = Runs::default();
    for (i, app) in apps.iter().enumerate() {
        register_count(app, i, &runs, None);
    }
    let once = SendOptions::new().idempotency_key("order-42");
    let (first, second) = (worker(&apps[0]), worker(&apps[1]));
    let (a, b) = tokio::join!(
        first.send_with("count", &1, once.clone()),
        second.send_with("count", &1, once.clone()),
    );
    let id = a.unwrap();
    assert_eq!(b.unwrap(), id);
    // Another tenant has keys of its own.
    let other = worker(&apps[0])
        .for_tenant(&TenantId::new("beta").unwrap())
        .send_with("count", &1, once.clone())
        .await
        .unwrap();
    assert_ne!(other, id);
    worker(&apps[0])
        .wait(id, Duration::from_secs(5))
        .await
        .unwrap();
    // The key is a Redis key with the retention as its TTL.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("{xcore:tasks}:k:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 800, "{ttl}");
    assert_eq!(
        worker(&apps[1])
            .send_with("count", &1, once.clone())
            .await
            .unwrap(),
        id
    );
    // Once it expired, the key queues a new task.
    tokio::time::sleep(retention).await;
    let again = worker(&apps[1]).send_with("count", &1, once).await.unwrap();
    assert_ne!(again, id);
    worker(&apps[1])
        .wait(again, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(runs.lock().unwrap().len(), 3, "{runs:?}");
    assert!(runs.lock().unwrap().values().all(|r| r.len() == 1));
    // A key longer than 200 bytes is refused before anything is sent.
    let long = SendOptions::new().idempotency_key("k".repeat(201));
    assert!(matches!(
        worker(&apps[0]).send_with("count", &1, long).await,
        Err(WorkerError::InvalidOptions { .. })
    ));
    for app in apps {
        app.shutdown().await;
    }
}

/// `queue_capacity` bounds the tasks queued, delayed or running across instances: a send
/// beyond it is refused at once (`QueueFull`), and taken again once a task finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_beyond_the_capacity_is_refused_until_a_task_finishes() {
    let Ok(redis) = RedisServer::start_local().await else {
        eprintln!("no Redis: skipped");
        return;
    };
    let apps = [
        instance(options(redis.url()).queue_capacity(2)).await,
        instance(options(redis.url()).queue_capacity(2)).await,
    ];
    let first = worker(&apps[0]);
    let a = first.send("gate", &1).await.unwrap();
    first
        .send_with(
            "gate",
            &2,
            SendOptions::new().delay(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    assert!(matches!(
        worker(&apps[1]).send("gate", &3).await,
        Err(WorkerError::QueueFull { capacity: 2 })
    ));
    worker(&apps[1])
        .register("gate", |_task, n: u32| async move { Ok::<_, TaskError>(n) })
        .unwrap();
    assert!(
        worker(&apps[1])
            .wait(a, Duration::from_secs(5))
            .await
            .unwrap()
            .is_finished()
    );
    worker(&apps[1]).send("gate", &3).await.unwrap();
    for app in apps {
        app.shutdown().await;
    }
}

/// The server's process id, from `INFO server`.
async fn server_pid(url: &str) -> u32 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A server that stops answering (`SIGSTOP`: connections open, no reply) holds nothing
/// longer than the command timeout (2 s): a send fails with a typed error, health is
/// degraded; once it answers again (`SIGCONT`), a task sent before runs and sends are taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_holds_nothing_past_the_command_timeout() {
    let Ok(redis) = RedisServer::start_local().await else {
        eprintln!("no Redis: skipped");
        return;
    };
    let app = instance(options(redis.url())).await;
    let runs = Runs::default();
    let pid = server_pid(redis.url()).await;
    signal(pid, "-STOP");
    let started = tokio::time::Instant::now();
    let refused = worker(&app).send("count", &1).await.unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "a send waited {took:?}");
    assert!(
        matches!(&refused, WorkerError::Backend { message } if message.contains("no answer within 2s")),
        "{refused:?}"
    );
    let report = health_becomes(&app, HealthStatus::Degraded).await;
    assert!(worker_message(&report).contains("Redis at"), "{report:?}");
    signal(pid, "-CONT");
    let id = worker(&app).send("count", &2).await.unwrap();
    register_count(&app, 0, &runs, None);
    let status = worker(&app)
        .wait(id, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(matches!(status, TaskStatus::Succeeded { .. }), "{status:?}");
    health_becomes(&app, HealthStatus::Healthy).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_degrades_the_worker_and_loses_no_acknowledged_task() {
    let Ok(redis) = RedisServer::start_local_durable().await else {
        eprintln!("no Redis: skipped");
        return;
    };
    let apps = [
        instance(options(redis.url())).await,
        instance(options(redis.url())).await,
    ];
    let runs = Runs::default();
    for (i, app) in apps.iter().enumerate() {
        register_count(app, i, &runs, None);
    }
    let sent = Arc::new(Mutex::new(Vec::<TaskId>::new()));
    let refused = Arc::new(Mutex::new(Vec::<WorkerError>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    // Tasks flow: one send every 10 ms, each bounded.
    let sender = {
        let (sent, refused, stop) = (sent.clone(), refused.clone(), stop.clone());
        let worker = worker(&apps[0]);
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::SeqCst) {
                let send = worker.send("count", &n);
                match tokio::time::timeout(Duration::from_secs(3), send).await {
                    Ok(Ok(id)) => sent.lock().unwrap().push(id),
                    Ok(Err(e)) => refused.lock().unwrap().push(e),
                    Err(_) => panic!("a send waited 3 s for Redis"),
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    redis.stop().unwrap();
    let down = tokio::time::Instant::now();
    for app in &apps {
        let report = health_becomes(app, HealthStatus::Degraded).await;
        assert!(worker_message(&report).contains("Redis at"), "{report:?}");
    }
    while down.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    redis.restart().await.unwrap();
    for app in &apps {
        health_becomes(app, HealthStatus::Healthy).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    sender.await.unwrap();

    let sent = sent.lock().unwrap().clone();
    let refused = refused.lock().unwrap().clone();
    assert!(!refused.is_empty(), "no send failed during the outage");
    for e in &refused {
        assert!(
            matches!(e, WorkerError::Backend { message } if message.contains("Redis at redis://127.0.0.1")),
            "{e:?}"
        );
    }
    // Every acknowledged send runs (the attempts cut by the outage again, after the lease).
    let all_ran = until(Duration::from_secs(20), || {
        let runs = runs.lock().unwrap();
        sent.iter().all(|id| runs.contains_key(id))
    })
    .await;
    let runs = runs.lock().unwrap().clone();
    let missing: Vec<_> = sent.iter().filter(|id| !runs.contains_key(id)).collect();
    assert!(all_ran, "acknowledged tasks lost: {missing:?}");
    let host = worker(&apps[1]);
    for id in &sent {
        let status = host.status(*id).await.unwrap();
        assert!(
            matches!(status, TaskStatus::Succeeded { .. }),
            "{id}: {status:?}"
        );
    }
    let again = runs.values().filter(|r| r.len() > 1).count();
    eprintln!(
        "outage: {} sends acknowledged (all ran), {} refused with a typed error, {again} run \
         twice (their outcome could not be recorded while Redis was down)",
        sent.len(),
        refused.len()
    );
    for app in apps {
        app.shutdown().await;
    }
}
