//! The scheduler (feature `scheduler`, on by default): cron, interval and one-shot jobs of
//! plugins and of the host, per plugin and tenant, on
//! [tokio-cron-scheduler](https://docs.rs/tokio-cron-scheduler/0.15).
//!
//! The pieces:
//! - [`SchedulerService`], the `scheduler` service a host registers, built from
//!   [`SchedulerOptions`] (the `services.scheduler` section of the config);
//! - [`Scheduler`], the handle a plugin gets with `ctx.handle::<Scheduler>()`, or bound to a
//!   call with `cx.handle::<Scheduler>().await` ([`plugin::handle`](crate::plugin::handle); grant
//!   `service:scheduler: schedule`) and the host with `xcore.handle::<Scheduler>()`:
//!   `add`, `list`, `pause`, `resume`, `remove`, `for_tenant`, and for jobs shared by every
//!   instance `share`, `pause_shared`, `resume_shared`, `unshare` ([`SharedJob`]);
//! - [`Trigger`] (cron in a time zone, interval, one-shot) and [`Trigger::next_after`], the one
//!   function that plans every firing;
//! - [`JobOptions`] (overlap, retries with exponential backoff, timeout), [`JobContext`] (what
//!   a job receives), [`JobError`] (what it returns), [`JobInfo`] (what `list` shows).
//!
//! # Planning and timing
//!
//! tokio-cron-scheduler turns a job's time zone into a fixed UTC offset when the job is created,
//! so its cron jobs drift by an hour after a daylight-saving change. So the scheduler plans each
//! firing itself with [`Trigger::next_after`] in a real `chrono-tz` zone, arms it as a
//! tokio-cron-scheduler one-shot job (one per second that holds firings), and, when a firing
//! runs, plans and arms the next one. tokio-cron-scheduler polls every 500 ms in whole seconds,
//! so each one-shot wakes a second early and the firing then waits for its exact instant with a
//! tokio timer: **a firing is never early; it is late by about a millisecond when it was armed
//! at least ~1.5 s ahead (every firing of a recurring job but the first), and by up to ~500 ms
//! (the poll) otherwise.** Under load, add the time it takes to start every run of one instant:
//! with 10,000 jobs firing on the same second, the last starts about 15 ms after it on 2 cores
//! (`benches/scheduler.rs`; bare tokio timers: about 7 ms). Firings missed while the process was
//! stalled are not caught up: the job goes on from its next instant after now.
//!
//! # Several instances
//!
//! With `lock` configured (Redis or Postgres, below), every instance plans the same instants (cron and interval
//! triggers are pure functions of the clock: intervals count from the Unix epoch), and before
//! running a firing claims it in Redis (`SET <prefix>:fire:<plugin>:<tenant>:<id>:<instant>
//! <token> NX PX <ttl>`): exactly one instance runs each firing, and while one instance is down
//! the others run them all. A job that does not allow overlap also holds a running mark while
//! it runs, released with a compare-and-delete script, so that no two instances run it at
//! once. If Redis cannot be reached, firings are skipped (never run twice) and the service
//! reports itself degraded. Counts in [`JobInfo`] are per instance.
//!
//! The lock may be on Postgres instead (`lock.url: postgres://…`, feature `postgres`): a
//! Postgres-only deployment needs no Redis. Same semantics, in two tables named from the
//! prefix (`xcore_scheduler_firings`: one row per claimed firing, deleted after its TTL by
//! later claims of the job; `xcore_scheduler_running`: the running marks), each claim one
//! transaction under a per-job advisory lock.
//!
//! # Shared jobs
//!
//! Jobs added with [`Scheduler::add`] live on the instance that added them. A job whose
//! definition is data, a [`SharedJob`] (trigger: cron in a zone, interval or instant; overlap,
//! retries, timeout; the plugin action it calls as the host and its JSON payload; the
//! handle's tenant), can instead be *shared*: [`Scheduler::share`] stores it in the lock's
//! server, and every instance applies it. With the per-firing lock, each firing then runs
//! once cluster-wide. A plugin's handle shares jobs calling its own actions; the host's names
//! the plugin. The handle's grant (`service:scheduler: schedule`) applies as for `add`.
//!
//! | operation | stored in | applied on every instance |
//! |---|---|---|
//! | [`share`](Scheduler::share) (add or replace; a replaced job is unpaused) | Postgres: a row of `<prefix>_jobs` (`xcore_scheduler_jobs`: key, owner, JSON record with a random revision, `paused`, `updated_at`); Redis: a field of the hash `<prefix>:jobs`, the owner's set `<prefix>:jobs:owner:<owner>` | here before the call returns; elsewhere at the change notification (`NOTIFY <prefix>_jobs` / `PUBLISH <prefix>:jobs:changed`, sent in the write's transaction or script): within milliseconds; at the latest at the next resync |
//! | [`pause_shared`](Scheduler::pause_shared), [`resume_shared`](Scheduler::resume_shared) | `paused` column / the hash `<prefix>:jobs:paused` | as above; a run in progress goes on; resuming plans from now |
//! | [`unshare`](Scheduler::unshare) | row / field deleted | as above: removed; a run in progress goes on |
//! | an instance starts, or missed a notification (its listening connection was lost; it listens again with a backoff up to 2 s) | — | every instance reloads every definition at start (once its plugins have started) and every `services.scheduler.shared.resync` (5 s by default): it converges within that delay |
//!
//! - **Checked before storing**, nothing stored on error: the id, the trigger (a bad cron
//!   expression is [`SchedulerError::Trigger`]; a one-shot in the past
//!   [`SchedulerError::NeverFires`]), the plugin called ([`SchedulerError::InvalidSharedJob`]),
//!   the payload, at most `shared.max_payload` bytes serialized (64 KiB;
//!   [`SchedulerError::PayloadTooLarge`]), and at most `shared.max_per_owner` shared jobs per
//!   owner, every tenant together (100; [`SchedulerError::TooManySharedJobs`]): the count and
//!   the write are one transaction (Postgres, under an advisory lock per owner) or one script
//!   (Redis).
//! - **Where they run**: an instance applies a job once the plugin it calls runs there (a
//!   starting plugin wakes a sync); they show in [`Scheduler::list`] like other jobs, with
//!   this instance's counts and [`JobInfo::shared`] set. A one-shot stays stored after its
//!   instant (and counts towards the bound) until it is unshared. A local
//!   [`remove`](Scheduler::remove) or [`pause`](Scheduler::pause) of a shared job, or a local
//!   `add` under its id, lasts until the next sync, which restores the stored definition:
//!   change shared jobs with the shared operations.
//! - **Delays**: through the notification, about 20 ms on loopback (`tests/scale_jobs.rs`
//!   prints it); without it, at most `resync` plus one read of the store. A firing
//!   already claimed when a pause or an unshare arrives still runs.
//! - **Store unreachable**: `share`, `pause_shared`, `resume_shared` and `unshare` fail with
//!   [`SchedulerError::Store`] and change nothing (a call error `unavailable` naming no
//!   server); the service reports itself degraded; the jobs already applied on each
//!   instance keep their schedule (with the lock on the same server, their firings are
//!   skipped meanwhile, never run twice); the next sync after the server is back applies
//!   whatever changed. On Redis, definitions live as long as Redis keeps its data: give it
//!   persistence (AOF or RDB), or a restart loses them (every instance then removes them).
//!   On Postgres they are durable.
//!
//! # Jobs declared by plugins
//!
//! A plugin declares jobs with `#[job(cron = "…")]` or `#[job(every = "30s")]` on methods of
//! its `#[actions]` block: each is a [`DeclaredJob`], which travels in the plugin's
//! [`Declarations`](crate::plugin::Declarations) ([`Actions::declarations`](crate::Actions::declarations);
//! the type exists without the `scheduler` feature, so that `#[job]` always compiles). When the plugin has started,
//! the scheduler registers them under the plugin's namespace and the tenant `default`
//! (`<plugin>:default:<id>`: they show in its [`Scheduler::list`], a job the plugin added
//! itself under the same id is replaced); each firing calls the action as the host, with the
//! payload `null`, through the plugin's call pipeline, as config jobs do. They are removed
//! when the plugin stops. The plugin must declare `services = ["scheduler"]` and hold
//! `service:scheduler: schedule` (a refused grant is audited); otherwise, or if an expression,
//! interval or zone is invalid, the plugin fails to start with a reason naming what to add to
//! its manifest or the job at fault, and is stopped again.
//!
//! # Jobs from the config
//!
//! `services.scheduler.jobs` lists jobs that call a plugin's action as the host when they fire
//! (see [`SchedulerOptions`]). They are registered when the service starts, as host jobs
//! (`@host:<tenant>:<id>`), and removed when the plugin they call stops. They call through the
//! `Xcore` the service belongs to, which the service learns the first time a handle is
//! obtained from it (`xcore.handle::<Scheduler>()` or any plugin's
//! `ctx.handle::<Scheduler>()`): a host that relies on config
//! jobs only calls `xcore.handle::<Scheduler>()` once after boot.

