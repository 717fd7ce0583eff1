//! Handles bound to the call: a plugin that never names a tenant (no `TenantId`, no
//! `for_tenant`) keeps tenants apart in its database, its cache, its tasks, its jobs and its
//! events, whether it is reached over HTTP (`X-Tenant-ID`) or by calls; and a plugin's kept
//! handles reach no code of a stopped instance (its gate refuses jobs, tasks and events).

use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use xcore::{
    CallContext, Manifest, TenantId,
    config::Config,
    events::{Event, Events, Flow, Outcome},
    prelude::*,
    services::{
        cache::{Cache, Ttl},
        db::{DatabaseOptions, Db, Migration, sqlx},
        scheduler::{JobContext, JobError, RunOutcome, Scheduler, Trigger},
        worker::{TaskContext, TaskError, TaskStatus, Worker},
    },
    web::{
        Routes,
        axum::{Bound, Json},
    },
};
use xcore_testkit::TestApp;

// ---------------------------------------------------------------------------------------------
// `tenantless`: every handle from the call, never a tenant named.

const MIGRATIONS: &[Migration] = &[
    Migration::new(1, "items", "CREATE TABLE items (name TEXT NOT NULL)"),
    Migration::new(
        2,
        "log",
        "CREATE TABLE log (kind TEXT NOT NULL, what TEXT NOT NULL)",
    ),
];

#[derive(Default)]
#[plugin(
    name = "tenantless",
    version = "1.0.0",
    services = ["db", "cache", "worker", "scheduler"],
    permissions = [
        "db.default: read, write",
        "cache.items: *",
        "service:worker: execute",
        "service:scheduler: schedule",
        "events:item.*: emit, subscribe",
    ],
)]
struct Tenantless;

#[derive(Deserialize)]
struct NewItem {
    name: String,
}

async fn log(cx: &CallContext, kind: &str, what: &str) -> Result<(), CallError> {
    let db = cx.handle::<Db>().await?;
    sqlx::query("INSERT INTO log (kind, what) VALUES ($1, $2)")
        .bind(kind)
        .bind(what)
        .execute(db.pool())
        .await
        .map_err(CallError::handler)?;
    Ok(())
}

/// Adds an item: the database, the cache, a task, an event and the tenant's job, all from
/// the call.
async fn add(cx: &CallContext, name: &str) -> Result<(), CallError> {
    let db = cx.handle::<Db>().await?;
    sqlx::query("INSERT INTO items (name) VALUES ($1)")
        .bind(name)
        .execute(db.pool())
        .await
        .map_err(CallError::handler)?;
    cx.named::<Cache>("items")
        .await?
        .set("last", name, Ttl::Never)
        .await?;
    cx.handle::<Worker>().await?.send("note", name).await?;
    cx.handle::<Events>()
        .await?
        .publish("item.added", json!({ "name": name }))
        .await?;
    let scheduler = cx.handle::<Scheduler>().await?;
    if scheduler.get("tick").is_none() {
        let every = Trigger::every(Duration::from_secs(1)).map_err(CallError::internal)?;
        scheduler
            .add("tick", every, |job: JobContext| async move {
                let cx = job.call_context();
                let db = cx.handle::<Db>().await?;
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM items")
                    .fetch_one(db.pool())
                    .await?;
                log(cx, "job", &n.to_string()).await?;
                Ok::<_, JobError>(())
            })
            .await?;
    }
    Ok(())
}

/// What the call's tenant holds.
async fn summary(cx: &CallContext) -> Result<Value, CallError> {
    let db = cx.handle::<Db>().await?;
    let items: Vec<String> = sqlx::query_scalar("SELECT name FROM items ORDER BY name")
        .fetch_all(db.pool())
        .await
        .map_err(CallError::handler)?;
    let log: Vec<(String, String)> = sqlx::query_as("SELECT kind, what FROM log")
        .fetch_all(db.pool())
        .await
        .map_err(CallError::handler)?;
    let last: Option<String> = cx.named::<Cache>("items").await?.get("last").await?;
    let of = |kind: &str| -> Vec<String> {
        let mut whats: Vec<String> = log
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, w)| w.clone())
            .collect();
        whats.sort();
        whats
    };
    Ok(json!({
        "items": items,
        "last": last,
        "tasks": of("task"),
        "events": of("event"),
        "jobs": of("job"),
    }))
}

