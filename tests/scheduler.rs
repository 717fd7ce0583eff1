//! The scheduler service.
//!
//! - The schedule, deterministically, through `Trigger::next_after` (the function every firing
//!   is planned with): cron over ten days in UTC and in `Europe/Paris` across the 2026
//!   daylight-saving changes, 5-field normalisation, seconds and year fields, intervals,
//!   one-shots, and the errors for bad expressions and zones.
//! - In real time, with second-level triggers, through booted `Xcore`s: cron with seconds,
//!   interval and one-shot fire as planned within [`TOLERANCE`]; namespacing across plugins and
//!   tenants; a stopping plugin's jobs go; no overlap; a panicking job does not stop others;
//!   retries with backoff; timeouts; pause and resume; grants; config jobs; jobs a plugin
//!   declares (`Actions::declarations`, by hand here; `tests/jobs.rs` has `#[job]`), checked
//!   and registered when it starts.
//! - Three instances sharing one Redis run a job every second for ten seconds: exactly one run
//!   per firing, none missing, also after one instance shuts down half-way. That test starts a
//!   throwaway `redis-server` (or uses `XCORE_TEST_REDIS_URL`); without one it prints a note
//!   and returns, unless `XCORE_REQUIRE_SERVERS=1`, where it fails.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};
use xcore::{
    Actions, CallContext, CallError, HealthStatus, Manifest, Plugin, PluginContext, PluginError,
    Service, TenantId, Xcore, async_trait,
    plugin::Declarations,
    services::{
        AccessError,
        scheduler::{
            ConfigJob, DeclaredJob, JobError, JobOptions, LockOptions, RunOutcome, Scheduler,
            SchedulerError, SchedulerOptions, SchedulerService, SkipReason, Trigger, TriggerError,
            chrono::{DateTime, Datelike, TimeDelta, TimeZone, Timelike, Utc},
        },
    },
};
use xcore_testkit::{RedisServer, TestApp};

/// How late a firing may be in these tests (the documented bound is the 500 ms poll of
/// tokio-cron-scheduler, for a firing armed less than ~1.5 s ahead; a loaded 2-core CI machine
/// gets the rest).
const TOLERANCE: Duration = Duration::from_millis(1200);

// ---------------------------------------------------------------------------------------------
// The schedule, deterministically

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// The first `n` firings of `trigger` after `from`.
fn firings(trigger: &Trigger, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    let mut out = Vec::with_capacity(n);
    let mut at = from;
    while out.len() < n {
        match trigger.next_after(at) {
            Some(next) => {
                assert!(
                    next > at,
                    "{trigger}: next_after({at}) = {next} is not after it"
                );
                out.push(next);
                at = next;
            }
            None => break,
        }
    }
    out
}

/// The firings of `trigger` in `[from, until)`.
fn firings_until(
    trigger: &Trigger,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut at = from - TimeDelta::nanoseconds(1);
    while let Some(next) = trigger.next_after(at).filter(|t| *t < until) {
        assert!(
            next > at,
            "{trigger}: next_after({at}) = {next} is not after it"
        );
        out.push(next);
        at = next;
    }
    out
}

#[test]
fn cron_in_utc_over_ten_days() {
    let trigger = Trigger::cron("30 2 * * *").unwrap();
    let from = utc(2026, 3, 24, 12, 0, 0);
    let got = firings(&trigger, from, 10);
    let want: Vec<_> = (25..=31)
        .map(|d| utc(2026, 3, d, 2, 30, 0))
        .chain((1..=3).map(|d| utc(2026, 4, d, 2, 30, 0)))
        .collect();
    assert_eq!(got, want);

    // Every 6 hours on weekdays only, over ten days: 2026-03-24 is a Tuesday.
    let weekdays = Trigger::cron("0 */6 * * 1-5").unwrap();
    let got = firings_until(
        &weekdays,
        utc(2026, 3, 24, 0, 0, 0),
        utc(2026, 4, 3, 0, 0, 0),
    );
    // Tue 24 .. Fri 27 (4 days), Mon 30 .. Thu 2 April (4 days): 8 days x 4.
    assert_eq!(got.len(), 32);
    assert!(got.iter().all(|t| t.hour() % 6 == 0 && t.minute() == 0));
    assert!(!got.iter().any(|t| [28, 29].contains(&t.day())), "{got:?}");
}

#[test]
fn nine_am_in_paris_stays_nine_am_across_the_march_change() {
    // Paris: CET (UTC+1) until 2026-03-29 02:00 local, then CEST (UTC+2).
    let trigger = Trigger::cron_in("0 9 * * *", "Europe/Paris").unwrap();
    let got = firings(&trigger, utc(2026, 3, 24, 12, 0, 0), 10);
    let want = vec![
        utc(2026, 3, 25, 8, 0, 0),
        utc(2026, 3, 26, 8, 0, 0),
        utc(2026, 3, 27, 8, 0, 0),
        utc(2026, 3, 28, 8, 0, 0),
        // From here 09:00 local is 07:00 UTC.
        utc(2026, 3, 29, 7, 0, 0),
        utc(2026, 3, 30, 7, 0, 0),
        utc(2026, 3, 31, 7, 0, 0),
        utc(2026, 4, 1, 7, 0, 0),
        utc(2026, 4, 2, 7, 0, 0),
        utc(2026, 4, 3, 7, 0, 0),
    ];
    assert_eq!(got, want);
    // The same expression in UTC does not move.
    let in_utc = Trigger::cron_in("0 9 * * *", "UTC").unwrap();
    assert!(
        firings(&in_utc, utc(2026, 3, 24, 12, 0, 0), 10)
            .iter()
            .all(|t| t.hour() == 9)
    );
}

#[test]
fn half_past_two_in_paris_on_the_spring_forward_day_runs_at_three() {
    // 2026-03-29 02:30 does not exist in Paris (clocks go from 02:00 to 03:00): a fixed-time
    // expression runs at the first instant after the gap, 03:00 CEST = 01:00 UTC, once.
    let trigger = Trigger::cron_in("30 2 * * *", "Europe/Paris").unwrap();
    let got = firings(&trigger, utc(2026, 3, 24, 12, 0, 0), 10);
    let want = vec![
        utc(2026, 3, 25, 1, 30, 0),
        utc(2026, 3, 26, 1, 30, 0),
        utc(2026, 3, 27, 1, 30, 0),
        utc(2026, 3, 28, 1, 30, 0),
        utc(2026, 3, 29, 1, 0, 0), // 03:00 local: the gap's end
        utc(2026, 3, 30, 0, 30, 0),
        utc(2026, 3, 31, 0, 30, 0),
        utc(2026, 4, 1, 0, 30, 0),
        utc(2026, 4, 2, 0, 30, 0),
        utc(2026, 4, 3, 0, 30, 0),
    ];
    assert_eq!(got, want);

    // An expression with steps skips the missing wall-clock times: every half hour of local
    // time is every half hour of UTC, with 02:00 and 02:30 local missing.
    let halves = Trigger::cron_in("*/30 * * * *", "Europe/Paris").unwrap();
    let got = firings_until(
        &halves,
        utc(2026, 3, 28, 23, 0, 0),
        utc(2026, 3, 29, 2, 0, 0),
    );
    assert_eq!(
        got,
        [
            utc(2026, 3, 28, 23, 0, 0),  // 00:00 CET
            utc(2026, 3, 28, 23, 30, 0), // 00:30 CET
            utc(2026, 3, 29, 0, 0, 0),   // 01:00 CET
            utc(2026, 3, 29, 0, 30, 0),  // 01:30 CET
            utc(2026, 3, 29, 1, 0, 0),   // 03:00 CEST
            utc(2026, 3, 29, 1, 30, 0),  // 03:30 CEST
        ]
    );
}

