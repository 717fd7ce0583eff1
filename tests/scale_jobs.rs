//! Shared job definitions: a job shared on one instance is stored in the lock's server
//! (Postgres or Redis) and applied on every instance; each firing runs once cluster-wide;
//! pause, resume and unshare on any instance apply everywhere; an instance started later
//! picks the job up; a Redis outage under the lock and the store skips firings (never runs
//! one twice), degrades health, and recovers without a restart.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use xcore::{
    CallContext, CallError, HealthStatus, Manifest, NodeId, PluginContext, TenantId,
    services::scheduler::{
        LockOptions, Scheduler, SchedulerError, SchedulerOptions, SchedulerService, SharedJob,
        SharedJobsOptions, TriggerError, chrono::Utc,
    },
};
use xcore_testkit::{PostgresServer, RedisServer, TestApp};

/// What the `ticker`s of a test's instances share with it: every run of `ticker.tick` (the
/// second it ran in, the instance that ran it), and each instance's plugin context.
type Runs = Arc<Probe>;

#[derive(Default)]
struct Probe {
    runs: Mutex<Vec<(i64, usize)>>,
    contexts: Mutex<BTreeMap<usize, PluginContext>>,
}

impl Probe {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(i64, usize)>> {
        self.runs.lock().unwrap()
    }

    /// The scheduler handle of instance `i`'s `ticker`.
    fn ticker(&self, i: usize) -> Scheduler {
        self.contexts.lock().unwrap()[&i]
            .handle::<Scheduler>()
            .unwrap()
    }
}

/// `ticker`: its action `tick` notes the second it runs in, and its instance.
struct Ticker {
    instance: usize,
    runs: Runs,
}

#[xcore::async_trait]
impl xcore::Actions for Ticker {
    async fn handle(
        &self,
        action: &str,
        _: serde_json::Value,
        _: &CallContext,
    ) -> Result<serde_json::Value, CallError> {
        if action != "tick" {
            return Err(CallError::unknown_action(action, &["tick"]));
        }
        // A firing is never early, and starts within milliseconds of its instant: the
        // second it runs in is the second it was planned for.
        let second = Utc::now().timestamp();
        self.runs.lock().push((second, self.instance));
        Ok(serde_json::Value::Null)
    }
}

#[xcore::async_trait]
impl xcore::Plugin for Ticker {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), xcore::PluginError> {
        self.runs
            .contexts
            .lock()
            .unwrap()
            .insert(self.instance, ctx.clone());
        Ok(())
    }
}

/// Instance `instance`: a scheduler locked on `lock`, and the `ticker` plugin.
async fn instance(
    lock: &LockOptions,
    shared: &SharedJobsOptions,
    instance: usize,
    runs: &Runs,
) -> TestApp {
    let options = SchedulerOptions {
        lock: Some(lock.clone()),
        shared: shared.clone(),
        shutdown_timeout: Duration::from_secs(1),
        ..SchedulerOptions::default()
    };
    let app = TestApp::builder()
        .service(SchedulerService::new(options).unwrap())
        .plugin(
            Manifest::builder("ticker", "1.0.0")
                .services(["scheduler"])
                .permissions(["service:scheduler: schedule"])
                .build()
                .unwrap(),
            Ticker {
                instance,
                runs: runs.clone(),
            },
        )
        .boot()
        .await
        .unwrap();
    // The scheduler learns its Xcore (shared jobs call plugins through it).
    app.xcore().handle::<Scheduler>().unwrap();
    app
}

fn host(app: &TestApp) -> Scheduler {
    app.xcore().handle::<Scheduler>().unwrap()
}

/// Whether `app` has the shared job `tick`, and whether it is paused.
fn tick_state(app: &TestApp) -> Option<bool> {
    host(app)
        .list()
        .into_iter()
        .find(|j| j.id == "tick")
        .map(|j| j.paused)
}