async fn add_route(cx: CallContext, Json(item): Json<NewItem>) -> Result<Json<Value>, CallError> {
    add(&cx, &item.name).await?;
    Ok(Json(json!({ "added": item.name })))
}

async fn summary_route(cx: CallContext, Bound(db): Bound<Db>) -> Result<Json<Value>, CallError> {
    // `Bound<Db>` is the request's tenant's database, as `cx.handle::<Db>()` is.
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM items")
        .fetch_one(db.pool())
        .await
        .map_err(CallError::handler)?;
    let mut body = summary(&cx).await?;
    body["count"] = json!(n);
    Ok(Json(body))
}

#[async_trait]
impl Plugin for Tenantless {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        ctx.handle::<Db>()?.migrate(MIGRATIONS).await?;
        ctx.handle::<Worker>()?
            .register("note", |task: TaskContext, name: String| async move {
                log(task.call_context(), "task", &name).await?;
                Ok::<_, TaskError>(())
            })?;
        ctx.handle::<Events>()?
            .subscribe("item.added", |event: Event| async move {
                let name = event.payload()["name"].as_str().unwrap_or("?").to_owned();
                log(&event.context(), "event", &name).await?;
                Ok::<_, CallError>(Flow::Continue)
            })?;
        Ok(())
    }

    fn routes(&self, _ctx: &PluginContext) -> Option<Routes> {
        let router = Router::new()
            .route("/items", post(add_route))
            .route("/summary", get(summary_route));
        Some(Routes::from_axum(router))
    }
}

#[actions]
impl Tenantless {
    #[action]
    async fn add(&self, cx: &CallContext, item: NewItem) -> Result<(), CallError> {
        add(cx, &item.name).await
    }

    #[action]
    async fn summary(&self, cx: &CallContext) -> Result<Value, CallError> {
        summary(cx).await
    }
}

fn config() -> Config {
    let mut config = Config::default();
    config
        .services
        .databases
        .insert("default".into(), DatabaseOptions::default());
    config.tenancy.enabled = true;
    config
}

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

