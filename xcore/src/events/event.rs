use std::{fmt, future::Future, pin::Pin, sync::Arc, time::SystemTime};

use serde_json::Value;

use crate::{CallContext, CallError, ErrorCode, TenantId, TraceContext};

/// Who emitted an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventSource {
    /// The container itself (the kernel events).
    Kernel,
    /// The host application.
    Host,
    /// A plugin.
    Plugin(String),
    /// Another instance, through the event bridge (its node id); feature `postgres` or `redis`.
    Bridge(String),
}

impl fmt::Display for EventSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventSource::Kernel => f.write_str("kernel"),
            EventSource::Host => f.write_str("host"),
            EventSource::Plugin(name) => write!(f, "plugin `{name}`"),
            EventSource::Bridge(node) => write!(f, "node `{node}` (bridged)"),
        }
    }
}

struct Inner {
    name: String,
    payload: Value,
    source: EventSource,
    tenant: TenantId,
    time: SystemTime,
    trace_id: u128,
}

/// An event: a name, a JSON payload, and where it comes from — source, tenant, time, trace.
///
/// Cheap to clone: every handler of an emit receives the same event. A handler subscribed
/// through a plugin's [`Events`](super::Events) handle receives it with the
/// [`context`](Event::context) of its delivery, from which it takes its handles.
#[derive(Clone)]
pub struct Event {
    inner: Arc<Inner>,
    /// The delivery's context, served by the subscribing plugin's instance.
    call: Option<CallContext>,
}

impl Event {
    pub(crate) fn with_source(
        name: String,
        payload: Value,
        source: EventSource,
        tenant: TenantId,
        trace_id: u128,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                name,
                payload,
                source,
                tenant,
                time: SystemTime::now(),
                trace_id,
            }),
            call: None,
        }
    }

    /// The same event, delivered under `call`.
    pub(crate) fn delivered(&self, call: CallContext) -> Self {
        Self {
            inner: self.inner.clone(),
            call: Some(call),
        }
    }

    /// The context of this delivery: the event's tenant, its trace, and — for a handler
    /// subscribed through a plugin's handle — the plugin's instance, so that
    /// `event.context().handle::<Db>().await` gives the plugin's database for the event's
    /// tenant. For a host subscription, a host context with the event's tenant and trace.
    pub fn context(&self) -> CallContext {
        match &self.call {
            Some(call) => call.clone(),
            None => CallContext::host()
                .with_tenant(self.inner.tenant.clone())
                .with_trace(self.trace()),
        }
    }

    /// The trace of the delivery: the emitting call's trace id, a new span.
    pub(crate) fn trace(&self) -> TraceContext {
        match self.inner.trace_id {
            0 => TraceContext::new_root(),
            id => TraceContext::from_parts(id, fastrand::u64(1..)),
        }
    }

    /// An event from the host, for tenant `default`, outside any trace: what tests and
    /// benches hand a handler directly. Emits build their events themselves.
    pub fn new(name: impl Into<String>, payload: Value) -> Self {
        Self::with_source(
            name.into(),
            payload,
            EventSource::Host,
            TenantId::default(),
            0,
        )
    }

    /// The name (`user.created`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The payload.
    pub fn payload(&self) -> &Value {
        &self.inner.payload
    }

    /// Who emitted it.
    pub fn source(&self) -> &EventSource {
        &self.inner.source
    }

    /// The tenant it was emitted for.
    pub fn tenant(&self) -> &TenantId {
        &self.inner.tenant
    }

    /// When it was emitted.
    pub fn time(&self) -> SystemTime {
        self.inner.time
    }

    /// The trace id of the call that emitted it.
    pub fn trace_id(&self) -> u128 {
        self.inner.trace_id
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("name", &self.inner.name)
            .field("source", &self.inner.source)
            .field("tenant", &self.inner.tenant)
            .field("payload", &self.inner.payload)
            .finish()
    }
}

/// What a handler tells a sequential emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flow {
    /// Go on with the next handler.
    #[default]
    Continue,
    /// Stop: the handlers after this one do not run (sequential dispatch only).
    Stop,
}

/// How an emit runs its handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dispatch {
    /// One after the other, in priority order; [`Flow::Stop`] stops the rest.
    #[default]
    Sequential,
    /// All at once; their outcomes come back in priority order.
    Concurrent,
}

/// The future a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Flow, String>> + Send + 'static>>;

/// Handles events. Implemented for every `Fn(Event) -> impl Future<Output = Result<Flow, E>>`
/// where `E: Display`.
pub trait EventHandler: Send + Sync + 'static {
    /// Handles one event.
    fn handle(&self, event: Event) -> HandlerFuture;
}

impl<F, Fut, E> EventHandler for F
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Flow, E>> + Send + 'static,
    E: fmt::Display,
{
    fn handle(&self, event: Event) -> HandlerFuture {
        let fut = self(event);
        Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
    }
}

/// Why an emit or a subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The plugin lacks the grant. A subscription needs an allow grant covering its whole
    /// pattern and no deny grant matching any event of it.
    #[error(
        "plugin `{plugin}` may not {action} `{event}`: its grants do not allow \
         `events:{event}: {action}` for every event it names"
    )]
    PermissionDenied {
        /// The plugin refused.
        plugin: String,
        /// The event name or pattern.
        event: String,
        /// `emit` or `subscribe`.
        action: &'static str,
    },
    /// The event name is malformed.
    #[error("invalid event name `{name}`: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The subscription pattern is malformed.
    #[error("invalid event pattern `{pattern}`: {reason}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong.
        reason: String,
    },
    /// The `Xcore` the handle belongs to has been dropped.
    #[error("the event bus is gone: its Xcore was dropped")]
    Closed,
}

impl From<EventError> for CallError {
    fn from(err: EventError) -> Self {
        let code = match err {
            EventError::PermissionDenied { .. } => ErrorCode::PermissionDenied,
            EventError::InvalidName { .. } | EventError::InvalidPattern { .. } => {
                ErrorCode::InvalidPayload
            }
            EventError::Closed => ErrorCode::NotReady,
        };
        CallError::new(code, err.to_string())
    }
}
