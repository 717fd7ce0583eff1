//! What a firing does: plan the next one, claim the firing (lock or overlap check), run the
//! attempts (timeout, panic isolation, retries with backoff), record the outcome.

use std::{panic::AssertUnwindSafe, sync::Arc};

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::FutureExt;

use super::{
    RunOutcome, SkipReason, Trigger,
    alarm::Firing,
    engine::Engine,
    entry::{Counters, JobEntry},
    key::Owner,
    lock::{Acquired, Claim},
};
use tracing::Instrument;

use crate::{call::layers::catch_panic_message, runtime::Way};

impl Engine {
    /// The firings of one instant are due: starts each valid one's run in the background,
    /// then plans their next firings (once per distinct schedule) and arms them in one go.
    /// The loop that starts the runs does nothing else, so that 10,000 firings of one instant
    /// start within milliseconds of each other.
    pub(crate) fn fire_group(self: &Arc<Self>, at: DateTime<Utc>, group: Vec<Firing>) {
        if self.stopping.is_cancelled() {
            return;
        }
        let mut started = Vec::with_capacity(group.len());
        for Firing { job, seq, .. } in group {
            let seq = {
                let mut state = job.state();
                if state.removed || state.paused || state.seq != seq {
                    continue;
                }
                state.seq += 1;
                state.seq
            };
            let (engine, run) = (self.clone(), job.clone());
            self.tracker.spawn(async move { engine.run(run, at).await });
            started.push((job, seq));
        }
        // The next instant after this one, unless that is already past (the process was
        // stalled): missed firings are not caught up, the job goes on from now.
        let now = Utc::now();
        let plan = |trigger: &Trigger| match trigger.next_after(at) {
            Some(next) if next <= now => trigger.next_after(now),
            next => next,
        };
        let mut last: Option<(Arc<JobEntry>, Option<DateTime<Utc>>)> = None;
        let mut next_firings = Vec::with_capacity(started.len());
        for (job, seq) in started {
            let next = match &last {
                Some((previous, next)) if previous.trigger.same_schedule(&job.trigger) => *next,
                _ => {
                    let next = plan(&job.trigger);
                    last = Some((job.clone(), next));
                    next
                }
            };
            let mut state = job.state();
            // Paused or removed since its run started: nothing more to plan.
            if state.seq != seq {
                continue;
            }
            state.next = next;
            drop(state);
            if let Some(next) = next {
                next_firings.push(Firing { at: next, job, seq });
            }
        }
        self.arm_from_firing(next_firings);
    }

    /// Runs the firing of `job` planned for `at`, if this instance may.
    async fn run(&self, job: Arc<JobEntry>, at: DateTime<Utc>) {
        let Some(claim) = self.claim(&job, at).await else {
            return;
        };
        Counters::bump(&job.counters.runs);
        let outcome = self.attempts(&job, at).await;
        if let Some(host) = self.host() {
            let result = match outcome {
                RunOutcome::Failed { .. } => "failed",
                _ => "succeeded",
            };
            host.metrics().job_run(job.owner.plugin(), &job.id, result);
        }
        {
            let mut state = job.state();
            state.running -= 1;
            state.last_run = Some(at);
            if matches!(outcome, RunOutcome::Failed { .. }) {
                Counters::bump(&job.counters.failures);
            }
            state.last_outcome = Some(outcome);
        }
        if let (Some(lock), Some(claim)) = (&self.lock, claim)
            && let Err(error) = Box::pin(lock.release(claim)).await
        {
            tracing::warn!(job = %job.key, %error, "could not release the job's running mark; it expires with its TTL");
        }
    }

    /// Whether this instance runs the firing (`Some`, with the lock's claim if any), counting
    /// a job running here as running.
    async fn claim(&self, job: &JobEntry, at: DateTime<Utc>) -> Option<Option<Claim>> {
        let Some(lock) = &self.lock else {
            let mut state = job.state();
            if !job.options.allows_overlap() && state.running > 0 {
                drop(state);
                self.skip(job, at, SkipReason::Overlap);
                return None;
            }
            state.running += 1;
            return Some(None);
        };
        let ttl = TimeDelta::from_std(self.lock_ttl).unwrap_or(TimeDelta::MAX);
        if Utc::now() - at > ttl {
            self.skip(job, at, SkipReason::TooLate);
            return None;
        }
        // Boxed: the lock's futures are large, and would otherwise size every run's task.
        let acquired = Box::pin(lock.acquire(&job.key, at, !job.options.allows_overlap())).await;
        let mut error = self.lock_error.lock().unwrap_or_else(|p| p.into_inner());
        match acquired {
            Ok(acquired) => {
                if error.take().is_some() {
                    tracing::info!("the scheduler lock is available again");
                }
                drop(error);
                match acquired {
                    Acquired::Won(claim) => {
                        job.state().running += 1;
                        Some(Some(claim))
                    }
                    Acquired::Lost => {
                        Counters::bump(&job.counters.elsewhere);
                        None
                    }
                    Acquired::Overlap => {
                        self.skip(job, at, SkipReason::Overlap);
                        None
                    }
                }
            }
            Err(message) => {
                tracing::error!(job = %job.key, error = %message, "the scheduler lock is unavailable; skipping the firing");
                *error = Some(message.clone());
                drop(error);
                self.skip(job, at, SkipReason::LockUnavailable { error: message });
                None
            }
        }
    }