async fn summary_of(xcore: &Xcore, tenant_name: Option<&str>) -> Value {
    let cx = match tenant_name {
        Some(t) => CallContext::host().with_tenant(tenant(t)),
        None => CallContext::host(),
    };
    xcore
        .call_with(cx, "tenantless", "summary", json!(null))
        .await
        .unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    serde_json::from_value(value.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_never_names_a_tenant_keeps_tenants_apart() {
    let config = config();
    let xcore = TestApp::builder()
        .plugins(["tenantless"])
        .configure(|b| b.config(config.clone()))
        .build()
        .unwrap();
    xcore.boot().await.unwrap().ensure_all_started().unwrap();
    let client = xcore_testkit::TestClient::new(xcore.web().config(&config).build().unwrap());

    // Over HTTP, the tenant from `X-Tenant-ID`.
    for (t, name) in [("acme", "anvil"), ("globex", "widget"), ("acme", "rocket")] {
        let response = client
            .clone()
            .tenant(t)
            .post_json("/plugin/tenantless/items", &json!({ "name": name }))
            .await;
        assert_eq!(response.status().as_u16(), 200, "{}", response.text());
    }
    // By calls, the tenant of the call's context.
    for (t, name) in [("acme", "trap"), ("globex", "gizmo")] {
        xcore
            .call_with(
                CallContext::host().with_tenant(tenant(t)),
                "tenantless",
                "add",
                json!({ "name": name }),
            )
            .await
            .unwrap();
    }

    let expected = [
        ("acme", vec!["anvil", "rocket", "trap"]),
        ("globex", vec!["gizmo", "widget"]),
    ];
    // Tasks, events and jobs run in the background: wait until each tenant saw its own.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    for (t, items) in &expected {
        let want_job = items.len().to_string();
        loop {
            let s = summary_of(&xcore, Some(t)).await;
            let done = strings(&s["tasks"]).len() == items.len()
                && strings(&s["events"]).len() == items.len()
                && strings(&s["jobs"]).contains(&want_job);
            if done {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "tenant {t} did not see its tasks, events and job: {s}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    for (t, items) in &expected {
        let s = summary_of(&xcore, Some(t)).await;
        assert_eq!(strings(&s["items"]), *items, "db of {t}: {s}");
        assert_eq!(strings(&s["tasks"]), *items, "tasks of {t}: {s}");
        assert_eq!(strings(&s["events"]), *items, "events of {t}: {s}");
        // The job of each tenant counted that tenant's items, never the other's.
        let most = items.len();
        for n in strings(&s["jobs"]) {
            let n: usize = n.parse().unwrap();
            assert!((1..=most).contains(&n), "job of {t} counted {n}: {s}");
        }
        let last = s["last"].as_str().unwrap();
        assert!(items.contains(&last), "cache of {t}: {s}");
        // The same over HTTP, where `Bound<Db>` is the request's tenant's database.
        let http = client
            .clone()
            .tenant(t)
            .get("/plugin/tenantless/summary")
            .await
            .json();
        assert_eq!(http["count"], json!(items.len()), "{http}");
        assert_eq!(http["items"], s["items"], "{http}");
    }
    assert_eq!(
        summary_of(&xcore, Some("acme")).await["last"],
        json!("trap")
    );
    assert_eq!(
        summary_of(&xcore, Some("globex")).await["last"],
        json!("gizmo")
    );
    // Tenant `default` got nothing: no item, no cache entry, no task, event or job.
    let default = summary_of(&xcore, None).await;
    assert_eq!(
        default,
        json!({"items": [], "last": null, "tasks": [], "events": [], "jobs": []})
    );
    // One job per tenant, none for `default`.
    let tenants: BTreeSet<String> = xcore
        .handle::<Scheduler>()
        .unwrap()
        .list_all()
        .into_iter()
        .filter(|j| j.plugin.as_deref() == Some("tenantless") && j.id == "tick")
        .map(|j| j.tenant)
        .collect();
    assert_eq!(
        tenants,
        BTreeSet::from(["acme".to_owned(), "globex".to_owned()])
    );
    xcore.shutdown().await;
}

#[tokio::test]
async fn a_context_no_plugin_serves_gives_no_handle() {
    let err = CallContext::host().handle::<Worker>().await.unwrap_err();
    assert!(err.to_string().contains("no plugin serves"), "{err}");
    let err: CallError = CallContext::host()
        .named::<Db>("default")
        .await
        .unwrap_err()
        .into();
    assert_eq!(err.code(), ErrorCode::Internal);
}

// ---------------------------------------------------------------------------------------------
// `keeper`: keeps its handles, and uses them once its instance has stopped (in `on_stop`,
// after its gate closed, while the services still run).

#[derive(Default)]
struct Probe {
    ran: AtomicUsize,
    handles: Mutex<Option<(Worker, Scheduler, Events)>>,
    /// What `on_stop` saw: the task's status, the job's last outcome, the emit's outcome.
    seen: Mutex<Option<(TaskStatus, Option<RunOutcome>, Outcome)>>,
}

struct Keeper {
    probe: Arc<Probe>,
}

#[async_trait]
impl Actions for Keeper {
    async fn handle(
        &self,
        action: &str,
        _payload: Value,
        _cx: &CallContext,
    ) -> Result<Value, CallError> {
        Err(CallError::unknown_action(action, &[]))
    }
}

#[async_trait]
impl Plugin for Keeper {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        let kept = (
            ctx.handle::<Worker>()?,
            ctx.handle::<Scheduler>()?,
            ctx.handle::<Events>()?,
        );
        *self.probe.handles.lock().unwrap() = Some(kept);
        Ok(())
    }

    async fn on_stop(&self, ctx: &PluginContext) -> Result<(), PluginError> {
        assert!(!ctx.gate().is_open(), "on_stop runs behind a closed gate");
        let Some((worker, scheduler, events)) = self.probe.handles.lock().unwrap().clone() else {
            return Err(PluginError::msg("no handles"));
        };
        let ran = |probe: &Arc<Probe>| {
            let probe = probe.clone();
            move || {
                probe.ran.fetch_add(1, Ordering::SeqCst);
            }
        };
        let count = ran(&self.probe);
        worker.register("late", move |_task: TaskContext, _: Value| {
            count();
            async { Ok::<_, TaskError>(()) }
        })?;
        let task = worker.send("late", &json!({})).await?;
        let count = ran(&self.probe);
        scheduler
            .add(
                "late",
                Trigger::every(Duration::from_secs(1)).map_err(PluginError::msg)?,
                move |_job: JobContext| {
                    count();
                    async { Ok::<_, JobError>(()) }
                },
            )
            .await?;
        let count = ran(&self.probe);
        events.subscribe("late.ping", move |_event: Event| {
            count();
            async { Ok::<_, std::convert::Infallible>(Flow::Continue) }
        })?;
        let report = events
            .emit(&ctx.call_context(), "late.ping", json!(null))
            .await?;
        // Long enough for the job to fire and the task to be tried.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        let (status, job) = loop {
            let status = worker.status(task).await?;
            let job = scheduler.get("late").and_then(|j| j.last_outcome);
            let tried = !matches!(status, TaskStatus::Queued);
            if (tried && job.is_some()) || tokio::time::Instant::now() > deadline {
                break (status, job);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let outcome = report.outcomes()[0].outcome.clone();
        *self.probe.seen.lock().unwrap() = Some((status, job, outcome));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_instance_runs_no_kept_job_task_or_event_handler() {
    let probe = Arc::new(Probe::default());
    let manifest = Manifest::builder("keeper", "1.0.0")
        .services(["worker", "scheduler"])
        .permissions([
            "service:worker: execute",
            "service:scheduler: schedule",
            "events:late.*: emit, subscribe",
        ])
        .build()
        .unwrap();
    let app = TestApp::builder()
        .plugin(
            manifest,
            Keeper {
                probe: probe.clone(),
            },
        )
        .configure(|b| {
            b.config(Config::default())
                .stop_timeout(Duration::from_secs(10))
        })
        .boot()
        .await
        .unwrap();
    let report = app.shutdown().await;
    assert!(report.is_clean(), "{report:?}");

    assert_eq!(probe.ran.load(Ordering::SeqCst), 0, "no plugin code ran");
    let (status, job, outcome) = probe.seen.lock().unwrap().clone().expect("on_stop ran");
    let refused = |text: &str| text.contains("plugin `keeper` is not running");
    match &status {
        TaskStatus::Failed { error, .. } | TaskStatus::Dead { error, .. } => {
            assert!(refused(error), "{error}");
        }
        other => panic!("the task was not refused: {other:?}"),
    }
    match &job {
        Some(RunOutcome::Failed { error, .. }) => assert!(refused(error), "{error}"),
        other => panic!("the job was not refused: {other:?}"),
    }
    match &outcome {
        Outcome::Failed(error) => assert!(refused(error), "{error}"),
        other => panic!("the event was not refused: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Grants are checked once per handle and instance: a refusal is kept (and audited) once.

struct Asker;

#[async_trait]
impl Actions for Asker {
    async fn handle(
        &self,
        _action: &str,
        _payload: Value,
        cx: &CallContext,
    ) -> Result<Value, CallError> {
        let mut refused = 0;
        for _ in 0..5 {
            // Granted: the same kept handle, bound to the call's tenant each time.
            let cache = cx.named::<Cache>("items").await?;
            assert_eq!(cache.tenant(), cx.tenant());
            // Not granted: refused, audited the first time only.
            if cx.handle::<Worker>().await.is_err() {
                refused += 1;
            }
        }
        Ok(json!(refused))
    }
}

#[async_trait]
impl Plugin for Asker {}

#[tokio::test]
async fn a_refused_handle_is_audited_once_per_instance() {
    let manifest = Manifest::builder("asker", "1.0.0")
        .services(["cache", "worker"])
        .permissions(["cache.items: read"])
        .build()
        .unwrap();
    let app = TestApp::builder()
        .plugin(manifest, Asker)
        .configure(|b| b.config(Config::default()))
        .boot()
        .await
        .unwrap();
    let before = app.xcore().audit().total();
    for t in ["acme", "globex", "acme"] {
        let refused = app
            .call_with(
                CallContext::host().with_tenant(tenant(t)),
                "asker",
                "ask",
                json!(null),
            )
            .await
            .unwrap();
        assert_eq!(refused, json!(5));
    }
    assert_eq!(app.xcore().audit().total(), before + 1, "audited once");
    let denial = &app.xcore().audit().denials(Some("asker"), 1)[0];
    assert_eq!(denial.resource, "service:worker");
    app.shutdown().await;
}
