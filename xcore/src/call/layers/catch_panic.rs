use std::{
    any::Any,
    panic::AssertUnwindSafe,
    task::{Context, Poll},
};

use futures_util::FutureExt;
use serde_json::Value;
use tower::{Layer, Service};

use crate::{
    CallError, ErrorCode,
    call::{CallFuture, CallRequest},
};

/// Applies [`CatchPanic`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CatchPanicLayer;

impl CatchPanicLayer {
    /// Panic isolation.
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CatchPanic { inner }
    }
}

/// Turns a panic of the handler into a `panicked` error; the plugin serves the next call.
///
/// The plugin's own state is not rolled back: a handler that panics while holding a lock
/// poisons it, as anywhere in Rust.
#[derive(Debug, Clone)]
pub struct CatchPanic<S> {
    inner: S,
}

pub(crate) fn catch_panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}

impl<S> Service<CallRequest> for CatchPanic<S>
where
    S: Service<CallRequest, Response = Value, Error = CallError>,
    S::Future: Send + 'static,
{
    type Response = Value;
    type Error = CallError;
    type Future = CallFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: CallRequest) -> CallFuture {
        let (target, action) = (req.target().clone(), req.action_name());
        let panicked = move |payload: Box<dyn Any + Send>| {
            let what = format!("{}.{action}", target.name());
            let message = catch_panic_message(&*payload);
            tracing::error!(call = %what, panic = %message, "plugin handler panicked");
            Err(CallError::new(
                ErrorCode::Panicked,
                format!("`{what}` panicked: {message}"),
            ))
        };
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(fut) => Box::pin(
                AssertUnwindSafe(fut)
                    .catch_unwind()
                    .map(|out| out.unwrap_or_else(panicked)),
            ),
            Err(payload) => Box::pin(std::future::ready(panicked(payload))),
        }
    }
}