    fn skip(&self, job: &JobEntry, at: DateTime<Utc>, reason: SkipReason) {
        tracing::debug!(job = %job.key, %at, ?reason, "firing skipped");
        if let Some(host) = self.host() {
            host.metrics()
                .job_run(job.owner.plugin(), &job.id, "skipped");
        }
        Counters::bump(&job.counters.skips);
        job.state().last_outcome = Some(RunOutcome::Skipped { reason });
    }

    /// The attempts of one firing: the first, then the retries after their backoff.
    async fn attempts(&self, job: &JobEntry, at: DateTime<Utc>) -> RunOutcome {
        let mut attempt = 1;
        loop {
            let error = match self.attempt(job, at, attempt).await {
                Ok(()) => return RunOutcome::Succeeded { attempts: attempt },
                Err(error) => error,
            };
            let last = attempt > job.options.max_retries() || job.cancel.is_cancelled();
            tracing::warn!(job = %job.key, %at, attempt, %error, last, "scheduled job failed");
            if last {
                return RunOutcome::Failed {
                    attempts: attempt,
                    error,
                };
            }
            attempt += 1;
            tokio::select! {
                () = tokio::time::sleep(job.options.backoff_before(attempt)) => {}
                () = job.cancel.cancelled() => {
                    return RunOutcome::Failed {
                        attempts: attempt - 1,
                        error: format!("{error}; cancelled before the retry"),
                    };
                }
            }
        }
    }

    /// One attempt: the job's future, under its timeout, with panics caught.
    ///
    /// A job registered through a plugin's handle runs through the instance's gate: a stopped
    /// instance refuses the attempt (it fails, and is retried per the job's options), and the
    /// attempt runs in the entry's span, its context bound to the instance.
    async fn attempt(&self, job: &JobEntry, at: DateTime<Utc>, attempt: u32) -> Result<(), String> {
        // Admitted on the instance's state. The pass is not held: a stopping plugin's runs in
        // flight are drained by the scheduler itself, right after the gate closes
        // (`stop_plugin`: the grace period, then cancelled).
        let instance = match &job.owner {
            Owner::Plugin(_, Some(instance)) => match instance.enter(Way::Job) {
                Ok((ctx, _pass)) => Some(ctx),
                Err(refused) => return Err(refused.message().to_owned()),
            },
            _ => None,
        };
        let cx = job.context(at, attempt, instance.as_ref());
        let span = match &instance {
            Some(ctx) => ctx.gate().span(Way::Job, cx.call_context()),
            None => tracing::Span::none(),
        };
        self.attempt_in(job, cx).instrument(span).await
    }

    /// The attempt's future, under the job's timeout, with panics caught.
    async fn attempt_in(&self, job: &JobEntry, cx: super::JobContext) -> Result<(), String> {
        let future = match std::panic::catch_unwind(AssertUnwindSafe(|| (job.func)(cx))) {
            Ok(future) => future,
            Err(panic) => return Err(format!("panicked: {}", catch_panic_message(&*panic))),
        };
        let guarded = AssertUnwindSafe(future).catch_unwind();
        let timed = async {
            match job.options.attempt_timeout() {
                Some(limit) => tokio::time::timeout(limit, guarded)
                    .await
                    .map_err(|_| format!("timed out after {limit:?}")),
                None => Ok(guarded.await),
            }
        };
        tokio::select! {
            biased;
            outcome = timed => match outcome {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(error))) => Err(error.to_string()),
                Ok(Err(panic)) => Err(format!("panicked: {}", catch_panic_message(&*panic))),
                Err(timeout) => Err(timeout),
            },
            () = job.cancel.cancelled() => Err("cancelled: the scheduler or the plugin is stopping".into()),
        }
    }
}
