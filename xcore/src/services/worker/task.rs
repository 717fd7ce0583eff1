//! What a task's handler receives ([`TaskContext`]) and how handlers are stored.

use std::{future::Future, sync::Arc};

use futures_util::future::BoxFuture;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::{TaskError, TaskId};
use crate::{CallContext, TenantId};

/// What the handler of a task receives besides its payload: which task, which attempt, for
/// which tenant, and a [`CallContext`] for the calls it makes.
#[derive(Debug, Clone)]
pub struct TaskContext {
    pub(crate) id: TaskId,
    pub(crate) name: Arc<str>,
    pub(crate) plugin: Option<Arc<str>>,
    pub(crate) attempt: u32,
    pub(crate) max_attempts: u32,
    pub(crate) call: CallContext,
}

impl TaskContext {
    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The task's name, without the plugin prefix.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin the task belongs to; `None` for the host's tasks.
    pub fn plugin(&self) -> Option<&str> {
        self.plugin.as_deref()
    }

    /// The tenant the task was sent for.
    pub fn tenant(&self) -> &TenantId {
        self.call.tenant()
    }

    /// The attempt: 1, then 2 for the first retry, and so on.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The attempts allowed.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether a failure of this attempt makes the task a dead letter.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }

    /// A context for the calls the task makes, and the handles it takes: the caller is the
    /// task's plugin (or the host), served by the plugin's instance (so
    /// `task.call_context().handle::<Db>().await` is the plugin's database for the task's
    /// tenant), the tenant the task's, the trace the one of the call that sent the task (when
    /// it was sent through [`Worker::for_call`](super::Worker::for_call)), the deadline the
    /// attempt's timeout.
    pub fn call_context(&self) -> &CallContext {
        &self.call
    }
}

/// A handler, type-erased: payload in, result out, as JSON.
pub(crate) type HandlerFn =
    Arc<dyn Fn(TaskContext, Value) -> BoxFuture<'static, Result<Value, TaskError>> + Send + Sync>;

/// Checks that a payload fits a handler's type.
pub(crate) type CheckFn = Arc<dyn Fn(&Value) -> Result<(), String> + Send + Sync>;

/// Erases a typed handler: the payload is read into `P` (a payload that does not fit is a
/// permanent failure), the result written as JSON. The user's closure runs inside the
/// returned future, so a panic in it happens while the future is polled (and is caught there).
pub(crate) fn erase<P, R, F, Fut>(full_name: Arc<str>, handler: F) -> (HandlerFn, CheckFn)
where
    P: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    F: Fn(TaskContext, P) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, TaskError>> + Send + 'static,
{
    let handler = Arc::new(handler);
    let run: HandlerFn = Arc::new(move |cx, value| {
        let handler = handler.clone();
        let name = full_name.clone();
        Box::pin(async move {
            let payload: P = serde_json::from_value(value).map_err(|e| {
                TaskError::permanent(format!("invalid payload for task `{name}`: {e}"))
            })?;
            let result = handler(cx, payload).await?;
            serde_json::to_value(result).map_err(|e| {
                TaskError::permanent(format!("the result of task `{name}` is not JSON: {e}"))
            })
        })
    });
    let check: CheckFn =
        Arc::new(|value| P::deserialize(value).map(drop).map_err(|e| e.to_string()));
    (run, check)
}
