//! Alarms: the firings of every job, grouped by the second they fall in, each second armed as
//! one tokio-cron-scheduler one-shot job.
//!
//! tokio-cron-scheduler polls its jobs every 500 ms and stores their instants in whole seconds.
//! So the one-shot of second `S` is armed to wake one second early (at `S - 1s`, which the
//! poll reaches at the latest around `S - 0.5s`), and then sleeps with a tokio timer until each
//! firing's exact instant. A firing is therefore never early, and it is late by the timer's
//! jitter (about a millisecond) when it was armed at least ~1.5 s ahead, which includes every
//! firing after the first of a recurring job; a firing armed less than that ahead (the first
//! one of a job registered just before it, a one-shot a second from now) can be late by up to
//! the 500 ms poll.
//!
//! One tokio-cron-scheduler job per second, not per firing: 10,000 jobs firing on the same
//! second cost one of its jobs, so its actors (which talk over bounded broadcast channels and
//! drop messages when they fall behind) never see a burst. A watchdog, every second, fires any
//! second that tokio-cron-scheduler has not delivered 2 s after it began (counted in the
//! service's health): a lost wake-up costs lateness, never a firing.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, TimeDelta, Utc};
use tokio_cron_scheduler::{Job as TcsJob, JobScheduler};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{engine::Engine, entry::JobEntry};

/// How early the one-shot of a second wakes.
const LEAD: TimeDelta = TimeDelta::seconds(1);

/// How late (after its second began) the watchdog fires a second not delivered yet.
const WATCHDOG_AFTER: i64 = 2;

/// The capacity of tokio-cron-scheduler's broadcast channels.
pub(crate) const CHANNEL_SIZE: usize = 4096;

/// One planned firing of a job.
pub(crate) struct Firing {
    pub(crate) at: DateTime<Utc>,
    pub(crate) job: Arc<JobEntry>,
    /// The job's `seq` when this firing was planned; stale if it changed since.
    pub(crate) seq: u64,
}

impl Firing {
    /// Whether the job still plans this firing (not paused, removed or replanned since).
    fn is_current(&self) -> bool {
        let state = self.job.state();
        !state.removed && !state.paused && state.seq == self.seq
    }
}

/// The identity of a job entry in a slot: its address, unique while the slot holds it.
fn job_key(job: &Arc<JobEntry>) -> usize {
    Arc::as_ptr(job).addr()
}

/// The firings of one second, and the tokio-cron-scheduler one-shot that wakes it.
#[derive(Default)]
struct Slot {
    /// At most one firing per job entry.
    firings: HashMap<usize, Firing>,
    /// The one-shot, once armed (`None` while it is being added).
    alarm: Option<Uuid>,
}

/// The pending firings, by second: at most one per job, and one armed one-shot per second
/// that holds any.
pub(crate) struct Alarms {
    slots: Mutex<BTreeMap<i64, Slot>>,
    /// The engine; `None` once shut down. The lock also serialises additions and removals,
    /// which tokio-cron-scheduler acknowledges over a broadcast channel.
    tcs: Arc<tokio::sync::Mutex<Option<JobScheduler>>>,
    pub(crate) watchdog_fires: AtomicU64,
}

impl Alarms {
    pub(crate) fn new(tcs: JobScheduler) -> Self {
        Self {
            slots: Mutex::new(BTreeMap::new()),
            tcs: Arc::new(tokio::sync::Mutex::new(Some(tcs))),
            watchdog_fires: AtomicU64::new(0),
        }
    }

    fn slots(&self) -> MutexGuard<'_, BTreeMap<i64, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds the firings still current (a firing planned by a run, whose job was removed or
    /// replaced meanwhile, is dropped here); returns the seconds that had no slot yet (the
    /// caller arms them).
    fn insert(&self, firings: impl IntoIterator<Item = Firing>) -> Vec<i64> {
        let mut fresh = Vec::new();
        let mut slots = self.slots();
        for firing in firings {
            if !firing.is_current() {
                continue;
            }
            let second = firing.at.timestamp();
            let slot = slots.entry(second).or_insert_with(|| {
                fresh.push(second);
                Slot::default()
            });
            slot.firings.insert(job_key(&firing.job), firing);
        }
        fresh
    }

