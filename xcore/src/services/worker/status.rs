//! [`TaskStatus`] and [`TaskInfo`]: where a task is.

use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

use super::TaskId;
use crate::TenantId;

/// Where a task is.
///
/// ```
/// use xcore::services::worker::TaskStatus;
///
/// let status = TaskStatus::Failed { error: "smtp timeout".into(), attempts: 1 };
/// assert!(!status.is_finished());
/// assert_eq!(status.label(), "failed");
/// assert!(TaskStatus::Succeeded { result: serde_json::json!(1), attempts: 1 }.is_finished());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskStatus {
    /// Waiting for its first attempt (or its delay), or sent back to the queue (re-driven,
    /// interrupted by a shutdown).
    Queued,
    /// An attempt is running.
    Running {
        /// The attempt: 1 for the first.
        attempt: u32,
    },
    /// The last attempt failed; the task waits for its next one (after the backoff).
    Failed {
        /// Why the last attempt failed.
        error: String,
        /// Attempts made so far.
        attempts: u32,
    },
    /// Done.
    Succeeded {
        /// What the handler returned, as JSON.
        result: Value,
        /// Attempts it took.
        attempts: u32,
    },
    /// A dead letter: its last allowed attempt failed, or it failed in a way no retry can fix
    /// (a payload its handler cannot read, a [`TaskError::permanent`](super::TaskError::permanent)).
    /// Listed by `dead_letters`, sent back with `redrive`.
    Dead {
        /// Why the last attempt failed.
        error: String,
        /// Attempts made.
        attempts: u32,
    },
}

impl TaskStatus {
    /// `queued`, `running`, `failed`, `succeeded` or `dead`.
    pub fn label(&self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running { .. } => "running",
            TaskStatus::Failed { .. } => "failed",
            TaskStatus::Succeeded { .. } => "succeeded",
            TaskStatus::Dead { .. } => "dead",
        }
    }

    /// Whether nothing more happens to the task by itself (succeeded or dead).
    pub fn is_finished(&self) -> bool {
        matches!(self, TaskStatus::Succeeded { .. } | TaskStatus::Dead { .. })
    }
}

/// A task as the queue holds it (what `info` and `dead_letters` return).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TaskInfo {
    /// Its id.
    pub id: TaskId,
    /// Its name, without the plugin prefix.
    pub name: String,
    /// The plugin it belongs to; `None` for the host's tasks.
    pub plugin: Option<String>,
    /// The tenant it runs for.
    #[serde(serialize_with = "tenant_str")]
    pub tenant: TenantId,
    /// Its payload.
    pub payload: Value,
    /// Where it is.
    pub status: TaskStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// When it was sent.
    pub created_at: SystemTime,
    /// When it last changed.
    pub updated_at: SystemTime,
    /// When its next attempt may start (for a queued or failed task).
    pub run_at: SystemTime,
}

fn tenant_str<S: serde::Serializer>(tenant: &TenantId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tenant.as_str())
}
