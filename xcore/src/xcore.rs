//! [`Xcore`], the value a host owns, and its builder.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::Arc,
    time::Duration,
};

use serde_json::Value;
use tower::Layer;
use tracing::Instrument;

use crate::{
    BootError, BootOptions, BootReport, CallContext, CallError, Health, HealthStatus, Manifest,
    ManifestError, NodeId, OnFailure, Plan, Plugin, PluginContext, PluginIdentity, Service,
    ShutdownReport,
    call::{BoxCallService, CallRequest, HostLayer, host_layer},
    config::{Config, ConfigError},
    container::{self, NodeSpec},
    events::{EventBus, Events},
    health::{HealthReport, NodeHealth},
    observability::Metrics,
    permissions::{Audit, audit::DEFAULT_AUDIT_CAPACITY},
    plugin::registered,
    runtime::{
        Lifecycle, LifecycleAction, LifecycleReport, Parts, PluginState, RuntimeError, Shared,
    },
};

/// The plugin framework, owned and driven by the host: build it, [`plan`](Self::plan) it,
/// [`boot`](Self::boot) it, [`call`](Self::call) plugins, [`shutdown`](Self::shutdown).
///
/// Cloning gives another handle to the same instance (for HTTP handlers, say). Two values built
/// separately share nothing, even in one process.
///
/// ```
/// use xcore::prelude::*;
/// use serde_json::{Value, json};
///
/// struct Ping;
///
/// #[async_trait]
/// impl Actions for Ping {
///     async fn handle(&self, action: &str, _payload: Value, _cx: &CallContext) -> Result<Value, CallError> {
///         match action {
///             "ping" => Ok(json!("pong")),
///             other => Err(CallError::unknown_action(other, &["ping"])),
///         }
///     }
/// }
///
/// #[async_trait]
/// impl Plugin for Ping {}
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manifest = xcore::Manifest::builder("ping", "1.0.0").build()?;
/// let xcore = Xcore::builder().without_registered().plugin(manifest, Ping).build()?;
/// let report = xcore.boot().await?;
/// assert_eq!(report.plugin("ping").unwrap().state(), xcore::NodeState::Started);
/// assert_eq!(xcore.call("ping", "ping", json!({})).await?, json!("pong"));
/// let stopped = xcore.shutdown().await;
/// assert!(stopped.is_clean());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Xcore {
    pub(crate) shared: Arc<Shared>,
}

impl Xcore {
    /// Starts a builder. By default it uses every plugin registered with `#[plugin]`.
    pub fn builder() -> XcoreBuilder {
        XcoreBuilder::default()
    }

    /// The boot plan: waves and the nodes that cannot be planned. Available before boot;
    /// `Display` prints it readably.
    pub fn plan(&self) -> &Plan {
        self.shared.plan()
    }

    /// Boots: every node's load hook wave by wave (concurrently inside a wave), then every
    /// start hook wave by wave. See [`Plugin`] and [`Service`] for the contract.
    ///
    /// Returns the [`BootReport`] — failed and skipped plugins are in it — or, when a node
    /// fails under the [`OnFailure::Abort`] policy (by default: any service), rolls back what
    /// had started and returns [`BootError::Aborted`]. An `Xcore` boots once.
    pub async fn boot(&self) -> Result<BootReport, BootError> {
        let span = tracing::info_span!("xcore.boot", nodes = self.shared.plan().nodes().len());
        self.shared.metrics().start_upkeep();
        container::boot(&self.shared).instrument(span).await
    }

    /// The report of the last successful boot.
    pub fn boot_report(&self) -> Option<BootReport> {
        self.shared.report()
    }

    /// Calls `plugin.action` as the host, for the tenant `default`.
    pub async fn call(
        &self,
        plugin: &str,
        action: &str,
        payload: Value,
    ) -> Result<Value, CallError> {
        self.shared
            .dispatch(plugin, action, payload, CallContext::host())
            .await
    }

    /// Calls `plugin.action` with an explicit context (tenant, trace, deadline).
    pub async fn call_with(
        &self,
        cx: CallContext,
        plugin: &str,
        action: &str,
        payload: Value,
    ) -> Result<Value, CallError> {
        self.shared.dispatch(plugin, action, payload, cx).await
    }

