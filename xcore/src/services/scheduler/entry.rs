//! [`JobEntry`]: one registered job, its state and its counters.

use std::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicU64, Ordering},
};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{
    JobInfo, JobOptions, RunOutcome, Trigger,
    job::{JobContext, JobFn},
    key::Owner,
};
use crate::{CallContext, PluginContext, TenantId, TraceContext};

/// A registered job.
pub(crate) struct JobEntry {
    /// `<plugin>:<tenant>:<id>`.
    pub(crate) key: Arc<str>,
    pub(crate) id: Arc<str>,
    pub(crate) owner: Owner,
    pub(crate) tenant: TenantId,
    /// The plugin whose code runs: the owner, or the target of a config job.
    pub(crate) target: Option<Arc<str>>,
    pub(crate) trigger: Trigger,
    pub(crate) options: JobOptions,
    pub(crate) func: JobFn,
    /// Applied from the shared job store.
    pub(crate) shared: bool,
    /// Cancels the job's runs (shutdown, a stopping plugin, after the grace period).
    pub(crate) cancel: CancellationToken,
    state: Mutex<State>,
    pub(crate) counters: Counters,
}

/// What changes when the job fires, pauses, resumes or goes.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) paused: bool,
    pub(crate) removed: bool,
    /// Bumped whenever the planned firing changes: an alarm for an older one is stale.
    pub(crate) seq: u64,
    pub(crate) next: Option<DateTime<Utc>>,
    pub(crate) running: usize,
    pub(crate) last_run: Option<DateTime<Utc>>,
    pub(crate) last_outcome: Option<RunOutcome>,
}

/// The job's counters on this instance.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) runs: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) skips: AtomicU64,
    pub(crate) elsewhere: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a new entry is made of.
pub(crate) struct Spec {
    pub(crate) key: String,
    pub(crate) id: String,
    pub(crate) owner: Owner,
    pub(crate) tenant: TenantId,
    pub(crate) target: Option<String>,
    pub(crate) trigger: Trigger,
    pub(crate) options: JobOptions,
    pub(crate) func: JobFn,
    pub(crate) shared: bool,
}

impl JobEntry {
    pub(crate) fn new(spec: Spec, cancel: CancellationToken) -> Self {
        Self {
            key: Arc::from(spec.key),
            id: Arc::from(spec.id),
            owner: spec.owner,
            tenant: spec.tenant,
            target: spec.target.map(Arc::from),
            trigger: spec.trigger,
            options: spec.options,
            func: spec.func,
            shared: spec.shared,
            cancel,
            state: Mutex::new(State::default()),
            counters: Counters::default(),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The context of one attempt of the firing planned for `at`; `instance` is the plugin
    /// instance that runs it (admitted by its gate), whose handles its call context gives.
    pub(crate) fn context(
        &self,
        at: DateTime<Utc>,
        attempt: u32,
        instance: Option<&PluginContext>,
    ) -> JobContext {
        let call = match (&self.owner, instance) {
            (_, Some(ctx)) => ctx.entry_context(self.tenant.clone(), TraceContext::new_root()),
            (Owner::Host, None) => CallContext::host().with_tenant(self.tenant.clone()),
            (Owner::Plugin(identity, _), None) => {
                CallContext::root(identity.clone()).with_tenant(self.tenant.clone())
            }
        };
        let call = match self.options.attempt_timeout() {
            Some(limit) => call.with_timeout(limit),
            None => call,
        };
        JobContext {
            id: self.id.clone(),
            plugin: self.owner.plugin().map(Arc::from),
            tenant: self.tenant.clone(),
            scheduled: at,
            attempt,
            call,
        }
    }

    /// Whether this job runs plugin `plugin`'s code (registered by it, or calling it).
    pub(crate) fn belongs_to(&self, plugin: &str) -> bool {
        self.owner.plugin() == Some(plugin) || self.target.as_deref() == Some(plugin)
    }

    pub(crate) fn info(&self) -> JobInfo {
        let state = self.state();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        JobInfo {
            id: self.id.to_string(),
            plugin: self.owner.plugin().map(str::to_owned),
            tenant: self.tenant.to_string(),
            trigger: self.trigger.to_string(),
            next_run: state.next,
            last_run: state.last_run,
            last_outcome: state.last_outcome.clone(),
            runs: load(&self.counters.runs),
            failures: load(&self.counters.failures),
            skips: load(&self.counters.skips),
            elsewhere: load(&self.counters.elsewhere),
            running: state.running,
            paused: state.paused,
            shared: self.shared,
        }
    }
}
