//! [`RequestTrace`]: a `tracing` span per request.

use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};
use tracing::{Instrument, field::Empty};

use super::WebService;
use crate::web::{Body, ResponseFuture};

/// Wraps a service in [`RequestTrace`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RequestTraceLayer;

impl<S> Layer<S> for RequestTraceLayer {
    type Service = RequestTrace<S>;

    fn layer(&self, inner: S) -> RequestTrace<S> {
        RequestTrace { inner }
    }
}

/// Runs each request in an `xcore.http` span with `method` and `path`; the inner layers
/// record `plugin`, `route` (the path the plugin sees), `tenant` and `trace_id`, and `status` is recorded
/// when the response is ready.
#[derive(Debug, Clone)]
pub(crate) struct RequestTrace<S> {
    inner: S,
}

impl<S: WebService> Service<Request<Body>> for RequestTrace<S> {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> ResponseFuture {
        let span = tracing::info_span!(
            "xcore.http",
            method = %request.method(),
            path = request.uri().path(),
            plugin = Empty,
            route = Empty,
            tenant = Empty,
            trace_id = Empty,
            status = Empty,
        );
        let call = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let Ok(response) = call.await;
                let status = response.status().as_u16();
                tracing::Span::current().record("status", status);
                if status >= 500 {
                    tracing::warn!(status, "request failed");
                } else {
                    tracing::debug!(status, "request served");
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}