#[test]
fn the_repeated_hour_of_the_october_change() {
    // 2026-10-25: Paris goes from 03:00 CEST back to 02:00 CET (at 01:00 UTC); 02:00-03:00
    // local happens twice. A fixed-time expression runs once (the first 02:30); an expression
    // with steps runs in both passes, so it stays regular in UTC.
    let fixed = Trigger::cron_in("30 2 * * *", "Europe/Paris").unwrap();
    assert_eq!(
        firings(&fixed, utc(2026, 10, 24, 12, 0, 0), 3),
        [
            utc(2026, 10, 25, 0, 30, 0), // 02:30 CEST
            utc(2026, 10, 26, 1, 30, 0), // 02:30 CET
            utc(2026, 10, 27, 1, 30, 0),
        ]
    );
    let halves = Trigger::cron_in("*/30 * * * *", "Europe/Paris").unwrap();
    let got = firings_until(
        &halves,
        utc(2026, 10, 24, 23, 0, 0),
        utc(2026, 10, 25, 2, 30, 0),
    );
    let want: Vec<_> = (0..7)
        .map(|k| utc(2026, 10, 24, 23, 0, 0) + TimeDelta::minutes(30 * k))
        .collect();
    assert_eq!(got, want);
    // Planning from inside the second pass goes on in the second pass.
    assert_eq!(
        halves.next_after(utc(2026, 10, 25, 1, 10, 0)), // 02:10 CET
        Some(utc(2026, 10, 25, 1, 30, 0))
    );
    assert_eq!(
        fixed.next_after(utc(2026, 10, 25, 1, 10, 0)),
        Some(utc(2026, 10, 26, 1, 30, 0))
    );
}

#[test]
fn five_six_and_seven_fields() {
    let five = Trigger::cron("*/15 9-17 * * mon-fri").unwrap();
    assert_eq!(five.expression(), Some("0 */15 9-17 * * mon-fri"));
    assert_eq!(five, Trigger::cron("0 */15 9-17 * * mon-fri").unwrap());
    // A 5-field expression fires on whole minutes, at second 0.
    let next = five.next_after(utc(2026, 3, 27, 9, 7, 42)).unwrap();
    assert_eq!(next, utc(2026, 3, 27, 9, 15, 0));

    let six = Trigger::cron("*/20 * * * * *").unwrap();
    assert_eq!(
        firings(&six, utc(2026, 1, 1, 0, 0, 5), 3),
        [
            utc(2026, 1, 1, 0, 0, 20),
            utc(2026, 1, 1, 0, 0, 40),
            utc(2026, 1, 1, 0, 1, 0)
        ]
    );
    // Sub-second instants: the next whole matching second strictly after.
    let every_second = Trigger::cron("* * * * * *").unwrap();
    let after = utc(2026, 1, 1, 0, 0, 5) + TimeDelta::milliseconds(300);
    assert_eq!(
        every_second.next_after(after),
        Some(utc(2026, 1, 1, 0, 0, 6))
    );

    // Seven fields: seconds first, a year last.
    let once = Trigger::cron("0 0 12 1 1 * 2027").unwrap();
    assert_eq!(
        once.next_after(utc(2026, 3, 1, 0, 0, 0)),
        Some(utc(2027, 1, 1, 12, 0, 0))
    );
    assert_eq!(once.next_after(utc(2027, 1, 1, 12, 0, 0)), None);

    let daily = Trigger::cron("@daily").unwrap();
    assert_eq!(daily.expression(), Some("0 0 0 * * *"));
    assert_eq!(
        daily.to_string(),
        "cron \"0 0 0 * * *\" in the scheduler's zone"
    );
    assert_eq!(
        Trigger::cron_in("0 9 * * *", "Europe/Paris")
            .unwrap()
            .to_string(),
        "cron \"0 0 9 * * *\" in Europe/Paris"
    );
}

#[test]
fn bad_expressions_and_zones_are_typed_errors() {
    for bad in [
        "",
        "* * * *",
        "* * * * * * * *",
        "61 * * * *",
        "* 24 * * *",
        "* * 32 * *",
        "* * * 13 *",
        "* * * * 8",
        "a b c d e",
        "@fortnightly",
        "*/0 * * * *",
        "0 0 12 1 1 * 99999",
    ] {
        match Trigger::cron(bad) {
            Err(TriggerError::InvalidCron { expression, reason }) => {
                assert_eq!(expression, bad);
                assert!(!reason.is_empty());
            }
            other => panic!("`{bad}` gave {other:?}"),
        }
    }
    let err = Trigger::cron("* * * *").unwrap_err();
    assert!(
        err.to_string().contains("`* * * *`") && err.to_string().contains("4 fields"),
        "{err}"
    );

    for zone in [
        "Europe/Pariss",
        "Mars/Olympus",
        "",
        "GMT+25",
        "europe/paris",
    ] {
        match Trigger::cron_in("* * * * *", zone) {
            Err(TriggerError::UnknownTimezone { zone: named }) => assert_eq!(named, zone),
            other => panic!("`{zone}` gave {other:?}"),
        }
    }
    let err = Trigger::cron_in("* * * * *", "Europe/Pariss").unwrap_err();
    assert!(err.to_string().contains("`Europe/Pariss`"), "{err}");

    assert!(matches!(
        Trigger::every(Duration::from_millis(999)),
        Err(TriggerError::InvalidInterval { .. })
    ));
    assert!(matches!(
        Trigger::at_rfc3339("tomorrow"),
        Err(TriggerError::InvalidInstant { .. })
    ));

    // Unknown zones in the options are refused when the service is built, naming the key.
    let err = SchedulerService::new(SchedulerOptions {
        timezone: "Europe/Lutetia".into(),
        ..SchedulerOptions::default()
    })
    .unwrap_err();
    assert!(
        err.to_string().contains("services.scheduler.timezone")
            && err.to_string().contains("Europe/Lutetia")
    );
}

