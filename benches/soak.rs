//! Soak bench: one booted `Xcore` driven in process through four long phases, with the
//! resident set size (RSS) and the thread count sampled every tenth of each phase.
//!
//! | phase | what one operation is | default count | env var |
//! |---|---|---:|---|
//! | `calls` | `xcore.call("b", "ping", {})` through the full pipeline, answer checked | 10,000,000 | `XCORE_SOAK_CALLS` |
//! | `denials` | `xcore.call("nosy", "poke", ..)`: plugin `nosy` (grant `plugin:b: ping` only) calls `b.x<i>`, a new action name each time; `PermissionDenied` checked, each denial audited (the audit keeps the last 1,000) | 1,000,000 | `XCORE_SOAK_DENIALS` |
//! | `replacements` | the host's scheduler adds job `daily-report` again with the same id, alternately on cron `0 0 9 * * *` and as a one-shot in a new second an hour ahead (`XCORE_SOAK_TRIGGER=cron` or `at`: only one kind) | 100,000 | `XCORE_SOAK_REPLACEMENTS` |
//! | `tasks` | a task sent to the in-process worker (`keep_finished` 1,000), in windows of 100, each awaited with `Worker::wait` and its result checked | 10,000 | `XCORE_SOAK_TASKS` |
//!
//! Every row of the printed table is a checkpoint: the phase, the operations done, the time
//! since the phase began, `VmRSS`, `VmHWM` (peak RSS) and `Threads` from `/proc/self/status`
//! (Linux), and the state that must stay bounded (audit entries kept, scheduler jobs, pending
//! firings and armed seconds), plus a row `settled` 2 s after the replacements (the
//! one-shots they replaced are removed from tokio-cron-scheduler in the background) and a row
//! after shutdown; then one summary line per phase (duration, time per operation, the RSS
//! series). The run fails if a counted state exceeds its bound or if RSS grows by more than
//! `XCORE_SOAK_MAX_GROWTH_MIB` (default 16) between the first tenth and the end of a phase.
//!
//! Not run in CI: it is a plain `main` (`harness = false`). `cargo bench` passes `--bench`
//! and gets the full counts; any other run (`cargo test --benches`, `--all-targets`) divides
//! the defaults by 1,000, so it finishes in about 2 s (the pause after the replacements).
//!
//! ```sh
//! cargo bench --bench soak
//! XCORE_SOAK_CALLS=1000000 XCORE_SOAK_DENIALS=100000 cargo bench --bench soak
//! ```

use std::{
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use xcore::services::{scheduler::Scheduler, worker::Worker};
use xcore::{
    Actions, CallContext, CallError, ErrorCode, Manifest, Plugin, PluginContext, PluginError,
    Xcore, async_trait,
    services::{
        scheduler::{
            SchedulerOptions, SchedulerService, Trigger,
            chrono::{TimeDelta, Utc},
        },
        worker::{TaskError, TaskStatus, WorkerOptions, WorkerService},
    },
};

/// Tasks sent before they are awaited.
const TASK_WINDOW: usize = 100;
/// Finished tasks the in-process queue keeps (the default is 10,000: as many as the phase
/// sends, so a lower bound shows the eviction within the run).
const KEEP_FINISHED: usize = 1_000;

/// The triggers of the replacements (`XCORE_SOAK_TRIGGER`: `cron`, `at` or `both`).
#[derive(Clone, Copy, Debug)]
enum Triggers {
    /// Always cron `0 0 9 * * *`: the same second each time.
    Cron,
    /// Always a one-shot, in a new second each time.
    At,
    /// Alternately (the default).
    Both,
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Answers `ping` with `"pong"`.
struct PingPlugin;

#[async_trait]
impl Actions for PingPlugin {
    fn action_names(&self) -> &'static [&'static str] {
        &["ping"]
    }

    async fn handle(
        &self,
        action: &str,
        _payload: Value,
        _cx: &CallContext,
    ) -> Result<Value, CallError> {
        match action {
            "ping" => Ok(json!("pong")),
            other => Err(CallError::unknown_action(other, self.action_names())),
        }
    }
}

#[async_trait]
impl Plugin for PingPlugin {}

/// `poke {"action": name}` calls `b.<name>` through the context kept from `on_load`.
struct NosyPlugin(Arc<OnceLock<PluginContext>>);

#[async_trait]
impl Actions for NosyPlugin {
    fn action_names(&self) -> &'static [&'static str] {
        &["poke"]
    }

    async fn handle(
        &self,
        action: &str,
        payload: Value,
        cx: &CallContext,
    ) -> Result<Value, CallError> {
        match action {
            "poke" => {
                let ctx = self
                    .0
                    .get()
                    .ok_or_else(|| CallError::internal("poke before on_load"))?;
                let target = payload["action"].as_str().unwrap_or("ping");
                ctx.plugin("b").call(cx, target, json!({})).await
            }
            other => Err(CallError::unknown_action(other, self.action_names())),
        }
    }
}

