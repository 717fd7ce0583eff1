use std::{fmt, sync::Arc, time::Duration};

use tokio::time::Instant;

use crate::{
    Manifest, TenantId,
    plugin::handle::{Handle, NamedHandle},
    services::AccessError,
};

/// The identity of a plugin: its name and its manifest (and so its grants).
///
/// Cheap to clone. A plugin can only obtain its own identity, through its `PluginContext`.
#[derive(Clone)]
pub struct PluginIdentity(Arc<Manifest>);

impl PluginIdentity {
    pub(crate) fn new(manifest: Arc<Manifest>) -> Self {
        Self(manifest)
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// The plugin's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.0
    }
}

impl fmt::Debug for PluginIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PluginIdentity({:?})", self.name())
    }
}

/// Who makes a call.
#[derive(Clone, Debug)]
pub enum Caller {
    /// The host application (through `Xcore::call`, HTTP, the admin API).
    Host,
    /// A plugin, calling through its `PluginContext`.
    Plugin(PluginIdentity),
}

impl Caller {
    /// The calling plugin's name, or `None` for the host.
    pub fn plugin_name(&self) -> Option<&str> {
        match self {
            Caller::Host => None,
            Caller::Plugin(id) => Some(id.name()),
        }
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::Host => f.write_str("host"),
            Caller::Plugin(id) => write!(f, "plugin `{}`", id.name()),
        }
    }
}

/// W3C trace context of a call: a trace id shared by every hop and a span id per hop.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: u128,
    span_id: u64,
    parent_span_id: Option<u64>,
}

impl TraceContext {
    /// A new trace with a random trace id.
    pub fn new_root() -> Self {
        Self {
            trace_id: fastrand::u128(1..),
            span_id: fastrand::u64(1..),
            parent_span_id: None,
        }
    }

    /// A trace started elsewhere without a parent span here (the trace id an OpenTelemetry
    /// layer chose for a request).
    #[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
    pub(crate) fn root_of(trace_id: u128) -> Self {
        Self {
            trace_id,
            span_id: fastrand::u64(1..),
            parent_span_id: None,
        }
    }

    /// Continues a trace received from elsewhere (e.g. a `traceparent` header).
    pub fn from_parts(trace_id: u128, parent_span_id: u64) -> Self {
        Self {
            trace_id,
            span_id: fastrand::u64(1..),
            parent_span_id: Some(parent_span_id),
        }
    }

    /// A child span in the same trace.
    pub fn child(&self) -> Self {
        Self {
            trace_id: self.trace_id,
            span_id: fastrand::u64(1..),
            parent_span_id: Some(self.span_id),
        }
    }

    /// The trace id.
    pub fn trace_id(&self) -> u128 {
        self.trace_id
    }

    /// This hop's span id.
    pub fn span_id(&self) -> u64 {
        self.span_id
    }

    /// The span id of the hop that made this call, if any.
    pub fn parent_span_id(&self) -> Option<u64> {
        self.parent_span_id
    }

    /// The W3C `traceparent` value for this hop.
    pub fn traceparent(&self) -> String {
        format!("00-{:032x}-{:016x}-01", self.trace_id, self.span_id)
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent())
    }
}

/// What travels with every call: the caller, the tenant, the trace and the deadline.
///
/// A plugin that calls another plugin passes the context of the call it is serving, so the
/// tenant, the trace and the deadline go through every hop.
///
/// ```
/// use std::time::Duration;
/// use xcore::{CallContext, TenantId};
///
/// let cx = CallContext::host()
///     .with_tenant(TenantId::new("acme").unwrap())
///     .with_timeout(Duration::from_secs(2));
/// assert_eq!(cx.tenant().as_str(), "acme");
/// assert!(cx.caller().plugin_name().is_none());
/// assert!(cx.deadline().is_some());
/// ```
#[derive(Clone, Debug)]
pub struct CallContext {
    caller: Caller,
    tenant: TenantId,
    trace: TraceContext,
    deadline: Option<Instant>,
    /// The plugin instance serving the call, once the call has passed its gate: what
    /// call-bound handles are scoped to.
    scope: Option<crate::PluginContext>,
}

impl CallContext {
    /// A context for a call made by the host: tenant `default`, a new trace, no deadline.
    pub fn host() -> Self {
        Self {
            caller: Caller::Host,
            tenant: TenantId::default(),
            trace: TraceContext::new_root(),
            deadline: None,
            scope: None,
        }
    }

