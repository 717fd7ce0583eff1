//! [`Scheduler`]: the handle a plugin (or the host) registers and manages its jobs with.

use std::{fmt, future::Future, sync::Arc};

use super::{
    JobContext, JobError, JobInfo, JobOptions, SchedulerError, SchedulerStats, Trigger,
    engine::Engine,
    entry::Spec,
    job::job_fn,
    key::{Owner, check_id, job_key},
};
use crate::{CallContext, TenantId};

/// A handle on the scheduler for one owner (a plugin, or the host) and one tenant.
///
/// Obtained with `ctx.handle::<Scheduler>()`, or bound to a call with
/// `cx.handle::<Scheduler>().await` ([`plugin::handle`](crate::plugin::handle); grant
/// `service:scheduler: schedule`) or `xcore.handle::<Scheduler>()` (the host's
/// own jobs). Ids are namespaced `<plugin>:<tenant>:<id>` inside the scheduler, so two plugins'
/// `cleanup` jobs, or one plugin's `cleanup` in two tenants, never collide; the handle takes and
/// returns the bare ids, and sees only its own plugin's jobs in its own tenant
/// ([`for_tenant`](Self::for_tenant) changes the tenant).
///
/// A job is an async closure receiving a [`JobContext`]. A job that fails or panics is logged,
/// counted, retried if its [`JobOptions`] say so, and never stops the scheduler.
///
/// ```
/// use std::time::Duration;
/// use xcore::prelude::*;
/// use xcore::services::scheduler::{JobOptions, Scheduler, SchedulerOptions, SchedulerService, Trigger};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let xcore = Xcore::builder()
///     .without_registered()
///     .service(SchedulerService::new(SchedulerOptions::default())?)
///     .build()?;
/// xcore.boot().await?;
/// let acme = xcore.handle::<Scheduler>()?.for_tenant(&TenantId::new("acme")?);
/// let options = JobOptions::new().retries(2, Duration::from_millis(100));
/// acme.add_with("cleanup", Trigger::cron("0 3 * * *")?, options, |job| async move {
///     assert_eq!(job.tenant().as_str(), "acme");
///     Ok(())
/// })
/// .await?;
/// let jobs = acme.list();
/// assert_eq!(jobs[0].id, "cleanup");
/// assert_eq!(jobs[0].trigger, "cron \"0 0 3 * * *\" in UTC");
/// assert!(jobs[0].next_run.is_some());
/// acme.pause("cleanup")?;
/// assert!(acme.list()[0].paused);
/// acme.remove("cleanup")?;
/// assert!(acme.list().is_empty());
/// # xcore.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Scheduler {
    engine: Arc<Engine>,
    owner: Owner,
    tenant: TenantId,
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("owner", &self.owner.key())
            .field("tenant", &self.tenant)
            .finish()
    }
}

impl Scheduler {
    pub(crate) fn new(engine: Arc<Engine>, owner: Owner) -> Self {
        Self {
            engine,
            owner,
            tenant: TenantId::default(),
        }
    }

    /// The plugin this handle belongs to; `None` for the host's.
    pub fn plugin(&self) -> Option<&str> {
        self.owner.plugin()
    }

    /// The tenant of the jobs this handle registers and sees.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The same handle for another tenant.
    #[must_use]
    pub fn for_tenant(&self, tenant: &TenantId) -> Self {
        Self {
            tenant: tenant.clone(),
            ..self.clone()
        }
    }

    /// The same handle for the tenant of the call `cx`.
    #[must_use]
    pub fn for_call(&self, cx: &CallContext) -> Self {
        self.for_tenant(cx.tenant())
    }

    fn key(&self, id: &str) -> Result<String, SchedulerError> {
        check_id(id)?;
        Ok(job_key(&self.owner, &self.tenant, id))
    }

    fn unknown(&self, id: &str) -> SchedulerError {
        SchedulerError::UnknownJob {
            id: id.to_owned(),
            owner: self.owner.to_string(),
            tenant: self.tenant.to_string(),
        }
    }

