//! [`WorkerError`] (what the worker's handle and service return) and [`TaskError`] (what a
//! task's handler returns).

use std::fmt;

use super::TaskId;
use crate::{CallError, ErrorCode};

/// What went wrong with the worker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// A task name is malformed.
    #[error("invalid task name `{name}`: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// The payload could not be serialized, or does not fit the type the task's handler takes.
    #[error("invalid payload for task `{task}`: {reason}")]
    InvalidPayload {
        /// The task's full name.
        task: String,
        /// What serde said.
        reason: String,
    },
    /// Send options (or worker options) out of range.
    #[error("invalid options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: String,
    },
    /// A task's result does not read as the type asked for.
    #[error("the result of task {id} does not read as the type asked for: {reason}")]
    InvalidResult {
        /// The task.
        id: TaskId,
        /// What serde said.
        reason: String,
    },
    /// No task of that id is visible through this handle (never sent, sent by another plugin
    /// or for another tenant, or forgotten: the in-process queue keeps a bounded number of
    /// finished tasks, the durable one deletes succeeded tasks after `retention`).
    #[error("no task {id} is visible through this handle")]
    UnknownTask {
        /// The id.
        id: TaskId,
    },
    /// `redrive` was asked for a task that is not a dead letter.
    #[error("task {id} is {status}, not dead: only dead letters can be re-driven")]
    NotDead {
        /// The id.
        id: TaskId,
        /// Its status label.
        status: &'static str,
    },
    /// The in-process queue is full: the task was not queued.
    #[error(
        "the worker's queue is full ({capacity} tasks queued or running); the task was not \
         queued: retry later, or raise `services.worker.queue_capacity`"
    )]
    QueueFull {
        /// The capacity.
        capacity: usize,
    },
    /// The worker is not running (not booted, shut down), or its options are invalid.
    #[error("the worker is not available: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
    /// The durable queue's server (Postgres or Redis) failed, or did not answer in time: the
    /// operation (a send, say) did not happen, or may not have.
    #[error("the worker's database failed: {message}")]
    Backend {
        /// What the server (or its client) said; no password.
        message: String,
    },
}

impl WorkerError {
    pub(crate) fn unavailable(reason: impl Into<String>) -> Self {
        WorkerError::Unavailable {
            reason: reason.into(),
        }
    }
}

#[cfg(feature = "postgres")]
impl From<sqlx::Error> for WorkerError {
    fn from(err: sqlx::Error) -> Self {
        WorkerError::Backend {
            message: err.to_string(),
        }
    }
}

impl From<WorkerError> for CallError {
    fn from(err: WorkerError) -> Self {
        let code = match &err {
            WorkerError::InvalidName { .. }
            | WorkerError::InvalidPayload { .. }
            | WorkerError::InvalidOptions { .. } => ErrorCode::InvalidPayload,
            WorkerError::InvalidResult { .. } => ErrorCode::Internal,
            WorkerError::UnknownTask { .. } => ErrorCode::NotFound,
            WorkerError::NotDead { .. } => ErrorCode::HandlerError,
            WorkerError::QueueFull { .. } => ErrorCode::Overloaded,
            WorkerError::Unavailable { .. } | WorkerError::Backend { .. } => ErrorCode::Unavailable,
        };
        CallError::new(code, err.to_string())
    }
}

/// Why an attempt of a task failed: any error converts into it with `?`. The attempt is
/// retried after the backoff, unless the error is [`permanent`](Self::permanent) or the
/// attempt was the last: then the task becomes a dead letter.
///
/// ```
/// use xcore::services::worker::TaskError;
///
/// fn parse(s: &str) -> Result<u32, TaskError> {
///     Ok(s.parse::<u32>()?)
/// }
/// assert!(parse("x").is_err());
/// let err = TaskError::permanent("unknown user 42");
/// assert!(err.is_permanent());
/// assert_eq!(err.to_string(), "unknown user 42");
/// ```
pub struct TaskError {
    message: String,
    permanent: bool,
}

impl TaskError {
    /// A failure worth retrying (a timeout, a server down).
    pub fn msg(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            permanent: false,
        }
    }

    /// A failure no retry can fix: the task becomes a dead letter at once.
    pub fn permanent(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            permanent: true,
        }
    }

    /// Whether it is permanent.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for TaskError {
    fn from(err: E) -> Self {
        Self::msg(err)
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskError")
            .field("message", &self.message)
            .field("permanent", &self.permanent)
            .finish()
    }
}