    /// Drops the firing of `job` planned for `at`; if its second holds nothing more, drops
    /// the second and returns its one-shot (the caller disarms it).
    fn withdraw(&self, job: &Arc<JobEntry>, at: DateTime<Utc>) -> Option<Uuid> {
        let second = at.timestamp();
        let mut slots = self.slots();
        let slot = slots.get_mut(&second)?;
        slot.firings.remove(&job_key(job));
        if !slot.firings.is_empty() {
            return None;
        }
        slots.remove(&second).and_then(|slot| slot.alarm)
    }

    /// Records the one-shot armed for `second`; `false` if the second no longer needs it
    /// (emptied meanwhile, or armed by someone else): the caller disarms it.
    fn armed(&self, second: i64, alarm: Uuid) -> bool {
        match self.slots().get_mut(&second) {
            Some(slot) if slot.alarm.is_none() => {
                slot.alarm = Some(alarm);
                true
            }
            _ => false,
        }
    }

    /// Takes the firings of `second` and its one-shot, if no one has.
    fn take(&self, second: i64) -> Option<(Vec<Firing>, Option<Uuid>)> {
        let slot = self.slots().remove(&second)?;
        Some((slot.firings.into_values().collect(), slot.alarm))
    }

    /// The seconds before `second` still waiting.
    fn overdue(&self, second: i64) -> Vec<i64> {
        self.slots().range(..second).map(|(s, _)| *s).collect()
    }

    /// How many firings are waiting: at most one per job.
    pub(crate) fn pending(&self) -> usize {
        self.slots().values().map(|s| s.firings.len()).sum()
    }

    /// How many seconds hold firings: each has one tokio-cron-scheduler one-shot armed (or
    /// being armed).
    pub(crate) fn armed_seconds(&self) -> usize {
        self.slots().len()
    }

    /// Removes a one-shot from tokio-cron-scheduler, in the background (in turn with the
    /// additions); a no-op outside a tokio runtime or once shut down (the one-shot then fires
    /// and finds nothing).
    fn disarm(&self, alarm: Uuid) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let tcs = self.tcs.clone();
        runtime.spawn(async move {
            if let Some(tcs) = tcs.lock().await.as_ref()
                && let Err(e) = tcs.remove(&alarm).await
            {
                tracing::debug!(error = ?e, "could not remove a tokio-cron-scheduler one-shot");
            }
        });
    }

    /// Starts tokio-cron-scheduler's poll loop.
    pub(crate) async fn start(&self) -> Result<(), String> {
        match self.tcs.lock().await.as_ref() {
            Some(tcs) => tcs.start().await.map_err(|e| format!("{e:?}")),
            None => Err("the scheduler has shut down".into()),
        }
    }

    /// Stops tokio-cron-scheduler's poll loop and forgets every firing.
    pub(crate) async fn stop(&self) {
        let tcs = self.tcs.lock().await.take();
        if let Some(mut tcs) = tcs
            && let Err(e) = tcs.shutdown().await
        {
            tracing::warn!(error = ?e, "tokio-cron-scheduler did not shut down cleanly");
        }
        self.slots().clear();
    }
}

impl Engine {
    /// Plans `firing`: into its second's alarm, arming that second if it is new.
    pub(crate) async fn arm(self: &Arc<Self>, firing: Firing) {
        self.arm_all([firing]).await;
    }

    /// Plans `firings` (one lock for all), arming the seconds that are new.
    async fn arm_all(self: &Arc<Self>, firings: impl IntoIterator<Item = Firing>) {
        for second in self.alarms.insert(firings) {
            self.arm_second(second).await;
        }
    }