    /// A context for a request the host serves for `tenant` in `trace` (no new trace drawn).
    pub(crate) fn host_request(tenant: TenantId, trace: TraceContext) -> Self {
        Self {
            caller: Caller::Host,
            tenant,
            trace,
            deadline: None,
            scope: None,
        }
    }

    /// The same context for another tenant.
    #[must_use]
    pub fn with_tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = tenant;
        self
    }

    /// The same context in another trace.
    #[must_use]
    pub fn with_trace(mut self, trace: TraceContext) -> Self {
        self.trace = trace;
        self
    }

    /// The same context with a deadline (the earlier of the two wins).
    #[must_use]
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
        self
    }

    /// Tightens the deadline in place (the earlier of the two wins).
    pub(crate) fn tighten_deadline(&mut self, deadline: Instant) {
        self.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
    }

    /// The same context with a deadline `timeout` from now (the earlier deadline wins).
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.with_deadline(Instant::now() + timeout)
    }

    /// The context of a call that `caller` makes while serving this one: same tenant, same
    /// trace (a child span), same deadline.
    pub(crate) fn hop(&self, caller: PluginIdentity) -> Self {
        Self {
            caller: Caller::Plugin(caller),
            tenant: self.tenant.clone(),
            trace: self.trace.child(),
            deadline: self.deadline,
            scope: None,
        }
    }

    /// A root context for calls a plugin makes outside any call (from a hook, a job).
    pub(crate) fn root(caller: PluginIdentity) -> Self {
        Self {
            caller: Caller::Plugin(caller),
            ..Self::host()
        }
    }

    /// The same context, served by the plugin instance of `scope` (set by the gate).
    pub(crate) fn with_scope(mut self, scope: crate::PluginContext) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Sets the plugin instance serving this context (the gate does, on the way in).
    pub(crate) fn set_scope(&mut self, scope: crate::PluginContext) {
        self.scope = Some(scope);
    }

    /// The plugin instance serving the call, if the call has reached one.
    pub(crate) fn scope(&self) -> Option<&crate::PluginContext> {
        self.scope.as_ref()
    }

    /// The context of the plugin instance serving this call (an action, a route request, an
    /// event delivery, a job, a task); `None` for a context no plugin serves
    /// ([`CallContext::host`], say).
    pub fn plugin_context(&self) -> Option<&crate::PluginContext> {
        self.scope()
    }

    fn served(&self, handle: &'static str) -> Result<&crate::PluginContext, AccessError> {
        self.scope.as_ref().ok_or(AccessError::Unbound { handle })
    }

    /// The serving plugin's handle `H` ([`Handle`]: `Worker`, `Scheduler`, `Events`, the
    /// `default` database), bound to this call: its grants (checked once per instance), this
    /// call's tenant (and trace). Fails with [`AccessError::Unbound`] on a context no plugin
    /// serves. See [`plugin::handle`](crate::plugin::handle).
    ///
    /// ```
    /// use xcore::prelude::*;
    /// use xcore::services::db::{Db, sqlx};
    ///
    /// async fn count(cx: &CallContext) -> Result<i64, CallError> {
    ///     let db = cx.handle::<Db>().await?; // the call's tenant's database
    ///     sqlx::query_scalar("SELECT COUNT(*) FROM users")
    ///         .fetch_one(db.pool())
    ///         .await
    ///         .map_err(CallError::handler)
    /// }
    /// ```
    pub async fn handle<H: Handle>(&self) -> Result<H, H::Error> {
        let handle = self.served(std::any::type_name::<H>())?.handle::<H>()?;
        handle.bind(self).await
    }

    /// The serving plugin's handle `H` on `name` ([`NamedHandle`]: a cache namespace, a
    /// database connection, a host extension), bound to this call, as
    /// [`handle`](Self::handle).
    pub async fn named<H: NamedHandle>(&self, name: &str) -> Result<H, H::Error> {
        let handle = self.served(std::any::type_name::<H>())?.named::<H>(name)?;
        handle.bind(self).await
    }

    /// Who makes the call.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The tenant the call runs for.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The trace context.
    pub fn trace(&self) -> &TraceContext {
        &self.trace
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

impl Default for CallContext {
    fn default() -> Self {
        Self::host()
    }
}
