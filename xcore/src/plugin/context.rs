use std::{
    any::Any,
    fmt,
    sync::{Arc, Weak},
};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    CallContext, CallError, ErrorCode, Manifest, PluginIdentity, Service,
    config::ConfigError,
    events::{EventError, Events},
    services::{AccessError, Extension, ExtensionHandle, check_declared, grant_mask},
    runtime::Gate,
    xcore::Shared,
};

/// What a plugin sees of xcore: its own identity, and handles to what its grants allow.
///
/// Cheap to clone; a plugin may keep it (it does not keep the `Xcore` alive: once the host
/// drops every `Xcore` handle, calls through a kept context fail with `not_ready`).
///
/// Each instance of a plugin has its own context: a plugin stopped and started again, or
/// reloaded, gets a fresh one, and what the old instance registered through its context
/// (event subscriptions, jobs, task handlers) never reaches the new one.
#[derive(Clone)]
pub struct PluginContext {
    inner: Arc<Inner>,
}

struct Inner {
    identity: PluginIdentity,
    shared: Weak<Shared>,
    gate: Gate,
}

impl PluginContext {
    pub(crate) fn new(identity: PluginIdentity, shared: Weak<Shared>) -> Self {
        let gate = Gate::new(identity.clone());
        Self {
            inner: Arc::new(Inner {
                identity,
                shared,
                gate,
            }),
        }
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

    /// The plugin's handle on the event bus: emits need `events:<name>: emit`, subscriptions
    /// `events:<pattern>: subscribe`. Subscriptions are removed when the plugin stops.
    pub fn events(&self) -> Result<Events, EventError> {
        let shared = self.inner.shared.upgrade().ok_or(EventError::Closed)?;
        Ok(Events::new(
            shared.events.clone(),
            Some(self.inner.identity.clone()),
        ))
    }

    pub(crate) fn shared(&self, service: &str) -> Result<Arc<Shared>, AccessError> {
        self.inner.shared
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

    /// The host extension registered as `name`
    /// ([`XcoreBuilder::extension`](crate::XcoreBuilder::extension)), typed.
    ///
    /// The plugin must declare it (`services = ["email"]`) and hold `service:<name>: use`.
    pub fn extension<T: Service>(&self, name: &str) -> Result<ExtensionHandle<T>, AccessError> {
        let (shared, service) = self.declared_service(name)?;
        grant_mask(&self.inner.identity, &shared.audit, "service", name, &["use"])?;
        let any: Arc<dyn Any + Send + Sync> = service;
        any.downcast::<Extension<T>>()
            .map(ExtensionHandle::new)
            .map_err(|_| AccessError::WrongType {
                service: name.to_owned(),
                expected: std::any::type_name::<T>(),
            })
    }

    /// The plugin's own config section, `plugins.<name>`, typed and validated; `T::default()`
    /// when the `Xcore` has no config or the section is absent. Call it in `on_load`: with
    /// `?`, a bad value fails this plugin only, with an error naming the key path and line.
    pub fn config<T: DeserializeOwned + Default>(&self) -> Result<T, ConfigError> {
        Ok(self.config_section()?.unwrap_or_default())
    }

    /// The plugin's own config section, or `None` when absent.
    pub fn config_section<T: DeserializeOwned>(&self) -> Result<Option<T>, ConfigError> {
        match self.inner.shared.upgrade().and_then(|s| s.config.clone()) {
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
