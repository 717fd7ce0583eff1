use std::{fmt, sync::Arc};

use serde_json::Value;
use xcore_manifest::ResourcePattern;

use super::{
    Dispatch, EmitReport, Event, EventError, EventHandler, EventSource, HandlerFuture,
    SubscribeOptions, SubscriptionId, bus::EventBus,
};
use crate::{
    CallContext, PluginContext, PluginIdentity,
    permissions::{Policy, Resource, Scope},
    plugin::{
        WeakContext,
        handle::{Bind, Handle},
    },
    runtime::Way,
    services::AccessError,
};

/// A handle on an `Xcore`'s event bus: the host's ([`Xcore::events`](crate::Xcore::events)),
/// unrestricted, or a plugin's (`ctx.handle::<Events>()`, or
/// [`PluginContext::events`](crate::PluginContext::events)), checked against its grants.
///
/// A plugin's handle belongs to its instance: every delivery to a subscription made through
/// it passes the instance's [gate](crate::runtime) (a stopped instance's handler is not run:
/// the delivery is reported failed), in the entry's span, and the handler receives the
/// event with its [`context`](Event::context), bound to the instance and the event's tenant.
/// Taken from a call (`cx.handle::<Events>().await`), the handle is bound to the call:
/// [`publish`](Self::publish) emits with the call's tenant and trace.
///
/// ```
/// use xcore::prelude::*;
/// use xcore::events::{Flow, SubscribeOptions};
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let xcore = Xcore::builder().without_registered().build().unwrap();
/// let events = xcore.events();
/// events
///     .subscribe("user.*", |event: xcore::events::Event| async move {
///         println!("{} for {}", event.name(), event.tenant());
///         Ok::<_, std::convert::Infallible>(Flow::Continue)
///     })
///     .unwrap();
/// let report = events.emit(&CallContext::host(), "user.created", json!({"id": 1})).await.unwrap();
/// assert_eq!(report.handled(), 1);
/// # }
/// ```
#[derive(Clone)]
pub struct Events {
    bus: Arc<EventBus>,
    owner: Option<PluginIdentity>,
    /// The plugin instance the handle belongs to (its subscriptions are gated).
    instance: Option<WeakContext>,
    /// The call the handle is bound to.
    call: Option<CallContext>,
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("owner", &self.owner.as_ref().map(PluginIdentity::name))
            .finish()
    }
}

fn check_name(name: &str) -> Result<(), EventError> {
    let invalid = |reason: String| EventError::InvalidName {
        name: name.chars().take(200).collect(),
        reason,
    };
    if name.contains('*') {
        return Err(invalid(
            "an event name has no wildcard (patterns are for subscriptions)".into(),
        ));
    }
    ResourcePattern::parse(name)
        .map(drop)
        .map_err(|e| invalid(e.reason().to_owned()))
}

impl Events {
    pub(crate) fn new(bus: Arc<EventBus>, owner: Option<PluginIdentity>) -> Self {
        Self {
            bus,
            owner,
            instance: None,
            call: None,
        }
    }

    /// The same handle, belonging to the plugin instance `instance`.
    pub(crate) fn for_instance(mut self, instance: WeakContext) -> Self {
        self.owner = Some(instance.identity().clone());
        self.instance = Some(instance);
        self
    }

    /// The call this handle is bound to, if any.
    pub fn call_context(&self) -> Option<&CallContext> {
        self.call.as_ref()
    }

    /// Emits `name` with the bound call's tenant and trace (a handle taken from a call), or
    /// for tenant `default` in a new trace (a plugin-level or host handle), and waits for its
    /// handlers; as [`emit`](Self::emit) otherwise.
    pub async fn publish(&self, name: &str, payload: Value) -> Result<EmitReport, EventError> {
        match &self.call {
            Some(cx) => self.emit(cx, name, payload).await,
            None => self.emit(&CallContext::host(), name, payload).await,
        }
    }

    fn check(&self, resource: &str, action: &'static str) -> Result<(), EventError> {
        self.check_with(resource, action, |grants| {
            Resource::event(resource).allowed_by(grants, action)
        })
    }

    /// A subscription is allowed when the grants allow every event its pattern can match
    /// (an allow covers the pattern, no deny intersects it).
    fn check_pattern(&self, text: &str, pattern: &ResourcePattern) -> Result<(), EventError> {
        self.check_with(text, "subscribe", |grants| {
            Scope::Events.allows_pattern(grants, pattern, "subscribe")
        })
    }

    fn check_with(
        &self,
        resource: &str,
        action: &'static str,
        allowed: impl FnOnce(&crate::Grants) -> bool,
    ) -> Result<(), EventError> {
        let Some(plugin) = &self.owner else {
            return Ok(());
        };
        Policy::new(&self.bus.audit)
            .check_with(plugin, Resource::event(resource), action, allowed)
            .map_err(|_| EventError::PermissionDenied {
                plugin: plugin.name().to_owned(),
                event: resource.to_owned(),
                action,
            })
    }

