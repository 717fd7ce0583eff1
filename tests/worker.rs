//! The task worker, on the in-process queue and on Postgres.
//!
//! Every scenario of [`common`] runs on both backends: retries then success; a dead letter
//! after the last attempt, listed, then re-driven to success; a typed payload that does not
//! deserialize (refused at send, and a dead letter with a clear error when no handler was
//! there to check it); a panicking handler; the concurrency limit (max in flight measured);
//! shutdown draining in-flight tasks within its timeout, and interrupting (re-queueing) those
//! that outlive it; the tenant (and trace) of the sending call inside the task; idempotency
//! keys; health.
//!
//! Postgres only: a task sent before a restart runs after it (the instance after the restart
//! reaches the queue through the `db` service's connection instead of a URL of its own); two
//! instances share one queue and run each of 200 tasks exactly once; a task whose instance
//! died (lease expired) is delivered again, or becomes a dead letter if that was its last
//! attempt.
//!
//! Every scenario of [`common`] also runs on Redis Streams (`redis_scenarios`; the
//! multi-instance, lease and outage tests of that backend are in `tests/worker_redis.rs`).
//!
//! In-process only: the bounded queue refuses a send when full. Grants: a plugin without
//! `service:worker: execute` gets `PermissionDenied`. Config: `services.worker` adds the
//! service; `backend: redis` without a `url` is refused; a durable queue on a SQLite
//! connection is refused.
//!
//! The Postgres tests start a throwaway server (or use `XCORE_TEST_POSTGRES_URL`); without one
//! they print a note and return, unless `XCORE_REQUIRE_SERVERS=1`, where they fail.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use xcore::{
    Actions, CallContext, CallError, ErrorCode, HealthStatus, Manifest, NodeId, Plugin,
    PluginContext, PluginError, TenantId, TraceContext, Xcore, XcoreBuilder, async_trait,
    services::{
        AccessError,
        db::{
            DatabaseOptions, DatabaseService,
            sqlx::{self, any::AnyPoolOptions},
        },
        worker::{
            SendOptions, TaskError, TaskId, TaskStatus, Worker, WorkerError, WorkerOptions,
            WorkerService,
        },
    },
};
use xcore_testkit::{PostgresServer, RedisServer};

const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// Fixtures

#[derive(Clone, Debug)]
enum Backend {
    Memory,
    Postgres(String),
    Redis(String),
}

/// Options with short waits, so that retries and polls take milliseconds.
fn options(backend: &Backend) -> WorkerOptions {
    let options = match backend {
        Backend::Memory => WorkerOptions::memory(),
        Backend::Postgres(url) => WorkerOptions::postgres_url(url)
            .poll_interval(Duration::from_millis(20))
            .lease(Duration::from_secs(3)),
        Backend::Redis(url) => WorkerOptions::redis(url).lease(Duration::from_secs(3)),
    };
    options
        .backoff(Duration::from_millis(10), Duration::from_millis(200))
        .shutdown_timeout(Duration::from_secs(2))
}

type Slot = Arc<OnceLock<Result<Worker, AccessError>>>;

/// A plugin that keeps the worker handle it gets in `on_load`, and sends a welcome task from
/// its `welcome` action with the call's context.
struct Mailer {
    slot: Slot,
}

#[async_trait]
impl Actions for Mailer {
    async fn handle(
        &self,
        action: &str,
        payload: Value,
        cx: &CallContext,
    ) -> Result<Value, CallError> {
        let worker = match self.slot.get() {
            Some(Ok(worker)) => worker,
            _ => return Err(CallError::internal("no worker")),
        };
        match action {
            "welcome" => {
                let id = worker.for_call(cx).send("send_welcome", &payload).await?;
                Ok(json!(id))
            }
            other => Err(CallError::unknown_action(other, &["welcome"])),
        }
    }
}

#[async_trait]
impl Plugin for Mailer {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        let _ = self.slot.set(ctx.handle::<Worker>());
        Ok(())
    }
}

fn manifest(name: &str, services: &[&str], grants: &[&str]) -> Manifest {
    Manifest::builder(name, "1.0.0")
        .services(services.iter().copied())
        .permissions(grants.iter().copied())
        .build()
        .unwrap()
}

/// An `Xcore` with the worker and the `mailer` plugin (granted `service:worker: execute`),
/// booted; the plugin's handle.
async fn boot(options: WorkerOptions) -> (Xcore, Worker) {
    boot_with(options, |builder| builder).await
}

