//! [`Engine`]: the job table of one scheduler service, and what happens when a firing comes.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock, RwLock, Weak, atomic::Ordering},
    time::Duration,
};

use chrono::Utc;
use chrono_tz::Tz;
use tokio_cron_scheduler::JobScheduler;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    JobInfo, SchedulerError, SchedulerOptions, SchedulerStats,
    alarm::{Alarms, CHANNEL_SIZE, Firing},
    entry::{JobEntry, Spec},
    lock::FiringLock,
    shared::SharedState,
};
use crate::{Health, runtime::Shared};

/// The running part of a scheduler service, created by its `init`.
pub(crate) struct Engine {
    jobs: RwLock<HashMap<Arc<str>, Arc<JobEntry>>>,
    pub(crate) alarms: Alarms,
    pub(crate) default_zone: Tz,
    pub(crate) lock: Option<FiringLock>,
    pub(crate) lock_ttl: Duration,
    pub(crate) lock_error: Mutex<Option<String>>,
    /// Shared job definitions: what this instance applied of the store.
    pub(crate) shared: SharedState,
    /// Every run (and the arming of the firing after it).
    pub(crate) tracker: TaskTracker,
    /// Cancels runs: the parent of every job's token.
    pub(crate) runs: CancellationToken,
    /// Stops alarms and the watchdog.
    pub(crate) stopping: CancellationToken,
    enabled: bool,
    grace: Duration,
    /// The `Xcore` this service belongs to, for jobs from the config, which call plugins.
    host: OnceLock<Weak<Shared>>,
}

impl Engine {
    /// Connects the lock (if any) and creates tokio-cron-scheduler's job scheduler.
    pub(crate) async fn create(
        options: &SchedulerOptions,
        default_zone: Tz,
    ) -> Result<Arc<Self>, SchedulerError> {
        let instance = format!("{:016x}", fastrand::u64(..));
        let lock = match &options.lock {
            Some(lock) => Some(FiringLock::connect(lock, &instance).await?),
            None => None,
        };
        let lock_ttl = options.lock.as_ref().map_or(Duration::MAX, |l| l.ttl);
        let failed = |e| SchedulerError::Unavailable {
            reason: format!("tokio-cron-scheduler could not start: {e:?}"),
        };
        let mut tcs = JobScheduler::new_with_channel_size(CHANNEL_SIZE)
            .await
            .map_err(failed)?;
        tcs.init().await.map_err(failed)?;
        Ok(Arc::new(Self {
            jobs: RwLock::new(HashMap::new()),
            alarms: Alarms::new(tcs),
            default_zone,
            lock,
            lock_ttl,
            lock_error: Mutex::new(None),
            shared: SharedState::new(options.shared.clone()),
            tracker: TaskTracker::new(),
            runs: CancellationToken::new(),
            stopping: CancellationToken::new(),
            enabled: options.enabled,
            grace: options.shutdown_timeout,
            host: OnceLock::new(),
        }))
    }

    /// Starts firing (unless disabled).
    pub(crate) async fn start(self: &Arc<Self>) -> Result<(), SchedulerError> {
        // Shared jobs are applied (and listed) even when nothing fires.
        self.spawn_shared_sync();
        if !self.enabled {
            tracing::info!("the scheduler is disabled: jobs are registered, none fires");
            return Ok(());
        }
        self.alarms
            .start()
            .await
            .map_err(|reason| SchedulerError::Unavailable {
                reason: format!("tokio-cron-scheduler could not start: {reason}"),
            })?;
        self.spawn_watchdog();
        Ok(())
    }

    /// Remembers the `Xcore` this engine belongs to (the first one wins).
    pub(crate) fn attach(&self, shared: &Arc<Shared>) {
        let _ = self.host.set(Arc::downgrade(shared));
    }