    /// Stops everything boot started: plugins' `on_stop`, then services' `shutdown`, in
    /// reverse wave order, concurrently inside a wave, each under the stop timeout. Always
    /// completes; the report says what did not stop cleanly. A second call does nothing.
    pub async fn shutdown(&self) -> ShutdownReport {
        container::shutdown(&self.shared)
            .instrument(tracing::info_span!("xcore.shutdown"))
            .await
    }

    /// Checks every node concurrently, each under the health timeout (2 s by default): the
    /// services that loaded, the plugins that run, and the plugins that failed to boot.
    pub async fn health(&self) -> HealthReport {
        let limit = self.shared.options().health_timeout;
        let timed = |node: NodeId, check: futures_util::future::BoxFuture<'static, Health>| async move {
            let started = tokio::time::Instant::now();
            let check = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(check));
            let health = match tokio::time::timeout(limit, check).await {
                Ok(Ok(health)) => health,
                Ok(Err(panic)) => Health::unhealthy(format!(
                    "the health check panicked: {}",
                    crate::call::layers::catch_panic_message(&*panic)
                )),
                Err(_) => Health::unhealthy(format!("no answer within {limit:?}")),
            };
            NodeHealth {
                node,
                health,
                took: started.elapsed(),
            }
        };
        let services = self.shared.services();
        let plugins = self.shared.runtime().instances();
        let mut checks = Vec::new();
        for (name, service) in services {
            checks.push(timed(
                NodeId::service(&name),
                Box::pin(async move { service.health().await }),
            ));
        }
        for plugin in &plugins {
            let instance = plugin.plugin.clone();
            checks.push(timed(
                NodeId::plugin(plugin.ctx.name()),
                Box::pin(async move { instance.health().await }),
            ));
        }
        let mut nodes = futures_util::future::join_all(checks).await;
        if self.shared.lifecycle() != Lifecycle::Built {
            for status in self.plugins() {
                if status.state != PluginState::Running {
                    let why = match &status.reason {
                        Some(reason) => format!("{}: {reason}", status.state),
                        None => status.state.to_string(),
                    };
                    nodes.push(NodeHealth {
                        node: NodeId::plugin(&status.name),
                        health: Health::unhealthy(why),
                        took: Duration::ZERO,
                    });
                }
            }
        }
        let running = self.shared.lifecycle() == Lifecycle::Running;
        let status = nodes.iter().fold(
            if running {
                HealthStatus::Healthy
            } else {
                HealthStatus::Unhealthy
            },
            |worst, n| {
                let status = match (n.node.kind(), n.health.status()) {
                    (crate::NodeKind::Plugin, HealthStatus::Unhealthy) => HealthStatus::Degraded,
                    (_, s) => s,
                };
                worst.max(status)
            },
        );
        HealthReport { status, nodes }
    }

    /// The host's handle on the event bus: emits and subscriptions not subject to grants.
    pub fn events(&self) -> Events {
        Events::new(self.shared.events().clone(), None)
    }

    /// The denials of this `Xcore`: counted, and the most recent kept (see
    /// [`XcoreBuilder::audit_capacity`]).
    pub fn audit(&self) -> &Audit {
        self.shared.audit()
    }

    /// Where this `Xcore` records its metrics (see [`XcoreBuilder::metrics`]).
    pub fn metrics(&self) -> &Metrics {
        self.shared.metrics()
    }

    /// Samples the gauges into the metrics: `xcore_plugin_state{plugin,state}`, 1 for each
    /// plugin's current state and 0 for the others, and each service's own
    /// ([`Service::sample_metrics`]: `xcore_db_pool_connections{db,state}` for the databases). `GET {admin}/metrics` samples before it
    /// renders; a host exporting elsewhere calls this before each export (or periodically).
    pub fn sample_metrics(&self) {
        let metrics = &self.shared.metrics();
        if !metrics.is_enabled() {
            return;
        }
        for (_, service) in self.shared.services() {
            service.sample_metrics(metrics);
        }
        for status in self.plugins() {
            let plugin: Arc<str> = Arc::from(status.name.as_str());
            for candidate in PluginState::ALL {
                metrics
                    .gauge(
                        crate::observability::names::PLUGIN_STATE,
                        vec![
                            metrics::Label::new("plugin", plugin.clone()),
                            metrics::Label::from_static_parts("state", candidate.as_str()),
                        ],
                    )
                    .set(if candidate == status.state { 1.0 } else { 0.0 });
            }
        }
    }

    /// Every plugin of the plan with its live state, sorted by name.
    pub fn plugins(&self) -> Vec<PluginStatus> {
        let mut all: Vec<PluginStatus> = self
            .shared
            .identities()
            .iter()
            .filter_map(|identity| {
                let slot = self.shared.runtime().slot(identity.name())?;
                let (state, reason) = slot.state();
                Some(PluginStatus {
                    name: identity.name().to_owned(),
                    version: identity.manifest().version().to_string(),
                    state,
                    reason: reason.map(|r| r.to_string()),
                })
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The live state of plugin `name`, or `None` when the plan has no such plugin.
    pub fn plugin_state(&self, name: &str) -> Option<PluginState> {
        Some(self.shared.runtime().slot(name)?.state().0)
    }

    /// The tenants this `Xcore` admits: register tenants here when the policy is `known`.
    pub fn tenants(&self) -> &Arc<crate::tenancy::Tenants> {
        self.shared.tenants()
    }

    /// Starts the web layer of this `Xcore`: one service serving the plugins' routes under
    /// `/plugin/<name>/…` and the admin API under `/xcore`, to mount with an adapter of
    /// [`web`](crate::web).
    pub fn web(&self) -> crate::web::WebBuilder {
        crate::web::WebBuilder::new(self.clone())
    }

    /// Stops plugin `name` while the host runs: first every running plugin that requires it
    /// (reverse waves), then the plugin. Each stops serving at once (new calls and requests
    /// are answered `unavailable`, 503), drains what is inside its gate (at most the stop
    /// timeout), loses what it registered (routes, subscriptions, jobs, task handlers,
    /// extension claims), then runs its `on_stop`. Emits `plugin.<name>.stopped` for each.
    /// The report lists the plugins stopped, in order.
    ///
    /// ```
    /// use xcore::prelude::*;
    /// use xcore::runtime::PluginState;
    /// use serde_json::json;
    ///
    /// #[derive(Default)]
    /// #[plugin(name = "clock", version = "1.0.0")]
    /// struct Clock;
    ///
    /// #[async_trait]
    /// impl Plugin for Clock {}
    ///
    /// #[actions]
    /// impl Clock {
    ///     #[action]
    ///     async fn now(&self) -> Result<u64, CallError> {
    ///         Ok(42)
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let xcore = Xcore::builder().only_registered(["clock"]).build()?;
    /// xcore.boot().await?.ensure_all_started()?;
    /// xcore.stop_plugin("clock").await?;
    /// assert_eq!(xcore.plugin_state("clock"), Some(PluginState::Stopped));
    /// let err = xcore.call("clock", "now", json!({})).await.unwrap_err();
    /// assert_eq!(err.code(), ErrorCode::Unavailable);
    /// xcore.start_plugin("clock").await?; // a fresh instance, from the registration
    /// assert_eq!(xcore.call("clock", "now", json!({})).await?, json!(42));
    /// let report = xcore.reload_plugin("clock").await?; // no call fails while it swaps
    /// assert_eq!(report.started, ["clock"]);
    /// # xcore.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn stop_plugin(&self, name: &str) -> Result<LifecycleReport, RuntimeError> {
        container::change_plugin(&self.shared, name, LifecycleAction::Stop).await
    }

    /// Starts plugin `name` again (stopped, failed, or skipped at boot) with a fresh instance
    /// — from its registration, or the factory of
    /// [`XcoreBuilder::plugin_factory`] — and a fresh [`PluginContext`]: `on_load`, then
    /// `on_start`, then its routes, subscriptions, jobs and task handlers are live. Then the
    /// plugins that require it and are down because of it (stopped with it, skipped at boot)
    /// start too, in waves. Every service and plugin it requires must run
    /// ([`RuntimeError::DependencyDown`]). Emits `plugin.<name>.started`.
    pub async fn start_plugin(&self, name: &str) -> Result<LifecycleReport, RuntimeError> {
        container::change_plugin(&self.shared, name, LifecycleAction::Start).await
    }

    /// Reloads the running plugin `name`: re-reads the config file (when the config came from
    /// one; a file that no longer loads changes nothing), then swaps a fresh instance in.
    /// Calls and route requests arriving during the swap wait for the new instance (at most
    /// [`BootOptions::swap_wait`], and their deadline), so none fails because of the reload;
    /// the old instance drains, loses its registrations and gets its `on_stop` before the new
    /// one's `on_load`. Plugins that require it keep running. Emits `plugin.<name>.reloaded`.
    /// If the new instance fails, the plugin is `failed` ([`RuntimeError::Failed`]).
    pub async fn reload_plugin(&self, name: &str) -> Result<LifecycleReport, RuntimeError> {
        container::change_plugin(&self.shared, name, LifecycleAction::Reload).await
    }

    /// Restarts plugin `name`: a running one is stopped (with its dependents) and started
    /// again (with them); a failed or stopped one is started. The way back for a plugin that
    /// failed at boot or in a reload.
    pub async fn restart_plugin(&self, name: &str) -> Result<LifecycleReport, RuntimeError> {
        container::change_plugin(&self.shared, name, LifecycleAction::Restart).await
    }

    /// The names of the plugins currently serving calls, sorted.
    pub fn running_plugins(&self) -> Vec<String> {
        self.shared
            .runtime()
            .instances()
            .iter()
            .map(|i| i.ctx.name().to_owned())
            .collect()
    }
}

/// A plugin and its live state, as [`Xcore::plugins`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PluginStatus {
    /// The plugin's name.
    pub name: String,
    /// Its manifest's version.
    pub version: String,
    /// Its live state.
    pub state: PluginState,
    /// Why it is not running, when it failed, was skipped or was stopped because of another.
    pub reason: Option<String>,
}

