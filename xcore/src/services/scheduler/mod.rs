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
//!   `add`, `list`, `pause`, `resume`, `remove`, `for_tenant`;
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
//! With `lock` configured (Redis), every instance plans the same instants (cron and interval
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