/// The same, with more on the builder (a database service).
async fn boot_with(
    options: WorkerOptions,
    edit: impl FnOnce(XcoreBuilder) -> XcoreBuilder,
) -> (Xcore, Worker) {
    let slot = Slot::default();
    let builder = Xcore::builder()
        .without_registered()
        .service(WorkerService::new(options).unwrap());
    let xcore = edit(builder)
        .plugin(
            manifest("mailer", &["worker"], &["service:worker: execute"]),
            Mailer { slot: slot.clone() },
        )
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    let worker = slot.get().unwrap().clone().unwrap();
    (xcore, worker)
}

#[derive(Debug, Serialize, Deserialize)]
struct Welcome {
    email: String,
}

async fn finished(worker: &Worker, id: TaskId) -> TaskStatus {
    let status = worker.wait(id, WAIT).await.unwrap();
    assert!(
        status.is_finished(),
        "task {id} did not finish within {WAIT:?}: {status:?}"
    );
    status
}

/// Waits until `check` holds.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios on both backends

mod common {
    use super::*;

    pub(super) async fn retries_then_success(backend: &Backend) {
        let (xcore, worker) = boot(options(backend)).await;
        let calls = Arc::new(AtomicU32::new(0));
        let seen = calls.clone();
        worker
            .register("flaky", move |task, n: u32| {
                let seen = seen.clone();
                async move {
                    seen.fetch_add(1, Ordering::SeqCst);
                    if task.attempt() < 3 {
                        return Err(TaskError::msg(format!("attempt {} failed", task.attempt())));
                    }
                    assert!(task.is_last_attempt());
                    Ok(n * 10)
                }
            })
            .unwrap();
        let started = Instant::now();
        let id = worker
            .send_with("flaky", &4, SendOptions::new().max_attempts(3))
            .await
            .unwrap();
        let status = finished(&worker, id).await;
        assert_eq!(
            status,
            TaskStatus::Succeeded {
                result: json!(40),
                attempts: 3
            }
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Backoff 10 ms after attempt 1, 20 ms after attempt 2.
        assert!(
            started.elapsed() >= Duration::from_millis(30),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(worker.result::<u32>(id).await.unwrap(), Some(40));
        let info = worker.info(id).await.unwrap();
        assert_eq!(
            (info.name.as_str(), info.plugin.as_deref()),
            ("flaky", Some("mailer"))
        );
        assert_eq!(info.max_attempts, 3);
        // The host sees it under its full name.
        let host = xcore.handle::<Worker>().unwrap();
        assert_eq!(host.info(id).await.unwrap().name, "flaky");
        xcore.shutdown().await;
    }

    pub(super) async fn dead_letter_then_redrive(backend: &Backend) {
        let (xcore, worker) = boot(options(backend)).await;
        let broken = Arc::new(AtomicBool::new(true));
        let calls = Arc::new(AtomicU32::new(0));
        let (b, c) = (broken.clone(), calls.clone());
        worker
            .register("charge", move |_task, order: String| {
                let (b, c) = (b.clone(), c.clone());
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    if b.load(Ordering::SeqCst) {
                        Err(TaskError::msg("payment API down"))
                    } else {
                        Ok(format!("charged {order}"))
                    }
                }
            })
            .unwrap();
        let id = worker
            .send_with("charge", "o-1", SendOptions::new().max_attempts(2))
            .await
            .unwrap();
        let status = finished(&worker, id).await;
        assert_eq!(
            status,
            TaskStatus::Dead {
                error: "payment API down".into(),
                attempts: 2
            }
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let dead = worker.dead_letters().await.unwrap();
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert_eq!(dead[0].id, id);
        assert_eq!(dead[0].name, "charge");
        assert_eq!(dead[0].payload, json!("o-1"));
        assert_eq!(
            xcore
                .handle::<Worker>()
                .unwrap()
                .dead_letters()
                .await
                .unwrap()
                .len(),
            1
        );

        broken.store(false, Ordering::SeqCst);
        worker.redrive(id).await.unwrap();
        let status = finished(&worker, id).await;
        assert_eq!(
            status,
            TaskStatus::Succeeded {
                result: json!("charged o-1"),
                attempts: 1
            }
        );
        assert!(worker.dead_letters().await.unwrap().is_empty());
        let err = worker.redrive(id).await.unwrap_err();
        assert_eq!(
            err,
            WorkerError::NotDead {
                id,
                status: "succeeded"
            }
        );
        let err = worker.redrive(TaskId::new(999_999)).await.unwrap_err();
        assert!(matches!(err, WorkerError::UnknownTask { .. }), "{err}");
        xcore.shutdown().await;
    }

    pub(super) async fn bad_payload_is_a_clear_error(backend: &Backend) {
        let (xcore, worker) = boot(options(backend)).await;
        let calls = Arc::new(AtomicU32::new(0));
        let register = |worker: &Worker| {
            let calls = calls.clone();
            worker
                .register("send_welcome", move |_task, w: Welcome| {
                    let calls = calls.clone();
                    async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, TaskError>(w.email)
                    }
                })
                .unwrap();
        };
        register(&worker);
        // With the handler here, the send is checked against its type.
        let err = worker
            .send("send_welcome", &json!({ "mail": "ada@example.com" }))
            .await
            .unwrap_err();
        assert!(matches!(err, WorkerError::InvalidPayload { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("task `mailer.send_welcome`") && msg.contains("missing field `email`"),
            "{msg}"
        );
        assert_eq!(CallError::from(err).code(), ErrorCode::InvalidPayload);

        // Sent while no handler could check it: a dead letter at once, no retries.
        assert!(worker.unregister("send_welcome").unwrap());
        let id = worker
            .send("send_welcome", &json!({ "email": 42 }))
            .await
            .unwrap();
        register(&worker);
        match finished(&worker, id).await {
            TaskStatus::Dead { error, attempts } => {
                assert_eq!(attempts, 1);
                assert!(
                    error.contains("invalid payload for task `mailer.send_welcome`")
                        && error.contains("invalid type: integer `42`, expected a string"),
                    "{error}"
                );
            }
            other => panic!("expected a dead letter, got {other:?}"),
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        // A good one goes through.
        let id = worker
            .send(
                "send_welcome",
                &Welcome {
                    email: "ada@example.com".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(finished(&worker, id).await.label(), "succeeded");
        // Bad names are refused.
        let err = worker.send("other.send_welcome", &1).await.unwrap_err();
        assert!(matches!(err, WorkerError::InvalidName { .. }), "{err}");
        xcore.shutdown().await;
    }

    pub(super) async fn a_panic_fails_the_attempt_only(backend: &Backend) {
        let (xcore, worker) = boot(options(backend)).await;
        worker
            .register("boom", |task, _: Value| async move {
                if task.attempt() == 1 {
                    panic!("kaboom");
                }
                Ok::<_, TaskError>("survived")
            })
            .unwrap();
        worker
            .register("fine", |_task, n: u32| async move { Ok::<_, TaskError>(n) })
            .unwrap();
        let boom = worker.send("boom", &json!({})).await.unwrap();
        let fine = worker.send("fine", &7).await.unwrap();
        assert_eq!(
            finished(&worker, boom).await,
            TaskStatus::Succeeded {
                result: json!("survived"),
                attempts: 2
            }
        );
        assert_eq!(finished(&worker, fine).await.label(), "succeeded");
        let health = xcore.health().await;
        let node = health.node(&NodeId::service("worker")).unwrap();
        let message = node.health().message().unwrap_or_default().to_owned();
        assert_eq!(node.health().status(), HealthStatus::Healthy, "{message}");
        assert!(message.contains("1 panicked"), "{message}");
        assert!(message.contains("0 dead letters"), "{message}");
        xcore.shutdown().await;
    }

    pub(super) async fn concurrency_limit(backend: &Backend) {
        let (xcore, worker) = boot(options(backend).concurrency(3)).await;
        let now = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let (n, m) = (now.clone(), max.clone());
        worker
            .register("slow", move |_task, _: u32| {
                let (n, m) = (n.clone(), m.clone());
                async move {
                    let current = n.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(current, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(40)).await;
                    n.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, TaskError>(())
                }
            })
            .unwrap();
        let mut ids = Vec::new();
        for i in 0..15 {
            ids.push(worker.send("slow", &i).await.unwrap());
        }
        for id in ids {
            assert_eq!(finished(&worker, id).await.label(), "succeeded");
        }
        assert_eq!(max.load(Ordering::SeqCst), 3, "max in flight");
        xcore.shutdown().await;
    }

    pub(super) async fn shutdown_drains_in_flight_tasks(backend: &Backend) {
        let (xcore, worker) = boot(options(backend).concurrency(2)).await;
        let running = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let (r, d) = (running.clone(), done.clone());
        worker
            .register("job", move |_task, ms: u64| {
                let (r, d) = (r.clone(), d.clone());
                async move {
                    r.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    d.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, TaskError>(())
                }
            })
            .unwrap();
        worker.send("job", &300).await.unwrap();
        worker.send("job", &300).await.unwrap();
        eventually("both tasks run", || running.load(Ordering::SeqCst) == 2).await;
        let started = Instant::now();
        let report = xcore.shutdown().await;
        let took = started.elapsed();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(
            done.load(Ordering::SeqCst),
            2,
            "in-flight tasks were drained"
        );
        assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
        let err = worker.send("job", &1).await.unwrap_err();
        assert!(matches!(err, WorkerError::Unavailable { .. }), "{err}");
    }

    pub(super) async fn shutdown_interrupts_what_outlives_its_timeout(backend: &Backend) {
        let options = options(backend).shutdown_timeout(Duration::from_millis(200));
        let (xcore, worker) = boot(options).await;
        let running = Arc::new(AtomicUsize::new(0));
        let r = running.clone();
        worker
            .register("endless", move |_task, _: u32| {
                let r = r.clone();
                async move {
                    r.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok::<_, TaskError>(())
                }
            })
            .unwrap();
        let id = worker.send("endless", &1).await.unwrap();
        eventually("the task runs", || running.load(Ordering::SeqCst) == 1).await;
        let host = xcore.handle::<Worker>().unwrap();
        let started = Instant::now();
        xcore.shutdown().await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
        match backend {
            // Put back in the queue, its attempt not counted.
            Backend::Memory | Backend::Redis(_) => {
                let info = host.info(id).await.unwrap();
                assert_eq!((info.status, info.attempts), (TaskStatus::Queued, 0));
            }
            Backend::Postgres(url) => {
                let (status, attempts) = row(url, id).await;
                assert_eq!((status.as_str(), attempts), ("queued", 0));
            }
        }
    }

    pub(super) async fn tenant_and_trace_travel_into_the_task(backend: &Backend) {
        let (xcore, worker) = boot(options(backend)).await;
        let seen = Arc::new(Mutex::new(Vec::<(String, String, u128)>::new()));
        let s = seen.clone();
        worker
            .register("send_welcome", move |task, w: Welcome| {
                let s = s.clone();
                async move {
                    let cx = task.call_context();
                    assert_eq!(cx.caller().plugin_name(), Some("mailer"));
                    assert!(cx.deadline().is_some());
                    s.lock().unwrap().push((
                        task.tenant().to_string(),
                        cx.tenant().to_string(),
                        cx.trace().trace_id(),
                    ));
                    Ok::<_, TaskError>(w.email)
                }
            })
            .unwrap();
        // Through the plugin's action: the call's tenant and trace.
        let trace = TraceContext::new_root();
        let cx = CallContext::host()
            .with_tenant(TenantId::new("beta").unwrap())
            .with_trace(trace);
        let id: TaskId = serde_json::from_value(
            xcore
                .call_with(cx, "mailer", "welcome", json!({ "email": "b@example.com" }))
                .await
                .unwrap(),
        )
        .unwrap();
        let beta = worker.for_tenant(&TenantId::new("beta").unwrap());
        assert_eq!(finished(&beta, id).await.label(), "succeeded");
        // Scoped: the plugin's handle for tenant `default` does not see beta's task.
        let err = worker.status(id).await.unwrap_err();
        assert_eq!(err, WorkerError::UnknownTask { id });
        // The host sees every tenant.
        assert_eq!(
            xcore
                .handle::<Worker>()
                .unwrap()
                .info(id)
                .await
                .unwrap()
                .tenant
                .as_str(),
            "beta"
        );

        // Through for_tenant.
        let acme = worker.for_tenant(&TenantId::new("acme").unwrap());
        let id = acme
            .send(
                "send_welcome",
                &Welcome {
                    email: "a@example.com".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(finished(&acme, id).await.label(), "succeeded");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!((seen[0].0.as_str(), seen[0].1.as_str()), ("beta", "beta"));
        assert_eq!(
            seen[0].2,
            trace.trace_id(),
            "the task continues the call's trace"
        );
        assert_eq!((seen[1].0.as_str(), seen[1].1.as_str()), ("acme", "acme"));
        xcore.shutdown().await;
    }

    pub(super) async fn idempotency_keys_deduplicate_sends(backend: &Backend) {
        let (xcore, worker) = boot(options(backend)).await;
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        worker
            .register("receipt", move |task, _: u32| {
                let c = c.clone();
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, TaskError>(task.id())
                }
            })
            .unwrap();
        let once = SendOptions::new().idempotency_key("order-7");
        let a = worker.send_with("receipt", &7, once.clone()).await.unwrap();
        let b = worker.send_with("receipt", &7, once.clone()).await.unwrap();
        assert_eq!(a, b);
        assert_eq!(finished(&worker, a).await.label(), "succeeded");
        // Still deduplicated once finished (while the queue remembers the task).
        assert_eq!(
            worker.send_with("receipt", &7, once.clone()).await.unwrap(),
            a
        );
        // Another tenant has its own keys.
        let acme = worker.for_tenant(&TenantId::new("acme").unwrap());
        let c = acme.send_with("receipt", &7, once).await.unwrap();
        assert_ne!(c, a);
        assert_eq!(finished(&acme, c).await.label(), "succeeded");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(worker.result::<TaskId>(a).await.unwrap(), Some(a));
        xcore.shutdown().await;
    }
}

/// A task's status and attempts, read from the table directly.
async fn row(url: &str, id: TaskId) -> (String, i32) {
    let pool = raw_pool(url).await;
    let row: (String, i32) =
        sqlx::query_as("SELECT status, attempts FROM xcore_tasks WHERE id = $1")
            .bind(id.get() as i64)
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    row
}

async fn raw_pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// In process

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_retries_then_success() {
    common::retries_then_success(&Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_dead_letter_then_redrive() {
    common::dead_letter_then_redrive(&Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bad_payload_is_a_clear_error() {
    common::bad_payload_is_a_clear_error(&Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_panic_fails_the_attempt_only() {
    common::a_panic_fails_the_attempt_only(&Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_concurrency_limit() {
    common::concurrency_limit(&Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_shutdown_drains_in_flight_tasks() {
    common::shutdown_drains_in_flight_tasks(&Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_shutdown_interrupts_what_outlives_its_timeout() {
    common::shutdown_interrupts_what_outlives_its_timeout(&Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_tenant_and_trace_travel_into_the_task() {
    common::tenant_and_trace_travel_into_the_task(&Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_idempotency_keys_deduplicate_sends() {
    common::idempotency_keys_deduplicate_sends(&Backend::Memory).await;
}

#[tokio::test]
async fn memory_queue_refuses_a_send_when_full() {
    let (xcore, worker) = boot(WorkerOptions::memory().queue_capacity(2)).await;
    // No handler: the tasks stay queued.
    worker.send("later", &1).await.unwrap();
    worker.send("later", &2).await.unwrap();
    let err = worker.send("later", &3).await.unwrap_err();
    assert_eq!(err, WorkerError::QueueFull { capacity: 2 });
    assert_eq!(CallError::from(err).code(), ErrorCode::Overloaded);
    let health = xcore.health().await;
    let message = health
        .node(&NodeId::service("worker"))
        .and_then(|n| n.health().message().map(str::to_owned))
        .unwrap_or_default();
    assert!(message.starts_with("memory queue: 2 ready"), "{message}");
    xcore.shutdown().await;
}

#[tokio::test]
async fn a_plugin_without_the_grant_is_refused() {
    let denied = Slot::default();
    let undeclared = Slot::default();
    let xcore = Xcore::builder()
        .without_registered()
        .service(WorkerService::new(WorkerOptions::memory()).unwrap())
        .plugin(
            manifest("nosy", &["worker"], &["service:scheduler: schedule"]),
            Mailer {
                slot: denied.clone(),
            },
        )
        .plugin(
            manifest("sloppy", &[], &["service:worker: execute"]),
            Mailer {
                slot: undeclared.clone(),
            },
        )
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    let err = denied.get().unwrap().clone().unwrap_err();
    assert_eq!(
        err,
        AccessError::PermissionDenied {
            plugin: "nosy".into(),
            resource: "service:worker".into(),
            action: "execute".into(),
        }
    );
    assert_eq!(CallError::from(err).code(), ErrorCode::PermissionDenied);
    assert!(
        matches!(
            undeclared.get().unwrap(),
            Err(AccessError::NotDeclared { .. })
        ),
        "{:?}",
        undeclared.get()
    );
    xcore.shutdown().await;
}

#[tokio::test]
async fn the_config_adds_a_worker() {
    let config = xcore::config::ConfigLoader::new()
        .env(Vec::<(String, String)>::new())
        .load_str(
            "services:\n  worker:\n    concurrency: 2\n    backoff: 50ms\n    max_retries: 1\n",
            xcore::config::Format::Yaml,
        )
        .unwrap();
    let xcore = Xcore::builder()
        .without_registered()
        .config(config)
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    let worker = xcore.handle::<Worker>().unwrap();
    worker
        .register("fail", |_task, _: u32| async move {
            Err::<(), _>(TaskError::msg("no"))
        })
        .unwrap();
    let id = worker.send("fail", &1).await.unwrap();
    // max_retries 1: two attempts.
    assert_eq!(
        finished(&worker, id).await,
        TaskStatus::Dead {
            error: "no".into(),
            attempts: 2
        }
    );
    xcore.shutdown().await;

    let err = xcore::config::ConfigLoader::new()
        .env(Vec::<(String, String)>::new())
        .load_str(
            "services:\n  worker:\n    backend: redis\n",
            xcore::config::Format::Yaml,
        )
        .map_err(|e| e.to_string())
        .and_then(|config| {
            Xcore::builder()
                .without_registered()
                .config(config)
                .build()
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .unwrap_err();
    assert!(
        err.contains("services.worker") && err.contains("needs `services.worker.url`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_durable_queue_needs_postgres() {
    let database = DatabaseService::new([("main", DatabaseOptions::default())]);
    let xcore = Xcore::builder()
        .without_registered()
        .service(database)
        .service(WorkerService::new(WorkerOptions::postgres_database(None)).unwrap())
        .build()
        .unwrap();
    let err = xcore.boot().await.unwrap_err().to_string();
    assert!(
        err.contains("needs a Postgres database, and `main` is not one"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// On Postgres

async fn postgres() -> Option<PostgresServer> {
    PostgresServer::start().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_scenarios() {
    let Some(server) = postgres().await else {
        return;
    };
    // Each scenario on a fresh database, so that counts (dead letters) start at zero.
    let fresh = || async { Backend::Postgres(server.database().await.unwrap()) };
    common::retries_then_success(&fresh().await).await;
    common::dead_letter_then_redrive(&fresh().await).await;
    common::bad_payload_is_a_clear_error(&fresh().await).await;
    common::a_panic_fails_the_attempt_only(&fresh().await).await;
    common::concurrency_limit(&fresh().await).await;
    common::shutdown_drains_in_flight_tasks(&fresh().await).await;
    common::shutdown_interrupts_what_outlives_its_timeout(&fresh().await).await;
    common::tenant_and_trace_travel_into_the_task(&fresh().await).await;
    common::idempotency_keys_deduplicate_sends(&fresh().await).await;
}

/// Every scenario on Redis Streams, each on a server of its own (so that counts start at zero).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_scenarios() {
    let fresh = || async {
        let server = RedisServer::start_local().await.ok()?;
        let backend = Backend::Redis(server.url().to_owned());
        Some((server, backend))
    };
    let Some((_server, backend)) = fresh().await else {
        eprintln!("no Redis: skipped");
        return;
    };
    common::retries_then_success(&backend).await;
    let (_server, backend) = fresh().await.unwrap();
    common::dead_letter_then_redrive(&backend).await;
    let (_server, backend) = fresh().await.unwrap();
    common::bad_payload_is_a_clear_error(&backend).await;
    let (_server, backend) = fresh().await.unwrap();
    common::a_panic_fails_the_attempt_only(&backend).await;
    let (_server, backend) = fresh().await.unwrap();
    common::concurrency_limit(&backend).await;
    let (_server, backend) = fresh().await.unwrap();
    common::shutdown_drains_in_flight_tasks(&backend).await;
    let (_server, backend) = fresh().await.unwrap();
    common::shutdown_interrupts_what_outlives_its_timeout(&backend).await;
    let (_server, backend) = fresh().await.unwrap();
    common::tenant_and_trace_travel_into_the_task(&backend).await;
    let (_server, backend) = fresh().await.unwrap();
    common::idempotency_keys_deduplicate_sends(&backend).await;
}

/// A task sent before a restart runs after it: one queued with no handler anywhere, one with
/// a delay longer than the first instance lives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_task_survives_a_restart() {
    let Some(server) = postgres().await else {
        return;
    };
    let backend = Backend::Postgres(server.database().await.unwrap());
    let ran = Arc::new(AtomicU32::new(0));
    let handler = |ran: Arc<AtomicU32>| {
        move |task: xcore::services::worker::TaskContext, w: Welcome| {
            let ran = ran.clone();
            async move {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<_, TaskError>(format!("{} welcomed {}", task.name(), w.email))
            }
        }
    };

    let (first, worker) = boot(options(&backend)).await;
    let queued = xcore_worker(&first)
        .send(
            "mailer.send_welcome",
            &Welcome {
                email: "q@example.com".into(),
            },
        )
        .await
        .unwrap();
    worker
        .register("send_welcome", handler(ran.clone()))
        .unwrap();
    let delayed = worker
        .send_with(
            "send_welcome",
            &Welcome {
                email: "d@example.com".into(),
            },
            SendOptions::new().delay(Duration::from_secs(3)),
        )
        .await
        .unwrap();
    // The handler is there now: the first task runs; the delayed one waits.
    assert_eq!(finished(&worker, queued).await.label(), "succeeded");
    assert_eq!(worker.status(delayed).await.unwrap(), TaskStatus::Queued);
    first.shutdown().await;
    assert_eq!(ran.load(Ordering::SeqCst), 1);

    // The second instance reaches the same database through the `db` service's connection.
    let Backend::Postgres(url) = &backend else {
        unreachable!()
    };
    let database = DatabaseService::new([(
        "main",
        DatabaseOptions {
            url: url.clone(),
            ..DatabaseOptions::default()
        },
    )]);
    let on_db = WorkerOptions::postgres_database(Some("main"))
        .poll_interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(10), Duration::from_millis(200));
    let (second, worker) = boot_with(on_db, |b| b.service(database)).await;
    assert_eq!(
        second.plan().wave_count(),
        3,
        "db, then worker, then mailer"
    );
    worker
        .register("send_welcome", handler(ran.clone()))
        .unwrap();
    assert_eq!(
        finished(&worker, delayed).await,
        TaskStatus::Succeeded {
            result: json!("send_welcome welcomed d@example.com"),
            attempts: 1
        }
    );
    assert_eq!(ran.load(Ordering::SeqCst), 2);
    second.shutdown().await;

    // And one sent with no handler anywhere, then a restart.
    let (third, _) = boot(options(&backend)).await;
    let orphan = xcore_worker(&third)
        .send(
            "mailer.send_welcome",
            &Welcome {
                email: "o@example.com".into(),
            },
        )
        .await
        .unwrap();
    third.shutdown().await;
    let (fourth, worker) = boot(options(&backend)).await;
    worker
        .register("send_welcome", handler(ran.clone()))
        .unwrap();
    assert_eq!(finished(&worker, orphan).await.label(), "succeeded");
    fourth.shutdown().await;
}

fn xcore_worker(xcore: &Xcore) -> Worker {
    xcore.handle::<Worker>().unwrap()
}

/// Two instances on one queue: each of 200 tasks runs exactly once (no crash: at-least-once
/// delivers once), and both instances take part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_instances_share_the_queue() {
    let Some(server) = postgres().await else {
        return;
    };
    let backend = Backend::Postgres(server.database().await.unwrap());
    let runs: Arc<Mutex<HashMap<TaskId, u32>>> = Arc::default();
    let by_instance = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let mut apps = Vec::new();
    for instance in 0..2 {
        let (xcore, worker) = boot(options(&backend).concurrency(4)).await;
        let (runs, by_instance) = (runs.clone(), by_instance.clone());
        worker
            .register("count", move |task, _: u32| {
                let (runs, by_instance) = (runs.clone(), by_instance.clone());
                async move {
                    *runs.lock().unwrap().entry(task.id()).or_default() += 1;
                    by_instance[instance].fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    Ok::<_, TaskError>(())
                }
            })
            .unwrap();
        apps.push((xcore, worker));
    }
    let mut ids = Vec::new();
    for i in 0..200u32 {
        let (_, worker) = &apps[(i % 2) as usize];
        ids.push(worker.send("count", &i).await.unwrap());
    }
    for id in &ids {
        assert_eq!(finished(&apps[0].1, *id).await.label(), "succeeded");
    }
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 200);
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "tasks not run exactly once: {twice:?}");
    let (a, b) = (
        by_instance[0].load(Ordering::SeqCst),
        by_instance[1].load(Ordering::SeqCst),
    );
    assert_eq!(a + b, 200);
    assert!(a > 0 && b > 0, "both instances take part: {a} and {b}");
    for (xcore, _) in apps {
        xcore.shutdown().await;
    }
}

/// A task whose instance died mid-attempt (a row left `running` with an expired lease) is
/// delivered again; on its last attempt it becomes a dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_expired_lease_is_delivered_again() {
    let Some(server) = postgres().await else {
        return;
    };
    let url = server.database().await.unwrap();
    let backend = Backend::Postgres(url.clone());
    let (xcore, worker) = boot(options(&backend).lease(Duration::from_secs(1))).await;
    // Sent with no handler registered: stays queued; then "claimed by a dead instance".
    let again = worker.send("job", &1).await.unwrap();
    let last = worker
        .send_with("job", &2, SendOptions::new().max_attempts(1))
        .await
        .unwrap();
    let pool = raw_pool(&url).await;
    sqlx::query(
        "UPDATE xcore_tasks SET status = 'running', attempts = 1, locked_by = 'dead', \
         locked_until = 0 WHERE id IN ($1, $2)",
    )
    .bind(again.get() as i64)
    .bind(last.get() as i64)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    // Running, until a maintenance tick (every third of the lease) sees its lease expired
    // and puts it back.
    let status = worker.status(again).await.unwrap();
    assert!(
        matches!(
            status,
            TaskStatus::Running { attempt: 1 } | TaskStatus::Failed { attempts: 1, .. }
        ),
        "{status:?}"
    );
    worker
        .register("job", |task, n: u32| async move {
            Ok::<_, TaskError>((n, task.attempt()))
        })
        .unwrap();
    assert_eq!(
        finished(&worker, again).await,
        TaskStatus::Succeeded {
            result: json!([1, 2]),
            attempts: 2
        }
    );
    match finished(&worker, last).await {
        TaskStatus::Dead { error, attempts } => {
            assert_eq!(attempts, 1);
            assert!(error.contains("stopped renewing its lease"), "{error}");
        }
        other => panic!("expected a dead letter, got {other:?}"),
    }
    xcore.shutdown().await;
}

/// A real outage: the test's own Postgres server (never the shared one) is stopped while two
/// attempts run, and started again. The attempt that ends during the outage cannot record its
/// outcome: it is no longer in flight, so its lease is no longer renewed, expires, and the task
/// is delivered again and succeeds on its second attempt. The attempt still running across the
/// outage keeps its lease (renewed as it is in flight) and succeeds on its first. Afterwards,
/// no task is left `running`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_task_lost_in_an_outage_is_delivered_again_when_its_lease_expires() {
    let Ok(server) = PostgresServer::start_own().await else {
        return;
    };
    let url = server.database().await.unwrap();
    let backend = Backend::Postgres(url.clone());
    let (xcore, worker) = boot(options(&backend).lease(Duration::from_secs(1))).await;

    // 0: up; 1: the server is down; 2: up again.
    let (phase, watch) = tokio::sync::watch::channel(0u8);
    let (started, mut started_rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    let attempts = Arc::new(Mutex::new(Vec::<(&'static str, u32)>::new()));
    for (name, until) in [("lost", 1u8), ("through", 2u8)] {
        let (watch, started, attempts) = (watch.clone(), started.clone(), attempts.clone());
        worker
            .register(name, move |task, _: Value| {
                let (mut watch, started, attempts) =
                    (watch.clone(), started.clone(), attempts.clone());
                async move {
                    attempts.lock().unwrap().push((name, task.attempt()));
                    if task.attempt() == 1 {
                        let _ = started.send(name);
                        let _ = watch.wait_for(|p| *p >= until).await;
                    }
                    Ok::<_, TaskError>(task.attempt())
                }
            })
            .unwrap();
    }
    let lost = worker.send("lost", &json!({})).await.unwrap();
    let through = worker.send("through", &json!({})).await.unwrap();
    for _ in 0..2 {
        tokio::time::timeout(WAIT, started_rx.recv())
            .await
            .expect("both attempts start")
            .unwrap();
    }

    server.halt().await.unwrap();
    phase.send(1).unwrap();
    // `lost` ends now and cannot record its outcome: the queue's pool gives up acquiring a
    // connection after 5 s. The server stays down longer than that (and than the 1 s lease).
    tokio::time::sleep(Duration::from_millis(6500)).await;
    server.restart().await.unwrap();
    phase.send(2).unwrap();

    let wait = |id| {
        let worker = worker.clone();
        async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                if let Ok(status) = worker.status(id).await
                    && status.is_finished()
                {
                    return status;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "task {id} did not finish within {WAIT:?} of the restart"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(
        wait(lost).await,
        TaskStatus::Succeeded {
            result: json!(2),
            attempts: 2
        }
    );
    assert_eq!(
        wait(through).await,
        TaskStatus::Succeeded {
            result: json!(1),
            attempts: 1
        }
    );
    let mut seen = attempts.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, [("lost", 1), ("lost", 2), ("through", 1)]);
    let pool = raw_pool(&url).await;
    let running: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM xcore_tasks WHERE status = 'running'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(running, 0, "a task stayed running");
    pool.close().await;
    xcore.shutdown().await;
}
