//! [`WorkerService`]: the `worker` service a host registers.

use std::sync::{Arc, OnceLock};

use super::WorkerConfig;
use super::{
    Worker, WorkerError, WorkerOptions,
    engine::Engine,
    name::Owner,
    options::QueueBackend,
    queue::{Queue, memory::MemoryQueue},
};
use crate::{Health, Service, ServiceContext, ServiceError, async_trait};

/// The task worker, named `worker`: named tasks of plugins (through
/// `ctx.handle::<Worker>()`) and of the host (through
/// `xcore.handle::<Worker>()`), with retries, dead letters and a concurrency
/// limit, in process, on Postgres or on Redis Streams. See [the module](super) for the guarantees.
///
/// - `init` opens the queue: the in-process one, the Postgres table `xcore_tasks`
///   (created if missing), or the Redis Streams queue (an unreachable server fails the boot);
/// - `start` starts claiming tasks;
/// - a stopping plugin's handlers are unregistered (its queued tasks stay queued, for a
///   later run of the plugin, here or on another instance); its attempts in flight get the
///   shutdown timeout to end, then are interrupted and put back in the queue;
/// - `shutdown` stops claiming, waits for the attempts in flight (at most the shutdown
///   timeout), interrupts and puts back the rest;
/// - `health` reports the queue depth, the attempts in flight and the dead letters.
///
/// Cloning gives another handle on the same service.
///
/// ```
/// use std::time::Duration;
/// use xcore::prelude::*;
/// use xcore::services::worker::{TaskError, Worker, WorkerOptions, WorkerService};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let service = WorkerService::new(WorkerOptions::memory().concurrency(4))?;
/// let xcore = Xcore::builder().without_registered().service(service).build()?;
/// xcore.boot().await?;
/// let worker = xcore.handle::<Worker>()?;
/// worker.register("double", |_task, n: u64| async move { Ok::<_, TaskError>(n * 2) })?;
/// let id = worker.send("double", &21).await?;
/// worker.wait(id, Duration::from_secs(5)).await?;
/// assert_eq!(worker.result::<u64>(id).await?, Some(42));
/// let health = xcore.health().await;
/// assert!(health.status() == xcore::HealthStatus::Healthy);
/// xcore.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct WorkerService {
    inner: Arc<Inner>,
}

struct Inner {
    options: WorkerOptions,
    engine: OnceLock<Arc<Engine>>,
}

impl WorkerService {
    /// The service's name.
    pub const NAME: &'static str = "worker";

    /// A service for `options`, checked (concurrency and attempts at least 1, the backend
    /// available in this build).
    pub fn new(options: WorkerOptions) -> Result<Self, WorkerError> {
        options
            .check()
            .map_err(|reason| WorkerError::InvalidOptions { reason })?;
        Ok(Self {
            inner: Arc::new(Inner {
                options,
                engine: OnceLock::new(),
            }),
        })
    }

    /// A service for a `services.worker` section.
    pub fn from_config(config: &WorkerConfig) -> Result<Self, WorkerError> {
        Self::new(WorkerOptions::from_config(config))
    }

    /// The options it was built from.
    pub fn options(&self) -> &WorkerOptions {
        &self.inner.options
    }

    /// The engine, once `init` has run.
    pub(crate) fn engine(&self) -> Result<&Arc<Engine>, WorkerError> {
        self.inner.engine.get().ok_or_else(|| {
            WorkerError::unavailable(
                "the worker service has not been initialised (boot the Xcore first)",
            )
        })
    }

    /// The host's handle (not subject to grants), once initialised.
    pub fn handle(&self) -> Result<Worker, WorkerError> {
        Ok(Worker::new(self.engine()?.clone(), Owner::Host))
    }

    async fn open(&self, ctx: &ServiceContext) -> Result<Arc<dyn Queue>, String> {
        let options = &self.inner.options;
        match &options.backend {
            QueueBackend::Memory => Ok(Arc::new(MemoryQueue::new(
                options.queue_capacity,
                options.keep_finished,
            ))),
            #[cfg(feature = "postgres")]
            QueueBackend::Postgres(target) => super::open_postgres::open(options, target, ctx)
                .await
                .map(|q| Arc::new(q) as Arc<dyn Queue>),
            #[cfg(not(feature = "postgres"))]
            QueueBackend::Postgres(_) => {
                let _ = ctx;
                Err("the Postgres worker backend needs xcore's `postgres` feature".into())
            }
            #[cfg(feature = "redis")]
            QueueBackend::Redis(url) => super::queue::redis::RedisQueue::open(
                url,
                options.lease,
                options.retention,
                options.queue_capacity,
            )
            .await
            .map(|q| Arc::new(q) as Arc<dyn Queue>)
            .map_err(|e| format!("the worker's Redis queue: {e}")),
            #[cfg(not(feature = "redis"))]
            QueueBackend::Redis(_) => {
                Err("the Redis worker backend needs xcore's `redis` feature".into())
            }
        }
    }
}

impl std::fmt::Debug for WorkerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerService")
            .field("backend", &self.inner.options.backend)
            .field("concurrency", &self.inner.options.concurrency)
            .field("initialised", &self.inner.engine.get().is_some())
            .finish()
    }
}

#[async_trait]
impl Service for WorkerService {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn dependencies(&self) -> Vec<String> {
        match &self.inner.options.backend {
            QueueBackend::Postgres(super::PostgresQueue::Database(_)) => vec!["db".to_owned()],
            _ => Vec::new(),
        }
    }

    async fn init(&mut self, ctx: &ServiceContext) -> Result<(), ServiceError> {
        if self.inner.engine.get().is_some() {
            return Err(ServiceError::msg(
                "this worker service has already been initialised",
            ));
        }
        let queue = self.open(ctx).await.map_err(ServiceError::msg)?;
        let metrics = ctx
            .xcore()
            .map(|shared| shared.metrics().clone())
            .unwrap_or_default();
        let _ = self
            .inner
            .engine
            .set(Engine::new(self.inner.options.clone(), queue, metrics));
        Ok(())
    }

    async fn start(&self, _ctx: &ServiceContext) -> Result<(), ServiceError> {
        self.engine().map_err(ServiceError::msg)?.start();
        Ok(())
    }

    async fn health(&self) -> Health {
        match self.engine() {
            Ok(engine) => engine.health().await,
            Err(e) => Health::unhealthy(e.to_string()),
        }
    }

    async fn on_plugin_stop(&self, plugin: &str) {
        if let Ok(engine) = self.engine() {
            engine.stop_plugin(plugin).await;
        }
    }

    async fn shutdown(&self) -> Result<(), ServiceError> {
        if let Ok(engine) = self.engine() {
            engine.shutdown().await;
        }
        Ok(())
    }
}
