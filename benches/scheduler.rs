//! Scheduler bench: the lateness of firings with 10,000 registered jobs, beside bare tokio
//! timers for the same instants.
//!
//! - **scheduler**: a booted `Xcore` with the scheduler service and 50 plugins of 200 jobs each
//!   (10,000 jobs), every job on the cron trigger `* * * * * *` (every second), registered
//!   through each plugin's `ctx.handle::<Scheduler>()`. Each run records `Utc::now() - scheduled_at`
//!   when it starts.
//! - **baseline**: 10,000 tokio tasks, each sleeping with `tokio::time::sleep` until the same
//!   whole seconds and recording the same difference.
//!
//! Both run on a 2-worker multi-thread tokio runtime, one after the other, for
//! `XCORE_BENCH_SECONDS` (default 8) measured seconds after 2 seconds of warm-up (a job's first
//! firing may be up to the 500 ms poll of tokio-cron-scheduler late, by design). Criterion's
//! timing loop does not fit a bench whose unit is a wall-clock second (it sizes its samples by
//! the durations it is given), so this is a plain timed run (`harness = false`) that prints its
//! percentiles, criterion-style, and the CPU time each side used:
//!
//! ```sh
//! cargo bench --bench scheduler
//! XCORE_BENCH_JOBS=1000 XCORE_BENCH_SECONDS=5 cargo bench --bench scheduler
//! ```
//!
//! First, **replacements**: one job (the daily report of the example, cron `0 0 9 * * *`)
//! added again with the same id `XCORE_BENCH_REPLACEMENTS` times (default 100,000; 10,000
//! in the `cargo test --benches` smoke run), then 10,000 more times each in a different second
//! (one-shots an hour ahead), printing the resident set size (`/proc/self/statm`) after a
//! warm-up of 1,000 replacements, every quarter, and at the end, with the scheduler's own
//! counts ([`Scheduler::stats`](xcore::services::scheduler::Scheduler::stats)). The run fails
//! if more than one firing or one armed second is pending at the end.