#[async_trait]
impl Plugin for NosyPlugin {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        let _ = self.0.set(ctx.clone());
        Ok(())
    }
}

/// `VmRSS`, `VmHWM` (bytes) and `Threads` of this process, from `/proc/self/status`; zeros
/// elsewhere.
fn proc_status() -> (u64, u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (
        field("VmRSS:") * 1024,
        field("VmHWM:") * 1024,
        field("Threads:"),
    )
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// One checkpoint.
struct Row {
    phase: &'static str,
    done: usize,
    elapsed: Duration,
    rss: u64,
    peak: u64,
    threads: u64,
    state: String,
}

/// The checkpoints of the run, and the duration of each phase.
struct Soak {
    xcore: Xcore,
    rows: Vec<Row>,
    phases: Vec<(&'static str, usize, Duration)>,
}

impl Soak {
    /// The state that must stay bounded, as one cell.
    fn state(&self) -> String {
        let audit = self.xcore.audit();
        let kept = audit.denials(None, usize::MAX).len();
        let stats = self.xcore.handle::<Scheduler>().expect("scheduler").stats();
        format!(
            "audit {kept}/{} of {}; jobs {}, firings {}, armed {}",
            audit.capacity(),
            audit.total(),
            stats.jobs,
            stats.pending_firings,
            stats.armed_seconds,
        )
    }

    fn checkpoint(&mut self, phase: &'static str, done: usize, elapsed: Duration) {
        let (rss, peak, threads) = proc_status();
        let state = self.state();
        self.rows.push(Row {
            phase,
            done,
            elapsed,
            rss,
            peak,
            threads,
            state,
        });
    }

    /// Runs `op(0..n)`, with a checkpoint after every tenth (nothing at all for `n` = 0).
    async fn phase(&mut self, name: &'static str, n: usize, mut op: impl AsyncFnMut(usize)) {
        if n == 0 {
            return;
        }
        let step = (n / 10).max(1);
        let started = Instant::now();
        for i in 0..n {
            op(i).await;
            if (i + 1) % step == 0 || i + 1 == n {
                self.checkpoint(name, i + 1, started.elapsed());
            }
        }
        self.phases.push((name, n, started.elapsed()));
    }

    /// RSS growth (MiB) of `phase` from its first checkpoint to its last.
    fn growth(&self, phase: &str) -> f64 {
        let rows: Vec<&Row> = self.rows.iter().filter(|r| r.phase == phase).collect();
        match (rows.first(), rows.last()) {
            (Some(first), Some(last)) => mib(last.rss) - mib(first.rss),
            _ => 0.0,
        }
    }

    fn print(&self) {
        println!(
            "| phase | done | elapsed | RSS (MiB) | peak RSS (MiB) | threads | bounded state |"
        );
        println!("|---|---:|---:|---:|---:|---:|---|");
        for r in &self.rows {
            println!(
                "| {} | {} | {:.2} s | {:.1} | {:.1} | {} | {} |",
                r.phase,
                r.done,
                r.elapsed.as_secs_f64(),
                mib(r.rss),
                mib(r.peak),
                r.threads,
                r.state,
            );
        }
        println!();
        println!(
            "| phase | operations | duration | per operation | RSS before, then at each tenth (MiB) | RSS first tenth → end | threads |"
        );
        println!("|---|---:|---:|---:|---|---:|---:|");
        for (name, n, took) in &self.phases {
            let first = self.rows.iter().position(|r| r.phase == *name);
            let before = first
                .and_then(|i| i.checked_sub(1))
                .map(|i| format!("{:.1}", mib(self.rows[i].rss)))
                .unwrap_or_default();
            let rows: Vec<&Row> = self.rows.iter().filter(|r| r.phase == *name).collect();
            let series: Vec<String> = rows.iter().map(|r| format!("{:.1}", mib(r.rss))).collect();
            let threads: Vec<u64> = rows.iter().map(|r| r.threads).collect();
            println!(
                "| {name} | {n} | {:.2} s | {:.2} µs | {before} → {} | {:+.1} MiB | {}–{} |",
                took.as_secs_f64(),
                took.as_secs_f64() * 1e6 / (*n).max(1) as f64,
                series.join(", "),
                self.growth(name),
                threads.iter().min().unwrap_or(&0),
                threads.iter().max().unwrap_or(&0),
            );
        }
    }
}

async fn build() -> Xcore {
    let nosy = Manifest::builder("nosy", "1.0.0")
        .requires(["b"])
        .permissions(["plugin:b: ping"])
        .build()
        .expect("manifest of nosy");
    let xcore = Xcore::builder()
        .without_registered()
        .service(SchedulerService::new(SchedulerOptions::default()).expect("scheduler"))
        .service(
            WorkerService::new(WorkerOptions::memory().keep_finished(KEEP_FINISHED))
                .expect("worker"),
        )
        .plugin(
            Manifest::builder("b", "1.0.0").build().expect("manifest"),
            PingPlugin,
        )
        .plugin(nosy, NosyPlugin(Arc::new(OnceLock::new())))
        .build()
        .expect("build");
    xcore
        .boot()
        .await
        .expect("boot")
        .ensure_all_started()
        .expect("all started");
    xcore
}

async fn soak(
    calls: usize,
    denials: usize,
    replacements: usize,
    triggers: Triggers,
    tasks: usize,
) -> Soak {
    let xcore = build().await;
    let mut soak = Soak {
        xcore: xcore.clone(),
        rows: Vec::new(),
        phases: Vec::new(),
    };
    soak.checkpoint("boot", 0, Duration::ZERO);

    let pong = json!("pong");
    soak.phase("calls", calls, async |_| {
        let answer = xcore.call("b", "ping", json!({})).await.expect("ping");
        assert_eq!(answer, pong);
    })
    .await;

    soak.phase("denials", denials, async |i| {
        let err = xcore
            .call("nosy", "poke", json!({"action": format!("x{i}")}))
            .await
            .expect_err("a call without a grant");
        assert_eq!(err.code(), ErrorCode::PermissionDenied, "{err}");
    })
    .await;
    let audit = xcore.audit();
    assert_eq!(audit.total(), denials as u64, "every denial audited");
    assert!(audit.denials(None, usize::MAX).len() <= audit.capacity());

    let scheduler = xcore.handle::<Scheduler>().expect("scheduler");
    let daily = Trigger::cron("0 0 9 * * *").expect("cron");
    let hour = Utc::now() + TimeDelta::hours(1);
    soak.phase("replacements", replacements, async |i| {
        let cron = match triggers {
            Triggers::Cron => true,
            Triggers::At => false,
            Triggers::Both => i % 2 == 0,
        };
        let trigger = if cron {
            daily.clone()
        } else {
            Trigger::at(hour + TimeDelta::seconds(i as i64))
        };
        scheduler
            .add("daily-report", trigger, |_| async { Ok(()) })
            .await
            .expect("add");
    })
    .await;
    // The seconds emptied by the last replacements are disarmed in the background.
    let settled = Instant::now();
    let stats = loop {
        let stats = scheduler.stats();
        if (stats.pending_firings <= 1 && stats.armed_seconds <= 1)
            || settled.elapsed() > Duration::from_secs(10)
        {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        stats.jobs == usize::from(replacements > 0)
            && stats.pending_firings <= 1
            && stats.armed_seconds <= 1,
        "firings pile up: {stats:?}"
    );
    // The one-shots of the replaced firings are removed from tokio-cron-scheduler by
    // background tasks; a checkpoint once they have had time to run.
    tokio::time::sleep(Duration::from_secs(2)).await;
    soak.checkpoint("settled", replacements, settled.elapsed());

    let worker = xcore.handle::<Worker>().expect("worker");
    worker
        .register("noop", |_task, n: u64| async move { Ok::<_, TaskError>(n) })
        .expect("register");
    let mut window = Vec::with_capacity(TASK_WINDOW);
    soak.phase("tasks", tasks, async |i| {
        window.push((
            i as u64,
            worker.send("noop", &(i as u64)).await.expect("send"),
        ));
        if window.len() == TASK_WINDOW || i + 1 == tasks {
            for (n, id) in window.drain(..) {
                match worker
                    .wait(id, Duration::from_secs(60))
                    .await
                    .expect("wait")
                {
                    TaskStatus::Succeeded { result, .. } => assert_eq!(result, json!(n)),
                    other => panic!("task {n} did not succeed: {other:?}"),
                }
            }
        }
    })
    .await;

    xcore.shutdown().await;
    soak.checkpoint("shutdown", 0, Duration::ZERO);
    soak
}

fn main() {
    // `cargo bench` passes `--bench`; any other run (`cargo test --benches`) is a smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full { 1 } else { 1_000 };
    let calls = env("XCORE_SOAK_CALLS", 10_000_000 / scale);
    let denials = env("XCORE_SOAK_DENIALS", 1_000_000 / scale);
    let replacements = env("XCORE_SOAK_REPLACEMENTS", 100_000 / scale);
    let tasks = env("XCORE_SOAK_TASKS", 10_000 / scale);
    let triggers = match std::env::var("XCORE_SOAK_TRIGGER").as_deref() {
        Ok("cron") => Triggers::Cron,
        Ok("at") => Triggers::At,
        _ => Triggers::Both,
    };
    let max_growth = env("XCORE_SOAK_MAX_GROWTH_MIB", 16) as f64;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a multi-thread tokio runtime");
    println!(
        "soak: {calls} calls, {denials} denials, {replacements} job replacements ({triggers:?}), \
         {tasks} tasks (2-worker runtime)\n"
    );
    let started = Instant::now();
    let soak = runtime.block_on(soak(calls, denials, replacements, triggers, tasks));
    soak.print();
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    for (name, _, _) in &soak.phases {
        let growth = soak.growth(name);
        assert!(
            growth <= max_growth,
            "RSS grew by {growth:.1} MiB during `{name}` (limit {max_growth} MiB)"
        );
    }
}
