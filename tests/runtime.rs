//! A plugin's lifecycle at runtime: stop, start, reload and restart one plugin while the host
//! runs — its routes (on every adapter), event subscriptions, jobs and task handlers withdrawn
//! and given back, its dependents stopped first and started after, a failed plugin
//! restarted, the admin endpoints with and without the token, the gate's limits, timeout and
//! panic isolation on routes, and a stop that drains what is in flight.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use axum::{Router, routing::get};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use xcore::{
    Actions, CallContext, CallError, ErrorCode, Manifest, OnFailure, Plugin, PluginContext,
    PluginError, Xcore, async_trait,
    events::Flow,
    runtime::{PluginState, RuntimeError},
    services::{
        scheduler::{Scheduler, SchedulerOptions, SchedulerService, Trigger},
        worker::{TaskStatus, Worker, WorkerOptions, WorkerService},
    },
    web::Routes,
};
use xcore_testkit::EventRecorder;

mod support;
use support::{Adapter, send, serve, serve_all};

const TOKEN: &str = "a-long-enough-admin-token";

/// What the instances of one plugin did, across instances.
#[derive(Clone, Default)]
struct Counts {
    made: Arc<AtomicU32>,
    events: Arc<AtomicU32>,
    jobs: Arc<AtomicU32>,
    tasks: Arc<AtomicU32>,
    stops: Arc<AtomicU32>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Counts {
    fn log(&self, line: impl Into<String>) {
        self.log.lock().unwrap().push(line.into());
    }
}

/// Fails its `on_load` on the instances whose generation is listed.
#[derive(Clone, Default)]
struct Faults {
    load: Arc<Mutex<Vec<u32>>>,
    start: Arc<Mutex<Vec<u32>>>,
}

/// The plugin under test: each instance knows its generation (1 for the first). In
/// `on_load` it subscribes to `probe.*`, schedules `tick` every second and registers the task
/// handler `work`; its actions and routes answer its generation.
struct Lab {
    generation: u32,
    counts: Counts,
    faults: Faults,
}

impl Lab {
    fn factory(counts: &Counts, faults: &Faults) -> impl Fn() -> Lab + Send + Sync + 'static {
        let (counts, faults) = (counts.clone(), faults.clone());
        move || Lab {
            generation: counts.made.fetch_add(1, Ordering::SeqCst) + 1,
            counts: counts.clone(),
            faults: faults.clone(),
        }
    }
}

#[async_trait]
impl Actions for Lab {
    fn action_names(&self) -> &'static [&'static str] {
        &["generation", "slow"]
    }

    async fn handle(
        &self,
        action: &str,
        payload: Value,
        _: &CallContext,
    ) -> Result<Value, CallError> {
        match action {
            "generation" => Ok(json!(self.generation)),
            "slow" => {
                let ms = payload.as_u64().unwrap_or(200);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                self.counts
                    .log(format!("slow call done on {}", self.generation));
                Ok(json!(self.generation))
            }
            other => Err(CallError::unknown_action(other, self.action_names())),
        }
    }
}

