//! Jobs declared with `#[job(...)]` on the actions of `#[plugin]` plugins, run by the scheduler
//! service, in real time:
//!
//! - a cron job firing every second and an interval job of 1 s both fire, as the host with no
//!   payload, show in the plugin's own `ctx.handle::<Scheduler>()?.list()`, and stop with the plugin;
//! - a plugin declaring jobs without `services = ["scheduler"]` or without the grant fails to
//!   start, with a reason naming what to add, the refusal is audited, and nothing of it runs;
//! - an expression or a zone only the scheduler can check fails the plugin's start, naming the
//!   job;
//! - a job whose action fails is counted as failed, keeps its schedule, and the other jobs go on.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use serde::Serialize;
use serde_json::Value;
use xcore::services::scheduler::Scheduler;
use xcore::{
    HealthStatus, NodeState,
    prelude::*,
    services::scheduler::{DeclaredJob, JobInfo, RunOutcome, SchedulerOptions, SchedulerService},
};
use xcore_testkit::TestApp;

/// Boots the named registered plugins with a scheduler service.
async fn boot(plugins: &[&str]) -> TestApp {
    TestApp::builder()
        .plugins(plugins.iter().copied())
        .service(SchedulerService::new(SchedulerOptions::default()).unwrap())
        .boot()
        .await
        .unwrap()
}

/// A job as a plugin sees it in its own list.
#[derive(Debug, Serialize)]
struct Listed {
    id: String,
    plugin: Option<String>,
    tenant: String,
    trigger: String,
    runs: u64,
    failures: u64,
    last_failed: bool,
}

impl From<JobInfo> for Listed {
    fn from(job: JobInfo) -> Self {
        Self {
            last_failed: matches!(job.last_outcome, Some(RunOutcome::Failed { .. })),
            id: job.id,
            plugin: job.plugin,
            tenant: job.tenant,
            trigger: job.trigger,
            runs: job.runs,
            failures: job.failures,
        }
    }
}

/// The plugin's own jobs, through its context.
fn own_jobs(ctx: Option<&PluginContext>) -> Result<Vec<Listed>, CallError> {
    let ctx = ctx.ok_or_else(|| CallError::internal("not loaded"))?;
    Ok(ctx
        .handle::<Scheduler>()?
        .list()
        .into_iter()
        .map(Listed::from)
        .collect())
}

/// Polls `done` every 50 ms until it holds or `limit` passes; whether it held.
async fn eventually(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Jobs that fire

static TICKS: AtomicU32 = AtomicU32::new(0);
static BEATS: AtomicU32 = AtomicU32::new(0);
/// Calls of `tick` not made as the host, with a payload, or for another tenant.
static ODD_CALLS: AtomicU32 = AtomicU32::new(0);

#[derive(Default)]
#[plugin(
    name = "jobs_clock",
    services = ["scheduler"],
    permissions = ["service:scheduler: schedule"],
)]
struct Clock {
    ctx: Option<PluginContext>,
}

#[async_trait]
impl Plugin for Clock {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        self.ctx = Some(ctx.clone());
        Ok(())
    }
}