    /// Registers job `id` with the default [`JobOptions`]; see [`add_with`](Self::add_with).
    pub async fn add<F, Fut>(
        &self,
        id: &str,
        trigger: Trigger,
        job: F,
    ) -> Result<(), SchedulerError>
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        self.add_with(id, trigger, JobOptions::default(), job).await
    }

    /// Registers job `id` (replacing a job of the same id, whose run in progress, if any,
    /// goes on) and plans its first firing.
    ///
    /// Fails if the id is malformed, or if the trigger has no instant after now
    /// ([`SchedulerError::NeverFires`]: a one-shot in the past, a cron expression no date
    /// matches).
    pub async fn add_with<F, Fut>(
        &self,
        id: &str,
        trigger: Trigger,
        options: JobOptions,
        job: F,
    ) -> Result<(), SchedulerError>
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        let key = self.key(id)?;
        self.engine
            .add(Spec {
                key,
                id: id.to_owned(),
                owner: self.owner.clone(),
                tenant: self.tenant.clone(),
                target: self.owner.plugin().map(str::to_owned),
                trigger,
                options,
                func: job_fn(job),
                shared: false,
            })
            .await
    }

    /// This handle's jobs (its plugin's, in its tenant), sorted by id.
    pub fn list(&self) -> Vec<JobInfo> {
        let owner = &self.owner;
        let tenant = &self.tenant;
        self.engine
            .list(|j| j.owner.same(owner) && &j.tenant == tenant)
    }

    /// For the host's handle, every job of the scheduler; for a plugin's, its jobs in every
    /// tenant. Sorted by plugin, tenant and id.
    pub fn list_all(&self) -> Vec<JobInfo> {
        match &self.owner {
            Owner::Host => self.engine.list(|_| true),
            owner => self.engine.list(|j| j.owner.same(owner)),
        }
    }

    /// The whole service's counts (every owner's jobs): jobs, pending firings (at most one
    /// per job) and armed seconds; see [`SchedulerStats`]. For operators watching that the
    /// scheduler's memory stays bounded by its jobs.
    pub fn stats(&self) -> SchedulerStats {
        self.engine.stats()
    }

    /// Job `id`, if this handle has one.
    pub fn get(&self, id: &str) -> Option<JobInfo> {
        let key = self.key(id).ok()?;
        self.engine.get(&key).map(|j| j.info())
    }

    /// Pauses job `id`: no firing until [`resume`](Self::resume); a run in progress goes on.
    pub fn pause(&self, id: &str) -> Result<(), SchedulerError> {
        let key = self.key(id)?;
        if self.engine.pause(&key) {
            Ok(())
        } else {
            Err(self.unknown(id))
        }
    }

    /// Resumes job `id` from now (firings missed while paused are not run). Resuming a job
    /// that is not paused does nothing.
    pub async fn resume(&self, id: &str) -> Result<(), SchedulerError> {
        let key = self.key(id)?;
        if self.engine.resume(&key).await? {
            Ok(())
        } else {
            Err(self.unknown(id))
        }
    }

    /// Shares job `id`: stores its definition in the lock's server (replacing a shared job
    /// of the same id, which becomes unpaused), from where every instance applies it (see
    /// "Shared jobs" in the [module docs](super)); it is applied here before this returns
    /// (unless the server became unreachable right after the write: then at the next sync).
    /// Each firing calls the job's plugin action as the host, for this handle's tenant, and
    /// runs once cluster-wide (the lock).
    ///
    /// Checked first, nothing stored on error: the id, the trigger
    /// ([`SchedulerError::Trigger`], [`SchedulerError::NeverFires`]), the plugin called
    /// (required for the host's handle; a plugin's handle calls its own plugin), the
    /// payload's size ([`SchedulerError::PayloadTooLarge`]), the owner's count
    /// ([`SchedulerError::TooManySharedJobs`]). Without a lock,
    /// [`SchedulerError::Unavailable`]; if the server cannot be asked,
    /// [`SchedulerError::Store`] (nothing changed).
    pub async fn share(&self, id: &str, job: super::SharedJob) -> Result<(), SchedulerError> {
        check_id(id)?;
        self.engine.share(&self.owner, &self.tenant, id, job).await
    }

    /// Pauses shared job `id` on every instance (a run in progress goes on).
    /// [`SchedulerError::UnknownJob`] if this handle shared none of that id.
    pub async fn pause_shared(&self, id: &str) -> Result<(), SchedulerError> {
        let key = self.key(id)?;
        if self.engine.pause_shared(&key, true).await? {
            Ok(())
        } else {
            Err(self.unknown(id))
        }
    }

    /// Resumes shared job `id` on every instance, from now.
    pub async fn resume_shared(&self, id: &str) -> Result<(), SchedulerError> {
        let key = self.key(id)?;
        if self.engine.pause_shared(&key, false).await? {
            Ok(())
        } else {
            Err(self.unknown(id))
        }
    }

    /// Removes shared job `id` from the store and from every instance (a run in progress
    /// goes on).
    pub async fn unshare(&self, id: &str) -> Result<(), SchedulerError> {
        let key = self.key(id)?;
        if self.engine.unshare(&self.owner, &key).await? {
            Ok(())
        } else {
            Err(self.unknown(id))
        }
    }

    /// Removes job `id`: it never fires again; a run in progress goes on.
    pub fn remove(&self, id: &str) -> Result<(), SchedulerError> {
        let key = self.key(id)?;
        if self.engine.remove(&key) {
            Ok(())
        } else {
            Err(self.unknown(id))
        }
    }
}
