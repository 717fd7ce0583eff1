//! [`RequestTrace`]: a `tracing` span per request, and the HTTP metrics.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use http::{Request, Response};
use tower::{Layer, Service};
use tracing::{Instrument, field::Empty};

use super::WebService;
use crate::{
    observability::HttpMeter,
    web::{Body, ResponseFuture, route_label::RouteLabels},
};

/// Wraps a service in [`RequestTrace`].
#[derive(Debug, Clone)]
pub(crate) struct RequestTraceLayer {
    labels: Arc<RouteLabels>,
    meter: Option<HttpMeter>,
}

impl RequestTraceLayer {
    pub(crate) fn new(labels: RouteLabels, meter: Option<HttpMeter>) -> Self {
        Self {
            labels: Arc::new(labels),
            meter,
        }
    }
}

impl<S> Layer<S> for RequestTraceLayer {
    type Service = RequestTrace<S>;

    fn layer(&self, inner: S) -> RequestTrace<S> {
        RequestTrace {
            inner,
            labels: self.labels.clone(),
            meter: self.meter.clone(),
        }
    }
}

/// Runs each request in an `xcore.http` span with `method`, `path`, `plugin` and `route` (the
/// route template, see [`RouteLabels::label`]); the inner layers record `tenant`, and
/// `status` and `latency_ms` are recorded when the response head is ready. With metrics,
/// counts the request in `xcore_http_requests_total{plugin,route,status}` and its latency in
/// `xcore_http_request_duration_seconds{plugin,route}`.
#[derive(Debug, Clone)]
pub(crate) struct RequestTrace<S> {
    inner: S,
    labels: Arc<RouteLabels>,
    meter: Option<HttpMeter>,
}

impl<S: WebService> Service<Request<Body>> for RequestTrace<S> {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> ResponseFuture {
        let started = Instant::now();
        let span = tracing::info_span!(
            "xcore.http",
            method = %request.method(),
            path = request.uri().path(),
            plugin = Empty,
            route = Empty,
            tenant = Empty,
            status = Empty,
            latency_ms = Empty,
        );
        let label = (self.meter.is_some() || !span.is_disabled())
            .then(|| self.labels.label(request.method(), request.uri().path()));
        if let Some(label) = &label {
            if !label.plugin.is_empty() {
                span.record("plugin", &*label.plugin);
            }
            span.record("route", label.route.as_str());
        }
        let meter = self.meter.clone();
        let call = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let Ok(response) = call.await;
                let took = started.elapsed();
                let status = response.status().as_u16();
                let span = tracing::Span::current();
                span.record("status", status);
                span.record("latency_ms", took.as_secs_f64() * 1e3);
                if let (Some(meter), Some(label)) = (meter, label) {
                    meter.record(label.plugin, label.route, status, took);
                }
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
