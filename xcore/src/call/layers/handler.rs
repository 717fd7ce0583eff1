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
}

impl Handler {
    /// Calls into `plugin`.
    pub fn new(plugin: Arc<dyn Plugin>) -> Self {
        Self { plugin }
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
        Box::pin(async move {
            let (_, action, payload, cx) = req.into_parts();
            plugin.handle(&action, payload, &cx).await
        })
    }
}
