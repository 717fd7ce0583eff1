//! [`TriggerError`] and [`SchedulerError`].

use std::time::Duration;

use crate::{CallError, ErrorCode};

/// Why a trigger was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TriggerError {
    /// The cron expression is malformed.
    #[error(
        "invalid cron expression `{expression}`: {reason}; expected 5 fields (`m h dom mon dow`), \
         6 (seconds first) or 7 (seconds first, year last), or @hourly/@daily/@weekly/@monthly/@yearly"
    )]
    InvalidCron {
        /// The expression, as given.
        expression: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The time zone is not an IANA name known to `chrono-tz`.
    #[error("unknown time zone `{zone}`; use an IANA name such as `UTC` or `Europe/Paris`")]
    UnknownTimezone {
        /// The zone, as given.
        zone: String,
    },
    /// The interval is out of range.
    #[error("invalid interval {period:?}: {reason}")]
    InvalidInterval {
        /// The interval, as given.
        period: Duration,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The instant is not an RFC 3339 date-time.
    #[error(
        "invalid instant `{instant}`: {reason}; write it as RFC 3339, e.g. `2026-06-01T08:00:00Z`"
    )]
    InvalidInstant {
        /// The instant, as given.
        instant: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Why a scheduler operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchedulerError {
    /// The trigger was rejected.
    #[error(transparent)]
    Trigger(#[from] TriggerError),
    /// The job id is malformed.
    #[error(
        "invalid job id `{id}`: {reason}; a job id is 1 to 128 characters among letters, digits, \
         `_`, `-` and `.`"
    )]
    InvalidJobId {
        /// The id, as given (cut to 80 characters).
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No job of that id in this handle's plugin and tenant.
    #[error("no job `{id}` for {owner} in tenant `{tenant}`")]
    UnknownJob {
        /// The id asked for.
        id: String,
        /// `plugin `name`` or `the host`.
        owner: String,
        /// The tenant.
        tenant: String,
    },
    /// The trigger has no instant after now: a one-shot in the past, or a cron expression no
    /// date matches (`0 0 30 2 *`).
    #[error("job `{id}` would never fire: {trigger} has no instant after now")]
    NeverFires {
        /// The job.
        id: String,
        /// The trigger, described.
        trigger: String,
    },
    /// The scheduler has shut down.
    #[error("the scheduler has shut down; no job can be added or resumed")]
    Stopped,
    /// No scheduler service is loaded (for the host's handle).
    #[error("the scheduler is not available: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
    /// The options are invalid.
    #[error("invalid scheduler options: {message}")]
    InvalidOptions {
        /// What is wrong, naming the key.
        message: String,
    },
    /// The lock server could not be reached while the service started.
    #[error("the scheduler lock is unavailable: {message}")]
    Lock {
        /// What failed.
        message: String,
    },
    /// A shared job's definition is invalid (other than its trigger, which gives
    /// [`SchedulerError::Trigger`]); nothing was stored.
    #[error("invalid shared job `{id}`: {reason}")]
    InvalidSharedJob {
        /// The job.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The owner already stores `services.scheduler.shared.max_per_owner` shared jobs;
    /// nothing was stored.
    #[error(
        "{owner} already has {limit} shared jobs (`services.scheduler.shared.max_per_owner`); \
         unshare one first"
    )]
    TooManySharedJobs {
        /// `plugin `name`` or `the host`.
        owner: String,
        /// The bound.
        limit: usize,
    },
    /// A shared job's payload is larger than `services.scheduler.shared.max_payload`;
    /// nothing was stored.
    #[error(
        "the payload of shared job `{id}` is {size} bytes; at most {limit} \
         (`services.scheduler.shared.max_payload`)"
    )]
    PayloadTooLarge {
        /// The job.
        id: String,
        /// Its serialized size.
        size: usize,
        /// The bound.
        limit: usize,
    },
    /// The shared job store (the lock's server) could not be asked: nothing was changed.
    /// Shared jobs already applied on this instance keep firing as they were.
    #[error("the shared job store is unavailable: {message}")]
    Store {
        /// What failed.
        message: String,
    },
}

impl From<SchedulerError> for CallError {
    fn from(err: SchedulerError) -> Self {
        if let SchedulerError::Store { .. } = err {
            // The store's error names its server: logged, not answered.
            tracing::warn!(error = %err, "a shared job operation failed");
            return CallError::new(
                ErrorCode::Unavailable,
                "the shared job store is unavailable; nothing was changed",
            );
        }
        let code = match err {
            SchedulerError::Trigger(_)
            | SchedulerError::InvalidJobId { .. }
            | SchedulerError::NeverFires { .. }
            | SchedulerError::InvalidSharedJob { .. }
            | SchedulerError::PayloadTooLarge { .. } => ErrorCode::InvalidPayload,
            SchedulerError::TooManySharedJobs { .. } => ErrorCode::Conflict,
            SchedulerError::UnknownJob { .. } => ErrorCode::NotFound,
            SchedulerError::Stopped
            | SchedulerError::Unavailable { .. }
            | SchedulerError::Lock { .. }
            | SchedulerError::Store { .. } => ErrorCode::Unavailable,
            SchedulerError::InvalidOptions { .. } => ErrorCode::Internal,
        };
        CallError::new(code, err.to_string())
    }
}