#[test]
fn intervals_and_one_shots() {
    let every = Trigger::every(Duration::from_secs(5)).unwrap();
    // Aligned on the Unix epoch, so every instance computes the same instants.
    assert_eq!(
        every.next_after(utc(2026, 1, 1, 0, 0, 3)),
        Some(utc(2026, 1, 1, 0, 0, 5))
    );
    assert_eq!(
        every.next_after(utc(2026, 1, 1, 0, 0, 5)),
        Some(utc(2026, 1, 1, 0, 0, 10))
    );
    assert_eq!(every.period(), Some(Duration::from_secs(5)));
    assert_eq!(every.to_string(), "every 5s");

    let at = utc(2026, 6, 1, 8, 0, 0);
    let once = Trigger::at(at);
    assert_eq!(once.next_after(at - TimeDelta::seconds(1)), Some(at));
    assert_eq!(once.next_after(at), None);
    assert_eq!(
        Trigger::at_rfc3339("2026-06-01T10:00:00+02:00").unwrap(),
        once
    );
    assert_eq!(once.to_string(), "once at 2026-06-01T08:00:00Z");

    let soon = Trigger::after(Duration::from_secs(60));
    let when = soon.instant().unwrap();
    assert!(
        (when - Utc::now() - TimeDelta::seconds(60))
            .num_seconds()
            .abs()
            <= 1
    );
}

// ---------------------------------------------------------------------------------------------
// Real time, through booted Xcores

/// A plugin that keeps its context (for `ctx.handle::<Scheduler>()`) and counts its `tick` action.
struct Probe {
    ctx: Arc<OnceLock<PluginContext>>,
    ticks: Arc<AtomicU32>,
}

#[async_trait]
impl Actions for Probe {
    fn action_names(&self) -> &'static [&'static str] {
        &["tick"]
    }

    async fn handle(
        &self,
        action: &str,
        payload: Value,
        cx: &CallContext,
    ) -> Result<Value, CallError> {
        match action {
            "tick" => {
                let n = self.ticks.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(json!({ "n": n, "tenant": cx.tenant().as_str(), "payload": payload }))
            }
            other => Err(CallError::unknown_action(other, &["tick"])),
        }
    }
}

#[async_trait]
impl Plugin for Probe {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        let _ = self.ctx.set(ctx.clone());
        Ok(())
    }
}

/// What a test keeps of a probe plugin.
#[derive(Clone)]
struct ProbeHandle {
    ctx: Arc<OnceLock<PluginContext>>,
    ticks: Arc<AtomicU32>,
}

impl ProbeHandle {
    fn ctx(&self) -> &PluginContext {
        self.ctx.get().expect("the probe has loaded")
    }

    fn scheduler(&self) -> Scheduler {
        self.ctx()
            .handle::<Scheduler>()
            .expect("the probe may schedule")
    }
}

fn probe(name: &str, grants: &[&str], services: &[&str]) -> (Manifest, Probe, ProbeHandle) {
    let manifest = Manifest::builder(name, "1.0.0")
        .services(services.iter().copied())
        .permissions(grants.iter().copied())
        .build()
        .unwrap();
    let handle = ProbeHandle {
        ctx: Arc::new(OnceLock::new()),
        ticks: Arc::new(AtomicU32::new(0)),
    };
    let plugin = Probe {
        ctx: handle.ctx.clone(),
        ticks: handle.ticks.clone(),
    };
    (manifest, plugin, handle)
}

const GRANT: &str = "service:scheduler: schedule";

/// Boots an app with a scheduler (`options`) and one probe per name, each allowed to schedule.
async fn boot(
    options: SchedulerOptions,
    names: &[&str],
) -> (TestApp, SchedulerService, Vec<ProbeHandle>) {
    let service = SchedulerService::new(options).unwrap();
    let mut builder = TestApp::builder().service(service.clone());
    let mut handles = Vec::new();
    for name in names {
        let (manifest, plugin, handle) = probe(name, &[GRANT], &["scheduler"]);
        builder = builder.plugin(manifest, plugin);
        handles.push(handle);
    }
    let app = builder.boot().await.unwrap();
    (app, service, handles)
}

/// Waits until the wall clock is `offset` past a whole second.
async fn align(offset: Duration) {
    let now = Utc::now();
    let into = Duration::from_nanos(u64::from(now.nanosecond() % 1_000_000_000));
    let wait = if into <= offset {
        offset - into
    } else {
        Duration::from_secs(1) - into + offset
    };
    tokio::time::sleep(wait).await;
}

/// Scheduled instants and how late each firing started.
#[derive(Clone, Default)]
struct Record(Arc<Mutex<Vec<Firing>>>);

/// A firing's planned instant, and how late it started.
type Firing = (DateTime<Utc>, Duration);

impl Record {
    fn note(&self, scheduled: DateTime<Utc>) {
        let late = (Utc::now() - scheduled).to_std().unwrap_or_default();
        self.0.lock().unwrap().push((scheduled, late));
    }

    fn get(&self) -> Vec<Firing> {
        self.0.lock().unwrap().clone()
    }

