//! One attempt of a task: its context, the handler under a timeout and panic isolation, the
//! outcome (success, retry after the backoff, dead letter) written back to the queue.

use std::{panic::AssertUnwindSafe, sync::Arc};

use futures_util::FutureExt;
use tracing::Instrument;

use super::{
    TaskContext, TaskError,
    engine::{Engine, Stats},
    name::Owner,
    queue::{Claimed, Outcome},
    registry::Registered,
};
use crate::{CallContext, TraceContext, call::layers::catch_panic_message, runtime::Way};

impl Engine {
    /// What the handler receives, with `call` for its calls.
    fn context(&self, task: &Claimed, handler: &Registered, call: CallContext) -> TaskContext {
        let local = task
            .name
            .split_once('.')
            .map_or(&*task.name, |(_, local)| local);
        TaskContext {
            id: task.id,
            name: Arc::from(local),
            plugin: handler.owner.plugin().map(Arc::from),
            attempt: task.attempt,
            max_attempts: task.max_attempts,
            call: call.with_timeout(self.options.timeout),
        }
    }

    /// The handler's future under the worker's timeout, with a panic caught.
    async fn guarded(
        &self,
        run: futures_util::future::BoxFuture<'static, Result<serde_json::Value, TaskError>>,
    ) -> Result<serde_json::Value, TaskError> {
        match tokio::time::timeout(self.options.timeout, AssertUnwindSafe(run).catch_unwind()).await
        {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => {
                Stats::bump(&self.stats.panicked);
                Err(TaskError::msg(format!(
                    "the handler panicked: {}",
                    catch_panic_message(&*panic)
                )))
            }
            Err(_) => Err(TaskError::msg(format!(
                "the attempt did not finish within {:?}",
                self.options.timeout
            ))),
        }
    }

    /// Runs the handler on `payload`: a plugin's through its instance's gate (a stopped
    /// instance refuses the attempt, which is retried per the task's policy), in the entry's
    /// span; the host's directly.
    async fn run_handler(
        &self,
        task: &Claimed,
        handler: &Registered,
        payload: serde_json::Value,
    ) -> Result<serde_json::Value, TaskError> {
        let trace = match task.trace {
            Some((trace_id, span_id)) => TraceContext::from_parts(trace_id, span_id),
            None => TraceContext::new_root(),
        };
        match &handler.owner {
            Owner::Host => {
                let call = CallContext::host()
                    .with_tenant(task.tenant.clone())
                    .with_trace(trace);
                let cx = self.context(task, handler, call);
                self.guarded((handler.run)(cx, payload)).await
            }
            Owner::Plugin(instance) => {
                // Admitted on the instance's state. The pass is not held: a stopping plugin's
                // tasks in flight are drained by the worker itself, right after the gate
                // closes (`stop_plugin`: the shutdown timeout, then back to the queue).
                let (ctx, pass) = instance
                    .enter(Way::Task)
                    .map_err(|refused| TaskError::msg(refused.message()))?;
                let call = ctx.entry_context(task.tenant.clone(), trace);
                let span = ctx.gate().span(Way::Task, &call);
                let cx = self.context(task, handler, call);
                drop(pass);
                self.guarded((handler.run)(cx, payload))
                    .instrument(span)
                    .await
            }
        }
    }

    /// Runs one attempt of `task` and records how it ended.
    pub(crate) async fn attempt(&self, mut task: Claimed) {
        let claim = task.claim();
        let Some(handler) = self.registry.get(&task.name) else {
            // Unregistered between the claim and now: back to the queue.
            if let Err(error) = self.queue.release(claim).await {
                self.backend_failed(&error);
            }
            return;
        };
        let payload = std::mem::replace(&mut task.payload, Err(String::new()));
        let result = match payload {
            Err(why) => Err(TaskError::permanent(why)),
            Ok(payload) => self.run_handler(&task, &handler, payload).await,
        };
        let local = task
            .name
            .split_once('.')
            .map_or(&*task.name, |(_, local)| local);
        let counted = match &result {
            Ok(_) => "succeeded",
            Err(error) if error.is_permanent() || task.attempt >= task.max_attempts => "dead",
            Err(_) => "retried",
        };
        self.metrics
            .task_attempt(handler.owner.plugin(), local, counted);
        let outcome = match result {
            Ok(value) => {
                Stats::bump(&self.stats.succeeded);
                Outcome::Succeeded(value)
            }
            Err(error) if error.is_permanent() || task.attempt >= task.max_attempts => {
                Stats::bump(&self.stats.dead);
                tracing::error!(task = %task.id, name = %task.name, attempt = task.attempt, %error, "task failed for good: it is now a dead letter");
                Outcome::Dead(error.to_string())
            }
            Err(error) => {
                Stats::bump(&self.stats.retried);
                let after = self.options.backoff_after(task.attempt);
                tracing::warn!(task = %task.id, name = %task.name, attempt = task.attempt, %error, retry_in = ?after, "task attempt failed");
                Outcome::Retry {
                    error: error.to_string(),
                    after,
                }
            }
        };
        let retry = matches!(outcome, Outcome::Retry { .. });
        match self.queue.finish(claim, outcome).await {
            // The consumer plans its next look when it waits: tell it about the retry.
            Ok(true) if retry => self.notify(),
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                task = %task.id,
                name = %task.name,
                "the attempt lost its claim on the task (its lease expired): its outcome is \
                 dropped, and the task is (or was) delivered again"
            ),
            Err(error) => {
                tracing::warn!(task = %task.id, %error, "could not record the outcome of an attempt; the task is delivered again when its lease expires");
                self.backend_failed(&error);
            }
        }
    }
}
