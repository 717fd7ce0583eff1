//! A plugin that fails keeps nothing: what it registered in its hooks (an event
//! subscription, a scheduler job firing every second, a task handler) is withdrawn when it
//! fails in `on_load` (an error, a panic), in `on_start` (an error, the timeout), or when it is
//! skipped at start after loading (a dependency failed to start), exactly as when it stops.
//! A plugin doing the same and starting is the control: its handler, job and task handler do
//! act, so every assertion here can fail.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};
use xcore::services::{scheduler::Scheduler, worker::Worker};
use xcore::{
    Actions, BootError, CallContext, CallError, Manifest, NodeState, OnFailure, Plugin,
    PluginContext, PluginError, Xcore, async_trait,
    events::Flow,
    services::{
        scheduler::{SchedulerOptions, SchedulerService, Trigger},
        worker::{TaskStatus, WorkerOptions, WorkerService},
    },
};

/// Where a plugin fails.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FailAt {
    Never,
    LoadError,
    LoadPanic,
    StartError,
    StartTimeout,
}

/// What a plugin's registrations did.
#[derive(Clone, Default)]
struct Counts {
    events: Arc<AtomicU32>,
    jobs: Arc<AtomicU32>,
    tasks: Arc<AtomicU32>,
}

impl Counts {
    fn get(&self) -> (u32, u32, u32) {
        (
            self.events.load(Ordering::SeqCst),
            self.jobs.load(Ordering::SeqCst),
            self.tasks.load(Ordering::SeqCst),
        )
    }
}

/// In `on_load`: subscribes to `probe.*`, schedules `tick` every second, registers the task
/// handler `work`; then fails where `fail` says.
struct Registrar {
    fail: FailAt,
    counts: Counts,
}

#[async_trait]
impl Actions for Registrar {
    fn action_names(&self) -> &'static [&'static str] {
        &[]
    }

    async fn handle(&self, action: &str, _: Value, _: &CallContext) -> Result<Value, CallError> {
        Err(CallError::unknown_action(action, &[]))
    }
}

#[async_trait]
impl Plugin for Registrar {
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
        match self.fail {
            FailAt::LoadError => Err(PluginError::msg("refusing to load")),
            FailAt::LoadPanic => panic!("exploding in on_load"),
            _ => Ok(()),
        }
    }

    async fn on_start(&self, _ctx: &PluginContext) -> Result<(), PluginError> {
        match self.fail {
            FailAt::StartError => Err(PluginError::msg("refusing to start")),
            FailAt::StartTimeout => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn manifest(name: &str, requires: &[&str]) -> Manifest {
    Manifest::builder(name, "1.0.0")
        .services(["scheduler", "worker"])
        .requires(requires.iter().copied())
        .permissions([
            "service:scheduler: schedule",
            "service:worker: execute",
            "events:probe.*: subscribe",
        ])
        .build()
        .unwrap()
}

/// Boots `failing` (failing at `fail`), `dependent` (which requires it) and `steady` (the
/// control), then checks for two seconds that only `steady`'s registrations act.
async fn failing_plugin_keeps_nothing(fail: FailAt) {
    let (failing, dependent, steady) = (Counts::default(), Counts::default(), Counts::default());
    let xcore = Xcore::builder()
        .without_registered()
        .on_plugin_failure(OnFailure::Continue)
        .start_timeout(Duration::from_millis(300))
        .service(SchedulerService::new(SchedulerOptions::default()).unwrap())
        .service(WorkerService::new(WorkerOptions::memory()).unwrap())
        .plugin(
            manifest("failing", &[]),
            Registrar {
                fail,
                counts: failing.clone(),
            },
        )
        .plugin(
            manifest("dependent", &["failing"]),
            Registrar {
                fail: FailAt::Never,
                counts: dependent.clone(),
            },
        )
        .plugin(
            manifest("steady", &[]),
            Registrar {
                fail: FailAt::Never,
                counts: steady.clone(),
            },
        )
        .build()
        .unwrap();
    let report = xcore.boot().await.unwrap();
    assert_eq!(report.plugin("failing").unwrap().state(), NodeState::Failed);
    let dependent_state = report.plugin("dependent").unwrap().state();
    assert_eq!(dependent_state, NodeState::Skipped, "{fail:?}");
    assert_eq!(report.plugin("steady").unwrap().state(), NodeState::Started);
    // `boot()` was `Ok` (plugins fail alone by default); the report check is not.
    let err = report.ensure_all_started().unwrap_err();
    let BootError::NotAllStarted { nodes } = &err else {
        panic!("{err:?}");
    };
    let names: Vec<String> = nodes.iter().map(|(n, _, _)| n.name().to_owned()).collect();
    assert_eq!(names, ["failing", "dependent"], "{err}");

    // Events: only the control's handler runs.
    let emitted = xcore
        .events()
        .emit(&CallContext::host(), "probe.ping", json!({}))
        .await
        .unwrap();
    assert_eq!(emitted.handled(), 1, "{fail:?}: {emitted:?}");

    // Jobs: only the control's is listed.
    let scheduler = xcore.handle::<Scheduler>().unwrap();
    let listed: Vec<String> = scheduler
        .list_all()
        .into_iter()
        .map(|j| format!("{}:{}", j.plugin.unwrap_or_default(), j.id))
        .collect();
    assert_eq!(listed, ["steady:tick"], "{fail:?}");
    assert_eq!(scheduler.stats().pending_firings, 1, "{fail:?}");

    // Tasks: the control's runs; the failed plugin's stays queued, no handler left to run it.
    let worker = xcore.handle::<Worker>().unwrap();
    let ran = worker.send("steady.work", &json!({})).await.unwrap();
    let orphan = worker.send("failing.work", &json!({})).await.unwrap();
    let orphan_too = worker.send("dependent.work", &json!({})).await.unwrap();
    let status = worker.wait(ran, Duration::from_secs(5)).await.unwrap();
    assert!(matches!(status, TaskStatus::Succeeded { .. }), "{status:?}");

    // Two seconds of an every-second job.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (events, jobs, tasks) = steady.get();
    assert_eq!((events, tasks), (1, 1));
    assert!(jobs >= 1, "the control's job never fired");
    assert_eq!(
        failing.get(),
        (0, 0, 0),
        "{fail:?}: the failed plugin acted"
    );
    assert_eq!(
        dependent.get(),
        (0, 0, 0),
        "{fail:?}: the skipped plugin acted"
    );
    for id in [orphan, orphan_too] {
        assert_eq!(worker.status(id).await.unwrap(), TaskStatus::Queued);
    }
    xcore.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_failing_in_on_load_keeps_nothing() {
    failing_plugin_keeps_nothing(FailAt::LoadError).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_panicking_in_on_load_keeps_nothing() {
    failing_plugin_keeps_nothing(FailAt::LoadPanic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_failing_in_on_start_keeps_nothing_nor_does_its_skipped_dependent() {
    failing_plugin_keeps_nothing(FailAt::StartError).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_timing_out_in_on_start_keeps_nothing() {
    failing_plugin_keeps_nothing(FailAt::StartTimeout).await;
}
