use std::{future::Future, pin::Pin, sync::Arc};

use serde_json::Value;
use tower::{Layer, Service, ServiceBuilder, util::BoxCloneSyncService};

use super::layers::{AuthorizeLayer, CatchPanicLayer, Handler, TimeoutLayer, Trace};
use crate::{CallContext, CallError, Plugin, PluginIdentity, permissions::Audit};

/// The future of a call through a pipeline stage.
pub type CallFuture = Pin<Box<dyn Future<Output = Result<Value, CallError>> + Send + 'static>>;

/// A call pipeline, type-erased: what host layers wrap.
pub type BoxCallService = BoxCloneSyncService<CallRequest, Value, CallError>;

/// One call on its way to a plugin: the target, the action, the payload and the context.
#[derive(Debug, Clone)]
pub struct CallRequest {
    target: PluginIdentity,
    action: ActionName,
    payload: Value,
    cx: CallContext,
}

impl CallRequest {
    pub(crate) fn new(
        target: PluginIdentity,
        action: ActionName,
        payload: Value,
        cx: CallContext,
    ) -> Self {
        Self {
            target,
            action,
            payload,
            cx,
        }
    }

    /// The plugin called.
    pub fn target(&self) -> &PluginIdentity {
        &self.target
    }

    /// The action called.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The payload.
    pub fn payload(&self) -> &Value {
        &self.payload
    }

    /// The payload, to rewrite it.
    pub fn payload_mut(&mut self) -> &mut Value {
        &mut self.payload
    }

    /// The call's context.
    pub fn context(&self) -> &CallContext {
        &self.cx
    }

    /// The call's context, to tighten its deadline, say.
    pub fn context_mut(&mut self) -> &mut CallContext {
        &mut self.cx
    }

    /// The declared name called and its index in the target's declared names, if it is one.
    pub(crate) fn declared_action(&self) -> Option<(&'static str, usize)> {
        self.action.declared()
    }

    /// The action, cheap to keep for error messages.
    pub(crate) fn action_name(&self) -> ActionName {
        self.action.clone()
    }

    pub(crate) fn into_parts(self) -> (PluginIdentity, ActionName, Value, CallContext) {
        (self.target, self.action, self.payload, self.cx)
    }
}

/// The action of a call: one of the target's declared action names (no allocation, no
/// reference count), or the name as given.
#[derive(Debug, Clone)]
pub(crate) enum ActionName {
    /// The name, and its index in the declared names.
    Declared(&'static str, usize),
    Other(Arc<str>),
}

impl ActionName {
    /// `action`, as one of `declared` when it is one.
    pub(crate) fn new(action: &str, declared: &'static [&'static str]) -> Self {
        match declared.iter().position(|d| *d == action) {
            Some(i) => ActionName::Declared(declared[i], i),
            None => ActionName::Other(Arc::from(action)),
        }
    }
}

impl ActionName {
    /// The declared name and its index in the target's declared names, if it is one.
    pub(crate) fn declared(&self) -> Option<(&'static str, usize)> {
        match self {
            ActionName::Declared(name, i) => Some((name, *i)),
            ActionName::Other(_) => None,
        }
    }
}

impl std::ops::Deref for ActionName {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            ActionName::Declared(name, _) => name,
            ActionName::Other(name) => name,
        }
    }
}

impl std::fmt::Display for ActionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

/// A host layer, erased: wraps the inner part of every plugin's pipeline.
pub(crate) type HostLayer = Arc<dyn Fn(BoxCallService) -> BoxCallService + Send + Sync>;

pub(crate) fn host_layer<L>(layer: L) -> HostLayer
where
    L: Layer<BoxCallService> + Send + Sync + 'static,
    L::Service:
        Service<CallRequest, Response = Value, Error = CallError> + Clone + Send + Sync + 'static,
    <L::Service as Service<CallRequest>>::Future: Send + 'static,
{
    Arc::new(move |inner| BoxCloneSyncService::new(layer.layer(inner)))
}

/// Builds the pipeline of one plugin.
pub(crate) fn build_pipeline(
    ctx: &crate::PluginContext,
    plugin: Arc<dyn Plugin>,
    host_layers: &[HostLayer],
    audit: &Arc<Audit>,
) -> BoxCallService {
    let target = ctx.identity();
    let manifest = target.manifest();
    // The rate and concurrency limits are the gate's: calls and route requests share them.
    let gate = ctx.gate();
    let core = ServiceBuilder::new()
        .layer(AuthorizeLayer::new(target.clone(), audit.clone()))
        .layer(gate.rate_layer())
        .layer(gate.concurrency_layer())
        .layer(TimeoutLayer::new(manifest.timeout()))
        .layer(CatchPanicLayer::new())
        .service(Handler::new(plugin));
    // Without host layers, no inner box: one allocation less per call (the clone) and one
    // less per call's future.
    if host_layers.is_empty() {
        return BoxCloneSyncService::new(Trace::new(core));
    }
    let mut svc = BoxCloneSyncService::new(core);
    for layer in host_layers.iter().rev() {
        svc = layer(svc);
    }
    BoxCloneSyncService::new(Trace::new(svc))
}
