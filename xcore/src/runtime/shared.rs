//! [`Shared`]: the state of one `Xcore` — its plan, options, services, nodes, plugin slots,
//! lifecycle — owned by the `Xcore` handles and reached, weakly, by plugins' and services'
//! contexts through the narrow functions below.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use serde_json::Value;
use tower::ServiceExt;

use crate::{
    BootError, BootOptions, BootReport, CallContext, CallError, ErrorCode, Plan, PluginIdentity,
    Service,
    call::{ActionName, CallRequest, HostLayer},
    config::Config,
    container::Nodes,
    events::EventBus,
    observability::Metrics,
    permissions::Audit,
    runtime::{self, Instance, Live, Refused, Runtime, Way},
};

/// Where an `Xcore` is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    Built,
    Booting,
    Running,
    ShuttingDown,
    Stopped,
    Failed,
}

impl Lifecycle {
    fn describe(self) -> &'static str {
        match self {
            Lifecycle::Built => "built but not booted",
            Lifecycle::Booting => "booting",
            Lifecycle::Running => "running",
            Lifecycle::ShuttingDown => "shutting down",
            Lifecycle::Stopped => "stopped",
            Lifecycle::Failed => "failed to boot",
        }
    }
}

/// The state of one `Xcore`, shared by its handles and (weakly) by its plugins' contexts.
pub(crate) struct Shared {
    plan: Plan,
    options: BootOptions,
    layers: Vec<HostLayer>,
    audit: Arc<Audit>,
    events: Arc<EventBus>,
    /// Where metrics are recorded.
    metrics: Metrics,
    /// The config: re-read from its file when a plugin is reloaded.
    config: RwLock<Option<Arc<Config>>>,
    /// The tenants admitted (web requests, tenant databases).
    tenants: Arc<crate::tenancy::Tenants>,
    /// This very value, weakly: what services' contexts hold.
    me: std::sync::Weak<Shared>,
    services: RwLock<HashMap<String, Arc<dyn Service>>>,
    nodes: tokio::sync::Mutex<Nodes>,
    lifecycle: Mutex<Lifecycle>,
    /// The plugins' slots: what calls and requests reach.
    runtime: Runtime,
    report: Mutex<Option<BootReport>>,
    /// Every plugin of the plan, running or not (for listings).
    identities: Vec<PluginIdentity>,
    /// The cluster-wide rate limiter, once its service started; every gate holds it.
    rate_limiter: crate::call::layers::ClusterSlot,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub(crate) fn transition(&self, from: Lifecycle, to: Lifecycle) -> Result<(), BootError> {
        let mut l = lock(&self.lifecycle);
        if *l != from {
            return Err(BootError::NotBootable(l.describe()));
        }
        *l = to;
        Ok(())
    }

    pub(crate) fn set_lifecycle(&self, to: Lifecycle) {
        *lock(&self.lifecycle) = to;
    }

    pub(crate) fn stop_if_unbooted(&self) {
        let mut l = lock(&self.lifecycle);
        if *l == Lifecycle::Built {
            *l = Lifecycle::Stopped;
        }
    }

    pub(crate) fn lifecycle(&self) -> Lifecycle {
        *lock(&self.lifecycle)
    }

    pub(crate) fn lifecycle_is(&self, state: Lifecycle) -> bool {
        self.lifecycle() == state
    }

