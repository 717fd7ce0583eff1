//! The [`Service`] contract and what a service sees while it boots.

use std::{
    any::Any,
    collections::HashMap,
    fmt,
    sync::{Arc, Weak},
};

use async_trait::async_trait;
use serde::de::DeserializeOwned;

use crate::{
    Health, PluginIdentity, ServiceError,
    config::{Config, ConfigError},
    plugin::{Declaration, Declarations},
    runtime::Shared,
};

/// A service: a node of the container that plugins (and other services) depend on — a
/// database, a cache, a scheduler, or an extension of the host's.
///
/// # Lifecycle contract
///
/// 1. **`init`** — during the load phase of `Xcore::boot`, in the service's wave, after every
///    service it depends on has initialised, concurrently with the other nodes of its wave,
///    under the load timeout. It has `&mut self`: open pools and connections here; the
///    dependencies are reachable through [`ServiceContext::dependency`]. An error (a panic, the
///    timeout) marks the service `failed`: its dependents are `skipped`, and with the default
///    policy `boot()` rolls back and returns an error.
/// 2. **`start`** — during the start phase, after every node has loaded, wave by wave.
/// 3. **`health`** — any time after `start`.
/// 4. **`on_plugin_start`** — when a plugin has started; **`on_plugin_stop`** — when a plugin
///    stops (shutdown, rollback), before its `on_stop`, **and when it fails** after running a
///    hook (`on_load` or `on_start` returned an error, panicked or timed out; a service refused
///    it in `on_plugin_start`; it loaded but was skipped at start): one path for both, so that
///    nothing a failed plugin registered (jobs, task handlers, subscriptions, what an extension
///    keeps for it) keeps acting.
/// 5. **`shutdown`** — during `Xcore::shutdown` or the rollback of a failed boot, for every
///    service whose `init` succeeded, in reverse wave order (after the plugins that depend on
///    it have stopped), under the stop timeout. Release everything `init` acquired.
///
/// ```
/// use xcore::prelude::*;
///
/// struct Clock;
///
/// #[async_trait]
/// impl Service for Clock {
///     fn name(&self) -> &str {
///         "clock"
///     }
/// }
///
/// let xcore = Xcore::builder().without_registered().service(Clock).build().unwrap();
/// assert_eq!(xcore.plan().wave_count(), 1);
/// ```
#[async_trait]
pub trait Service: Any + Send + Sync {
    /// The service's name, unique among the services of one `Xcore`.
    fn name(&self) -> &str;

    /// The services this one depends on, by name.
    fn dependencies(&self) -> Vec<String> {
        Vec::new()
    }

    /// Acquires the service's resources; see the contract above.
    async fn init(&mut self, ctx: &ServiceContext) -> Result<(), ServiceError> {
        let _ = ctx;
        Ok(())
    }

    /// Starts background activity; see the contract above.
    async fn start(&self, ctx: &ServiceContext) -> Result<(), ServiceError> {
        let _ = ctx;
        Ok(())
    }

    /// Reports the service's health. The default is healthy.
    async fn health(&self) -> Health {
        Health::healthy()
    }

    /// A plugin has just started (its `on_start` succeeded and it serves calls): take what it
    /// declared for this service, by type ([`StartedPlugin::get`]: the scheduler registers
    /// its `DeclaredJob`s). Called for every loaded service, once the kernel has checked that
    /// the plugin declares the services its declarations are for
    /// ([`StartedPlugin::check_declared_services`]). An error fails the plugin: it is stopped again (`on_plugin_stop` on
    /// every service, then its `on_stop`) and reported `failed` with the reason. The default
    /// does nothing.
    async fn on_plugin_start(&self, plugin: &StartedPlugin<'_>) -> Result<(), ServiceError> {
        let _ = plugin;
        Ok(())
    }

    /// A plugin is stopping, or failed: withdraw what it holds in this service (its jobs, its
    /// task handlers, its subscriptions). Called for every loaded service, before the plugin's
    /// `on_stop` (a plugin that failed in `on_load` or `on_start` gets no `on_stop`), while
    /// the service is still running; the plugin's calls and event subscriptions are withdrawn
    /// already. May be called more than once for one plugin. The default does nothing.
    async fn on_plugin_stop(&self, plugin: &str) {
        let _ = plugin;
    }

    /// Reports the service's gauges into `metrics` (pool sizes, queue depths): called by
    /// [`Xcore::sample_metrics`](crate::Xcore::sample_metrics) (and so before each scrape of
    /// `GET {admin}/metrics`). The default reports nothing.
    fn sample_metrics(&self, metrics: &crate::observability::Metrics) {
        let _ = metrics;
    }

