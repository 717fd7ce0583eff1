//! Helpers for testing schedules: the firings a trigger plans, and waiting for a job's run.

use std::time::Duration;

use xcore::services::scheduler::{JobInfo, Scheduler, Trigger, chrono::DateTime, chrono::Utc};

/// The next `count` firings of `trigger` after `from`, through the very function the
/// scheduler plans with ([`Trigger::next_after`]): schedules are tested without waiting.
///
/// ```
/// use xcore::services::scheduler::{Trigger, chrono::{TimeZone, Utc}};
/// use xcore_testkit::firings;
///
/// let from = Utc.with_ymd_and_hms(2026, 3, 27, 12, 0, 0).unwrap();
/// let daily = Trigger::cron_in("0 9 * * *", "Europe/Paris").unwrap();
/// let hours: Vec<u32> = firings(&daily, from, 3).iter().map(|t| t.format("%H").to_string().parse().unwrap()).collect();
/// assert_eq!(hours, [8, 7, 7], "09:00 in Paris is 08:00 UTC, then 07:00 UTC after the change");
/// ```
pub fn firings(trigger: &Trigger, from: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
    let mut out = Vec::with_capacity(count);
    let mut after = from;
    while out.len() < count {
        match trigger.next_after(after) {
            Some(next) => {
                out.push(next);
                after = next;
            }
            None => break,
        }
    }
    out
}

/// Waits until job `id` of `scheduler` has run `runs` times (on this instance), at most
/// `timeout`; returns its info then, or `None` on timeout (or if the job is gone).
pub async fn wait_for_runs(
    scheduler: &Scheduler,
    id: &str,
    runs: u64,
    timeout: Duration,
) -> Option<JobInfo> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let info = scheduler.get(id)?;
        if info.runs >= runs {
            return Some(info);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for the next run of job `id` (one more than it has now), at most `timeout`.
pub async fn wait_for_next_run(
    scheduler: &Scheduler,
    id: &str,
    timeout: Duration,
) -> Option<JobInfo> {
    let now = scheduler.get(id)?.runs;
    wait_for_runs(scheduler, id, now + 1, timeout).await
}