    /// The config the `Xcore` was built with (or last re-read by a reload).
    pub(crate) fn config(&self) -> Option<Arc<Config>> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the config (a reload re-read it): plugins read their sections from it.
    pub(crate) fn set_config(&self, config: Config) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(config));
    }

    pub(crate) fn set_report(&self, report: BootReport) {
        *lock(&self.report) = Some(report);
    }

    /// Where the cluster-wide rate limiter is attached: the gates' rate limits take their
    /// tokens from it once it is.
    pub(crate) fn rate_slot(&self) -> crate::call::layers::ClusterSlot {
        self.rate_limiter.clone()
    }

    /// A weak handle on this `Shared`.
    pub(crate) fn weak_self(&self) -> std::sync::Weak<Shared> {
        self.me.clone()
    }

    /// Makes a loaded service reachable by plugins' handles.
    pub(crate) fn register_service(&self, name: &str, service: Arc<dyn Service>) {
        self.services
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), service);
    }

    /// A loaded service, by name.
    pub(crate) fn service(&self, name: &str) -> Option<Arc<dyn Service>> {
        self.services
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Sends a call through the target's pipeline: admitted by the gate of its current
    /// instance (waiting for a reload to finish), then through the pipeline.
    pub(crate) async fn dispatch(
        &self,
        target: &str,
        action: &str,
        payload: Value,
        cx: CallContext,
    ) -> Result<Value, CallError> {
        let Some(slot) = self.runtime.slot(target) else {
            return Err(self.absent(target, None));
        };
        // The running instance's gate at once, with a pass borrowing it.
        if let Some(instance) = slot.running()
            && let Ok(pass) = instance.ctx.gate().enter_scoped(Way::Call)
        {
            let out = Self::call_instance(&instance, action, payload, cx).await;
            drop(pass);
            return out;
        }
        // A reload in progress, or an instance that began to stop: wait for the next one
        // (boxed, so that the common path's future stays small).
        let (instance, pass) =
            match Box::pin(runtime::enter(slot, Way::Call, self.swap_wait(&cx), &cx)).await {
                Ok(admitted) => admitted,
                Err(Refused::Limit(err)) => return Err(err),
                Err(Refused::Absent(live)) => return Err(self.absent(target, Some(&live))),
            };
        let out = Self::call_instance(&instance, action, payload, cx).await;
        drop(pass);
        out
    }

    /// One call through `instance`'s pipeline, its context bound to the instance.
    async fn call_instance(
        instance: &Instance,
        action: &str,
        payload: Value,
        mut cx: CallContext,
    ) -> Result<Value, CallError> {
        cx.set_scope(instance.ctx.clone());
        let request = CallRequest::new(
            instance.ctx.identity().clone(),
            ActionName::new(action, instance.plugin.action_names()),
            payload,
            cx,
        );
        let Some(meter) = &instance.meter else {
            return instance.pipeline.clone().oneshot(request).await;
        };
        let slot = meter.slot(&request);
        let start = meter.start();
        let out = instance.pipeline.clone().oneshot(request).await;
        meter.record(slot, out.as_ref().err().map(CallError::code), start);
        out
    }

    /// How long a call or request waits for a reload to finish: the options' `swap_wait`,
    /// cut by the call's deadline.
    pub(crate) fn swap_wait(&self, cx: &CallContext) -> Duration {
        let wait = self.options.swap_wait;
        match cx.deadline() {
            Some(deadline) => {
                wait.min(deadline.saturating_duration_since(tokio::time::Instant::now()))
            }
            None => wait,
        }
    }

    /// Why `target` cannot be called: its slot's state (`live`), or `None` when no plugin has
    /// that name.
    pub(crate) fn absent(&self, target: &str, live: Option<&Live>) -> CallError {
        let known = live.is_some();
        match self.lifecycle() {
            Lifecycle::Built | Lifecycle::Booting if known => CallError::new(
                ErrorCode::NotReady,
                format!("cannot call `{target}`: xcore has not finished booting"),
            ),
            Lifecycle::ShuttingDown | Lifecycle::Stopped | Lifecycle::Failed if known => {
                CallError::new(
                    ErrorCode::NotReady,
                    format!(
                        "cannot call `{target}`: xcore is {}",
                        self.lifecycle().describe()
                    ),
                )
            }
            _ if !known => {
                let mut names: Vec<&str> = self.identities.iter().map(|i| i.name()).collect();
                names.sort_unstable();
                CallError::new(
                    ErrorCode::NotFound,
                    format!("no plugin `{target}`; plugins: {}", names.join(", ")),
                )
            }
            _ => {
                let why = match live {
                    Some(Live::Swapping) => "it is being reloaded; retry".to_owned(),
                    Some(Live::Down(state, Some(reason))) => format!("{state}: {reason}"),
                    Some(Live::Down(state, None)) => state.to_string(),
                    _ => "stopped".to_owned(),
                };
                CallError::new(
                    ErrorCode::Unavailable,
                    format!("plugin `{target}` is not running ({why})"),
                )
            }
        }
    }
}