    /// Plans `firings` from a firing: the same, the new seconds armed by a background task.
    /// (Not `async`: a firing's future cannot contain the arming's, which contains the
    /// firing's.)
    pub(crate) fn arm_from_firing(self: &Arc<Self>, firings: Vec<Firing>) {
        for second in self.alarms.insert(firings) {
            let engine = self.clone();
            tokio::spawn(async move { engine.arm_second(second).await });
        }
    }

    /// Drops the firing of `job` planned for `at` (the job is removed, replaced or paused),
    /// and the one-shot of its second if that held nothing else.
    pub(crate) fn unplan(&self, job: &Arc<JobEntry>, at: DateTime<Utc>) {
        if let Some(alarm) = self.alarms.withdraw(job, at) {
            self.alarms.disarm(alarm);
        }
    }

    /// Adds the tokio-cron-scheduler one-shot that wakes second `second`.
    async fn arm_second(self: &Arc<Self>, second: i64) {
        let Some(start) = DateTime::from_timestamp(second, 0) else {
            return;
        };
        let wake = (start - LEAD - Utc::now()).to_std().unwrap_or_default();
        let weak = Arc::downgrade(self);
        let job =
            TcsJob::new_one_shot_at_instant_async(std::time::Instant::now() + wake, move |_, _| {
                let weak = weak.clone();
                Box::pin(async move {
                    if let Some(engine) = weak.upgrade() {
                        engine.fire_second(second, false).await;
                    }
                })
            });
        let tcs = self.alarms.tcs.lock().await;
        let outcome = match (job, tcs.as_ref()) {
            (Ok(job), Some(tcs)) => tcs.add(job).await.map_err(|e| format!("{e:?}")),
            (Err(e), _) => Err(format!("{e:?}")),
            (_, None) => return,
        };
        match outcome {
            Ok(alarm) => {
                if !self.alarms.armed(second, alarm)
                    && let Some(tcs) = tcs.as_ref()
                    && let Err(e) = tcs.remove(&alarm).await
                {
                    tracing::debug!(error = ?e, "could not remove a tokio-cron-scheduler one-shot");
                }
            }
            Err(error) => {
                tracing::warn!(second, %error, "could not arm a tokio-cron-scheduler job; the watchdog will fire it");
            }
        }
    }

    /// Fires the firings of `second`, each at its instant; `late`: from the watchdog (the
    /// second's one-shot, not delivered, is disarmed).
    pub(crate) async fn fire_second(self: Arc<Self>, second: i64, late: bool) {
        let Some((mut firings, alarm)) = self.alarms.take(second) else {
            return;
        };
        if late && let Some(alarm) = alarm {
            self.alarms.disarm(alarm);
        }
        firings.sort_by_key(|f| f.at);
        let mut firings = firings.into_iter().peekable();
        while let Some(at) = firings.peek().map(|f| f.at) {
            if !sleep_until(at, &self.stopping).await {
                return;
            }
            let mut group = Vec::new();
            while let Some(firing) = firings.next_if(|f| f.at == at) {
                group.push(firing);
            }
            self.fire_group(at, group);
        }
    }

    /// Every second, fires the seconds tokio-cron-scheduler has not delivered.
    pub(crate) fn spawn_watchdog(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let stopping = self.stopping.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stopping.cancelled() => return,
                }
                let Some(engine) = weak.upgrade() else { return };
                for second in engine
                    .alarms
                    .overdue(Utc::now().timestamp() - WATCHDOG_AFTER + 1)
                {
                    engine.alarms.watchdog_fires.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        second,
                        "tokio-cron-scheduler did not deliver an alarm in time; firing it late"
                    );
                    tokio::spawn(engine.clone().fire_second(second, true));
                }
            }
        });
    }
}

/// Sleeps until `at` (wall clock); `false` if `stopping` was cancelled first.
async fn sleep_until(at: DateTime<Utc>, stopping: &CancellationToken) -> bool {
    let Ok(wait) = (at - Utc::now()).to_std() else {
        return !stopping.is_cancelled();
    };
    tokio::select! {
        () = tokio::time::sleep(wait) => true,
        () = stopping.cancelled() => false,
    }
}
