//! [`SchedulerService`]: the `scheduler` service a host registers.

use std::sync::{Arc, OnceLock};

use chrono_tz::Tz;

use super::{
    SchedulerError, SchedulerOptions,
    config_jobs::{self, CheckedJob},
    declared_jobs,
    engine::Engine,
    lock,
    zone::parse_zone,
};
use crate::{
    Health, Service, ServiceContext, ServiceError, StartedPlugin, async_trait, runtime::Shared,
};

/// The scheduler service, named `scheduler`: cron, interval and one-shot jobs of plugins
/// (through `ctx.handle::<Scheduler>()`) and of the host
/// (through `xcore.handle::<Scheduler>()`, and `services.scheduler.jobs`).
///
/// - `init` connects the lock, if one is configured (an unreachable server fails the boot),
///   and creates tokio-cron-scheduler's job scheduler;
/// - `start` starts firing (unless `enabled: false`) and registers the config jobs; with a
///   lock, it also starts applying the shared jobs (their change notifications, and a resync
///   every `shared.resync`);
/// - a starting plugin's declared jobs (`#[job(...)]` on its actions) are registered once it
///   has started, under its own namespace; a plugin that declares jobs without declaring the
///   service and holding `service:scheduler: schedule`, or with an invalid expression or
///   zone, fails to start;
/// - a stopping plugin's jobs (those it registered, in every tenant, and the config jobs that
///   call it) are removed before its `on_stop`, and their runs get the shutdown timeout to
///   end before they are cancelled;
/// - `shutdown` stops firing, waits for running jobs (at most `shutdown_timeout`), then
///   cancels them;
/// - `health` reports job counts, and "degraded" while the lock server (or the shared job
///   store, the same server) is unreachable.
///
/// Cloning gives another handle on the same service (a test can keep one to call
/// [`Service`] methods directly).
///
/// ```
/// use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
/// use std::time::Duration;
/// use xcore::prelude::*;
/// use xcore::services::scheduler::{Scheduler, SchedulerOptions, SchedulerService, Trigger};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let service = SchedulerService::new(SchedulerOptions::default())?;
/// let xcore = Xcore::builder().without_registered().service(service).build()?;
/// xcore.boot().await?;
///
/// let fired = Arc::new(AtomicU32::new(0));
/// let counter = fired.clone();
/// let scheduler = xcore.handle::<Scheduler>()?;
/// scheduler
///     .add("soon", Trigger::after(Duration::from_millis(300)), move |_job| {
///         let counter = counter.clone();
///         async move {
///             counter.fetch_add(1, Ordering::SeqCst);
///             Ok(())
///         }
///     })
///     .await?;
/// tokio::time::sleep(Duration::from_millis(1500)).await;
/// assert_eq!(fired.load(Ordering::SeqCst), 1);
/// xcore.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SchedulerService {
    inner: Arc<Inner>,
}

struct Inner {
    options: SchedulerOptions,
    zone: Tz,
    jobs: Vec<CheckedJob>,
    engine: OnceLock<Arc<Engine>>,
}

impl SchedulerService {
    /// The service's name.
    pub const NAME: &'static str = "scheduler";

    /// A service for `options`, checked: the time zone, and every config job (its id,
    /// plugin, tenant and trigger). Errors name the key.
    pub fn new(options: SchedulerOptions) -> Result<Self, SchedulerError> {
        let zone = parse_zone(&options.timezone).map_err(|e| SchedulerError::InvalidOptions {
            message: format!("`services.scheduler.timezone`: {e}"),
        })?;
        if let Some(lock) = &options.lock {
            lock::check(lock)?;
        }
        let shared = &options.shared;
        if shared.resync < std::time::Duration::from_millis(100) || shared.max_per_owner == 0 {
            return Err(SchedulerError::InvalidOptions {
                message: format!(
                    "`services.scheduler.shared`: `resync` is {:?} (at least 100ms) and \
                     `max_per_owner` {} (at least 1)",
                    shared.resync, shared.max_per_owner
                ),
            });
        }
        let jobs = options
            .jobs
            .iter()
            .enumerate()
            .map(|(i, job)| config_jobs::check(i, job))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                options,
                zone,
                jobs,
                engine: OnceLock::new(),
            }),
        })
    }

    /// The options it was built from.
    pub fn options(&self) -> &SchedulerOptions {
        &self.inner.options
    }

    /// The engine, once `init` has run.
    pub(crate) fn engine(&self) -> Result<&Arc<Engine>, SchedulerError> {
        self.inner
            .engine
            .get()
            .ok_or_else(|| SchedulerError::Unavailable {
                reason: "the scheduler service has not been initialised (boot the Xcore first)"
                    .into(),
            })
    }

    /// Tells the service which `Xcore` it belongs to (config jobs call its plugins).
    pub(crate) fn attach(&self, shared: &Arc<Shared>) {
        if let Ok(engine) = self.engine() {
            engine.attach(shared);
        }
    }
}

impl std::fmt::Debug for SchedulerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerService")
            .field("enabled", &self.inner.options.enabled)
            .field("timezone", &self.inner.zone.name())
            .field("config_jobs", &self.inner.jobs.len())
            .field("initialised", &self.inner.engine.get().is_some())
            .finish()
    }
}

#[async_trait]
impl Service for SchedulerService {
    fn name(&self) -> &str {
        Self::NAME
    }

    async fn init(&mut self, _ctx: &ServiceContext) -> Result<(), ServiceError> {
        if self.inner.engine.get().is_some() {
            return Err(ServiceError::msg(
                "this scheduler service has already been initialised",
            ));
        }
        let engine = Engine::create(&self.inner.options, self.inner.zone)
            .await
            .map_err(ServiceError::msg)?;
        let _ = self.inner.engine.set(engine);
        Ok(())
    }

    async fn start(&self, ctx: &ServiceContext) -> Result<(), ServiceError> {
        if let Some(shared) = ctx.xcore() {
            self.attach(&shared);
        }
        let engine = self.engine().map_err(ServiceError::msg)?;
        engine.start().await.map_err(ServiceError::msg)?;
        config_jobs::register(engine, &self.inner.jobs)
            .await
            .map_err(ServiceError::msg)
    }

    async fn health(&self) -> Health {
        match self.engine() {
            Ok(engine) => engine.health(),
            Err(e) => Health::unhealthy(e.to_string()),
        }
    }

    async fn on_plugin_start(&self, plugin: &StartedPlugin<'_>) -> Result<(), ServiceError> {
        if let Ok(engine) = self.engine() {
            // Shared jobs calling it can now be applied here.
            engine.shared.wake.notify_one();
        }
        let jobs = plugin.get::<super::DeclaredJob>();
        if jobs.is_empty() {
            return Ok(());
        }
        let engine = self.engine().map_err(ServiceError::msg)?;
        declared_jobs::register(engine, plugin.identity(), jobs)
            .await
            .map_err(ServiceError::msg)
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
