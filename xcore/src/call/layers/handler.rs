use std::{
    sync::Arc,
    task::{Context, Poll},
};

use serde_json::Value;
use tower::Service;

use crate::{
    CallError, Plugin,
    call::{CallFuture, CallRequest},
};

/// The innermost service of a pipeline: calls the plugin's `handle`.
#[derive(Clone)]
pub struct Handler {
    plugin: Arc<dyn Plugin>,
    scope: Option<crate::PluginContext>,
}

impl Handler {
    /// Calls into `plugin`.
    pub fn new(plugin: Arc<dyn Plugin>) -> Self {
        Self {
            plugin,
            scope: None,
        }
    }

    /// The same handler, serving calls as the instance of `scope`: the context each call's
    /// action sees is bound to it (call-bound handles).
    pub(crate) fn with_scope(mut self, scope: crate::PluginContext) -> Self {
        self.scope = Some(scope);
        self
    }
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handler")
    }
}

impl Service<CallRequest> for Handler {
    type Response = Value;
    type Error = CallError;
    type Future = CallFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: CallRequest) -> CallFuture {
        let plugin = self.plugin.clone();
        let scope = self.scope.clone();
        Box::pin(async move {
            let (_, action, payload, mut cx) = req.into_parts();
            if let Some(scope) = scope {
                cx.set_scope(scope);
            }
            plugin.handle(&action, payload, &cx).await
        })
    }
}