/// What a [`Shared`] is built from (the builder's output).
pub(crate) struct Parts {
    pub(crate) plan: Plan,
    pub(crate) options: BootOptions,
    pub(crate) layers: Vec<HostLayer>,
    pub(crate) audit: Arc<Audit>,
    pub(crate) events: Arc<EventBus>,
    pub(crate) metrics: Metrics,
    pub(crate) config: Option<Arc<Config>>,
    pub(crate) tenants: Arc<crate::tenancy::Tenants>,
    pub(crate) identities: Vec<PluginIdentity>,
    /// Where the cluster-wide rate limiter is attached (the plugins' contexts hold it).
    pub(crate) rate_slot: crate::call::layers::ClusterSlot,
}

impl Shared {
    /// The state of a new `Xcore`; `entries` makes the nodes' entries with the weak handle
    /// their contexts keep.
    pub(crate) fn build(
        parts: Parts,
        entries: impl FnOnce(&std::sync::Weak<Shared>) -> Vec<crate::container::Entry>,
    ) -> Arc<Shared> {
        Arc::new_cyclic(|weak| {
            let runtime = Runtime::new(parts.identities.iter().map(|i| i.name()));
            Shared {
                nodes: tokio::sync::Mutex::new(Nodes::new(entries(weak))),
                plan: parts.plan,
                options: parts.options,
                layers: parts.layers,
                audit: parts.audit,
                events: parts.events,
                metrics: parts.metrics,
                config: RwLock::new(parts.config),
                tenants: parts.tenants,
                services: RwLock::new(HashMap::new()),
                lifecycle: Mutex::new(Lifecycle::Built),
                runtime,
                report: Mutex::new(None),
                identities: parts.identities,
                rate_limiter: parts.rate_slot,
                me: weak.clone(),
            }
        })
    }

    /// The boot plan.
    pub(crate) fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The timeouts and failure policies.
    pub(crate) fn options(&self) -> &BootOptions {
        &self.options
    }

    /// The host's call layers.
    pub(crate) fn layers(&self) -> &[HostLayer] {
        &self.layers
    }

    /// Where denials are recorded.
    pub(crate) fn audit(&self) -> &Arc<Audit> {
        &self.audit
    }

    /// The event bus.
    pub(crate) fn events(&self) -> &Arc<EventBus> {
        &self.events
    }

    /// Where metrics are recorded.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The tenants admitted.
    pub(crate) fn tenants(&self) -> &Arc<crate::tenancy::Tenants> {
        &self.tenants
    }

    /// The nodes' instances and boot states (the container's, under its lock).
    pub(crate) fn nodes(&self) -> &tokio::sync::Mutex<Nodes> {
        &self.nodes
    }

    /// The plugins' slots.
    pub(crate) fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Every plugin of the plan.
    pub(crate) fn identities(&self) -> &[PluginIdentity] {
        &self.identities
    }

    /// The loaded services, sorted by name.
    pub(crate) fn services(&self) -> Vec<(String, Arc<dyn Service>)> {
        let mut all: Vec<(String, Arc<dyn Service>)> = self
            .services
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The report of the last successful boot.
    pub(crate) fn report(&self) -> Option<BootReport> {
        lock(&self.report).clone()
    }
}