#[async_trait]
impl Plugin for Lab {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        let events = self.counts.events.clone();
        ctx.events()
            .map_err(PluginError::msg)?
            .subscribe("probe.*", move |_event| {
                let events = events.clone();
                async move {
                    events.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, String>(Flow::Continue)
                }
            })
            .map_err(PluginError::msg)?;
        if ctx.manifest().services().iter().any(|s| s == "scheduler") {
            let jobs = self.counts.jobs.clone();
            ctx.handle::<Scheduler>()
                .map_err(PluginError::msg)?
                .add(
                    "tick",
                    Trigger::every(Duration::from_secs(1)).unwrap(),
                    move |_| {
                        let jobs = jobs.clone();
                        async move {
                            jobs.fetch_add(1, Ordering::SeqCst);
                            Ok(())
                        }
                    },
                )
                .await
                .map_err(PluginError::msg)?;
            let tasks = self.counts.tasks.clone();
            ctx.handle::<Worker>()
                .map_err(PluginError::msg)?
                .register("work", move |_, _: Value| {
                    let tasks = tasks.clone();
                    async move {
                        tasks.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    }
                })
                .map_err(PluginError::msg)?;
        }
        if self.faults.load.lock().unwrap().contains(&self.generation) {
            return Err(PluginError::msg(format!(
                "generation {} refuses to load",
                self.generation
            )));
        }
        Ok(())
    }

    async fn on_start(&self, _: &PluginContext) -> Result<(), PluginError> {
        if self.faults.start.lock().unwrap().contains(&self.generation) {
            return Err(PluginError::msg(format!(
                "generation {} refuses to start",
                self.generation
            )));
        }
        Ok(())
    }

    async fn on_stop(&self, _: &PluginContext) -> Result<(), PluginError> {
        self.counts.stops.fetch_add(1, Ordering::SeqCst);
        self.counts.log(format!("on_stop of {}", self.generation));
        Ok(())
    }

    fn routes(&self, _: &PluginContext) -> Option<Routes> {
        let generation = self.generation;
        let router = Router::new()
            .route(
                "/generation",
                get(move || async move { generation.to_string() }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    "slept"
                }),
            )
            .route(
                "/panic",
                get(move || async move {
                    if generation > 0 {
                        panic!("secret internals in a panic message");
                    }
                    "unreachable"
                }),
            );
        Some(Routes::from_axum(router).endpoint(Method::GET, "/generation"))
    }
}

fn lab_manifest(
    name: &str,
    requires: &[&str],
    edit: impl FnOnce(xcore::ManifestBuilder) -> xcore::ManifestBuilder,
) -> Manifest {
    edit(
        Manifest::builder(name, "1.0.0")
            .services(["scheduler", "worker"])
            .requires(requires.iter().copied())
            .permissions([
                "service:scheduler: schedule",
                "service:worker: execute",
                "events:probe.*: subscribe",
            ]),
    )
    .build()
    .unwrap()
}

struct Bench {
    xcore: Xcore,
    lab: Counts,
    fan: Counts,
    lab_faults: Faults,
}

/// `lab`, and `fan` which requires it, with a scheduler and a worker.
async fn boot(lab_faults: Faults) -> Bench {
    let (lab, fan) = (Counts::default(), Counts::default());
    let xcore = Xcore::builder()
        .without_registered()
        .on_plugin_failure(OnFailure::Continue)
        .stop_timeout(Duration::from_secs(5))
        .service(SchedulerService::new(SchedulerOptions::default()).unwrap())
        .service(WorkerService::new(WorkerOptions::memory()).unwrap())
        .plugin_factory(
            lab_manifest("lab", &[], |m| m),
            Lab::factory(&lab, &lab_faults),
        )
        .plugin_factory(
            lab_manifest("fan", &["lab"], |m| m),
            Lab::factory(&fan, &Faults::default()),
        )
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    Bench {
        xcore,
        lab,
        fan,
        lab_faults,
    }
}

fn web(xcore: &Xcore) -> xcore::web::Web {
    xcore.web().admin_token(TOKEN).build().unwrap()
}

fn auth() -> [(&'static str, &'static str); 1] {
    [("authorization", "Bearer a-long-enough-admin-token")]
}

async fn admin(addr: std::net::SocketAddr, plugin: &str, action: &str) -> (StatusCode, Value) {
    let path = format!("/xcore/plugins/{plugin}/{action}");
    let reply = send(addr, Method::POST, &path, &auth(), "").await;
    (reply.status, reply.json())
}

