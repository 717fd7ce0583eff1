//! What a job is: [`JobOptions`], the [`JobContext`] it receives, the [`JobError`] it returns.

use std::{fmt, future::Future, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use crate::{CallContext, TenantId};

/// A job's code, type-erased.
pub(crate) type JobFn =
    Arc<dyn Fn(JobContext) -> BoxFuture<'static, Result<(), JobError>> + Send + Sync>;

/// Boxes an async closure as a [`JobFn`].
pub(crate) fn job_fn<F, Fut>(job: F) -> JobFn
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    Arc::new(move |cx| Box::pin(job(cx)))
}

/// How a job runs: overlap, retries, timeout.
///
/// By default a job does not overlap itself (a firing that comes while the previous run is
/// still running is skipped and counted), is not retried, and has no timeout.
///
/// ```
/// use std::time::Duration;
/// use xcore::services::scheduler::JobOptions;
///
/// let options = JobOptions::new()
///     .retries(3, Duration::from_millis(200))
///     .timeout(Duration::from_secs(30));
/// // Attempt 2 waits 200 ms, attempt 3 400 ms, attempt 4 800 ms (capped by max_backoff).
/// assert_eq!(options.backoff_before(3), Duration::from_millis(400));
/// assert!(!options.allows_overlap());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOptions {
    allow_overlap: bool,
    retries: u32,
    backoff: Duration,
    max_backoff: Duration,
    timeout: Option<Duration>,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            allow_overlap: false,
            retries: 0,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            timeout: None,
        }
    }
}

impl JobOptions {
    /// The defaults: no overlap, no retry, no timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a firing may start while the previous run is still running.
    #[must_use]
    pub fn allow_overlap(mut self, allow: bool) -> Self {
        self.allow_overlap = allow;
        self
    }

    /// Retries a failed attempt (an error, a panic, a timeout) up to `retries` times, waiting
    /// `backoff` before the first retry and twice as long before each next one, at most
    /// [`max_backoff`](Self::max_backoff) (60 s by default).
    #[must_use]
    pub fn retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.retries = retries;
        self.backoff = backoff;
        self
    }

    /// The longest wait between two attempts.
    #[must_use]
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// How long one attempt may take; the calls it makes through its
    /// [`JobContext::call_context`] get the same deadline.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Whether runs may overlap.
    pub fn allows_overlap(&self) -> bool {
        self.allow_overlap
    }

    /// How many retries follow a failed first attempt.
    pub fn max_retries(&self) -> u32 {
        self.retries
    }

    /// The timeout of one attempt.
    pub fn attempt_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The wait before attempt `attempt` (2 for the first retry).
    pub fn backoff_before(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(2).min(31);
        self.backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

/// What a job receives when it runs: who it is, for which tenant, which firing, which
/// attempt, and a [`CallContext`] for the calls it makes.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub(crate) id: Arc<str>,
    pub(crate) plugin: Option<Arc<str>>,
    pub(crate) tenant: TenantId,
    pub(crate) scheduled: DateTime<Utc>,
    pub(crate) attempt: u32,
    pub(crate) call: CallContext,
}

impl JobContext {
    /// The job's id, as registered (without the plugin and tenant prefix).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The plugin that registered the job; `None` for the host's jobs.
    pub fn plugin(&self) -> Option<&str> {
        self.plugin.as_deref()
    }

    /// The tenant the job was registered for.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The instant this firing was planned for (the same on every instance).
    pub fn scheduled_at(&self) -> DateTime<Utc> {
        self.scheduled
    }

    /// The attempt: 1, then 2 for the first retry, and so on.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// A context for calls the job makes (`ctx.plugin("audit").call(job.call_context(), …)`)
    /// and the handles it takes: for a job registered through a plugin's handle, served by the
    /// plugin's instance (so `job.call_context().handle::<Db>().await` is the plugin's
    /// database for the job's tenant); the caller is the job's plugin (or the host), the tenant the job's, a new trace, and
    /// the attempt's deadline if the job has a timeout.
    pub fn call_context(&self) -> &CallContext {
        &self.call
    }
}

/// Why a job failed: any error converts into it with `?`.
///
/// ```
/// use xcore::services::scheduler::JobError;
///
/// fn parse(s: &str) -> Result<u32, JobError> {
///     Ok(s.parse::<u32>()?)
/// }
/// assert!(parse("x").is_err());
/// assert_eq!(JobError::msg("disk full").to_string(), "disk full");
/// ```
pub struct JobError {
    message: String,
}

impl JobError {
    /// An error with this message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for JobError {
    fn from(err: E) -> Self {
        Self::msg(err)
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobError({:?})", self.message)
    }
}
