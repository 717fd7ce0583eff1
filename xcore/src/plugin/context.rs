use std::{
    fmt,
    sync::{Arc, Weak},
};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    CallContext, CallError, ErrorCode, Manifest, PluginIdentity, Service, TenantId, TraceContext,
    config::ConfigError,
    events::{EventError, Events},
    plugin::handle::{Handle, KeptHandles, NamedHandle},
    runtime::Shared,
    runtime::{Gate, Pass, Way},
    services::{AccessError, check_declared},
};

/// What a plugin sees of xcore: its own identity, and handles to what its grants allow.
///
/// Cheap to clone; a plugin may keep it (it does not keep the `Xcore` alive: once the host
/// drops every `Xcore` handle, calls through a kept context fail with `not_ready`).
///
/// Each instance of a plugin has its own context: a plugin stopped and started again, or
/// reloaded, gets a fresh one, and what the old instance registered through its context
/// (event subscriptions, jobs, task handlers) never reaches the new one.
///
/// Handles on services come from [`handle`](Self::handle) and [`named`](Self::named) (for
/// tenant `default`: hooks, background work) or, inside a call, from the
/// [`CallContext`](crate::CallContext) (for the call's tenant); see
/// [`plugin::handle`](crate::plugin::handle) for the table.
#[derive(Clone)]
pub struct PluginContext {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    identity: PluginIdentity,
    shared: Weak<Shared>,
    gate: Gate,
    /// The handles obtained so far, checked once.
    handles: KeptHandles,
}

/// A plugin instance, weakly: what handles and registrations (subscriptions, jobs, task
/// handlers) hold, so that a kept handle neither keeps the instance alive nor reaches the
/// next one.
#[derive(Clone)]
pub(crate) struct WeakContext {
    identity: PluginIdentity,
    inner: Weak<Inner>,
}

impl WeakContext {
    /// The plugin.
    pub(crate) fn identity(&self) -> &PluginIdentity {
        &self.identity
    }

    /// The instance, if it still exists.
    pub(crate) fn upgrade(&self) -> Option<PluginContext> {
        self.inner.upgrade().map(|inner| PluginContext { inner })
    }

    /// The instance, admitted by its gate for `way` (state only): its context and the pass
    /// to hold while its code runs; `unavailable` once it stops or is gone.
    pub(crate) fn enter(&self, way: Way) -> Result<(PluginContext, Pass), CallError> {
        let ctx = self.upgrade().ok_or_else(|| {
            CallError::new(
                ErrorCode::Unavailable,
                format!(
                    "plugin `{}` is not running (a {way} reached an instance that is gone)",
                    self.identity.name()
                ),
            )
        })?;
        let pass = ctx.gate().enter(way)?;
        Ok((ctx, pass))
    }
}

impl PluginContext {
    /// A context whose gate takes its rate tokens from the cluster-wide limiter once one is
    /// attached to `cluster` (the `Xcore`'s slot).
    pub(crate) fn new(
        identity: PluginIdentity,
        shared: Weak<Shared>,
        cluster: crate::call::layers::ClusterSlot,
    ) -> Self {
        let gate = Gate::new(identity.clone(), Some(cluster));
        Self {
            inner: Arc::new(Inner {
                identity,
                shared,
                gate,
                handles: KeptHandles::default(),
            }),
        }
    }