    /// The `Xcore` this engine belongs to, while it lives.
    pub(crate) fn host(&self) -> Option<Arc<Shared>> {
        self.host.get().and_then(Weak::upgrade)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Arc<str>, Arc<JobEntry>>> {
        self.jobs.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Arc<str>, Arc<JobEntry>>> {
        self.jobs.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a job (replacing one with the same key) and plans its first firing.
    pub(crate) async fn add(self: &Arc<Self>, mut spec: Spec) -> Result<(), SchedulerError> {
        if self.stopping.is_cancelled() {
            return Err(SchedulerError::Stopped);
        }
        spec.trigger = spec.trigger.with_default_zone(self.default_zone);
        let Some(first) = spec.trigger.next_after(Utc::now()) else {
            return Err(SchedulerError::NeverFires {
                id: spec.id,
                trigger: spec.trigger.to_string(),
            });
        };
        let entry = Arc::new(JobEntry::new(spec, self.runs.child_token()));
        {
            let mut state = entry.state();
            state.next = Some(first);
            state.seq = 1;
        }
        let old = self.write().insert(entry.key.clone(), entry.clone());
        if let Some(old) = old {
            self.retire(&old);
        }
        tracing::debug!(job = %entry.key, trigger = %entry.trigger, next = %first, "job added");
        self.arm(Firing {
            at: first,
            job: entry,
            seq: 1,
        })
        .await;
        Ok(())
    }

    /// The job of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<Arc<JobEntry>> {
        self.read().get(key).cloned()
    }

    /// Pauses a job: its planned firing is dropped; a run in progress goes on.
    pub(crate) fn pause(&self, key: &str) -> bool {
        let Some(job) = self.get(key) else {
            return false;
        };
        let planned = {
            let mut state = job.state();
            state.paused = true;
            state.seq += 1;
            state.next.take()
        };
        if let Some(at) = planned {
            self.unplan(&job, at);
        }
        true
    }

    /// Resumes a paused job from now: missed firings are not run.
    pub(crate) async fn resume(self: &Arc<Self>, key: &str) -> Result<bool, SchedulerError> {
        if self.stopping.is_cancelled() {
            return Err(SchedulerError::Stopped);
        }
        let Some(job) = self.get(key) else {
            return Ok(false);
        };
        let firing = {
            let mut state = job.state();
            if !state.paused {
                return Ok(true);
            }
            state.paused = false;
            state.seq += 1;
            state.next = job.trigger.next_after(Utc::now());
            state.next.map(|at| Firing {
                at,
                job: job.clone(),
                seq: state.seq,
            })
        };
        if let Some(firing) = firing {
            self.arm(firing).await;
        }
        Ok(true)
    }

    /// Removes a job: it never fires again; a run in progress goes on.
    pub(crate) fn remove(&self, key: &str) -> bool {
        let removed = self.write().remove(key);
        match removed {
            Some(job) => {
                self.retire(&job);
                true
            }
            None => false,
        }
    }

    /// The jobs `select` keeps, sorted by tenant and id.
    pub(crate) fn list(&self, select: impl Fn(&JobEntry) -> bool) -> Vec<JobInfo> {
        let mut jobs: Vec<JobInfo> = self
            .read()
            .values()
            .filter(|j| select(j))
            .map(|j| j.info())
            .collect();
        jobs.sort_by(|a, b| (&a.plugin, &a.tenant, &a.id).cmp(&(&b.plugin, &b.tenant, &b.id)));
        jobs
    }

    /// A plugin stops: removes every job that runs its code, waits (at most the grace period)
    /// for their runs, then cancels the ones left.
    pub(crate) async fn stop_plugin(&self, plugin: &str) {
        let gone: Vec<Arc<JobEntry>> = {
            let mut jobs = self.write();
            let keys: Vec<Arc<str>> = jobs
                .values()
                .filter(|j| j.belongs_to(plugin))
                .map(|j| j.key.clone())
                .collect();
            keys.iter().filter_map(|k| jobs.remove(k)).collect()
        };
        if gone.is_empty() {
            return;
        }
        for job in &gone {
            self.retire(job);
        }
        tracing::debug!(
            plugin,
            jobs = gone.len(),
            "removed the jobs of a stopping plugin"
        );
        let running = || gone.iter().any(|j| j.state().running > 0);
        if wait_while(running, self.grace).await {
            return;
        }
        tracing::warn!(plugin, grace = ?self.grace, "jobs of a stopping plugin still running; cancelling them");
        for job in &gone {
            job.cancel.cancel();
        }
        wait_while(running, Duration::from_secs(1)).await;
    }

    /// Stops everything: no more firings, running jobs waited for (at most the grace period)
    /// and then cancelled.
    pub(crate) async fn shutdown(&self) {
        self.stopping.cancel();
        self.alarms.stop().await;
        let jobs: Vec<Arc<JobEntry>> = self.write().drain().map(|(_, j)| j).collect();
        for job in &jobs {
            self.retire(job);
        }
        self.tracker.close();
        if tokio::time::timeout(self.grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(grace = ?self.grace, "scheduled jobs still running at shutdown; cancelling them");
            self.runs.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(1), self.tracker.wait()).await;
        }
    }

    /// Marks a job gone and drops its planned firing (and the one-shot of that second if it
    /// held nothing else): a removed or replaced job leaves nothing pending.
    fn retire(&self, job: &Arc<JobEntry>) {
        let planned = {
            let mut state = job.state();
            state.removed = true;
            state.seq += 1;
            state.next.take()
        };
        if let Some(at) = planned {
            self.unplan(job, at);
        }
    }

    /// Jobs, pending firings (at most one per job) and the seconds armed for them.
    pub(crate) fn stats(&self) -> SchedulerStats {
        let jobs = self.read().len();
        SchedulerStats {
            jobs,
            pending_firings: self.alarms.pending(),
            armed_seconds: self.alarms.armed_seconds(),
        }
    }

    /// Job counts, and the lock's state.
    pub(crate) fn health(&self) -> Health {
        if self.stopping.is_cancelled() {
            return Health::unhealthy("the scheduler has shut down");
        }
        let (mut jobs, mut paused, mut running, mut runs, mut failures, mut skips) =
            (0, 0, 0, 0, 0, 0);
        for job in self.read().values() {
            let state = job.state();
            jobs += 1;
            paused += usize::from(state.paused);
            running += state.running;
            runs += job.counters.runs.load(Ordering::Relaxed);
            failures += job.counters.failures.load(Ordering::Relaxed);
            skips += job.counters.skips.load(Ordering::Relaxed);
        }
        let late = self.alarms.watchdog_fires.load(Ordering::Relaxed);
        let mut summary = format!(
            "{jobs} jobs ({paused} paused, {running} running, {} firings pending in {} armed \
             seconds); {runs} runs, {failures} failed, {skips} skipped",
            self.alarms.pending(),
            self.alarms.armed_seconds()
        );
        if late > 0 {
            summary.push_str(&format!("; {late} alarms fired late by the watchdog"));
        }
        if let Some(lock) = &self.lock {
            summary.push_str(&format!("; lock: {}", lock.describe()));
        }
        if !self.enabled {
            return Health::healthy_with(format!("disabled (nothing fires): {summary}"));
        }
        match self
            .lock_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            Some(error) => Health::degraded(format!(
                "the lock is unavailable ({error}): firings are skipped; {summary}"
            )),
            None => match self.shared.error() {
                Some(error) => Health::degraded(format!(
                    "the shared job store is unavailable ({error}): shared jobs are not \
                     updated, those applied here keep firing; {summary}"
                )),
                None => Health::healthy_with(summary),
            },
        }
    }
}

/// Waits while `busy()` holds, at most `limit`; `true` if it stopped holding.
async fn wait_while(busy: impl Fn() -> bool, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while busy() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}
