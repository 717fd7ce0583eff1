//! [`Worker`]: the handle a plugin (or the host) registers task handlers and sends tasks with.

use std::{fmt, future::Future, sync::Arc, time::Duration};

use serde::{Serialize, de::DeserializeOwned};

use super::{
    SendOptions, TaskContext, TaskError, TaskId, TaskInfo, TaskStatus, WorkerError,
    engine::Engine,
    name::{FullName, HOST, Owner},
    queue::{NewTask, Scope},
    registry::Registered,
    send::MAX_IDEMPOTENCY_KEY_LEN,
    task::erase,
};
use crate::{CallContext, TenantId, TraceContext};

/// How many dead letters [`Worker::dead_letters`] returns at most.
pub const DEAD_LETTERS_PAGE: usize = 1000;

/// A handle on the worker for one owner (a plugin, or the host) and one tenant.
///
/// Obtained with `ctx.handle::<Worker>()`, or bound to a call with
/// `cx.handle::<Worker>().await` ([`plugin::handle`](crate::plugin::handle); the plugin declares
/// `services = ["worker"]` and holds `service:worker: execute`) or
/// `xcore.handle::<Worker>()` (the host).
///
/// **Names.** A plugin's tasks are queued as `<plugin>.<name>`; its handle takes and shows
/// the bare `<name>`, so two plugins' `send_welcome` tasks never collide. The host's own tasks
/// are `@host.<name>`; the host's handle also reaches any plugin's task by its full name
/// (`"mailer.send_welcome"`).
///
/// **Tenants.** A task runs for the tenant of the handle that sent it:
/// a handle taken from a call (`cx.handle::<Worker>().await`) is already the call's;
/// [`for_tenant`](Self::for_tenant) reaches another, [`for_call`](Self::for_call) takes the tenant (and
/// the trace) of the call being served. A plugin's handle sees (`status`, `dead_letters`,
/// `redrive`) only its own tasks of its tenant; the host's sees every task.
///
/// ```
/// use std::time::Duration;
/// use serde::{Deserialize, Serialize};
/// use xcore::prelude::*;
/// use xcore::services::worker::{TaskError, TaskStatus, Worker, WorkerOptions, WorkerService};
///
/// #[derive(Serialize, Deserialize)]
/// struct Welcome {
///     email: String,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let service = WorkerService::new(WorkerOptions::memory())?;
/// let xcore = Xcore::builder().without_registered().service(service).build()?;
/// xcore.boot().await?;
///
/// let worker = xcore.handle::<Worker>()?.for_tenant(&TenantId::new("acme")?);
/// worker.register("send_welcome", |task, welcome: Welcome| async move {
///     assert_eq!(task.tenant().as_str(), "acme");
///     Ok::<_, TaskError>(format!("sent to {}", welcome.email))
/// })?;
/// let id = worker.send("send_welcome", &Welcome { email: "ada@example.com".into() }).await?;
/// let status = worker.wait(id, Duration::from_secs(5)).await?;
/// assert_eq!(status.label(), "succeeded");
/// let result: Option<String> = worker.result(id).await?;
/// assert_eq!(result.as_deref(), Some("sent to ada@example.com"));
///
/// // A payload that does not fit the handler's type is refused at once.
/// let err = worker.send("send_welcome", &serde_json::json!({ "mail": 1 })).await.unwrap_err();
/// assert!(err.to_string().contains("missing field `email`"), "{err}");
/// xcore.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Worker {
    engine: Arc<Engine>,
    owner: Owner,
    tenant: TenantId,
    trace: Option<TraceContext>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("owner", &self.owner.namespace())
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl Worker {
    pub(crate) fn new(engine: Arc<Engine>, owner: Owner) -> Self {
        Self {
            engine,
            owner,
            tenant: TenantId::default(),
            trace: None,
        }
    }

    /// The plugin this handle belongs to; `None` for the host's.
    pub fn plugin(&self) -> Option<&str> {
        self.owner.plugin()
    }

    /// The tenant of the tasks this handle sends (and, for a plugin's handle, sees).
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

    /// The same handle for the call `cx`: its tenant, and its trace (the tasks' calls
    /// continue it).
    #[must_use]
    pub fn for_call(&self, cx: &CallContext) -> Self {
        Self {
            tenant: cx.tenant().clone(),
            trace: Some(*cx.trace()),
            ..self.clone()
        }
    }

    fn scope(&self) -> Scope<'_> {
        match &self.owner {
            Owner::Host => Scope {
                namespace: None,
                tenant: None,
            },
            Owner::Plugin(instance) => Scope {
                namespace: Some(instance.identity().name()),
                tenant: Some(&self.tenant),
            },
        }
    }

    /// The full name `name` refers to through this handle.
    fn resolve(&self, name: &str) -> Result<FullName, WorkerError> {
        match self.owner {
            Owner::Host if name.contains('.') => FullName::parse(name),
            _ => FullName::new(self.owner.namespace(), name),
        }
    }

    /// Registers (or replaces) the handler of task `name`: an async closure that receives a
    /// [`TaskContext`] and the payload read as `P`, and returns a result (any `Serialize`,
    /// kept as JSON, readable with [`result`](Self::result)) or a [`TaskError`].
    ///
    /// From then on, this process claims and runs tasks of that name (for every tenant).
    /// A payload that does not read as `P` makes the task a dead letter at once, with an
    /// error naming the field; a handler that panics or exceeds the worker's timeout fails
    /// its attempt. A plugin's handlers are unregistered when it stops.
    pub fn register<P, F, Fut, R>(&self, name: &str, handler: F) -> Result<(), WorkerError>
    where
        P: DeserializeOwned + Send + 'static,
        F: Fn(TaskContext, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, TaskError>> + Send + 'static,
        R: Serialize + Send + 'static,
    {
        if name.contains('.') {
            return Err(WorkerError::InvalidName {
                name: name.to_owned(),
                reason: "handlers are registered in the handle's own namespace; give the name \
                         without a prefix"
                    .into(),
            });
        }
        let full = self.resolve(name)?;
        let (run, check) = erase(full.full.clone(), handler);
        self.engine.registry.insert(
            full.full,
            Registered {
                owner: self.owner.clone(),
                run,
                check,
            },
        );
        self.engine.registered();
        Ok(())
    }

    /// Unregisters the handler of task `name`; whether there was one. Tasks of that name stay
    /// queued until a handler is registered again (here or in another instance).
    pub fn unregister(&self, name: &str) -> Result<bool, WorkerError> {
        if name.contains('.') {
            return Ok(false);
        }
        let full = self.resolve(name)?;
        Ok(self.engine.registry.remove(&full.full))
    }

    /// Sends task `name` with `payload`, with the default [`SendOptions`].
    pub async fn send<T: Serialize + ?Sized>(
        &self,
        name: &str,
        payload: &T,
    ) -> Result<TaskId, WorkerError> {
        self.send_with(name, payload, SendOptions::default()).await
    }

    /// Sends task `name` with `payload`: queues it for the handle's tenant and returns its id
    /// (with an idempotency key already known, the id of the task sent with it, and nothing is
    /// queued).
    ///
    /// When this process has the task's handler, the payload is checked against its type
    /// first ([`WorkerError::InvalidPayload`]). The in-process queue refuses a task when full
    /// ([`WorkerError::QueueFull`]); nothing waits.
    pub async fn send_with<T: Serialize + ?Sized>(
        &self,
        name: &str,
        payload: &T,
        options: SendOptions,
    ) -> Result<TaskId, WorkerError> {
        let full = self.resolve(name)?;
        let invalid = |reason: String| WorkerError::InvalidPayload {
            task: full.full.to_string(),
            reason,
        };
        let payload = serde_json::to_value(payload).map_err(|e| invalid(e.to_string()))?;
        if let Some(handler) = self.engine.registry.get(&full.full) {
            (handler.check)(&payload).map_err(&invalid)?;
        }
        let max_attempts = options
            .max_attempts
            .unwrap_or(self.engine.options.max_attempts);
        if max_attempts == 0 {
            return Err(WorkerError::InvalidOptions {
                reason: "`max_attempts` must be at least 1".into(),
            });
        }
        if let Some(key) = &options.idempotency_key
            && (key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN)
        {
            return Err(WorkerError::InvalidOptions {
                reason: format!(
                    "an idempotency key is 1 to {MAX_IDEMPOTENCY_KEY_LEN} bytes long, not {}",
                    key.len()
                ),
            });
        }
        self.engine
            .push(NewTask {
                name: full,
                tenant: self.tenant.clone(),
                payload,
                max_attempts,
                delay: options.delay.unwrap_or_default(),
                key: options.idempotency_key,
                trace: self.trace,
            })
            .await
    }

    /// Task `id`, as the queue holds it.
    pub async fn info(&self, id: TaskId) -> Result<TaskInfo, WorkerError> {
        self.engine
            .queue
            .info(id, self.scope())
            .await?
            .ok_or(WorkerError::UnknownTask { id })
    }

    /// Where task `id` is.
    pub async fn status(&self, id: TaskId) -> Result<TaskStatus, WorkerError> {
        Ok(self.info(id).await?.status)
    }

    /// The result of task `id`, read as `R`, once it has succeeded; `None` before (or if it
    /// is dead).
    pub async fn result<R: DeserializeOwned>(&self, id: TaskId) -> Result<Option<R>, WorkerError> {
        match self.status(id).await? {
            TaskStatus::Succeeded { result, .. } => serde_json::from_value(result)
                .map(Some)
                .map_err(|e| WorkerError::InvalidResult {
                    id,
                    reason: e.to_string(),
                }),
            _ => Ok(None),
        }
    }

    /// Waits until task `id` has succeeded or is dead, at most `timeout`; returns its status
    /// then (finished or not: check [`TaskStatus::is_finished`]).
    pub async fn wait(&self, id: TaskId, timeout: Duration) -> Result<TaskStatus, WorkerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let every = match self.engine.queue.kind() {
            "memory" => Duration::from_millis(5),
            _ => self
                .engine
                .options
                .poll_interval
                .min(Duration::from_millis(50)),
        };
        loop {
            let status = self.status(id).await?;
            if status.is_finished() || tokio::time::Instant::now() >= deadline {
                return Ok(status);
            }
            tokio::time::sleep(every).await;
        }
    }

    /// The dead letters this handle sees, oldest first, at most [`DEAD_LETTERS_PAGE`].
    pub async fn dead_letters(&self) -> Result<Vec<TaskInfo>, WorkerError> {
        self.engine
            .queue
            .dead(self.scope(), DEAD_LETTERS_PAGE)
            .await
    }

    /// Sends dead letter `id` back to the queue, its attempts reset, to run as soon as a
    /// worker with its handler is free.
    pub async fn redrive(&self, id: TaskId) -> Result<(), WorkerError> {
        self.engine.check_open()?;
        self.engine.queue.redrive(id, self.scope()).await?;
        self.engine.notify();
        Ok(())
    }

    /// Whether this is the host's handle.
    pub fn is_host(&self) -> bool {
        self.owner.namespace() == HOST
    }
}