impl fmt::Debug for Xcore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Xcore")
            .field("lifecycle", &self.shared.lifecycle())
            .field("nodes", &self.shared.plan().nodes().len())
            .finish()
    }
}

/// Why an [`Xcore`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The config does not allow building (an insecure production config, a service it names
    /// that this build does not support).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A registered plugin's manifest is invalid.
    #[error("{source} (plugin type `{type_name}`)")]
    Manifest {
        /// The manifest error.
        source: ManifestError,
        /// The Rust type registered.
        type_name: &'static str,
    },
    /// Two plugins have the same name.
    #[error(
        "two plugins are named `{name}`: `{first}` and `{second}`; plugin names must be unique"
    )]
    DuplicatePlugin {
        /// The name.
        name: String,
        /// The first plugin's Rust type.
        first: &'static str,
        /// The second plugin's Rust type.
        second: &'static str,
    },
    /// Two services have the same name.
    #[error(
        "two services are named `{name}`: `{first}` and `{second}`; service names must be unique"
    )]
    DuplicateService {
        /// The name.
        name: String,
        /// The first service's Rust type.
        first: &'static str,
        /// The second service's Rust type.
        second: &'static str,
    },
    /// A service's name is invalid.
    #[error("service `{type_name}`: {source}")]
    ServiceName {
        /// The problem.
        source: xcore_manifest::NameError,
        /// The service's Rust type.
        type_name: &'static str,
    },
    /// `only_registered` names a plugin that is not registered.
    #[error(
        "`only_registered` names `{name}`, but no plugin of that name is registered; registered: {available}"
    )]
    UnknownPlugin {
        /// The name asked for.
        name: String,
        /// The registered names, comma-separated.
        available: String,
    },
    /// [`require_registered`](XcoreBuilder::require_registered) names plugins that are not
    /// registered: most often a plugin crate the host depends on but never references, which
    /// the linker leaves out (with its `#[plugin]` registration).
    #[error(
        "no plugin named {} is registered in this binary (registered: {registered}); a plugin \
         crate the host depends on but never references is not linked: reference it from the \
         host, e.g. `use my_plugin as _;`",
        missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
    )]
    NotRegistered {
        /// The names required and not registered.
        missing: Vec<String>,
        /// The registered names, comma-separated (`none` if there is none).
        registered: String,
    },
}