    /// Releases the service's resources; see the contract above.
    async fn shutdown(&self) -> Result<(), ServiceError> {
        Ok(())
    }
}

/// A plugin that has just started, as [`Service::on_plugin_start`] sees it: its identity and
/// what it declares for the services ([`Declarations`], read by type with [`get`](Self::get)).
///
/// ```
/// use xcore::prelude::*;
/// use xcore::StartedPlugin;
/// use xcore::services::scheduler::DeclaredJob;
///
/// struct Audit;
///
/// #[async_trait]
/// impl Service for Audit {
///     fn name(&self) -> &str {
///         "audit"
///     }
///
///     async fn on_plugin_start(&self, plugin: &StartedPlugin<'_>) -> Result<(), ServiceError> {
///         for job in plugin.get::<DeclaredJob>() {
///             println!("{} runs {} on a schedule", plugin.name(), job.action());
///         }
///         Ok(())
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct StartedPlugin<'a> {
    identity: &'a PluginIdentity,
    declarations: Declarations,
}

impl<'a> StartedPlugin<'a> {
    pub(crate) fn new(identity: &'a PluginIdentity, declarations: Declarations) -> Self {
        Self {
            identity,
            declarations,
        }
    }

    /// The plugin's identity (name, manifest, grants).
    pub fn identity(&self) -> &'a PluginIdentity {
        self.identity
    }

    /// The plugin's name.
    pub fn name(&self) -> &'a str {
        self.identity.name()
    }

    /// Everything it declares for the services ([`Actions::declarations`](crate::Actions::declarations)).
    pub fn declarations(&self) -> &Declarations {
        &self.declarations
    }

    /// Its declarations of type `T` (its `#[job]`s for
    /// [`DeclaredJob`](crate::services::scheduler::DeclaredJob)); empty when it makes none.
    pub fn get<T: Declaration>(&self) -> &[T] {
        self.declarations.get::<T>()
    }

    /// Checks that the plugin's manifest declares every service its declarations are for
    /// (`services = ["scheduler"]` for `#[job]`s). The kernel calls it before any service sees
    /// the plugin; the error, naming the declaration and the service to add, fails the
    /// plugin's start.
    pub fn check_declared_services(&self) -> Result<(), String> {
        self.declarations
            .check_services(self.identity.manifest().services())
    }
}

/// What a service sees during `init` and `start`: its name and its dependencies.
#[derive(Clone)]
pub struct ServiceContext {
    name: Arc<str>,
    dependencies: Arc<HashMap<String, Arc<dyn Service>>>,
    config: Option<Arc<Config>>,
    xcore: Weak<Shared>,
}

impl ServiceContext {
    pub(crate) fn new(
        name: &str,
        dependencies: HashMap<String, Arc<dyn Service>>,
        config: Option<Arc<Config>>,
        xcore: Weak<Shared>,
    ) -> Self {
        Self {
            name: Arc::from(name),
            dependencies: Arc::new(dependencies),
            config,
            xcore,
        }
    }

    /// The `Xcore` the service belongs to, for xcore's own services (the scheduler calls
    /// plugins from config jobs).
    #[cfg_attr(
        not(any(feature = "scheduler", feature = "sqlite", feature = "postgres")),
        allow(dead_code)
    )]
    pub(crate) fn xcore(&self) -> Option<Arc<Shared>> {
        self.xcore.upgrade()
    }

    /// The service's own config section, `services.extensions.<name>`, typed; `T::default()`
    /// when the `Xcore` has no config or the section is absent. The error names the key path
    /// and the line of the bad value.
    pub fn config<T: DeserializeOwned + Default>(&self) -> Result<T, ConfigError> {
        match &self.config {
            Some(config) => Ok(config.extension_section(&self.name)?.unwrap_or_default()),
            None => Ok(T::default()),
        }
    }

    /// The service's own name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A dependency, by name and type: `None` if the service did not declare it or if it is
    /// of another type.
    pub fn dependency<T: Service>(&self, name: &str) -> Option<Arc<T>> {
        let service: Arc<dyn Any + Send + Sync> = self.dependencies.get(name)?.clone();
        service.downcast::<T>().ok()
    }
}

impl fmt::Debug for ServiceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceContext")
            .field("name", &self.name)
            .field(
                "dependencies",
                &self.dependencies.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}