/// Waits (at most `limit`) until every app's `tick_state` is `want`; panics otherwise.
async fn converge(apps: &[&TestApp], want: Option<bool>, limit: Duration) -> Duration {
    let start = tokio::time::Instant::now();
    loop {
        if apps.iter().all(|a| tick_state(a) == want) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "not every instance shows tick = {want:?} within {limit:?}: {:?}",
            apps.iter().map(|a| tick_state(a)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs per second.
fn per_second(runs: &Runs) -> BTreeMap<i64, Vec<usize>> {
    let mut seconds: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (second, instance) in runs.lock().iter() {
        seconds.entry(*second).or_default().push(*instance);
    }
    seconds
}

/// The acceptance scenario, on `lock` (Postgres or Redis).
async fn shared_job_scenario(lock: LockOptions) {
    // The notification path applies changes within milliseconds; the resync (2 s here)
    // is the bound when a notification is missed.
    let shared = SharedJobsOptions {
        resync: Duration::from_secs(2),
        ..SharedJobsOptions::default()
    };
    let runs = Runs::default();
    let mut apps = Vec::new();
    for i in 0..3 {
        apps.push(instance(&lock, &shared, i, &runs).await);
    }

    // Shared on instance 1: applied at once there, on the others through the notification.
    host(&apps[0])
        .share(
            "tick",
            SharedJob::every(Duration::from_secs(1), "tick").plugin("ticker"),
        )
        .await
        .unwrap();
    let shared_at = Utc::now().timestamp();
    assert_eq!(tick_state(&apps[0]), Some(false));
    let delay = converge(&[&apps[1], &apps[2]], Some(false), Duration::from_secs(1)).await;
    println!("shared: applied everywhere within {delay:?}");
    let info = host(&apps[1]).get("tick").unwrap();
    assert_eq!(info.trigger, "every 1s");
    assert!(info.plugin.is_none(), "a host job");

    // Five seconds on three instances, then instance 1 stops: the two others keep firing it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    apps.remove(0).shutdown().await;
    let stopped_at = Utc::now().timestamp();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ended_at = Utc::now().timestamp();
    let seconds = per_second(&runs);
    println!("runs per second: {seconds:?}");
    let twice: Vec<_> = seconds.iter().filter(|(_, who)| who.len() > 1).collect();
    assert!(twice.is_empty(), "firings run more than once: {twice:?}");
    let missing: Vec<i64> = (shared_at + 1..ended_at)
        .filter(|s| !seconds.contains_key(s))
        .collect();
    assert!(missing.is_empty(), "firings missing: {missing:?}");
    let after_stop: Vec<usize> = seconds
        .range(stopped_at + 1..)
        .flat_map(|(_, who)| who.clone())
        .collect();
    assert!(after_stop.len() >= 3, "{seconds:?}");
    assert!(after_stop.iter().all(|i| *i != 0), "{seconds:?}");

    // Paused on instance 2: paused everywhere within the notification delay; no firing
    // anywhere after that.
    host(&apps[0]).pause_shared("tick").await.unwrap();
    converge(
        &apps.iter().collect::<Vec<_>>(),
        Some(true),
        Duration::from_secs(1),
    )
    .await;
    // A firing claimed just before the pause may still be running.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = runs.lock().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(runs.lock().len(), before, "a paused job fired");

    // An instance started now picks the job up, paused, from the store (its first sync,
    // once its plugin has started).
    apps.push(instance(&lock, &shared, 3, &runs).await);
    let delay = converge(&[&apps[2]], Some(true), shared.resync).await;
    println!("a new instance applied it within {delay:?} of its boot");

    // Resumed (on instance 3): firing again, once per firing.
    host(&apps[1]).resume_shared("tick").await.unwrap();
    converge(
        &apps.iter().collect::<Vec<_>>(),
        Some(false),
        Duration::from_secs(1),
    )
    .await;
    let resumed_at = Utc::now().timestamp();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let seconds = per_second(&runs);
    let resumed: Vec<_> = seconds.range(resumed_at + 1..).collect();
    assert!(resumed.len() >= 3, "{seconds:?}");
    assert!(resumed.iter().all(|(_, who)| who.len() == 1), "{seconds:?}");

    // Unshared on instance 3: gone everywhere, nothing fires after.
    host(&apps[1]).unshare("tick").await.unwrap();
    converge(
        &apps.iter().collect::<Vec<_>>(),
        None,
        Duration::from_secs(1),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = runs.lock().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(runs.lock().len(), before, "an unshared job fired");
    // Unsharing again: it is unknown.
    assert!(matches!(
        host(&apps[0]).unshare("tick").await,
        Err(SchedulerError::UnknownJob { .. })
    ));
    for app in apps {
        let health = app.xcore().health().await;
        assert_eq!(health.status(), HealthStatus::Healthy, "{health:?}");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_shared_on_one_instance_runs_once_per_firing_on_three_postgres() {
    let Ok(server) = PostgresServer::start().await else {
        eprintln!("no Postgres: skipped");
        return;
    };
    let url = server.database().await.unwrap();
    shared_job_scenario(LockOptions {
        prefix: "scale_jobs".into(),
        ttl: Duration::from_secs(30),
        ..LockOptions::new(url)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_shared_on_one_instance_runs_once_per_firing_on_three_redis() {
    let Ok(redis) = RedisServer::start_local().await else {
        eprintln!("no Redis: skipped");
        return;
    };
    shared_job_scenario(LockOptions {
        prefix: "scale_jobs".into(),
        ttl: Duration::from_secs(30),
        ..LockOptions::new(redis.url())
    })
    .await;
}

/// Definitions are checked before anything is stored, and each owner's count is bounded
/// (here 2): a bad cron expression, a payload over the bound, a third job are refused with
/// their typed errors, and no instance ever sees them; replacing a job at the bound works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_definitions_are_checked_and_bounded_before_they_are_stored() {
    let Ok(server) = PostgresServer::start().await else {
        eprintln!("no Postgres: skipped");
        return;
    };
    let url = server.database().await.unwrap();
    let lock = LockOptions {
        prefix: "scale_jobs_bounds".into(),
        ..LockOptions::new(url)
    };
    let shared = SharedJobsOptions {
        max_per_owner: 2,
        max_payload: 64,
        ..SharedJobsOptions::default()
    };
    let runs = Runs::default();
    let one = instance(&lock, &shared, 0, &runs).await;
    let two = instance(&lock, &shared, 1, &runs).await;
    let job = || SharedJob::cron("0 3 * * *", "tick").plugin("ticker");
    let s = host(&one);
    assert!(matches!(
        s.share(
            "bad",
            SharedJob::cron("61 * * * *", "tick").plugin("ticker")
        )
        .await,
        Err(SchedulerError::Trigger(TriggerError::InvalidCron { .. }))
    ));
    // At the payload bound (64 bytes serialized), and one byte over it.
    let at_bound = serde_json::json!("x".repeat(62));
    s.share("a", job().payload(at_bound)).await.unwrap();
    let over = serde_json::json!("x".repeat(63));
    assert!(matches!(
        s.share("big", job().payload(over)).await,
        Err(SchedulerError::PayloadTooLarge {
            size: 65,
            limit: 64,
            ..
        })
    ));
    assert!(matches!(
        s.share("nobody", SharedJob::cron("0 3 * * *", "tick"))
            .await,
        Err(SchedulerError::InvalidSharedJob { .. })
    ));
    s.share("b", job()).await.unwrap();
    assert!(matches!(
        s.share("c", job()).await,
        Err(SchedulerError::TooManySharedJobs { limit: 2, .. })
    ));
    // Replacing one at the bound is no new job. The other instance has exactly a and b.
    s.share("b", job().timezone("Europe/Paris")).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..50 {
        seen = host(&two)
            .list()
            .into_iter()
            .map(|j| (j.id, j.trigger))
            .collect();
        if seen.len() == 2 && seen[1].1.contains("Paris") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        seen,
        [
            ("a".to_owned(), "cron \"0 0 3 * * *\" in UTC".to_owned()),
            (
                "b".to_owned(),
                "cron \"0 0 3 * * *\" in Europe/Paris".to_owned()
            )
        ]
    );
    // Another tenant counts against the same owner.
    let acme = s.for_tenant(&TenantId::new("acme").unwrap());
    assert!(matches!(
        acme.share("c", job()).await,
        Err(SchedulerError::TooManySharedJobs { .. })
    ));
    one.shutdown().await;
    two.shutdown().await;
}

/// Waits (at most 10 s) until `app`'s scheduler health is `status`; returns its message.
async fn scheduler_health_becomes(app: &TestApp, status: HealthStatus) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        let report = app.xcore().health().await;
        let node = report.node(&NodeId::service("scheduler")).unwrap();
        last = node.health().message().unwrap_or_default().to_owned();
        if node.health().status() == status {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the scheduler's health is not {status:?} within 10 s: {last}");
}

/// Two instances on `lock`, the first sharing `tick` (every second, plugin `ticker`), applied
/// on the second; some firings run before this returns.
async fn two_sharing_tick(
    lock: &LockOptions,
    shared: &SharedJobsOptions,
    settle: Duration,
) -> ([TestApp; 2], Runs) {
    let runs = Runs::default();
    let apps = [
        instance(lock, shared, 0, &runs).await,
        instance(lock, shared, 1, &runs).await,
    ];
    host(&apps[0])
        .share(
            "tick",
            SharedJob::every(Duration::from_secs(1), "tick").plugin("ticker"),
        )
        .await
        .unwrap();
    converge(&[&apps[1]], Some(false), Duration::from_secs(1)).await;
    tokio::time::sleep(settle).await;
    (apps, runs)
}

/// While the store is down: every instance's health degraded (its messages returned), a new
/// share refused with a typed error (returned), the local copies of `tick` kept and nothing
/// half-applied.
async fn while_the_store_is_down(apps: &[TestApp]) -> (Vec<String>, SchedulerError) {
    let mut messages = Vec::new();
    for app in apps {
        messages.push(scheduler_health_becomes(app, HealthStatus::Degraded).await);
    }
    let err = host(&apps[1])
        .share(
            "other",
            SharedJob::every(Duration::from_secs(1), "tick").plugin("ticker"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SchedulerError::Store { .. }), "{err:?}");
    for app in apps {
        assert_eq!(tick_state(app), Some(false), "the local copy stays");
        assert!(host(app).get("other").is_none());
    }
    (messages, err)
}

/// Redis (lock and store) stopped for 5 s under a shared job on two instances: no panic;
/// the firings of the outage are skipped (none runs, none runs twice); health degraded;
/// sharing is refused with a typed error (nothing half-applied) while the copies applied
/// keep their schedule; once Redis is back (a durable one: the definition survived),
/// firings resume once per firing and health is healthy again, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_under_shared_jobs_skips_firings_and_recovers() {
    let Ok(redis) = RedisServer::start_local_durable().await else {
        eprintln!("no Redis: skipped");
        return;
    };
    let lock = LockOptions {
        prefix: "scale_jobs_outage".into(),
        ttl: Duration::from_secs(30),
        command_timeout: Duration::from_millis(300),
        ..LockOptions::new(redis.url())
    };
    let shared = SharedJobsOptions {
        resync: Duration::from_secs(1),
        ..SharedJobsOptions::default()
    };
    let (apps, runs) = two_sharing_tick(&lock, &shared, Duration::from_secs(3)).await;

    redis.stop().unwrap();
    let down_at = Utc::now();
    let down = tokio::time::Instant::now();
    // Sharing, pausing, unsharing: refused, typed; the job applied here is still there.
    let (messages, err) = while_the_store_is_down(&apps).await;
    for message in messages {
        assert!(message.contains("unavailable"), "{message}");
    }
    let call: CallError = err.into();
    assert!(!call.message().contains("127.0.0.1"), "{}", call.message());
    assert!(matches!(
        host(&apps[0]).pause_shared("tick").await,
        Err(SchedulerError::Store { .. })
    ));
    for app in &apps {
        assert_eq!(tick_state(app), Some(false), "the local copy stays");
    }
    while down.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let up_at = Utc::now();
    redis.restart().await.unwrap();
    for app in &apps {
        scheduler_health_becomes(app, HealthStatus::Healthy).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ended_at = Utc::now().timestamp();

    let seconds = per_second(&runs);
    println!("runs per second: {seconds:?} (Redis down from {down_at} to {up_at})");
    assert!(seconds.values().all(|who| who.len() == 1), "{seconds:?}");
    // Nothing ran while Redis was down (a firing claimed just before the stop may have
    // run in its first second).
    let during: Vec<_> = seconds
        .range(down_at.timestamp() + 1..up_at.timestamp())
        .collect();
    assert!(during.is_empty(), "ran without the lock: {during:?}");
    // Firing again after the outage, once per firing.
    let after: Vec<_> = seconds.range(ended_at - 2..ended_at).collect();
    assert_eq!(after.len(), 2, "{seconds:?}");
    let skipped: u64 = apps
        .iter()
        .map(|a| host(a).get("tick").unwrap().skips)
        .sum();
    assert!(
        skipped >= 4,
        "the outage's firings are counted as skipped: {skipped}"
    );
    // The definition survived (a durable Redis): still shared, and unsharable.
    host(&apps[1]).unshare("tick").await.unwrap();
    converge(
        &apps.iter().collect::<Vec<_>>(),
        None,
        Duration::from_secs(1),
    )
    .await;
    for app in apps {
        app.shutdown().await;
    }
}

/// A plugin's handle shares jobs calling its own actions (in its tenant, under its
/// namespace): the `ticker` of the other instance sees it in its `list`, the host's handle
/// in the default tenant does not; each firing runs once; a job calling another plugin is
/// refused; the other instance's `ticker` unshares it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_shares_jobs_calling_its_own_actions() {
    let Ok(server) = PostgresServer::start().await else {
        eprintln!("no Postgres: skipped");
        return;
    };
    let url = server.database().await.unwrap();
    let lock = LockOptions {
        prefix: "scale_jobs_plugin".into(),
        ..LockOptions::new(url)
    };
    let shared = SharedJobsOptions::default();
    let runs = Runs::default();
    let apps = [
        instance(&lock, &shared, 0, &runs).await,
        instance(&lock, &shared, 1, &runs).await,
    ];
    let acme = TenantId::new("acme").unwrap();
    let (one, two) = (
        runs.ticker(0).for_tenant(&acme),
        runs.ticker(1).for_tenant(&acme),
    );
    assert!(matches!(
        one.share(
            "x",
            SharedJob::every(Duration::from_secs(1), "tick").plugin("other")
        )
        .await,
        Err(SchedulerError::InvalidSharedJob { .. })
    ));
    one.share("beat", SharedJob::every(Duration::from_secs(1), "tick"))
        .await
        .unwrap();
    let shared_at = Utc::now().timestamp();
    let mut seen = None;
    for _ in 0..50 {
        seen = two.get("beat");
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let info = seen.expect("the other instance applied it");
    assert_eq!(info.plugin.as_deref(), Some("ticker"));
    assert_eq!(info.tenant, "acme");
    assert!(info.shared);
    assert!(host(&apps[1]).list().is_empty(), "not the host's job");
    assert!(
        runs.ticker(1).get("beat").is_none(),
        "not in the default tenant"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    two.unshare("beat").await.unwrap();
    let ended_at = Utc::now().timestamp();
    for _ in 0..50 {
        if one.get("beat").is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(one.get("beat").is_none());
    let seconds = per_second(&runs);
    assert!(seconds.values().all(|who| who.len() == 1), "{seconds:?}");
    let missing: Vec<i64> = (shared_at + 1..ended_at)
        .filter(|s| !seconds.contains_key(s))
        .collect();
    assert!(missing.is_empty(), "{seconds:?}");
    for app in apps {
        app.shutdown().await;
    }
}

/// Without a lock there is no store: sharing is refused, saying what to configure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_needs_a_lock() {
    let app = TestApp::builder()
        .service(SchedulerService::new(SchedulerOptions::default()).unwrap())
        .boot()
        .await
        .unwrap();
    let err = host(&app)
        .share(
            "tick",
            SharedJob::every(Duration::from_secs(1), "tick").plugin("ticker"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SchedulerError::Unavailable { reason } if reason.contains("services.scheduler.lock")),
        "{err:?}"
    );
    assert!(host(&app).list().is_empty());
    app.shutdown().await;
}

/// A change that reaches the store without its notification (written with plain SQL here)
/// is applied on every instance by the periodic resync, within `resync` (1 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_notification_is_caught_up_by_the_resync() {
    let Ok(server) = PostgresServer::start().await else {
        eprintln!("no Postgres: skipped");
        return;
    };
    let url = server.database().await.unwrap();
    let lock = LockOptions {
        prefix: "scale_jobs_resync".into(),
        ..LockOptions::new(url.clone())
    };
    let shared = SharedJobsOptions {
        resync: Duration::from_secs(1),
        ..SharedJobsOptions::default()
    };
    let runs = Runs::default();
    let apps = [
        instance(&lock, &shared, 0, &runs).await,
        instance(&lock, &shared, 1, &runs).await,
    ];
    host(&apps[0])
        .share(
            "tick",
            SharedJob::cron("0 3 * * *", "tick").plugin("ticker"),
        )
        .await
        .unwrap();
    converge(&[&apps[0], &apps[1]], Some(false), Duration::from_secs(1)).await;
    let pool = xcore::services::db::sqlx::PgPool::connect(&url)
        .await
        .unwrap();
    xcore::services::db::sqlx::query("UPDATE scale_jobs_resync_jobs SET paused = true")
        .execute(&pool)
        .await
        .unwrap();
    let delay = converge(
        &[&apps[0], &apps[1]],
        Some(true),
        Duration::from_millis(1500),
    )
    .await;
    println!("applied by the resync within {delay:?}");
    xcore::services::db::sqlx::query("DELETE FROM scale_jobs_resync_jobs")
        .execute(&pool)
        .await
        .unwrap();
    converge(&[&apps[0], &apps[1]], None, Duration::from_millis(1500)).await;
    for app in apps {
        app.shutdown().await;
    }
}

/// Postgres (lock and store) halted for 5 s under a shared job on two instances: the same
/// semantics as on Redis (firings skipped, health degraded, writes refused, local copies
/// kept); once it is back, health is healthy again and the instances listen again: a pause
/// reaches the other instance through its notification, well within the resync (10 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_under_shared_jobs_skips_firings_and_recovers() {
    let Ok(server) = PostgresServer::start_own().await else {
        eprintln!("no Postgres: skipped");
        return;
    };
    let url = server.database().await.unwrap();
    let lock = LockOptions {
        prefix: "scale_jobs_pg_outage".into(),
        ttl: Duration::from_secs(30),
        command_timeout: Duration::from_millis(500),
        ..LockOptions::new(url)
    };
    let shared = SharedJobsOptions {
        resync: Duration::from_secs(10),
        ..SharedJobsOptions::default()
    };
    let (apps, runs) = two_sharing_tick(&lock, &shared, Duration::from_secs(2)).await;

    server.halt().await.unwrap();
    let down_at = Utc::now();
    let down = tokio::time::Instant::now();
    while_the_store_is_down(&apps).await;
    while down.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let up_at = Utc::now();
    server.restart().await.unwrap();
    for app in &apps {
        scheduler_health_becomes(app, HealthStatus::Healthy).await;
    }
    // Listening again (a backoff of at most 2 s), then a pause travels by notification.
    tokio::time::sleep(Duration::from_secs(3)).await;
    host(&apps[0]).pause_shared("tick").await.unwrap();
    converge(&[&apps[1]], Some(true), Duration::from_secs(1)).await;

    let seconds = per_second(&runs);
    println!("runs per second: {seconds:?} (Postgres down from {down_at} to {up_at})");
    assert!(seconds.values().all(|who| who.len() == 1), "{seconds:?}");
    let during: Vec<_> = seconds
        .range(down_at.timestamp() + 1..up_at.timestamp())
        .collect();
    assert!(during.is_empty(), "ran without the lock: {during:?}");
    assert!(
        seconds.range(up_at.timestamp() + 1..).count() >= 2,
        "firing again after the outage: {seconds:?}"
    );
    for app in apps {
        app.shutdown().await;
    }
}
