use std::task::{Context, Poll};

use serde_json::Value;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::{
    CallError,
    call::{CallFuture, CallRequest},
};

/// Applies [`Trace`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer;

impl TraceLayer {
    /// A span per call.
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Trace::new(inner)
    }
}

/// Opens a `tracing` span `xcore.call` per call, with the plugin, the action, the caller, the
/// tenant and the trace id, and records the outcome (`ok` or the error code) when the call
/// ends, then logs `call answered` at DEBUG inside the span (so the outcome is on that line).
///
/// The metrics of the calls (`xcore_calls_total{plugin,action,code}`,
/// `xcore_call_duration_seconds{plugin,action}`) are recorded around the whole pipeline by
/// the dispatch, for an `Xcore` with [metrics](crate::observability).
#[derive(Debug, Clone)]
pub struct Trace<S> {
    inner: S,
}

impl<S> Trace<S> {
    /// Traces calls to `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S> Service<CallRequest> for Trace<S>
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
        let span = tracing::debug_span!(
            "xcore.call",
            plugin = req.target().name(),
            action = req.action(),
            caller = %req.context().caller(),
            tenant = %req.context().tenant(),
            trace_id = %format_args!("{:032x}", req.context().trace().trace_id()),
            outcome = tracing::field::Empty,
        );
        let fut = span.in_scope(|| self.inner.call(req));
        Box::pin(
            async move {
                let out = fut.await;
                let outcome = match &out {
                    Ok(_) => "ok",
                    Err(e) => e.code().as_str(),
                };
                tracing::Span::current().record("outcome", outcome);
                tracing::debug!("call answered");
                out
            }
            .instrument(span),
        )
    }
}