    fn check(&self, what: &str) -> Vec<Firing> {
        let got = self.get();
        for (at, late) in &got {
            assert!(
                *late <= TOLERANCE,
                "{what}: the firing of {at} was {late:?} late"
            );
        }
        let worst = got.iter().map(|(_, l)| *l).max().unwrap_or_default();
        println!("{what}: {} firings, latest {worst:?}", got.len());
        got
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_interval_and_one_shot_fire_as_planned() {
    let (app, _, probes) = boot(SchedulerOptions::default(), &["clock"]).await;
    let scheduler = probes[0].scheduler();
    let (cron, every, once, at) = (
        Record::default(),
        Record::default(),
        Record::default(),
        Record::default(),
    );
    align(Duration::from_millis(300)).await;
    let started = Utc::now();
    for (id, trigger, record) in [
        ("cron", Trigger::cron("* * * * * *").unwrap(), &cron),
        (
            "every",
            Trigger::every(Duration::from_secs(2)).unwrap(),
            &every,
        ),
        ("once", Trigger::after(Duration::from_millis(1500)), &once),
        (
            "at",
            Trigger::at(started + TimeDelta::milliseconds(2700)),
            &at,
        ),
    ] {
        let record = record.clone();
        scheduler
            .add(id, trigger, move |job| {
                let record = record.clone();
                async move {
                    assert_eq!(job.plugin(), Some("clock"));
                    record.note(job.scheduled_at());
                    Ok(())
                }
            })
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let ended = Utc::now();

    // Every second, on the second, each one once.
    let got = cron.check("cron * * * * * *");
    let want = firings_until(
        &Trigger::cron("* * * * * *").unwrap(),
        started,
        ended - TimeDelta::milliseconds(1300),
    );
    let seen: Vec<_> = got.iter().map(|(at, _)| *at).collect();
    assert!(want.len() >= 3);
    assert!(
        want.iter().all(|t| seen.contains(t)),
        "want {want:?}, got {seen:?}"
    );
    assert!(seen.iter().all(|t| t.nanosecond() == 0));
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a firing ran twice: {seen:?}");

    // Every 2 s, at even seconds.
    let got = every.check("every 2s");
    assert!(got.len() >= 2, "{got:?}");
    assert!(
        got.iter()
            .all(|(t, _)| t.timestamp() % 2 == 0 && t.nanosecond() == 0)
    );

    // The one-shots, once each, at their instants.
    let got = once.check("after 1.5s");
    assert_eq!(got.len(), 1);
    let got = at.check("at +2.7s");
    assert_eq!(got, [(started + TimeDelta::milliseconds(2700), got[0].1)]);

    // Once fired, a one-shot stays listed with no next run.
    let info = scheduler.get("once").unwrap();
    assert_eq!(info.next_run, None);
    assert_eq!(info.runs, 1);
    assert_eq!(
        info.last_outcome,
        Some(RunOutcome::Succeeded { attempts: 1 })
    );
    let info = scheduler.get("cron").unwrap();
    assert!(info.next_run.unwrap() > Utc::now() - TimeDelta::seconds(1));
    assert!(info.runs >= 3);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_plugins_and_two_tenants_never_collide() {
    let (app, _, probes) = boot(SchedulerOptions::default(), &["alpha", "beta"]).await;
    let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let acme = TenantId::new("acme").unwrap();
    for (probe, tenant) in [
        (&probes[0], None),
        (&probes[1], None),
        (&probes[1], Some(&acme)),
    ] {
        let scheduler = match tenant {
            Some(t) => probe.scheduler().for_tenant(t),
            None => probe.scheduler(),
        };
        let seen = seen.clone();
        scheduler
            .add(
                "cleanup",
                Trigger::cron("* * * * * *").unwrap(),
                move |job| {
                    let seen = seen.clone();
                    async move {
                        assert_eq!(job.call_context().tenant(), job.tenant());
                        let entry = (
                            job.plugin().unwrap().to_owned(),
                            job.tenant().to_string(),
                            job.id().to_owned(),
                        );
                        seen.lock().unwrap().push(entry);
                        Ok(())
                    }
                },
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Each handle sees its own `cleanup` only, under its bare id.
    let alpha = probes[0].scheduler();
    let beta = probes[1].scheduler();
    assert_eq!(alpha.list().len(), 1);
    assert_eq!(alpha.list()[0].id, "cleanup");
    assert_eq!(alpha.list()[0].plugin.as_deref(), Some("alpha"));
    assert_eq!(beta.list().len(), 1);
    assert_eq!(beta.for_tenant(&acme).list()[0].tenant, "acme");
    assert_eq!(beta.list_all().len(), 2);
    assert!(alpha.for_tenant(&acme).list().is_empty());
    assert!(alpha.for_tenant(&acme).get("cleanup").is_none());
    // The host sees all three.
    let all = app.xcore().handle::<Scheduler>().unwrap().list_all();
    let names: Vec<_> = all
        .iter()
        .map(|j| (j.plugin.clone().unwrap(), j.tenant.clone()))
        .collect();
    assert_eq!(
        names,
        [
            ("alpha".into(), "default".into()),
            ("beta".into(), "acme".into()),
            ("beta".into(), "default".into())
        ]
    );
    // All three fired, each as itself.
    let seen = seen.lock().unwrap().clone();
    for who in [("alpha", "default"), ("beta", "default"), ("beta", "acme")] {
        assert!(
            seen.iter()
                .any(|(p, t, id)| (p.as_str(), t.as_str()) == who && id == "cleanup"),
            "{who:?} never fired: {seen:?}"
        );
    }
    // Removing alpha's `cleanup` leaves beta's.
    alpha.remove("cleanup").unwrap();
    assert!(alpha.list().is_empty());
    assert_eq!(beta.list().len(), 1);
    assert!(matches!(
        alpha.remove("cleanup"),
        Err(SchedulerError::UnknownJob { .. })
    ));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_plugin_loses_its_jobs() {
    let (app, service, probes) = boot(SchedulerOptions::default(), &["leaving", "staying"]).await;
    let counts = [Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0))];
    for (probe, count) in probes.iter().zip(&counts) {
        for tenant in ["default", "acme"] {
            let count = count.clone();
            probe
                .scheduler()
                .for_tenant(&TenantId::new(tenant).unwrap())
                .add("tick", Trigger::cron("* * * * * *").unwrap(), move |_| {
                    let count = count.clone();
                    async move {
                        count.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    }
                })
                .await
                .unwrap();
        }
    }
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert!(counts[0].load(Ordering::SeqCst) >= 2);

    // What the container does when `leaving` stops: every service's `on_plugin_stop`.
    service.on_plugin_stop("leaving").await;
    let scheduler = app.xcore().handle::<Scheduler>().unwrap();
    let left: Vec<_> = scheduler
        .list_all()
        .into_iter()
        .map(|j| j.plugin.unwrap())
        .collect();
    assert_eq!(left, ["staying", "staying"]);
    let frozen = counts[0].load(Ordering::SeqCst);
    let before = counts[1].load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        counts[0].load(Ordering::SeqCst),
        frozen,
        "a stopped plugin's job fired"
    );
    assert!(counts[1].load(Ordering::SeqCst) >= before + 2);

    // At shutdown, every plugin's jobs go, and nothing fires afterwards.
    let xcore = app.xcore().clone();
    let report = app.shutdown().await;
    assert!(report.is_clean(), "{report:?}");
    assert!(matches!(
        xcore
            .handle::<Scheduler>()
            .unwrap()
            .add("late", Trigger::after(Duration::from_secs(1)), |_| async {
                Ok(())
            })
            .await,
        Err(SchedulerError::Stopped)
    ));
    let after = counts[1].load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(counts[1].load(Ordering::SeqCst), after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_job_does_not_overlap_itself() {
    let (app, _, probes) = boot(SchedulerOptions::default(), &["slow"]).await;
    let scheduler = probes[0].scheduler();
    let mut most = Vec::new();
    for (id, options) in [
        ("exclusive", JobOptions::new()),
        ("overlapping", JobOptions::new().allow_overlap(true)),
    ] {
        let concurrent = Arc::new(AtomicUsize::new(0));
        let highest = Arc::new(AtomicUsize::new(0));
        most.push(highest.clone());
        scheduler
            .add_with(
                id,
                Trigger::cron("* * * * * *").unwrap(),
                options,
                move |_| {
                    let (concurrent, highest) = (concurrent.clone(), highest.clone());
                    async move {
                        let now = concurrent.fetch_add(1, Ordering::SeqCst) + 1;
                        highest.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(2500)).await;
                        concurrent.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    }
                },
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(5600)).await;
    let exclusive = scheduler.get("exclusive").unwrap();
    let overlapping = scheduler.get("overlapping").unwrap();
    println!("exclusive: {exclusive:?}\noverlapping: {overlapping:?}");
    // 5 or 6 firings: a run every third one, the others skipped.
    assert!(exclusive.runs >= 2 && exclusive.runs <= 3, "{exclusive:?}");
    assert!(exclusive.skips >= 3, "{exclusive:?}");
    assert!(exclusive.running <= 1);
    assert_eq!(
        most[0].load(Ordering::SeqCst),
        1,
        "the exclusive job overlapped itself"
    );
    assert!(most[1].load(Ordering::SeqCst) >= 2);
    assert!(exclusive.runs + exclusive.skips >= 5);
    assert_eq!(overlapping.skips, 0, "{overlapping:?}");
    assert!(overlapping.runs >= 5, "{overlapping:?}");
    assert!(overlapping.running >= 2, "{overlapping:?}");
    let skipped = scheduler
        .list()
        .into_iter()
        .find(|j| j.id == "exclusive")
        .and_then(|j| j.last_outcome);
    assert!(
        matches!(
            skipped,
            Some(RunOutcome::Skipped {
                reason: SkipReason::Overlap
            }) | Some(RunOutcome::Succeeded { .. })
        ),
        "{skipped:?}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_and_panicking_jobs_do_not_stop_the_others() {
    let (app, _, probes) = boot(SchedulerOptions::default(), &["mixed"]).await;
    let scheduler = probes[0].scheduler();
    scheduler
        .add("panics", Trigger::cron("* * * * * *").unwrap(), |_| async {
            panic!("job asked to panic")
        })
        .await
        .unwrap();
    scheduler
        .add("fails", Trigger::cron("* * * * * *").unwrap(), |_| async {
            Err(JobError::msg("disk full"))
        })
        .await
        .unwrap();
    // Panics before returning a future, too.
    scheduler
        .add(
            "panics-early",
            Trigger::cron("* * * * * *").unwrap(),
            |_| -> std::future::Ready<Result<(), JobError>> { panic!("no future for you") },
        )
        .await
        .unwrap();
    let fine = Arc::new(AtomicU32::new(0));
    let count = fine.clone();
    scheduler
        .add("fine", Trigger::cron("* * * * * *").unwrap(), move |_| {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3300)).await;
    assert!(fine.load(Ordering::SeqCst) >= 3);
    for (id, message) in [
        ("panics", "panicked: job asked to panic"),
        ("fails", "disk full"),
        ("panics-early", "panicked: no future for you"),
    ] {
        let info = scheduler.get(id).unwrap();
        assert!(info.failures >= 3 && info.failures == info.runs, "{info:?}");
        match info.last_outcome {
            Some(RunOutcome::Failed { attempts: 1, error }) => assert_eq!(error, message),
            other => panic!("{id}: {other:?}"),
        }
    }
    assert_eq!(app.xcore().health().await.status(), HealthStatus::Healthy);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_backoff_then_success_and_timeouts() {
    let (app, _, probes) = boot(SchedulerOptions::default(), &["retrying"]).await;
    let scheduler = probes[0].scheduler();
    let attempts: Arc<Mutex<Vec<(u32, tokio::time::Instant)>>> = Arc::default();
    let seen = attempts.clone();
    let options = JobOptions::new().retries(3, Duration::from_millis(200));
    scheduler
        .add_with(
            "flaky",
            Trigger::after(Duration::from_millis(200)),
            options,
            move |job| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .unwrap()
                        .push((job.attempt(), tokio::time::Instant::now()));
                    if job.attempt() < 3 {
                        return Err(JobError::msg(format!("attempt {} failed", job.attempt())));
                    }
                    Ok(())
                }
            },
        )
        .await
        .unwrap();
    let timeout = JobOptions::new()
        .timeout(Duration::from_millis(200))
        .retries(1, Duration::from_millis(50));
    scheduler
        .add_with(
            "stuck",
            Trigger::after(Duration::from_millis(200)),
            timeout,
            |job| async move {
                // The deadline travels to the calls the job makes.
                assert!(job.call_context().deadline().is_some());
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let attempts = attempts.lock().unwrap().clone();
    let numbers: Vec<u32> = attempts.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [1, 2, 3]);
    let first_wait = attempts[1].1 - attempts[0].1;
    let second_wait = attempts[2].1 - attempts[1].1;
    assert!(first_wait >= Duration::from_millis(200), "{first_wait:?}");
    assert!(second_wait >= Duration::from_millis(400), "{second_wait:?}");
    let info = scheduler.get("flaky").unwrap();
    assert_eq!(
        info.last_outcome,
        Some(RunOutcome::Succeeded { attempts: 3 })
    );
    assert_eq!((info.runs, info.failures), (1, 0));

    let info = scheduler.get("stuck").unwrap();
    assert_eq!(
        info.last_outcome,
        Some(RunOutcome::Failed {
            attempts: 2,
            error: "timed out after 200ms".into()
        })
    );
    assert_eq!(info.failures, 1);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume() {
    let (app, _, probes) = boot(SchedulerOptions::default(), &["pausing"]).await;
    let scheduler = probes[0].scheduler();
    let count = Arc::new(AtomicU32::new(0));
    let c = count.clone();
    scheduler
        .add("tick", Trigger::cron("* * * * * *").unwrap(), move |_| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(count.load(Ordering::SeqCst) >= 1);

    scheduler.pause("tick").unwrap();
    let info = scheduler.get("tick").unwrap();
    assert!(info.paused && info.next_run.is_none());
    // A run in progress is not stopped; let it end.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let paused_at = count.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        count.load(Ordering::SeqCst),
        paused_at,
        "a paused job fired"
    );

    scheduler.resume("tick").await.unwrap();
    assert!(scheduler.get("tick").unwrap().next_run.is_some());
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(count.load(Ordering::SeqCst) >= paused_at + 2);
    // Resuming a running job does nothing; unknown and malformed ids are errors.
    scheduler.resume("tick").await.unwrap();
    assert!(matches!(
        scheduler.pause("nope"),
        Err(SchedulerError::UnknownJob { .. })
    ));
    assert!(matches!(
        scheduler.resume("nope").await,
        Err(SchedulerError::UnknownJob { .. })
    ));
    assert!(matches!(
        scheduler.pause("a:b"),
        Err(SchedulerError::InvalidJobId { .. })
    ));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_checks_ids_and_triggers() {
    let (app, _, probes) = boot(SchedulerOptions::default(), &["checked"]).await;
    let scheduler = probes[0].scheduler();
    let noop = |_| async { Ok(()) };
    for bad in ["", "a:b", "with space", &"x".repeat(129)] {
        assert!(matches!(
            scheduler
                .add(bad, Trigger::cron("* * * * *").unwrap(), noop)
                .await,
            Err(SchedulerError::InvalidJobId { .. })
        ));
    }
    let past = Trigger::at(Utc::now() - TimeDelta::seconds(5));
    let err = scheduler.add("past", past, noop).await.unwrap_err();
    assert!(matches!(err, SchedulerError::NeverFires { .. }), "{err}");
    let never = Trigger::cron("0 0 0 30 2 *").unwrap(); // 30 February
    assert!(matches!(
        scheduler.add("never", never, noop).await,
        Err(SchedulerError::NeverFires { .. })
    ));
    assert!(scheduler.list().is_empty());

    // Adding the same id again replaces the job.
    scheduler
        .add("daily", Trigger::cron("0 3 * * *").unwrap(), noop)
        .await
        .unwrap();
    scheduler
        .add("daily", Trigger::cron("0 4 * * *").unwrap(), noop)
        .await
        .unwrap();
    let jobs = scheduler.list();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].trigger, "cron \"0 0 4 * * *\" in UTC");
    assert_eq!(jobs[0].next_run.unwrap().hour(), 4);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_zone_applies_to_cron_triggers_without_one() {
    let options = SchedulerOptions {
        timezone: "Asia/Kolkata".into(), // UTC+05:30, no daylight saving
        ..SchedulerOptions::default()
    };
    let (app, _, probes) = boot(options, &["zoned"]).await;
    let scheduler = probes[0].scheduler();
    scheduler
        .add("noon", Trigger::cron("0 12 * * *").unwrap(), |_| async {
            Ok(())
        })
        .await
        .unwrap();
    let info = scheduler.get("noon").unwrap();
    assert_eq!(info.trigger, "cron \"0 0 12 * * *\" in Asia/Kolkata");
    let next = info.next_run.unwrap();
    assert_eq!((next.hour(), next.minute()), (6, 30));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduling_needs_the_service_declared_and_the_grant() {
    let service = SchedulerService::new(SchedulerOptions::default()).unwrap();
    let (m1, p1, without_grant) = probe("nogrant", &["service:scheduler: other"], &["scheduler"]);
    let (m2, p2, undeclared) = probe("undeclared", &[GRANT], &[]);
    let (m3, p3, denied) = probe(
        "denied",
        &["service:scheduler: *", "!service:scheduler: schedule"],
        &["scheduler"],
    );
    let (m4, p4, star) = probe("star", &["service:scheduler: *"], &["scheduler"]);
    let app = TestApp::builder()
        .service(service)
        .plugin(m1, p1)
        .plugin(m2, p2)
        .plugin(m3, p3)
        .plugin(m4, p4)
        .boot()
        .await
        .unwrap();
    for (handle, who) in [(&without_grant, "nogrant"), (&denied, "denied")] {
        match handle.ctx().handle::<Scheduler>() {
            Err(AccessError::PermissionDenied {
                plugin,
                resource,
                action,
            }) => {
                assert_eq!(
                    (plugin.as_str(), resource.as_str(), action.as_str()),
                    (who, "service:scheduler", "schedule")
                );
            }
            other => panic!("{who}: {other:?}"),
        }
    }
    assert!(matches!(
        undeclared.ctx().handle::<Scheduler>(),
        Err(AccessError::NotDeclared { .. })
    ));
    assert!(star.ctx().handle::<Scheduler>().is_ok());
    assert!(!app.xcore().audit().denials(Some("nogrant"), 10).is_empty());
    // The error converts into a call error with the `permission_denied` code.
    let err: CallError = without_grant
        .ctx()
        .handle::<Scheduler>()
        .unwrap_err()
        .into();
    assert_eq!(err.code(), xcore::ErrorCode::PermissionDenied);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_jobs_call_plugin_actions_as_the_host() {
    let in_a_second = (Utc::now() + TimeDelta::milliseconds(1800)).to_rfc3339();
    let options = SchedulerOptions {
        jobs: vec![
            ConfigJob {
                id: "beat".into(),
                plugin: "target".into(),
                action: "tick".into(),
                payload: json!({ "from": "config" }),
                cron: Some("* * * * * *".into()),
                every: None,
                at: None,
                timezone: Some("Europe/Paris".into()),
                tenant: Some("acme".into()),
                timeout: Some(Duration::from_secs(1)),
            },
            ConfigJob {
                id: "once".into(),
                plugin: "target".into(),
                action: "tick".into(),
                payload: json!({}),
                cron: None,
                every: None,
                at: Some(in_a_second),
                timezone: None,
                tenant: None,
                timeout: None,
            },
            ConfigJob {
                id: "gone".into(),
                plugin: "target".into(),
                action: "tick".into(),
                payload: json!({}),
                cron: None,
                every: None,
                at: Some("2020-01-01T00:00:00Z".into()),
                timezone: None,
                tenant: None,
                timeout: None,
            },
        ],
        ..SchedulerOptions::default()
    };
    let service = SchedulerService::new(options).unwrap();
    let (manifest, plugin, target) = probe("target", &[], &[]);
    let app = TestApp::builder()
        .service(service)
        .plugin(manifest, plugin)
        .boot()
        .await
        .unwrap();
    // Config jobs call through the Xcore the scheduler learns when a handle is first obtained.
    let scheduler = app.xcore().handle::<Scheduler>().unwrap();
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert!(target.ticks.load(Ordering::SeqCst) >= 3);
    let jobs = scheduler.list_all();
    let ids: Vec<_> = jobs
        .iter()
        .map(|j| (j.id.as_str(), j.tenant.as_str(), j.plugin.is_none()))
        .collect();
    // The past one-shot is left out.
    assert_eq!(ids, [("beat", "acme", true), ("once", "default", true)]);
    assert!(
        jobs.iter().all(|j| j.failures == 0 && j.runs >= 1),
        "{jobs:?}"
    );

    // Bad config jobs are refused when the service is built, naming the job and the key.
    for (job, needle) in [
        (
            json!({ "id": "x", "plugin": "p", "action": "a" }),
            "no trigger",
        ),
        (
            json!({ "id": "x", "plugin": "p", "action": "a", "cron": "* * * * *", "every": "5s" }),
            "several triggers",
        ),
        (
            json!({ "id": "x", "plugin": "p", "action": "a", "cron": "* * *" }),
            "`* * *`",
        ),
        (
            json!({ "id": "x", "plugin": "p", "action": "a", "cron": "* * * * *", "timezone": "Nowhere" }),
            "`Nowhere`",
        ),
        (
            json!({ "id": "x", "plugin": "p", "action": "a", "at": "soon" }),
            "`soon`",
        ),
        (
            json!({ "id": "x:y", "plugin": "p", "action": "a", "every": "5s" }),
            "invalid job id",
        ),
        (
            json!({ "id": "x", "plugin": "p", "action": "a", "every": "5s", "tenant": "Acme" }),
            "`tenant`",
        ),
    ] {
        let options: SchedulerOptions = serde_json::from_value(json!({ "jobs": [job] })).unwrap();
        let err = SchedulerService::new(options).unwrap_err().to_string();
        assert!(
            err.contains("services.scheduler.jobs[0]") && err.contains(needle),
            "{err}"
        );
    }
    let _ = app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_scheduler_registers_but_never_fires_and_health_counts() {
    let options = SchedulerOptions {
        enabled: false,
        ..SchedulerOptions::default()
    };
    let (app, _, probes) = boot(options, &["idle"]).await;
    let fired = Arc::new(AtomicU32::new(0));
    let f = fired.clone();
    probes[0]
        .scheduler()
        .add("tick", Trigger::cron("* * * * * *").unwrap(), move |_| {
            let f = f.clone();
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fired.load(Ordering::SeqCst), 0);
    let health = app.xcore().health().await;
    let line = health
        .nodes()
        .iter()
        .find(|n| n.node().name() == "scheduler")
        .unwrap();
    let message = line.health().message().unwrap();
    assert!(
        message.starts_with("disabled") && message.contains("1 jobs"),
        "{message}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_handle_before_boot_and_without_the_service() {
    let xcore = Xcore::builder().without_registered().build().unwrap();
    xcore.boot().await.unwrap();
    assert!(matches!(
        xcore.handle::<Scheduler>(),
        Err(SchedulerError::Unavailable { .. })
    ));
    xcore.shutdown().await;
}

/// A hand-written plugin declaring `jobs` (as `#[job]` would), which schedules a job of its own
/// named `daily` in `on_start`.
struct Declarer {
    jobs: &'static [DeclaredJob],
}

#[async_trait]
impl Actions for Declarer {
    fn action_names(&self) -> &'static [&'static str] {
        &["tick"]
    }

    fn declarations(&self) -> Declarations {
        Declarations::new().with(self.jobs)
    }

    async fn handle(
        &self,
        action: &str,
        _payload: Value,
        _cx: &CallContext,
    ) -> Result<Value, CallError> {
        match action {
            "tick" => Ok(Value::Null),
            other => Err(CallError::unknown_action(other, &["tick"])),
        }
    }
}

#[async_trait]
impl Plugin for Declarer {
    async fn on_start(&self, ctx: &PluginContext) -> Result<(), PluginError> {
        ctx.handle::<Scheduler>()
            .map_err(PluginError::msg)?
            .add(
                "daily",
                Trigger::every(Duration::from_secs(60)).unwrap(),
                |_| async { Ok(()) },
            )
            .await
            .map_err(PluginError::msg)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_jobs_are_checked_and_registered_when_the_plugin_starts() {
    const fn job(
        id: &'static str,
        cron: Option<&'static str>,
        every: Option<&'static str>,
        zone: Option<&'static str>,
    ) -> DeclaredJob {
        DeclaredJob::new(id, "tick", cron, every, zone)
    }
    static GOOD: [DeclaredJob; 3] = [
        job("daily", Some("0 3 * * *"), None, None),
        job("paris", Some("0 9 * * *"), None, Some("Europe/Paris")),
        job("hourly", None, Some("1h"), None),
    ];
    static BAD: [(&str, &[DeclaredJob], &str); 6] = [
        (
            "both",
            &[job("x", Some("* * * * *"), Some("1s"), None)],
            "two schedules",
        ),
        ("neither", &[job("x", None, None, None)], "no schedule"),
        (
            "soon",
            &[job("x", None, Some("soon"), None)],
            "invalid duration `soon`",
        ),
        (
            "colon",
            &[job("a:b", None, Some("1s"), None)],
            "invalid job id `a:b`",
        ),
        (
            "never",
            &[job("x", Some("0 0 0 30 2 *"), None, None)],
            "would never fire",
        ),
        (
            "twice",
            &[
                job("x", None, Some("1s"), None),
                job("x", None, Some("2s"), None),
            ],
            "the same id",
        ),
    ];
    let options = SchedulerOptions {
        timezone: "Asia/Kolkata".into(),
        ..SchedulerOptions::default()
    };
    let manifest = |name: &str| {
        Manifest::builder(name, "1.0.0")
            .services(["scheduler"])
            .permissions([GRANT])
            .build()
            .unwrap()
    };
    let mut builder = TestApp::builder()
        .service(SchedulerService::new(options).unwrap())
        .plugin(manifest("good"), Declarer { jobs: &GOOD });
    for (name, jobs, _) in &BAD {
        builder = builder.plugin(manifest(name), Declarer { jobs });
    }
    let app = builder.boot().await.unwrap();

    // The declared `daily` replaced the one the plugin added in `on_start`; a cron without a
    // zone takes the scheduler's.
    let jobs = app.xcore().handle::<Scheduler>().unwrap().list_all();
    let got: Vec<_> = jobs
        .iter()
        .map(|j| {
            (
                j.plugin.as_deref().unwrap(),
                j.id.as_str(),
                j.trigger.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("good", "daily", "cron \"0 0 3 * * *\" in Asia/Kolkata"),
            ("good", "hourly", "every 3600s"),
            ("good", "paris", "cron \"0 0 9 * * *\" in Europe/Paris"),
        ]
    );
    for (name, _, needle) in &BAD {
        let node = app.report().plugin(name).unwrap();
        assert_eq!(node.state(), xcore::NodeState::Failed, "{name}");
        let reason = node.reason().unwrap();
        assert!(
            reason.contains(&format!("of plugin `{name}`")) && reason.contains(needle),
            "{name}: {reason}"
        );
    }
    app.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Several instances over Redis

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_run_each_firing_exactly_once() {
    let Ok(redis) = RedisServer::start().await else {
        return;
    };
    let client = redis::Client::open(redis.url()).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    let prefix = format!("sched-test-{}-{}", std::process::id(), fastrand_u64());
    let lock = LockOptions {
        prefix: format!("{prefix}:lock"),
        ttl: Duration::from_secs(30),
        ..LockOptions::new(redis.url())
    };
    let mut apps = Vec::new();
    let runs: Vec<Arc<AtomicU64>> = (0..3).map(|_| Arc::new(AtomicU64::new(0))).collect();
    for run_count in &runs {
        let options = SchedulerOptions {
            lock: Some(lock.clone()),
            shutdown_timeout: Duration::from_secs(1),
            ..SchedulerOptions::default()
        };
        let (app, _, probes) = boot(options, &["ticker"]).await;
        let (conn, prefix, run_count) = (conn.clone(), prefix.clone(), run_count.clone());
        probes[0]
            .scheduler()
            .add("tick", Trigger::cron("* * * * * *").unwrap(), move |job| {
                let (mut conn, prefix, run_count) =
                    (conn.clone(), prefix.clone(), run_count.clone());
                async move {
                    let key = format!("{prefix}:count:{}", job.scheduled_at().timestamp());
                    let _: i64 = redis::cmd("INCR").arg(&key).query_async(&mut conn).await?;
                    run_count.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            })
            .await
            .unwrap();
        apps.push(app);
    }
    let started = Utc::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    // The instance that ran the most firings so far goes away half-way.
    let busiest = (0..3)
        .max_by_key(|&i| runs[i].load(Ordering::SeqCst))
        .unwrap();
    let third = apps.remove(busiest);
    let third_scheduler = third.xcore().handle::<Scheduler>().unwrap();
    let third_info = third_scheduler.list_all()[0].clone();
    assert!(third_info.runs >= 1, "{third_info:?}");
    third.shutdown().await;
    let stopped = Utc::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ended = Utc::now();
    let infos: Vec<_> = apps
        .iter()
        .map(|a| a.xcore().handle::<Scheduler>().unwrap().list_all()[0].clone())
        .collect();
    for app in apps {
        app.shutdown().await;
    }

    // Every firing of the window ran exactly once: a count of 1 per second, none missing.
    let mut counts = BTreeMap::new();
    let mut conn = conn.clone();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:count:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    for key in keys {
        let count: i64 = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let second: i64 = key.rsplit(':').next().unwrap().parse().unwrap();
        counts.insert(second, count);
    }
    println!("counts per firing: {counts:?}");
    println!("the instance stopped half-way: {third_info:?}");
    for info in &infos {
        println!(
            "instance: runs {}, elsewhere {}, skips {}",
            info.runs, info.elsewhere, info.skips
        );
    }
    assert!(
        counts.values().all(|c| *c == 1),
        "a firing ran more than once: {counts:?}"
    );
    let first = started.timestamp() + 2;
    let last = ended.timestamp() - 1;
    let missing: Vec<i64> = (first..=last).filter(|s| !counts.contains_key(s)).collect();
    assert!(
        missing.is_empty(),
        "firings missing: {missing:?} (an instance stopped at {stopped})"
    );
    assert!(last - first >= 7);
    let total: u64 = runs.iter().map(|r| r.load(Ordering::SeqCst)).sum();
    assert_eq!(total as usize, counts.len());
    // More than one instance took part, and after the third stopped the others ran it all.
    assert!(
        runs.iter().filter(|r| r.load(Ordering::SeqCst) > 0).count() >= 2,
        "{runs:?}"
    );
    assert!(infos.iter().all(|i| i.skips == 0));
    assert!(third_info.runs + third_info.elsewhere >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_outage_skips_firings_and_degrades_health() {
    let Ok(redis) = RedisServer::start_local().await else {
        return;
    };
    let options = SchedulerOptions {
        lock: Some(LockOptions {
            prefix: format!("outage-{}", fastrand_u64()),
            command_timeout: Duration::from_millis(300),
            ..LockOptions::new(redis.url())
        }),
        ..SchedulerOptions::default()
    };
    let (app, _, probes) = boot(options, &["outage"]).await;
    let scheduler = probes[0].scheduler();
    let count = Arc::new(AtomicU32::new(0));
    let c = count.clone();
    scheduler
        .add("tick", Trigger::cron("* * * * * *").unwrap(), move |_| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(count.load(Ordering::SeqCst) >= 1);
    redis.stop().unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let info = scheduler.get("tick").unwrap();
    assert!(info.skips >= 1, "{info:?}");
    assert!(matches!(
        info.last_outcome,
        Some(RunOutcome::Skipped {
            reason: SkipReason::LockUnavailable { .. }
        })
    ));
    let health = app.xcore().health().await;
    assert_eq!(health.status(), HealthStatus::Degraded, "{health:?}");
    // Back: firings run again.
    redis.restart().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let info = scheduler.get("tick").unwrap();
    assert!(
        matches!(info.last_outcome, Some(RunOutcome::Succeeded { .. })),
        "{info:?}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_unsupported_lock_fails_the_boot() {
    // An unreachable Redis lock, or Postgres lock, fails the boot.
    for (url, named) in [
        ("redis://127.0.0.1:1/0", "scheduler"),
        ("postgres://postgres@127.0.0.1:1/app", "127.0.0.1:1"),
    ] {
        let options = SchedulerOptions {
            lock: Some(LockOptions {
                command_timeout: Duration::from_millis(300),
                ..LockOptions::new(url)
            }),
            ..SchedulerOptions::default()
        };
        let service = SchedulerService::new(options).unwrap();
        let err = TestApp::builder()
            .service(service)
            .boot()
            .await
            .unwrap_err();
        assert!(err.to_string().contains(named), "{url}: {err}");
    }
    // A URL of no known server is refused when the service is built.
    let options = SchedulerOptions {
        lock: Some(LockOptions::new("mysql://localhost/app")),
        ..SchedulerOptions::default()
    };
    let err = SchedulerService::new(options).unwrap_err().to_string();
    assert!(err.contains("a Postgres URL"), "{err}");
    let options = SchedulerOptions {
        lock: Some(LockOptions {
            ttl: Duration::from_millis(10),
            ..LockOptions::new("redis://127.0.0.1/0")
        }),
        ..SchedulerOptions::default()
    };
    let err = SchedulerService::new(options).unwrap_err().to_string();
    assert!(err.contains("services.scheduler.lock.ttl"), "{err}");
}

fn fastrand_u64() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ N.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_removing_and_pausing_a_job_leave_one_pending_firing_at_most() {
    let xcore = Xcore::builder()
        .without_registered()
        .service(SchedulerService::new(SchedulerOptions::default()).unwrap())
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    let host = xcore.handle::<Scheduler>().unwrap();
    let one = |jobs, pending_firings, armed_seconds| {
        let stats = host.stats();
        assert_eq!(
            (stats.jobs, stats.pending_firings, stats.armed_seconds),
            (jobs, pending_firings, armed_seconds)
        );
    };
    // The example's daily report, re-added on every registration: one job, one firing, one
    // armed second, however many times it is replaced.
    let daily = Trigger::cron("0 0 9 * * *").unwrap();
    const REPLACEMENTS: usize = 100_000;
    for _ in 0..REPLACEMENTS {
        host.add("daily-report", daily.clone(), |_| async { Ok(()) })
            .await
            .unwrap();
    }
    one(1, 1, 1);
    // Replaced by firings in a different second each time: the emptied seconds are disarmed.
    let now = Utc::now();
    for i in 0..1_000 {
        let at = now + TimeDelta::hours(1) + TimeDelta::seconds(i);
        host.add("daily-report", Trigger::at(at), |_| async { Ok(()) })
            .await
            .unwrap();
        one(1, 1, 1);
    }
    // Paused: nothing pending; resumed: one again; removed: nothing left.
    host.pause("daily-report").unwrap();
    one(1, 0, 0);
    host.resume("daily-report").await.unwrap();
    one(1, 1, 1);
    for _ in 0..100 {
        host.pause("daily-report").unwrap();
        host.resume("daily-report").await.unwrap();
    }
    one(1, 1, 1);
    host.remove("daily-report").unwrap();
    one(0, 0, 0);

    // A job replaced while it fires every second still fires, once per second, as the last
    // version.
    let runs = Arc::new(AtomicU32::new(0));
    for version in 0..1_000u32 {
        let runs = runs.clone();
        host.add("tick", Trigger::cron("* * * * * *").unwrap(), move |_| {
            let runs = runs.clone();
            async move {
                assert_eq!(version, 999, "a replaced version fired");
                runs.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .await
        .unwrap();
    }
    one(1, 1, 1);
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let fired = runs.load(Ordering::SeqCst);
    assert!((1..=3).contains(&fired), "fired {fired} times in 2.6 s");
    assert_eq!(
        host.get("tick").unwrap().last_outcome,
        Some(RunOutcome::Succeeded { attempts: 1 })
    );
    // Between its second's wake-up and its instant, a firing is taken out of the table.
    let stats = host.stats();
    assert!(
        stats.pending_firings <= 1 && stats.armed_seconds <= 1,
        "{stats:?}"
    );
    xcore.shutdown().await;
}