#[actions]
impl Clock {
    /// Every second, by cron (with seconds).
    #[job(cron = "* * * * * *")]
    async fn tick(&self, cx: &CallContext) -> Result<(), CallError> {
        if cx.caller().plugin_name().is_some() || cx.tenant().as_str() != "default" {
            ODD_CALLS.fetch_add(1, Ordering::SeqCst);
        }
        TICKS.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Every second, by interval, under its own id and its own action name.
    #[action(name = "heartbeat")]
    #[job(every = "1s", id = "beat")]
    fn beat(&self) -> Result<u32, CallError> {
        Ok(BEATS.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// The plugin's own view of its jobs.
    #[action]
    fn jobs(&self) -> Result<Vec<Listed>, CallError> {
        own_jobs(self.ctx.as_ref())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_jobs_fire_show_in_the_plugins_list_and_stop_with_it() {
    // What the macro declared.
    let declarations = Clock::default().declarations();
    let declared = declarations.get::<DeclaredJob>();
    assert_eq!(declared.len(), 2);
    assert_eq!(
        (declared[0].id(), declared[0].action(), declared[0].cron()),
        ("tick", "tick", Some("* * * * * *"))
    );
    assert_eq!(
        (declared[1].id(), declared[1].action(), declared[1].every()),
        ("beat", "heartbeat", Some("1s"))
    );
    assert_eq!(
        Clock::default().action_names(),
        ["tick", "heartbeat", "jobs"]
    );

    let app = boot(&["jobs_clock"]).await;
    assert_eq!(
        app.report().plugin("jobs_clock").unwrap().state(),
        NodeState::Started
    );
    let fired = eventually(Duration::from_millis(2500), || {
        TICKS.load(Ordering::SeqCst) >= 1 && BEATS.load(Ordering::SeqCst) >= 1
    })
    .await;
    assert!(
        fired,
        "within 2.5 s: {} ticks, {} beats",
        TICKS.load(Ordering::SeqCst),
        BEATS.load(Ordering::SeqCst)
    );
    // Both keep firing, once a second.
    assert!(
        eventually(Duration::from_millis(2500), || {
            TICKS.load(Ordering::SeqCst) >= 2 && BEATS.load(Ordering::SeqCst) >= 2
        })
        .await
    );
    assert_eq!(
        ODD_CALLS.load(Ordering::SeqCst),
        0,
        "called as the host, tenant default"
    );

    // In the plugin's own list, under its namespace and the tenant `default`.
    let listed = app.call("jobs_clock", "jobs", Value::Null).await.unwrap();
    let listed = listed.as_array().unwrap();
    let ids: Vec<_> = listed.iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["beat", "tick"], "{listed:?}");
    for job in listed {
        assert_eq!(job["plugin"], "jobs_clock");
        assert_eq!(job["tenant"], "default");
        assert!(job["runs"].as_u64().unwrap() >= 1, "{job}");
        assert_eq!(job["failures"], 0, "{job}");
    }
    assert_eq!(listed[0]["trigger"], "every 1s");
    assert_eq!(listed[1]["trigger"], "cron \"* * * * * *\" in UTC");
    // The host sees them too, as the plugin's.
    let all = app.xcore().handle::<Scheduler>().unwrap().list_all();
    assert_eq!(all.len(), 2);
    assert!(
        all.iter()
            .all(|j| j.plugin.as_deref() == Some("jobs_clock"))
    );

    // After shutdown, nothing fires any more.
    assert!(app.shutdown().await.is_clean());
    let (ticks, beats) = (TICKS.load(Ordering::SeqCst), BEATS.load(Ordering::SeqCst));
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        (TICKS.load(Ordering::SeqCst), BEATS.load(Ordering::SeqCst)),
        (ticks, beats)
    );
}

// ---------------------------------------------------------------------------------------------
// Plugins that may not declare jobs

static UNGRANTED_RUNS: AtomicU32 = AtomicU32::new(0);
static UNDECLARED_RUNS: AtomicU32 = AtomicU32::new(0);

/// Declares the service, lacks the grant.
#[derive(Default)]
#[plugin(name = "jobs_ungranted", services = ["scheduler"])]
struct Ungranted;

#[async_trait]
impl Plugin for Ungranted {}

#[actions]
impl Ungranted {
    #[job(cron = "* * * * * *")]
    fn tick(&self) -> Result<(), CallError> {
        UNGRANTED_RUNS.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    #[action]
    fn ping(&self) -> Result<&'static str, CallError> {
        Ok("pong")
    }
}

/// Holds the grant, does not declare the service (nor depends on it).
#[derive(Default)]
#[plugin(name = "jobs_undeclared", permissions = ["service:scheduler: schedule"])]
struct Undeclared;

#[async_trait]
impl Plugin for Undeclared {}

#[actions]
impl Undeclared {
    #[job(every = "1s", id = "beat")]
    async fn tick(&self) -> Result<(), CallError> {
        UNDECLARED_RUNS.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_without_the_service_or_the_grant_fails_to_start() {
    let app = boot(&["jobs_ungranted", "jobs_undeclared"]).await;
    let report = app.report();

    let ungranted = report.plugin("jobs_ungranted").unwrap();
    assert_eq!(ungranted.state(), NodeState::Failed);
    let reason = ungranted.reason().unwrap();
    println!("jobs_ungranted: {reason}");
    assert!(
        reason.contains("service `scheduler`")
            && reason.contains("plugin `jobs_ungranted` declares jobs with `#[job]` (`tick`)")
            && reason.contains(r#"`permissions = ["service:scheduler: schedule"]`"#)
            && !reason.contains("`services = "),
        "{reason}"
    );

    let undeclared = report.plugin("jobs_undeclared").unwrap();
    assert_eq!(undeclared.state(), NodeState::Failed);
    let reason = undeclared.reason().unwrap();
    println!("jobs_undeclared: {reason}");
    assert!(
        reason.contains("(`beat`)")
            && reason.contains(r#"`services = ["scheduler"]`"#)
            && !reason.contains("`permissions = "),
        "{reason}"
    );

    // The refused grant is audited.
    let denials = app.xcore().audit().denials(Some("jobs_ungranted"), 10);
    assert!(
        denials
            .iter()
            .any(|d| d.resource == "service:scheduler" && d.action == "schedule"),
        "{denials:?}"
    );

    // They were stopped again: not callable, and none of their jobs runs.
    let err = app
        .call("jobs_ungranted", "ping", Value::Null)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unavailable, "{err:?}");
    assert!(
        err.message().contains("is not running (failed"),
        "{}",
        err.message()
    );
    let all = app.xcore().handle::<Scheduler>().unwrap().list_all();
    assert!(all.is_empty(), "{all:?}");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(UNGRANTED_RUNS.load(Ordering::SeqCst), 0);
    assert_eq!(UNDECLARED_RUNS.load(Ordering::SeqCst), 0);
    app.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Schedules only the scheduler can check

#[derive(Default)]
#[plugin(
    name = "jobs_bad_field",
    services = ["scheduler"],
    permissions = ["service:scheduler: schedule"],
)]
struct BadField;

#[async_trait]
impl Plugin for BadField {}

#[actions]
impl BadField {
    #[job(every = "1h")]
    fn fine(&self) -> Result<(), CallError> {
        Ok(())
    }

    /// Five fields, as the macro checks, but no minute 61.
    #[job(cron = "61 * * * *", id = "nightly")]
    fn run(&self) -> Result<(), CallError> {
        Ok(())
    }
}

#[derive(Default)]
#[plugin(
    name = "jobs_bad_zone",
    services = ["scheduler"],
    permissions = ["service:scheduler: schedule"],
)]
struct BadZone;

#[async_trait]
impl Plugin for BadZone {}

#[actions]
impl BadZone {
    #[job(cron = "0 9 * * *", timezone = "Europe/Pariss")]
    fn morning(&self) -> Result<(), CallError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_expression_or_zone_fails_the_start_naming_the_job() {
    let app = boot(&["jobs_bad_field", "jobs_bad_zone"]).await;
    let field = app.report().plugin("jobs_bad_field").unwrap();
    assert_eq!(field.state(), NodeState::Failed);
    let reason = field.reason().unwrap();
    println!("jobs_bad_field: {reason}");
    assert!(
        reason.contains("the job `nightly` of plugin `jobs_bad_field`")
            && reason.contains("invalid cron expression `61 * * * *`"),
        "{reason}"
    );
    let zone = app.report().plugin("jobs_bad_zone").unwrap();
    assert_eq!(zone.state(), NodeState::Failed);
    let reason = zone.reason().unwrap();
    println!("jobs_bad_zone: {reason}");
    assert!(
        reason.contains("the job `morning` of plugin `jobs_bad_zone`")
            && reason.contains("unknown time zone `Europe/Pariss`"),
        "{reason}"
    );
    // Nothing of theirs is registered, not even the valid job.
    assert!(
        app.xcore()
            .handle::<Scheduler>()
            .unwrap()
            .list_all()
            .is_empty()
    );
    app.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Failing jobs

static FAILURES: AtomicU32 = AtomicU32::new(0);
static SUCCESSES: AtomicU32 = AtomicU32::new(0);

#[derive(Default)]
#[plugin(
    name = "jobs_flaky",
    services = ["scheduler"],
    permissions = ["service:scheduler: schedule"],
)]
struct Flaky {
    ctx: Option<PluginContext>,
}

#[async_trait]
impl Plugin for Flaky {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        self.ctx = Some(ctx.clone());
        Ok(())
    }
}

#[actions]
impl Flaky {
    #[job(every = "1s", id = "broken")]
    async fn fail(&self) -> Result<(), CallError> {
        FAILURES.fetch_add(1, Ordering::SeqCst);
        Err(CallError::new(ErrorCode::Unavailable, "the disk is full"))
    }

    #[job(cron = "* * * * * *")]
    async fn fine(&self) -> Result<(), CallError> {
        SUCCESSES.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    #[action]
    fn jobs(&self) -> Result<Vec<Listed>, CallError> {
        own_jobs(self.ctx.as_ref())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_is_counted_and_the_scheduler_goes_on() {
    let app = boot(&["jobs_flaky"]).await;
    assert!(
        eventually(Duration::from_millis(4000), || {
            FAILURES.load(Ordering::SeqCst) >= 2 && SUCCESSES.load(Ordering::SeqCst) >= 2
        })
        .await,
        "{} failures, {} successes",
        FAILURES.load(Ordering::SeqCst),
        SUCCESSES.load(Ordering::SeqCst)
    );
    let listed = app.call("jobs_flaky", "jobs", Value::Null).await.unwrap();
    let listed = listed.as_array().unwrap();
    let job = |id: &str| listed.iter().find(|j| j["id"] == id).unwrap().clone();
    let broken = job("broken");
    assert!(broken["failures"].as_u64().unwrap() >= 2, "{broken}");
    assert_eq!(broken["failures"], broken["runs"], "{broken}");
    assert_eq!(broken["last_failed"], true, "{broken}");
    let fine = job("fine");
    assert!(fine["runs"].as_u64().unwrap() >= 2, "{fine}");
    assert_eq!(fine["failures"], 0, "{fine}");
    // The plugin itself still serves calls, and the scheduler is healthy.
    let health = app.xcore().health().await;
    let line = health
        .nodes()
        .iter()
        .find(|n| n.node().name() == "scheduler")
        .unwrap();
    assert_eq!(line.health().status(), HealthStatus::Healthy, "{line:?}");
    app.shutdown().await;
}