    /// This instance, weakly.
    pub(crate) fn downgrade(&self) -> WeakContext {
        WeakContext {
            identity: self.inner.identity.clone(),
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// The plugin's handle `H` (a [`Handle`]: `Worker`, `Scheduler`, `Events`, the `default`
    /// database), for tenant `default`. Checked against the manifest and the grants the first
    /// time, then kept by this instance; inside a call, take it from the call instead
    /// ([`CallContext::handle`](crate::CallContext::handle)) to get the call's tenant.
    ///
    /// ```
    /// use xcore::prelude::*;
    /// use xcore::services::worker::Worker;
    ///
    /// async fn on_load(ctx: &PluginContext) -> Result<(), PluginError> {
    ///     let worker = ctx.handle::<Worker>()?;
    ///     # let _ = worker;
    ///     Ok(())
    /// }
    /// ```
    pub fn handle<H: Handle>(&self) -> Result<H, AccessError> {
        self.inner.handles.get_or_obtain("", || H::obtain(self))
    }

    /// The plugin's handle `H` on `name` (a [`NamedHandle`]: a cache namespace, a database
    /// connection, a host extension), for tenant `default`; checked once, then kept, as
    /// [`handle`](Self::handle).
    ///
    /// ```
    /// use xcore::prelude::*;
    /// use xcore::services::cache::Cache;
    ///
    /// async fn on_load(ctx: &PluginContext) -> Result<(), PluginError> {
    ///     let sessions = ctx.named::<Cache>("sessions")?;
    ///     # let _ = sessions;
    ///     Ok(())
    /// }
    /// ```
    pub fn named<H: NamedHandle>(&self, name: &str) -> Result<H, AccessError> {
        if name.is_empty() {
            // Not kept: the empty key is the unnamed handle's.
            return H::obtain_named(self, name);
        }
        self.inner
            .handles
            .get_or_obtain(name, || H::obtain_named(self, name))
    }

    /// The context of one entry into this instance's code that is not a call (an event, a
    /// job, a task): the plugin as caller, `tenant`, `trace`, served by this instance.
    pub(crate) fn entry_context(&self, tenant: TenantId, trace: TraceContext) -> CallContext {
        CallContext::root(self.inner.identity.clone())
            .with_tenant(tenant)
            .with_trace(trace)
            .with_scope(self.clone())
    }

    /// The gate of this instance: every way into the plugin's code passes it (see
    /// [`runtime`](crate::runtime)). A service running plugin code it holds (a callback, a
    /// job) runs it through [`Gate::run`].
    pub fn gate(&self) -> &Gate {
        &self.inner.gate
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.inner.identity.name()
    }

    /// The plugin's manifest.
    pub fn manifest(&self) -> &Manifest {
        self.inner.identity.manifest()
    }

    /// The plugin's identity, as callers and targets see it.
    pub fn identity(&self) -> &PluginIdentity {
        &self.inner.identity
    }

    /// A client for calls to plugin `target`. Each call is checked against this plugin's
    /// grants (`plugin:<target>: <action>`) and the target's `allowed_callers`.
    pub fn plugin(&self, target: &str) -> PluginClient {
        PluginClient {
            from: self.clone(),
            target: target.to_owned(),
        }
    }

    /// The plugin's handle on the event bus (`ctx.handle::<Events>()`, with the bus's own
    /// error): emits need `events:<name>: emit`, subscriptions `events:<pattern>: subscribe`.
    /// Each delivery to a subscription made through it passes this instance's gate; the
    /// subscriptions are removed when the plugin stops.
    pub fn events(&self) -> Result<Events, EventError> {
        self.handle::<Events>().map_err(|_| EventError::Closed)
    }

    /// The plugin-level event handle (what [`Handle::obtain`] gives for [`Events`]).
    pub(crate) fn new_events(&self) -> Result<Events, AccessError> {
        let shared = self.shared("events")?;
        Ok(Events::new(shared.events().clone(), None).for_instance(self.downgrade()))
    }

    pub(crate) fn shared(&self, service: &str) -> Result<Arc<Shared>, AccessError> {
        self.inner
            .shared
            .upgrade()
            .ok_or_else(|| AccessError::Unavailable {
                service: service.to_owned(),
                reason: "the Xcore this plugin belonged to has been dropped".into(),
            })
    }

    /// A service the plugin declared, once loaded.
    pub(crate) fn declared_service(
        &self,
        name: &str,
    ) -> Result<(Arc<Shared>, Arc<dyn Service>), AccessError> {
        check_declared(&self.inner.identity, name)?;
        let shared = self.shared(name)?;
        let service = shared
            .service(name)
            .ok_or_else(|| AccessError::Unavailable {
                service: name.to_owned(),
                reason: "it is not loaded (it failed, or is not configured)".into(),
            })?;
        Ok((shared, service))
    }

    /// The plugin's own config section, `plugins.<name>`, typed and validated; `T::default()`
    /// when the `Xcore` has no config or the section is absent. Call it in `on_load`: with
    /// `?`, a bad value fails this plugin only, with an error naming the key path and line.
    pub fn config<T: DeserializeOwned + Default>(&self) -> Result<T, ConfigError> {
        Ok(self.config_section()?.unwrap_or_default())
    }

    /// The plugin's own config section, or `None` when absent.
    pub fn config_section<T: DeserializeOwned>(&self) -> Result<Option<T>, ConfigError> {
        match self.inner.shared.upgrade().and_then(|s| s.config()) {
            Some(config) => config.plugin_section(self.name()),
            None => Ok(None),
        }
    }

    /// A fresh context for calls this plugin makes outside of any call it serves (from a hook
    /// or a background task): tenant `default`, a new trace, no deadline.
    pub fn call_context(&self) -> CallContext {
        CallContext::root(self.inner.identity.clone())
    }
}

impl fmt::Debug for PluginContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginContext")
            .field("plugin", &self.inner.identity.name())
            .finish_non_exhaustive()
    }
}

/// Calls another plugin on behalf of the plugin that made it ([`PluginContext::plugin`]).
#[derive(Clone, Debug)]
pub struct PluginClient {
    from: PluginContext,
    target: String,
}

impl PluginClient {
    /// Calls `action` on the target while serving the call `cx`: the tenant, the trace and
    /// the deadline of `cx` travel on; the caller is this plugin.
    pub async fn call(
        &self,
        cx: &CallContext,
        action: &str,
        payload: Value,
    ) -> Result<Value, CallError> {
        let Some(shared) = self.from.inner.shared.upgrade() else {
            return Err(CallError::new(
                ErrorCode::NotReady,
                "the Xcore this plugin belonged to has been dropped",
            ));
        };
        let cx = cx.hop(self.from.inner.identity.clone());
        shared.dispatch(&self.target, action, payload, cx).await
    }

    /// The target's name.
    pub fn target(&self) -> &str {
        &self.target
    }
}