    fn event(&self, cx: &CallContext, name: &str, payload: Value) -> Result<Event, EventError> {
        check_name(name)?;
        self.check(name, "emit")?;
        let source = match &self.owner {
            Some(p) => EventSource::Plugin(p.name().to_owned()),
            None => EventSource::Host,
        };
        Ok(Event::with_source(
            name.to_owned(),
            payload,
            source,
            cx.tenant().clone(),
            cx.trace().trace_id(),
        ))
    }

    /// Emits an event and waits for its handlers, run one after the other in priority order.
    /// The tenant and the trace come from `cx`.
    pub async fn emit(
        &self,
        cx: &CallContext,
        name: &str,
        payload: Value,
    ) -> Result<EmitReport, EventError> {
        self.emit_with(cx, name, payload, Dispatch::Sequential)
            .await
    }

    /// Emits an event with the given dispatch and waits for its handlers.
    pub async fn emit_with(
        &self,
        cx: &CallContext,
        name: &str,
        payload: Value,
        dispatch: Dispatch,
    ) -> Result<EmitReport, EventError> {
        let event = self.event(cx, name, payload)?;
        Ok(self.bus.emit(event, dispatch).await)
    }

    /// Emits an event without waiting: its handlers run in a task the `Xcore` tracks and joins
    /// on shutdown. Must be called inside a tokio runtime.
    pub fn emit_background(
        &self,
        cx: &CallContext,
        name: &str,
        payload: Value,
    ) -> Result<(), EventError> {
        let event = self.event(cx, name, payload)?;
        self.bus.emit_background(event, Dispatch::Sequential);
        Ok(())
    }

    /// Subscribes `handler` to the events matching `pattern`, with default options.
    pub fn subscribe<H: EventHandler>(
        &self,
        pattern: &str,
        handler: H,
    ) -> Result<SubscriptionId, EventError> {
        self.subscribe_with(pattern, SubscribeOptions::default(), handler)
    }

    /// Subscribes with a priority and/or `once`.
    pub fn subscribe_with<H: EventHandler>(
        &self,
        pattern: &str,
        options: SubscribeOptions,
        handler: H,
    ) -> Result<SubscriptionId, EventError> {
        let compiled = ResourcePattern::parse(pattern).map_err(|e| EventError::InvalidPattern {
            pattern: pattern.chars().take(200).collect(),
            reason: e.reason().to_owned(),
        })?;
        self.check_pattern(pattern, &compiled)?;
        let owner = self.owner.as_ref().map(PluginIdentity::name);
        let handler: Arc<dyn EventHandler> = match &self.instance {
            Some(instance) => Arc::new(Gated {
                instance: instance.clone(),
                handler,
            }),
            None => Arc::new(handler),
        };
        Ok(self.bus.subscribe(owner, compiled, options, handler))
    }

    /// Removes a subscription; `false` if it was already gone.
    pub fn unsubscribe(&self, id: SubscriptionId) -> bool {
        self.bus.unsubscribe(id)
    }

    /// How many subscriptions the bus holds (all subscribers).
    pub fn subscription_count(&self) -> usize {
        self.bus.subscription_count()
    }
}

/// A plugin's subscription: each delivery passes the instance's gate (state only), runs in
/// the entry's span, and receives the event bound to the instance and the event's tenant.
/// A panic is left to the bus, which reports it as such.
struct Gated<H> {
    instance: WeakContext,
    handler: H,
}

impl<H: EventHandler> EventHandler for Gated<H> {
    fn handle(&self, event: Event) -> HandlerFuture {
        let (ctx, pass) = match self.instance.enter(Way::Event) {
            Ok(entered) => entered,
            Err(refused) => {
                let why = refused.message().to_owned();
                return Box::pin(async move { Err(why) });
            }
        };
        let cx = ctx.entry_context(event.tenant().clone(), event.trace());
        let span = ctx.gate().span(Way::Event, &cx);
        let delivery = {
            let _entered = span.enter();
            self.handler.handle(event.delivered(cx))
        };
        Box::pin(tracing::Instrument::instrument(
            async move {
                let outcome = delivery.await;
                drop(pass);
                outcome
            },
            span,
        ))
    }
}

/// The plugin's handle on the event bus; emits and subscriptions are checked per operation.
impl Handle for Events {
    fn obtain(ctx: &PluginContext) -> Result<Self, AccessError> {
        ctx.new_events()
    }
}

/// [`Events::publish`] with the call's tenant and trace.
impl Bind for Events {
    type Error = AccessError;

    async fn bind(&self, cx: &CallContext) -> Result<Self, AccessError> {
        Ok(Self {
            call: Some(cx.clone()),
            ..self.clone()
        })
    }
}