use std::{
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::Value;
use xcore::services::scheduler::Scheduler;
use xcore::{
    Actions, CallContext, CallError, Manifest, Plugin, PluginContext, PluginError, Xcore,
    async_trait,
    services::scheduler::{
        SchedulerOptions, SchedulerService, Trigger,
        chrono::{DateTime, TimeDelta, Utc},
    },
};

const PLUGINS: usize = 50;
const WARM_UP_SECONDS: i64 = 2;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A plugin that keeps its context.
struct Holder(Arc<OnceLock<PluginContext>>);

#[async_trait]
impl Actions for Holder {
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
impl Plugin for Holder {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        let _ = self.0.set(ctx.clone());
        Ok(())
    }
}

/// Lateness samples (nanoseconds) of the firings planned in `[from, until)`.
struct Samples {
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    nanos: Mutex<Vec<u64>>,
    outside: AtomicU64,
}

impl Samples {
    fn new(from: DateTime<Utc>, seconds: i64, capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            from,
            until: from + TimeDelta::seconds(seconds),
            nanos: Mutex::new(Vec::with_capacity(capacity)),
            outside: AtomicU64::new(0),
        })
    }

    fn note(&self, planned: DateTime<Utc>) {
        let late = (Utc::now() - planned)
            .num_nanoseconds()
            .unwrap_or(i64::MAX)
            .max(0);
        if planned >= self.from && planned < self.until {
            self.nanos.lock().unwrap().push(late as u64);
        } else {
            self.outside.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Process CPU time (user + system), from /proc (Linux); zero elsewhere.
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // After the command name: state is field 0, utime 11, stime 12 (in clock ticks of 10 ms).
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// The resident set size, from /proc (Linux); zero elsewhere.
fn rss_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    pages * 4096
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// One job replaced `n` times with the same trigger, then 10,000 times in a new second each:
/// the RSS series, and the scheduler's counts at the end.
async fn replacements(n: usize) {
    let xcore = Xcore::builder()
        .without_registered()
        .service(SchedulerService::new(SchedulerOptions::default()).unwrap())
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    let host = xcore.handle::<Scheduler>().unwrap();
    let daily = Trigger::cron("0 0 9 * * *").unwrap();
    let replace = |trigger: Trigger| {
        let host = host.clone();
        async move {
            host.add("daily-report", trigger, |_| async { Ok(()) })
                .await
                .unwrap()
        }
    };
    for _ in 0..1_000 {
        replace(daily.clone()).await;
    }
    let before = rss_bytes();
    let started = Instant::now();
    let mut series = vec![mib(before)];
    for i in 1..=n {
        replace(daily.clone()).await;
        if i % (n / 4).max(1) == 0 {
            series.push(mib(rss_bytes()));
        }
    }
    let took = started.elapsed();
    let now = Utc::now();
    for i in 0..10_000 {
        replace(Trigger::at(
            now + TimeDelta::hours(1) + TimeDelta::seconds(i),
        ))
        .await;
    }
    // Let the background disarming of the emptied seconds finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_bytes();
    let stats = host.stats();
    println!(
        "replacements: {n} of one job ({:.1} us each), then 10,000 in a new second each: RSS {} \
         (after 1,000 of warm-up; then every quarter: {}), {} at the end ({:+.1} MiB); \
         {stats:?}",
        took.as_secs_f64() * 1e6 / n.max(1) as f64,
        mib(before),
        series[1..].join(", "),
        mib(after),
        (after as f64 - before as f64) / (1024.0 * 1024.0),
    );
    assert!(
        stats.pending_firings <= 1 && stats.armed_seconds <= 1,
        "firings pile up: {stats:?}"
    );
    xcore.shutdown().await;
}

/// The next whole second at least `lead` from now.
fn next_second(lead: Duration) -> DateTime<Utc> {
    let t = Utc::now() + TimeDelta::from_std(lead).unwrap();
    DateTime::from_timestamp(t.timestamp() + 1, 0).unwrap()
}

struct Outcome {
    name: &'static str,
    samples: Vec<u64>,
    expected: usize,
    cpu: Duration,
    setup: Duration,
}

async fn scheduler(jobs: usize, seconds: i64) -> Outcome {
    let per_plugin = jobs.div_ceil(PLUGINS);
    let mut builder = Xcore::builder()
        .without_registered()
        .service(SchedulerService::new(SchedulerOptions::default()).unwrap());
    let mut contexts = Vec::new();
    for p in 0..PLUGINS {
        let cell = Arc::new(OnceLock::new());
        let manifest = Manifest::builder(format!("plugin{p}"), "1.0.0")
            .services(["scheduler"])
            .permissions(["service:scheduler: schedule"])
            .build()
            .unwrap();
        builder = builder.plugin(manifest, Holder(cell.clone()));
        contexts.push(cell);
    }
    let xcore = builder.build().unwrap();
    xcore.boot().await.unwrap();

    let start = next_second(Duration::from_secs(3)) + TimeDelta::seconds(WARM_UP_SECONDS);
    let samples = Samples::new(start, seconds, jobs * seconds as usize);
    let trigger = Trigger::cron("* * * * * *").unwrap();
    let began = Instant::now();
    let mut added = 0;
    for cell in &contexts {
        let scheduler = cell.get().unwrap().handle::<Scheduler>().unwrap();
        for j in 0..per_plugin.min(jobs - added) {
            let samples = samples.clone();
            scheduler
                .add(&format!("job{j}"), trigger.clone(), move |job| {
                    samples.note(job.scheduled_at());
                    std::future::ready(Ok(()))
                })
                .await
                .unwrap();
            added += 1;
        }
    }
    let setup = began.elapsed();
    let cpu_before = wait_until(start).await;
    wait_until(samples.until + TimeDelta::milliseconds(500)).await;
    let cpu = cpu_time() - cpu_before;
    let jobs_info = xcore.handle::<Scheduler>().unwrap().list_all();
    let skips: u64 = jobs_info.iter().map(|j| j.skips).sum();
    let failures: u64 = jobs_info.iter().map(|j| j.failures).sum();
    assert_eq!((skips, failures), (0, 0), "skipped or failed firings");
    xcore.shutdown().await;
    let samples = std::mem::take(&mut *samples.nanos.lock().unwrap());
    Outcome {
        name: "scheduler",
        samples,
        expected: added * seconds as usize,
        cpu,
        setup,
    }
}

async fn baseline(jobs: usize, seconds: i64) -> Outcome {
    let start = next_second(Duration::from_secs(1)) + TimeDelta::seconds(WARM_UP_SECONDS);
    let samples = Samples::new(start, seconds, jobs * seconds as usize);
    let began = Instant::now();
    let mut tasks = Vec::with_capacity(jobs);
    let first = start - TimeDelta::seconds(WARM_UP_SECONDS);
    for _ in 0..jobs {
        let samples = samples.clone();
        tasks.push(tokio::spawn(async move {
            let mut at = first;
            while at < samples.until {
                // The same conversion the scheduler makes: wall-clock instant to a timer.
                let wait = (at - Utc::now()).to_std().unwrap_or_default();
                tokio::time::sleep(wait).await;
                samples.note(at);
                at += TimeDelta::seconds(1);
            }
        }));
    }
    let setup = began.elapsed();
    let cpu_before = wait_until(start).await;
    for task in tasks {
        task.await.unwrap();
    }
    let cpu = cpu_time() - cpu_before;
    let samples = std::mem::take(&mut *samples.nanos.lock().unwrap());
    Outcome {
        name: "sleep_until",
        samples,
        expected: jobs * seconds as usize,
        cpu,
        setup,
    }
}

/// Sleeps until `at`; returns the CPU time then.
async fn wait_until(at: DateTime<Utc>) -> Duration {
    tokio::time::sleep((at - Utc::now()).to_std().unwrap_or_default()).await;
    cpu_time()
}

fn percentile(sorted: &[u64], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    Duration::from_nanos(sorted[rank.min(sorted.len() - 1)])
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn report(jobs: usize, outcome: &mut Outcome) -> [Duration; 4] {
    outcome.samples.sort_unstable();
    let s = &outcome.samples;
    let figures = [
        percentile(s, 50.0),
        percentile(s, 99.0),
        percentile(s, 99.9),
        percentile(s, 100.0),
    ];
    let id = format!("scheduler_lateness/{}/{jobs}", outcome.name);
    println!(
        "{id:<40} p50    time:   [{} {} {}]",
        ms(figures[0]),
        ms(figures[0]),
        ms(figures[0])
    );
    println!(
        "{id:<40} p99    time:   [{} {} {}]",
        ms(figures[1]),
        ms(figures[1]),
        ms(figures[1])
    );
    println!(
        "{id:<40} firings {}/{} (p99.9 {}, max {}), setup {}, CPU {} ({:.2} µs per firing)",
        s.len(),
        outcome.expected,
        ms(figures[2]),
        ms(figures[3]),
        ms(outcome.setup),
        ms(outcome.cpu),
        outcome.cpu.as_secs_f64() * 1e6 / s.len().max(1) as f64,
    );
    figures
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing special: keep the
    // smoke run short there.
    let quick = !std::env::args().any(|a| a == "--bench");
    let jobs = env("XCORE_BENCH_JOBS", if quick { 500 } else { 10_000 });
    let seconds = env("XCORE_BENCH_SECONDS", if quick { 2 } else { 8 }) as i64;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let replaced = env(
        "XCORE_BENCH_REPLACEMENTS",
        if quick { 10_000 } else { 100_000 },
    );
    runtime.block_on(replacements(replaced));
    runtime.block_on(async {
        println!("{jobs} jobs firing every second, {seconds} s measured after {WARM_UP_SECONDS} s of warm-up");
        let mut base = baseline(jobs, seconds).await;
        let mut sched = scheduler(jobs, seconds).await;
        let b = report(jobs, &mut base);
        let s = report(jobs, &mut sched);
        let ratio = |x: Duration, y: Duration| x.as_secs_f64() / y.as_secs_f64().max(1e-9);
        println!(
            "scheduler / sleep_until: p50 x{:.1}, p99 x{:.1}, max x{:.1}; CPU x{:.1}",
            ratio(s[0], b[0]),
            ratio(s[1], b[1]),
            ratio(s[3], b[3]),
            ratio(sched.cpu, base.cpu),
        );
        assert_eq!(sched.samples.len(), sched.expected, "firings missing");
    });
}
