//! What [`Scheduler::list`](super::Scheduler::list) tells about a job: [`JobInfo`],
//! [`RunOutcome`], [`SkipReason`]; what [`Scheduler::stats`](super::Scheduler::stats) tells
//! about the whole service: [`SchedulerStats`].

use chrono::{DateTime, Utc};
use serde::Serialize;

/// How the last firing of a job went on this instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunOutcome {
    /// An attempt succeeded.
    Succeeded {
        /// How many attempts it took.
        attempts: u32,
    },
    /// Every attempt failed (an error, a panic, a timeout, or a cancellation at shutdown).
    Failed {
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        error: String,
    },
    /// The firing did not run.
    Skipped {
        /// Why.
        reason: SkipReason,
    },
}

/// Why a firing was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SkipReason {
    /// The previous run was still running and the job does not allow overlap.
    Overlap,
    /// The lock server could not be asked, so the firing did not run (rather than risk
    /// running twice).
    LockUnavailable {
        /// The error.
        error: String,
    },
    /// The firing came later than the lock TTL after its instant (the process was stalled):
    /// its claim may have expired, so running it could run it twice.
    TooLate,
}

/// One job, as [`Scheduler::list`](super::Scheduler::list) shows it. Counts are this
/// instance's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct JobInfo {
    /// The id, without the plugin and tenant prefix.
    pub id: String,
    /// The plugin that registered it; `None` for the host's jobs.
    pub plugin: Option<String>,
    /// The tenant it runs for.
    pub tenant: String,
    /// The trigger, described (`cron "0 0 9 * * *" in Europe/Paris`, `every 5s`).
    pub trigger: String,
    /// The next planned firing; `None` when paused or when the trigger has no more.
    pub next_run: Option<DateTime<Utc>>,
    /// The planned instant of the last firing this instance ran.
    pub last_run: Option<DateTime<Utc>>,
    /// How that firing (or a later skipped one) went.
    pub last_outcome: Option<RunOutcome>,
    /// Firings this instance ran (whatever the outcome).
    pub runs: u64,
    /// Firings whose every attempt failed.
    pub failures: u64,
    /// Firings skipped (overlap, lock unavailable, too late).
    pub skips: u64,
    /// Firings another instance ran (it won the lock).
    pub elsewhere: u64,
    /// Runs in progress on this instance.
    pub running: usize,
    /// Whether the job is paused.
    pub paused: bool,
    /// Whether it is a shared job ([`Scheduler::share`](super::Scheduler::share)): its
    /// definition comes from the lock's server, and every instance has it.
    pub shared: bool,
}

/// The whole scheduler service's bookkeeping on this instance, for operators: what
/// [`Scheduler::stats`](super::Scheduler::stats) returns.
///
/// | field | bound |
/// |---|---|
/// | `jobs` | the jobs registered (every plugin, tenant and the host) |
/// | `pending_firings` | at most `jobs`: one planned firing per job; replacing (adding with an existing id), removing or pausing a job drops its firing at once |
/// | `armed_seconds` | at most `pending_firings`: one tokio-cron-scheduler one-shot per second holding firings, disarmed when its second no longer holds any |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SchedulerStats {
    /// Jobs registered.
    pub jobs: usize,
    /// Firings planned and waiting.
    pub pending_firings: usize,
    /// Seconds armed with a tokio-cron-scheduler one-shot.
    pub armed_seconds: usize,
}
