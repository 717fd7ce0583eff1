//! Several `Xcore` instances on one Postgres behave as one: with the scheduler's lock on
//! Postgres (no Redis), each firing of a job every instance schedules runs exactly once
//! cluster-wide, also when an instance goes away; a task sent on one instance wakes the
//! instance that runs it through `LISTEN`/`NOTIFY`, not at its next poll.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use xcore::{
    Xcore,
    services::{
        db::sqlx,
        scheduler::{
            LockOptions, Scheduler, SchedulerOptions, SchedulerService, Trigger, chrono::Utc,
        },
        worker::{TaskStatus, Worker, WorkerOptions, WorkerService},
    },
};
use xcore_testkit::PostgresServer;

/// `n` instances, each with a scheduler locked on `lock`.
async fn instances(n: usize, lock: &LockOptions) -> Vec<Xcore> {
    let mut all = Vec::new();
    for _ in 0..n {
        let options = SchedulerOptions {
            lock: Some(lock.clone()),
            shutdown_timeout: Duration::from_secs(1),
            ..SchedulerOptions::default()
        };
        let xcore = Xcore::builder()
            .without_registered()
            .service(SchedulerService::new(options).unwrap())
            .build()
            .unwrap();
        xcore.boot().await.unwrap().ensure_all_started().unwrap();
        all.push(xcore);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_a_postgres_lock_run_each_firing_exactly_once() {
    let Ok(server) = PostgresServer::start().await else {
        eprintln!("no Postgres: skipped");
        return;
    };
    let url = server.database().await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS firings (second BIGINT PRIMARY KEY, n INT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let lock = LockOptions {
        prefix: "scale_test".into(),
        ttl: Duration::from_secs(30),
        ..LockOptions::new(url.clone())
    };
    let mut apps = instances(3, &lock).await;
    let runs: Vec<Arc<AtomicU64>> = (0..3).map(|_| Arc::new(AtomicU64::new(0))).collect();
    for (app, run_count) in apps.iter().zip(&runs) {
        let (pool, run_count) = (pool.clone(), run_count.clone());
        app.handle::<Scheduler>()
            .unwrap()
            .add("tick", Trigger::cron("* * * * * *").unwrap(), move |job| {
                let (pool, run_count) = (pool.clone(), run_count.clone());
                async move {
                    sqlx::query(
                        "INSERT INTO firings (second, n) VALUES ($1, 1) \
                         ON CONFLICT (second) DO UPDATE SET n = firings.n + 1",
                    )
                    .bind(job.scheduled_at().timestamp())
                    .execute(&pool)
                    .await?;
                    run_count.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            })
            .await
            .unwrap();
    }
    let started = Utc::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let busiest = (0..3)
        .max_by_key(|&i| runs[i].load(Ordering::SeqCst))
        .unwrap();
    apps.remove(busiest).shutdown().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let ended = Utc::now();
    let infos: Vec<_> = apps
        .iter()
        .map(|a| a.handle::<Scheduler>().unwrap().list_all()[0].clone())
        .collect();
    for app in apps {
        app.shutdown().await;
    }

    let rows: Vec<(i64, i32)> = sqlx::query_as("SELECT second, n FROM firings")
        .fetch_all(&pool)
        .await
        .unwrap();
    let counts: BTreeMap<i64, i32> = rows.into_iter().collect();
    println!("counts per firing: {counts:?}");
    assert!(
        counts.values().all(|c| *c == 1),
        "a firing ran more than once: {counts:?}"
    );
    let (first, last) = (started.timestamp() + 2, ended.timestamp() - 1);
    let missing: Vec<i64> = (first..=last).filter(|s| !counts.contains_key(s)).collect();
    assert!(missing.is_empty(), "firings missing: {missing:?}");
    let total: u64 = runs.iter().map(|r| r.load(Ordering::SeqCst)).sum();
    assert_eq!(total as usize, counts.len());
    assert!(
        runs.iter().filter(|r| r.load(Ordering::SeqCst) > 0).count() >= 2,
        "{runs:?}"
    );
    assert!(infos.iter().all(|i| i.skips == 0), "{infos:?}");
    assert!(
        infos.iter().map(|i| i.elsewhere).sum::<u64>() > 0,
        "{infos:?}"
    );
}

/// A job that does not allow overlap, slower than its period, on two instances locked on
/// Postgres: never two runs at once anywhere (the running mark is cluster-wide).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exclusive_job_never_overlaps_across_instances_on_a_postgres_lock() {
    let Ok(server) = PostgresServer::start().await else {
        eprintln!("no Postgres: skipped");
        return;
    };
    let url = server.database().await.unwrap();
    let lock = LockOptions {
        prefix: "scale_exclusive".into(),
        ttl: Duration::from_secs(30),
        ..LockOptions::new(url)
    };
    let apps = instances(2, &lock).await;
    let concurrent = Arc::new(AtomicU64::new(0));
    let highest = Arc::new(AtomicU64::new(0));
    let runs = Arc::new(AtomicU64::new(0));
    for app in &apps {
        let (concurrent, highest, runs) = (concurrent.clone(), highest.clone(), runs.clone());
        app.handle::<Scheduler>()
            .unwrap()
            .add_with(
                "slow",
                Trigger::cron("* * * * * *").unwrap(),
                xcore::services::scheduler::JobOptions::new(),
                move |_| {
                    let (concurrent, highest, runs) =
                        (concurrent.clone(), highest.clone(), runs.clone());
                    async move {
                        let now = concurrent.fetch_add(1, Ordering::SeqCst) + 1;
                        highest.fetch_max(now, Ordering::SeqCst);
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(2500)).await;
                        concurrent.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    }
                },
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(6500)).await;
    let infos: Vec<_> = apps
        .iter()
        .map(|a| a.handle::<Scheduler>().unwrap().get("slow").unwrap())
        .collect();
    for app in apps {
        app.shutdown().await;
    }
    println!("{infos:?}");
    assert_eq!(highest.load(Ordering::SeqCst), 1, "two runs overlapped");
    let runs = runs.load(Ordering::SeqCst);
    assert!(
        (2..=3).contains(&runs),
        "{runs} runs in 6.5 s of a 2.5 s job"
    );
    assert!(infos.iter().map(|i| i.skips).sum::<u64>() >= 2, "{infos:?}");
}

/// Runs the task `work`, counting.
struct Runner(Arc<AtomicU64>);

#[xcore::async_trait]
impl xcore::Actions for Runner {
    async fn handle(
        &self,
        action: &str,
        _: serde_json::Value,
        _: &xcore::CallContext,
    ) -> Result<serde_json::Value, xcore::CallError> {
        Err(xcore::CallError::unknown_action(action, &[]))
    }
}

#[xcore::async_trait]
impl xcore::Plugin for Runner {
    async fn on_load(&mut self, ctx: &xcore::PluginContext) -> Result<(), xcore::PluginError> {
        let runs = self.0.clone();
        ctx.handle::<Worker>()
            .map_err(xcore::PluginError::msg)?
            .register("work", move |_, _: serde_json::Value| {
                let runs = runs.clone();
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            })
            .map_err(xcore::PluginError::msg)?;
        Ok(())
    }
}

/// A task sent on one instance wakes the instance that runs it at once (`LISTEN`/`NOTIFY` on
/// the queue's table), though both poll only every minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_sent_on_one_instance_wakes_another_through_notify() {
    let Ok(server) = PostgresServer::start().await else {
        eprintln!("no Postgres: skipped");
        return;
    };
    let url = server.database().await.unwrap();
    let options = || {
        WorkerOptions::postgres_url(&url)
            .poll_interval(Duration::from_secs(60))
            .shutdown_timeout(Duration::from_secs(1))
    };
    let runs = Arc::new(AtomicU64::new(0));
    let manifest = xcore::Manifest::builder("runner", "1.0.0")
        .services(["worker"])
        .permissions(["service:worker: execute"])
        .build()
        .unwrap();
    let running = Xcore::builder()
        .without_registered()
        .service(WorkerService::new(options()).unwrap())
        .plugin(manifest, Runner(runs.clone()))
        .build()
        .unwrap();
    running.boot().await.unwrap().ensure_all_started().unwrap();
    let sending = Xcore::builder()
        .without_registered()
        .service(WorkerService::new(options()).unwrap())
        .build()
        .unwrap();
    sending.boot().await.unwrap().ensure_all_started().unwrap();
    // Both engines have made their first claim (nothing) and sleep for a minute now.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let id = sending
        .handle::<Worker>()
        .unwrap()
        .send("runner.work", &serde_json::json!({}))
        .await
        .unwrap();
    let status = running
        .handle::<Worker>()
        .unwrap()
        .wait(id, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        matches!(status, TaskStatus::Succeeded { .. }),
        "{status:?}: not woken within 10 s"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    sending.shutdown().await;
    running.shutdown().await;
}

/// Three instances with the event bridge on one Postgres: an event emitted on one is received
/// once by each of the others (tenant and trace kept, the source the emitting node), once
/// locally (no echo), and an event outside the bridged patterns stays local.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_emitted_on_one_instance_reaches_each_other_once() {
    use xcore::{
        CallContext, TenantId,
        events::{BridgeOptions, Event, EventBridge, EventSource, Flow},
    };
    let Ok(server) = PostgresServer::start().await else {
        eprintln!("no Postgres: skipped");
        return;
    };
    let url = server.database().await.unwrap();
    let mut apps = Vec::new();
    let mut nodes = Vec::new();
    let seen: Vec<Arc<std::sync::Mutex<Vec<Event>>>> = (0..3).map(|_| Arc::default()).collect();
    for seen in &seen {
        let mut options = BridgeOptions::new(url.clone(), ["order.*"]);
        options.channel = "scale_test_events".into();
        let bridge = EventBridge::new(options).unwrap();
        nodes.push(bridge.node().to_owned());
        let xcore = Xcore::builder()
            .without_registered()
            .service(bridge)
            .build()
            .unwrap();
        xcore.boot().await.unwrap().ensure_all_started().unwrap();
        let seen = seen.clone();
        xcore
            .events()
            .subscribe("**", move |event: Event| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(event);
                    Ok::<_, std::convert::Infallible>(Flow::Continue)
                }
            })
            .unwrap();
        apps.push(xcore);
    }
    let cx = CallContext::host().with_tenant(TenantId::new("acme").unwrap());
    apps[0]
        .events()
        .emit(&cx, "order.created", serde_json::json!({"id": 7}))
        .await
        .unwrap();
    apps[0]
        .events()
        .emit(&cx, "user.created", serde_json::json!({"id": 8}))
        .await
        .unwrap();
    // Over the bridge's message bound: stays local.
    let big = "x".repeat(7_900);
    apps[0]
        .events()
        .emit(&cx, "order.big", serde_json::json!({ "blob": big }))
        .await
        .unwrap();
    let received = |i: usize| -> Vec<Event> { seen[i].lock().unwrap().clone() };
    for _ in 0..100 {
        if received(1).len() == 1 && received(2).len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // A little longer: nothing more arrives (no duplicate, no echo).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let local: Vec<String> = received(0).iter().map(|e| e.name().to_owned()).collect();
    assert_eq!(
        local,
        ["order.created", "user.created", "order.big"],
        "local delivery, no echo"
    );
    for i in [1, 2] {
        let events = received(i);
        assert_eq!(events.len(), 1, "instance {i}: {events:?}");
        let event = &events[0];
        assert_eq!(event.name(), "order.created");
        assert_eq!(event.payload(), &serde_json::json!({"id": 7}));
        assert_eq!(event.tenant().as_str(), "acme");
        assert_eq!(event.trace_id(), cx.trace().trace_id());
        assert_eq!(event.source(), &EventSource::Bridge(nodes[0].clone()));
    }
    // The oversized event was refused by the bridge, not by Postgres: no failure, healthy.
    let health = apps[0].health().await;
    assert_eq!(health.status(), xcore::HealthStatus::Healthy, "{health:?}");
    for app in apps {
        app.shutdown().await;
    }
}