enum Selection {
    All,
    None,
    Only(Vec<String>),
}

struct PluginSource {
    manifest: Manifest,
    instance: Box<dyn Plugin>,
    factory: Option<container::Factory>,
    type_name: &'static str,
}

/// Builds an [`Xcore`]: services, plugins (registered and by hand), boot options and host
/// layers on the call pipeline.
#[must_use]
pub struct XcoreBuilder {
    services: Vec<(Box<dyn Service>, &'static str)>,
    plugins: Vec<PluginSource>,
    selection: Selection,
    options: BootOptions,
    layers: Vec<HostLayer>,
    audit_capacity: usize,
    config: Option<Arc<Config>>,
    tenants: Option<crate::tenancy::Tenants>,
    required: Vec<String>,
    metrics: Metrics,
}

impl Default for XcoreBuilder {
    fn default() -> Self {
        Self {
            required: Vec::new(),
            services: Vec::new(),
            plugins: Vec::new(),
            selection: Selection::All,
            options: BootOptions::default(),
            layers: Vec::new(),
            audit_capacity: DEFAULT_AUDIT_CAPACITY,
            tenants: None,
            config: None,
            metrics: Metrics::disabled(),
        }
    }
}

impl fmt::Debug for XcoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XcoreBuilder")
            .field("services", &self.services.len())
            .field("plugins", &self.plugins.len())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl XcoreBuilder {
    /// Adds a service.
    pub fn service<S: Service>(mut self, service: S) -> Self {
        self.services
            .push((Box::new(service), std::any::type_name::<S>()));
        self
    }

    /// Adds a host extension under `name`: a service of the host's that plugins reach with
    /// `ctx.named::<ExtensionHandle<S>>(name)` (grant `service:<name>: use`). Its own `name()` is ignored.
    pub fn extension<S: Service>(mut self, name: &str, service: S) -> Self {
        self.services.push((
            Box::new(crate::services::Extension::new(name, service)),
            std::any::type_name::<S>(),
        ));
        self
    }

    /// Adds a plugin by hand, with its manifest: no macro, no registration.
    ///
    /// Added as one instance, it cannot be started again once stopped, reloaded or
    /// restarted ([`RuntimeError::NoFactory`](crate::runtime::RuntimeError)): add it with
    /// [`plugin_factory`](Self::plugin_factory) for that.
    pub fn plugin<P: Plugin>(mut self, manifest: Manifest, plugin: P) -> Self {
        self.plugins.push(PluginSource {
            manifest,
            instance: Box::new(plugin),
            factory: None,
            type_name: std::any::type_name::<P>(),
        });
        self
    }

    /// Adds a plugin by hand, with its manifest and a function making fresh instances: the
    /// first at build, the next ones when the plugin is started again after a stop, reloaded
    /// or restarted ([`Xcore::reload_plugin`]), as for registered plugins.
    pub fn plugin_factory<P, F>(mut self, manifest: Manifest, make: F) -> Self
    where
        P: Plugin,
        F: Fn() -> P + Send + Sync + 'static,
    {
        let instance = Box::new(make());
        self.plugins.push(PluginSource {
            manifest,
            instance,
            factory: Some(Arc::new(move || Box::new(make()) as Box<dyn Plugin>)),
            type_name: std::any::type_name::<P>(),
        });
        self
    }

    /// Uses only the registered plugins named here (all of them by default).
    pub fn only_registered<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.selection = Selection::Only(names.into_iter().map(Into::into).collect());
        self
    }