fn listed_jobs(xcore: &Xcore) -> Vec<String> {
    let mut jobs: Vec<String> = xcore
        .handle::<Scheduler>()
        .unwrap()
        .list_all()
        .into_iter()
        .map(|j| format!("{}:{}", j.plugin.unwrap_or_default(), j.id))
        .collect();
    jobs.sort();
    jobs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_start_and_reload_on_every_adapter() {
    let bench = boot(Faults::default()).await;
    let xcore = &bench.xcore;
    let kernel = EventRecorder::attach(xcore, "plugin.**").unwrap();
    let web = web(xcore);
    let addrs = serve_all(&web).await;
    let first = addrs[0].1;

    for (adapter, addr) in &addrs {
        let reply = send(*addr, Method::GET, "/plugin/lab/generation", &[], "").await;
        assert_eq!(
            (reply.status, &reply.body[..]),
            (StatusCode::OK, &b"1"[..]),
            "{adapter:?}"
        );
    }
    assert_eq!(listed_jobs(xcore), ["fan:tick", "lab:tick"]);

    // The admin endpoints need the token.
    for (adapter, addr) in &addrs {
        let reply = send(*addr, Method::POST, "/xcore/plugins/lab/stop", &[], "").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{adapter:?}");
        let reply = send(*addr, Method::GET, "/xcore/plugins/lab/stop", &auth(), "").await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{adapter:?}");
    }
    assert_eq!(xcore.plugin_state("lab"), Some(PluginState::Running));

    // Stop: the dependent first, then the plugin.
    let (status, body) = admin(first, "lab", "stop").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["stopped"], json!(["fan", "lab"]), "{body}");
    assert_eq!(xcore.plugin_state("lab"), Some(PluginState::Stopped));
    assert_eq!(xcore.plugin_state("fan"), Some(PluginState::Stopped));
    let fan = xcore
        .plugins()
        .into_iter()
        .find(|p| p.name == "fan")
        .unwrap();
    assert!(fan.reason.unwrap().contains("`lab`"));
    assert_eq!(
        (
            bench.lab.stops.load(Ordering::SeqCst),
            bench.fan.stops.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
    let names = kernel.names();
    let stopped: Vec<&String> = names.iter().filter(|n| n.ends_with(".stopped")).collect();
    assert_eq!(stopped, ["plugin.fan.stopped", "plugin.lab.stopped"]);

    // Stopped: routes, calls, events, jobs and tasks all gone, on every adapter.
    for (adapter, addr) in &addrs {
        let reply = send(*addr, Method::GET, "/plugin/lab/generation", &[], "").await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{adapter:?}");
        assert_eq!(reply.json()["code"], "unavailable", "{adapter:?}");
        let (status, body) = admin(*addr, "lab", "stop").await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::CONFLICT, &json!("conflict")),
            "{body}"
        );
        let (status, _) = admin(*addr, "nope", "stop").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{adapter:?}");
    }
    let err = xcore
        .call("lab", "generation", json!(null))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unavailable);
    let emitted = xcore
        .events()
        .emit(&CallContext::host(), "probe.ping", json!({}))
        .await
        .unwrap();
    assert_eq!(emitted.handled(), 0);
    assert!(listed_jobs(xcore).is_empty());
    let worker = xcore.handle::<Worker>().unwrap();
    let queued = worker.send("lab.work", &json!({})).await.unwrap();
    let jobs_before = bench.lab.jobs.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        bench.lab.jobs.load(Ordering::SeqCst),
        jobs_before,
        "a stopped plugin's job fired"
    );
    assert_eq!(worker.status(queued).await.unwrap(), TaskStatus::Queued);
    assert_eq!(bench.lab.events.load(Ordering::SeqCst), 0);

    // Start: a fresh instance, then the dependent, in waves.
    let (status, body) = admin(first, "lab", "start").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["started"], json!(["lab", "fan"]), "{body}");
    for (adapter, addr) in &addrs {
        let reply = send(*addr, Method::GET, "/plugin/lab/generation", &[], "").await;
        assert_eq!(
            (reply.status, &reply.body[..]),
            (StatusCode::OK, &b"2"[..]),
            "{adapter:?}"
        );
        let reply = send(*addr, Method::GET, "/plugin/fan/generation", &[], "").await;
        assert_eq!(
            (reply.status, &reply.body[..]),
            (StatusCode::OK, &b"2"[..]),
            "{adapter:?}"
        );
    }
    assert_eq!(
        xcore.call("lab", "generation", json!(null)).await.unwrap(),
        json!(2)
    );
    let emitted = xcore
        .events()
        .emit(&CallContext::host(), "probe.ping", json!({}))
        .await
        .unwrap();
    assert_eq!(emitted.handled(), 2);
    assert_eq!(listed_jobs(xcore), ["fan:tick", "lab:tick"]);
    // The task queued while it was stopped runs on the new instance.
    let status = worker.wait(queued, Duration::from_secs(5)).await.unwrap();
    assert!(matches!(status, TaskStatus::Succeeded { .. }), "{status:?}");
    assert!(
        kernel
            .wait_for("plugin.fan.started", Duration::from_secs(1))
            .await
            .is_some()
    );

    // Reload: a fresh instance swapped in; the dependent keeps running.
    for (k, (adapter, addr)) in addrs.iter().enumerate() {
        let (status, body) = admin(*addr, "lab", "reload").await;
        assert_eq!(status, StatusCode::OK, "{adapter:?}: {body}");
        assert_eq!(body["result"]["started"], json!(["lab"]));
        let generation = (3 + k).to_string();
        let reply = send(*addr, Method::GET, "/plugin/lab/generation", &[], "").await;
        assert_eq!(
            (reply.status, &reply.body[..]),
            (StatusCode::OK, generation.as_bytes()),
            "{adapter:?}"
        );
    }
    assert!(
        kernel
            .wait_for("plugin.lab.reloaded", Duration::from_secs(1))
            .await
            .is_some()
    );
    assert_eq!(xcore.plugin_state("fan"), Some(PluginState::Running));
    assert_eq!(
        bench.fan.made.load(Ordering::SeqCst),
        2,
        "the dependent was not reloaded"
    );
    assert_eq!(listed_jobs(xcore), ["fan:tick", "lab:tick"]);
    let emitted = xcore
        .events()
        .emit(&CallContext::host(), "probe.ping", json!({}))
        .await
        .unwrap();
    assert_eq!(
        emitted.handled(),
        2,
        "one subscription per running instance, none left over"
    );

    // The listing shows the live state.
    let reply = send(first, Method::GET, "/xcore/plugins", &auth(), "").await;
    let listed = reply.json()["result"].clone();
    assert_eq!(listed[1]["name"], "lab");
    assert_eq!(listed[1]["state"], "running");
    assert_eq!(listed[1]["routes"][0]["path"], "/plugin/lab/generation");
    xcore.shutdown().await;
    let (lab, fan) = (
        bench.lab.stops.load(Ordering::SeqCst),
        bench.fan.stops.load(Ordering::SeqCst),
    );
    assert_eq!((lab, fan), (5, 2), "every instance stopped once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_plugin_is_restarted_with_its_skipped_dependent() {
    let faults = Faults::default();
    faults.load.lock().unwrap().push(1);
    let bench = boot(faults).await;
    let xcore = &bench.xcore;
    assert_eq!(xcore.plugin_state("lab"), Some(PluginState::Failed));
    assert_eq!(xcore.plugin_state("fan"), Some(PluginState::Skipped));
    let err = xcore.start_plugin("fan").await.unwrap_err();
    assert!(
        matches!(err, RuntimeError::DependencyDown { ref dependency, .. } if dependency == "lab"),
        "{err}"
    );

    let report = xcore.restart_plugin("lab").await.unwrap();
    assert_eq!(report.started, ["lab", "fan"]);
    assert_eq!(
        xcore.call("lab", "generation", json!(null)).await.unwrap(),
        json!(2)
    );
    assert_eq!(
        xcore.call("fan", "generation", json!(null)).await.unwrap(),
        json!(1)
    );
    assert_eq!(listed_jobs(xcore), ["fan:tick", "lab:tick"]);

    // A reload whose fresh instance fails leaves the plugin failed; a restart brings it back.
    bench.lab_faults.start.lock().unwrap().push(3);
    let err = xcore.reload_plugin("lab").await.unwrap_err();
    assert!(matches!(err, RuntimeError::Failed { .. }), "{err}");
    assert!(
        err.to_string().contains("generation 3 refuses to start"),
        "{err}"
    );
    assert_eq!(xcore.plugin_state("lab"), Some(PluginState::Failed));
    let err = xcore
        .call("lab", "generation", json!(null))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unavailable);
    assert!(
        err.message().contains("generation 3 refuses to start"),
        "{err}"
    );
    assert_eq!(
        listed_jobs(xcore),
        ["fan:tick"],
        "the failed instance keeps no job"
    );
    let report = xcore.restart_plugin("lab").await.unwrap();
    assert_eq!(report.started, ["lab"]);
    assert_eq!(
        xcore.call("lab", "generation", json!(null)).await.unwrap(),
        json!(4)
    );
    xcore.shutdown().await;
    assert!(matches!(
        xcore.stop_plugin("lab").await.unwrap_err(),
        RuntimeError::NotRunning
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_drains_the_calls_in_flight() {
    let bench = boot(Faults::default()).await;
    let xcore = bench.xcore.clone();
    let slow = tokio::spawn({
        let xcore = xcore.clone();
        async move { xcore.call("fan", "slow", json!(300)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let report = xcore.stop_plugin("fan").await.unwrap();
    assert_eq!(report.stopped, ["fan"]);
    assert_eq!(
        slow.await.unwrap().unwrap(),
        json!(1),
        "the call in flight was not cut"
    );
    let log = bench.fan.log.lock().unwrap().clone();
    assert_eq!(
        log,
        ["slow call done on 1", "on_stop of 1"],
        "on_stop ran after the drain"
    );
    xcore.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_added_as_an_instance_stops_but_does_not_reload() {
    let counts = Counts::default();
    let make = Lab::factory(&counts, &Faults::default());
    let manifest = Manifest::builder("once", "1.0.0")
        .permissions(["events:probe.*: subscribe"])
        .build()
        .unwrap();
    let xcore = Xcore::builder()
        .without_registered()
        .plugin(manifest, make())
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    let err = xcore.reload_plugin("once").await.unwrap_err();
    assert!(matches!(err, RuntimeError::NoFactory { .. }), "{err}");
    assert!(err.to_string().contains("plugin_factory"), "{err}");
    xcore.stop_plugin("once").await.unwrap();
    let err = xcore.start_plugin("once").await.unwrap_err();
    assert!(matches!(err, RuntimeError::NoFactory { .. }), "{err}");
    assert_eq!(xcore.plugin_state("once"), Some(PluginState::Stopped));
    assert!(err.to_string().contains("plugin_factory"), "{err}");
    xcore.shutdown().await;
}

/// The manifest's limits hold for routes as for calls (shared), a route's panic is a 500
/// with an error id and no internals, a route past the manifest's timeout a 504.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_pass_the_gate_on_every_adapter() {
    let counts = Counts::default();
    let manifest = |name: &str, edit: fn(xcore::ManifestBuilder) -> xcore::ManifestBuilder| {
        edit(Manifest::builder(name, "1.0.0").permissions(["events:probe.*: subscribe"]))
            .build()
            .unwrap()
    };
    let xcore = Xcore::builder()
        .without_registered()
        .plugin_factory(
            manifest("single", |m| m.max_concurrency(1)),
            Lab::factory(&counts, &Faults::default()),
        )
        .plugin_factory(
            manifest("rated", |m| m.rate_limit("2/60s")),
            Lab::factory(&counts, &Faults::default()),
        )
        .plugin_factory(
            manifest("hasty", |m| m.timeout("100ms")),
            Lab::factory(&counts, &Faults::default()),
        )
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    let web = web(&xcore);
    for adapter in [Adapter::Axum, Adapter::Hyper, Adapter::Actix] {
        let addr = serve(adapter, web.clone()).await;
        // Concurrency: a slow request holds the only permit.
        let held =
            tokio::spawn(
                async move { send(addr, Method::GET, "/plugin/single/slow", &[], "").await },
            );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let reply = send(addr, Method::GET, "/plugin/single/generation", &[], "").await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{adapter:?}");
        assert_eq!(reply.json()["code"], "overloaded", "{adapter:?}");
        assert_eq!(held.await.unwrap().status, StatusCode::OK, "{adapter:?}");
        // A panic: 500, an error id, nothing of the message.
        let reply = send(addr, Method::GET, "/plugin/single/panic", &[], "").await;
        assert_eq!(
            reply.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{adapter:?}"
        );
        let body = String::from_utf8_lossy(&reply.body).to_string();
        assert!(!body.contains("secret"), "{adapter:?}: {body}");
        assert_eq!(reply.json()["code"], "panicked", "{adapter:?}: {body}");
        assert!(
            reply.json()["details"]["error_id"].is_string(),
            "{adapter:?}: {body}"
        );
        // The plugin serves the next request.
        let reply = send(addr, Method::GET, "/plugin/single/generation", &[], "").await;
        assert_eq!(reply.status, StatusCode::OK, "{adapter:?}");
        // The manifest's timeout.
        let reply = send(addr, Method::GET, "/plugin/hasty/slow", &[], "").await;
        assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT, "{adapter:?}");
        assert_eq!(reply.json()["code"], "timeout", "{adapter:?}");
    }
    // The rate limit is shared by calls and routes: two calls, then the route is refused.
    let addr = serve(Adapter::Axum, web.clone()).await;
    xcore
        .call("rated", "generation", json!(null))
        .await
        .unwrap();
    xcore
        .call("rated", "generation", json!(null))
        .await
        .unwrap();
    let reply = send(addr, Method::GET, "/plugin/rated/generation", &[], "").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.json()["code"], "rate_limited");
    xcore.shutdown().await;
}

/// A client issuing calls and one issuing HTTP requests continuously while the plugin is
/// reloaded 100 times: no call fails, no request gets a 5xx, and both saw the swaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_reloads_under_load_fail_nothing() {
    let counts = Counts::default();
    let manifest = Manifest::builder("lab", "1.0.0")
        .permissions(["events:probe.*: subscribe"])
        .build()
        .unwrap();
    let xcore = Xcore::builder()
        .without_registered()
        .plugin_factory(manifest, Lab::factory(&counts, &Faults::default()))
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    let addr = serve(Adapter::Axum, web(&xcore)).await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let caller = tokio::spawn({
        let (xcore, done) = (xcore.clone(), done.clone());
        async move {
            let (mut ok, mut failed, mut seen) =
                (0u32, Vec::new(), std::collections::BTreeSet::new());
            while !done.load(Ordering::SeqCst) {
                match xcore.call("lab", "generation", json!(null)).await {
                    Ok(generation) => {
                        ok += 1;
                        seen.insert(generation.as_u64().unwrap());
                    }
                    Err(err) => failed.push(err.to_string()),
                }
            }
            (ok, failed, seen.len())
        }
    });
    let requester = tokio::spawn({
        let done = done.clone();
        async move {
            let (mut ok, mut failed, mut seen) =
                (0u32, Vec::new(), std::collections::BTreeSet::new());
            while !done.load(Ordering::SeqCst) {
                let reply = send(addr, Method::GET, "/plugin/lab/generation", &[], "").await;
                if reply.status == StatusCode::OK {
                    ok += 1;
                    seen.insert(reply.body.clone());
                } else {
                    failed.push(format!(
                        "{}: {}",
                        reply.status,
                        String::from_utf8_lossy(&reply.body)
                    ));
                }
            }
            (ok, failed, seen.len())
        }
    });
    for _ in 0..100 {
        xcore.reload_plugin("lab").await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    done.store(true, Ordering::SeqCst);
    let (calls, call_failures, call_generations) = caller.await.unwrap();
    let (requests, request_failures, request_generations) = requester.await.unwrap();
    assert!(
        call_failures.is_empty(),
        "{} failed calls: {:?}",
        call_failures.len(),
        &call_failures[..call_failures.len().min(3)]
    );
    assert!(
        request_failures.is_empty(),
        "{} failed requests: {:?}",
        request_failures.len(),
        &request_failures[..request_failures.len().min(3)]
    );
    assert_eq!(counts.made.load(Ordering::SeqCst), 101);
    assert_eq!(counts.stops.load(Ordering::SeqCst), 100);
    // Both clients kept going through the swaps.
    assert!(
        calls > 100 && requests > 100,
        "{calls} calls, {requests} requests"
    );
    assert!(
        call_generations > 10 && request_generations > 10,
        "{call_generations} / {request_generations} generations seen"
    );
    xcore.shutdown().await;
}