mod declared_job;
mod options;

pub use declared_job::DeclaredJob;
pub use options::{ConfigJob, LockOptions, SchedulerOptions, SharedJobsOptions};

#[cfg(feature = "scheduler")]
mod access;
#[cfg(feature = "scheduler")]
mod alarm;
#[cfg(feature = "scheduler")]
mod config_jobs;
#[cfg(feature = "scheduler")]
mod cron;
#[cfg(feature = "scheduler")]
mod declared_jobs;
#[cfg(feature = "scheduler")]
mod engine;
#[cfg(feature = "scheduler")]
mod entry;
#[cfg(feature = "scheduler")]
mod error;
#[cfg(feature = "scheduler")]
mod handle;
#[cfg(feature = "scheduler")]
mod info;
#[cfg(feature = "scheduler")]
mod job;
#[cfg(feature = "scheduler")]
mod key;
#[cfg(feature = "scheduler")]
mod lock;
#[cfg(all(feature = "scheduler", feature = "postgres"))]
mod lock_postgres;
#[cfg(all(feature = "scheduler", feature = "redis"))]
mod lock_redis;
#[cfg(feature = "scheduler")]
mod run;
#[cfg(feature = "scheduler")]
mod service;
#[cfg(feature = "scheduler")]
mod shared;
#[cfg(feature = "scheduler")]
mod shared_job;
#[cfg(feature = "scheduler")]
mod trigger;
#[cfg(feature = "scheduler")]
mod zone;

#[cfg(feature = "scheduler")]
pub use error::{SchedulerError, TriggerError};
#[cfg(feature = "scheduler")]
pub use handle::Scheduler;
#[cfg(feature = "scheduler")]
pub use info::{JobInfo, RunOutcome, SchedulerStats, SkipReason};
#[cfg(feature = "scheduler")]
pub use job::{JobContext, JobError, JobOptions};
#[cfg(feature = "scheduler")]
pub use key::MAX_JOB_ID_LEN;
#[cfg(feature = "scheduler")]
pub use service::SchedulerService;
#[cfg(feature = "scheduler")]
pub use shared_job::SharedJob;
#[cfg(feature = "scheduler")]
pub use trigger::{MIN_INTERVAL, Trigger};

/// chrono, as the scheduler uses it: [`Trigger::at`] and [`JobInfo`] speak `DateTime<Utc>`.
#[cfg(feature = "scheduler")]
pub use chrono;
/// chrono-tz, the IANA time zones cron triggers are read in.
#[cfg(feature = "scheduler")]
pub use chrono_tz;