    /// Fails the build with [`BuildError::NotRegistered`] unless a plugin of each of these
    /// names is registered with `#[plugin]` in this binary: the loud check for the linking
    /// rule (a plugin crate the host depends on but never references is not linked, so its
    /// registration is absent). The error lists what is registered. Can be called more than
    /// once; independent of which registered plugins are used.
    ///
    /// ```
    /// use xcore::{BuildError, Xcore};
    ///
    /// let err = Xcore::builder().require_registered(["billing"]).build().unwrap_err();
    /// assert!(matches!(err, BuildError::NotRegistered { ref missing, .. } if missing == &["billing"]));
    /// assert!(err.to_string().contains("use my_plugin as _;"));
    /// ```
    pub fn require_registered<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required.extend(names.into_iter().map(Into::into));
        self
    }

    /// Checks [`require_registered`](Self::require_registered).
    fn check_required(&self) -> Result<(), BuildError> {
        if self.required.is_empty() {
            return Ok(());
        }
        let mut names: Vec<String> = registered()
            .filter_map(|reg| reg.manifest().ok().map(|m| m.name().to_owned()))
            .collect();
        names.sort_unstable();
        let missing: Vec<String> = self
            .required
            .iter()
            .filter(|r| !names.iter().any(|n| n == *r))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(BuildError::NotRegistered {
            missing,
            registered: if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            },
        })
    }

    /// Uses none of the registered plugins: only those added with [`plugin`](Self::plugin).
    pub fn without_registered(mut self) -> Self {
        self.selection = Selection::None;
        self
    }

    /// Replaces every boot option at once.
    pub fn boot_options(mut self, options: BootOptions) -> Self {
        self.options = options;
        self
    }

    /// How long each `init` / `on_load` may take (30 s by default).
    pub fn load_timeout(mut self, limit: Duration) -> Self {
        self.options.load_timeout = limit;
        self
    }

    /// How long each `start` / `on_start` may take (30 s by default).
    pub fn start_timeout(mut self, limit: Duration) -> Self {
        self.options.start_timeout = limit;
        self
    }

    /// How long each health check may take (2 s by default).
    pub fn health_timeout(mut self, limit: Duration) -> Self {
        self.options.health_timeout = limit;
        self
    }

    /// How long each `shutdown` / `on_stop` may take (10 s by default).
    pub fn stop_timeout(mut self, limit: Duration) -> Self {
        self.options.stop_timeout = limit;
        self
    }

    /// What a failed service does to the boot ([`OnFailure::Abort`] by default).
    pub fn on_service_failure(mut self, policy: OnFailure) -> Self {
        self.options.on_service_failure = policy;
        self
    }

    /// What a failed plugin does to the boot ([`OnFailure::Continue`] by default).
    pub fn on_plugin_failure(mut self, policy: OnFailure) -> Self {
        self.options.on_plugin_failure = policy;
        self
    }

    /// Uses a [`Config`]: the services it configures (`services.databases`, the cache, ...)
    /// are added — unless a service of the same name was added by hand —, plugins read their
    /// own section with [`PluginContext::config`], extensions theirs with
    /// [`ServiceContext::config`](crate::ServiceContext::config). An insecure production
    /// config is a build error.
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(Arc::new(config));
        self
    }

    /// The tenant admission policy (default: from the config's `tenancy` section, else
    /// [`Tenants::default`](crate::tenancy::Tenants): `auto`, at most 100 tenants).
    pub fn tenants(mut self, tenants: crate::tenancy::Tenants) -> Self {
        self.tenants = Some(tenants);
        self
    }

    /// How many denials the [`Audit`] keeps (1,000 by default).
    pub fn audit_capacity(mut self, capacity: usize) -> Self {
        self.audit_capacity = capacity;
        self
    }

    /// Where this `Xcore` records its metrics (none by default): calls, HTTP requests,
    /// denials, events, plugin states. See [`observability`](crate::observability) for the
    /// metrics, their labels, and why nothing is installed globally.
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Adds a tower layer to every plugin's call pipeline, inside the tracing span and before
    /// authorisation. Layers added first are outermost.
    pub fn call_layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<BoxCallService> + Send + Sync + 'static,
        L::Service: tower::Service<CallRequest, Response = Value, Error = CallError>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as tower::Service<CallRequest>>::Future: Send + 'static,
    {
        self.layers.push(host_layer(layer));
        self
    }

    fn registered_plugins(&self) -> Result<Vec<PluginSource>, BuildError> {
        let all: Vec<_> = match &self.selection {
            Selection::None => return Ok(Vec::new()),
            _ => registered().collect(),
        };
        let mut manifests = Vec::with_capacity(all.len());
        for reg in &all {
            let manifest = reg.manifest().map_err(|source| BuildError::Manifest {
                source,
                type_name: reg.type_name(),
            })?;
            manifests.push((manifest, *reg));
        }
        if let Selection::Only(names) = &self.selection {
            for name in names {
                if !manifests.iter().any(|(m, _)| m.name() == name) {
                    let mut available: Vec<&str> =
                        manifests.iter().map(|(m, _)| m.name()).collect();
                    available.sort_unstable();
                    return Err(BuildError::UnknownPlugin {
                        name: name.clone(),
                        available: available.join(", "),
                    });
                }
            }
            manifests.retain(|(m, _)| names.iter().any(|n| n == m.name()));
        }
        Ok(manifests
            .into_iter()
            .map(|(manifest, reg)| PluginSource {
                manifest,
                instance: reg.instantiate(),
                factory: Some(Arc::new(move || reg.instantiate())),
                type_name: reg.type_name(),
            })
            .collect())
    }

    /// Checks the registrations and computes the plan. Graph errors (unknown dependencies,
    /// version mismatches, cycles) are not build errors: they are in the plan and affect only
    /// the nodes involved.
    pub fn build(self) -> Result<Xcore, BuildError> {
        self.check_required()?;
        let mut plugins = self.registered_plugins()?;
        let XcoreBuilder {
            mut services,
            plugins: by_hand,
            options,
            layers,
            audit_capacity,
            config,
            tenants,
            metrics,
            ..
        } = self;
        let tenants = Arc::new(match (tenants, &config) {
            (Some(tenants), _) => tenants,
            (None, Some(config)) => config.tenancy.tenants(),
            (None, None) => crate::tenancy::Tenants::default(),
        });
        plugins.extend(by_hand);
        if let Some(config) = &config {
            config.check_production()?;
            crate::services::builtin(config, &mut services)?;
        }

        let mut seen: HashMap<String, &'static str> = HashMap::new();
        for p in &plugins {
            if let Some(first) = seen.insert(p.manifest.name().to_owned(), p.type_name) {
                return Err(BuildError::DuplicatePlugin {
                    name: p.manifest.name().to_owned(),
                    first,
                    second: p.type_name,
                });
            }
        }
        let mut service_names: HashMap<String, &'static str> = HashMap::new();
        for (s, type_name) in &services {
            xcore_manifest::validate_name(s.name())
                .map_err(|source| BuildError::ServiceName { source, type_name })?;
            if let Some(first) = service_names.insert(s.name().to_owned(), type_name) {
                return Err(BuildError::DuplicateService {
                    name: s.name().to_owned(),
                    first,
                    second: type_name,
                });
            }
        }

        let mut specs = Vec::with_capacity(services.len() + plugins.len());
        for (s, _) in &services {
            let mut deps: Vec<String> = s.dependencies();
            let mut unique = HashSet::new();
            deps.retain(|d| unique.insert(d.clone()));
            specs.push(NodeSpec {
                id: NodeId::service(s.name()),
                version: None,
                services: deps,
                requires: Vec::new(),
            });
        }
        for p in &plugins {
            specs.push(NodeSpec {
                id: NodeId::plugin(p.manifest.name()),
                version: Some(p.manifest.version().clone()),
                services: p.manifest.services().to_vec(),
                requires: p.manifest.requires().to_vec(),
            });
        }
        let plan = container::plan(&specs);

        let audit = Arc::new(Audit::with_capacity(audit_capacity).with_metrics(metrics.clone()));
        let identities: Vec<PluginIdentity> = plugins
            .iter()
            .map(|p| PluginIdentity::new(Arc::new(p.manifest.clone())))
            .collect();
        let rate_slot = crate::call::layers::ClusterSlot::default();
        let parts = Parts {
            rate_slot: rate_slot.clone(),
            plan,
            options,
            layers,
            events: Arc::new(EventBus::new(audit.clone(), metrics.clone())),
            audit,
            metrics,
            config,
            tenants,
            identities: identities.clone(),
        };
        let shared = Shared::build(parts, move |weak| {
            let mut entries = Vec::with_capacity(services.len() + plugins.len());
            for (s, _) in services {
                entries.push(container::Entry::Service {
                    fresh: Some(s),
                    loaded: None,
                });
            }
            for (p, identity) in plugins.into_iter().zip(identities) {
                entries.push(container::Entry::Plugin {
                    ctx: PluginContext::new(identity.clone(), weak.clone(), rate_slot.clone()),
                    identity,
                    fresh: Some(p.instance),
                    loaded: None,
                    factory: p.factory,
                });
            }
            entries
        });
        Ok(Xcore { shared })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn xcore_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::Xcore>();
    }
}
