//! [`RequestTrace`]: a `tracing` span per request, and the HTTP metrics.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use tower::{Layer, Service};
use tracing::{Instrument, field::Empty};

use super::WebService;
use crate::web::{Body, ResponseFuture, route_label::RouteLabels};

/// Wraps a service in [`RequestTrace`].
#[derive(Debug, Clone)]
pub(crate) struct RequestTraceLayer {
    labels: Arc<RouteLabels>,
    measure: bool,
}

impl RequestTraceLayer {
    /// Labels requests with `labels`; records metrics if `measure`.
    pub(crate) fn new(labels: RouteLabels, measure: bool) -> Self {
        Self {
            labels: Arc::new(labels),
            measure,
        }
    }
}

impl<S> Layer<S> for RequestTraceLayer {
    type Service = RequestTrace<S>;

    fn layer(&self, inner: S) -> RequestTrace<S> {
        RequestTrace {
            inner,
            labels: Some(self.labels.clone()),
            measure: self.measure,
        }
    }
}

/// Runs each request in an `xcore.http` span with `method`, `path`, `plugin` and `route` (the
/// route template, see [`RouteLabels::label`]); the inner layers record `tenant` and `trace_id`, and
/// `status` and `latency_ms` are recorded when the response head is ready. With metrics,
/// counts the request in `xcore_http_requests_total{plugin,route,status}` and its latency in
/// `xcore_http_request_duration_seconds{plugin,route}`.
///
/// [`Web`](crate::web::Web) clones its stack for each request and calls the clone once: the
/// labels move from the clone into the response future (no second reference count). A
/// service called twice labels and measures its first request only.
#[derive(Debug, Clone)]
pub(crate) struct RequestTrace<S> {
    inner: S,
    labels: Option<Arc<RouteLabels>>,
    measure: bool,
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
            latency_ms = Empty,
        );
        let labels = self.labels.take();
        let traced = !span.is_disabled();
        // With the span on, its labels are known before the handler runs; with metrics only,
        // the meter is looked up when the response is ready (no reference kept meanwhile).
        let early = match &labels {
            Some(labels) if traced => {
                let meter = labels.label(request.method(), request.uri().path());
                if !meter.plugin.is_empty() {
                    span.record("plugin", &*meter.plugin);
                }
                span.record("route", &*meter.route);
                Some(meter)
            }
            _ => None,
        };
        let measure = self.measure;
        let start = labels
            .as_ref()
            .filter(|_| measure || traced)
            .map(|labels| labels.clock().raw());
        #[cfg(feature = "opentelemetry")]
        crate::observability::otel::continue_trace(&span, request.headers());
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let call = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let Ok(response) = call.await;
                let response = super::envelope_bare(response, &method, &uri);
                let status = response.status().as_u16();
                let span = tracing::Span::current();
                span.record("status", status);
                if let (Some(labels), Some(start)) = (&labels, start) {
                    let clock = labels.clock();
                    let took = clock.delta(start, clock.raw());
                    span.record("latency_ms", took.as_secs_f64() * 1e3);
                    if measure {
                        match &early {
                            Some(meter) => meter.record(status, took),
                            None => labels.record(&method, uri.path(), status, took),
                        }
                    }
                }
                if status >= 500 {
                    // With the request's labels on the line itself (the span may be filtered
                    // out: a log at WARN).
                    let meter = early.clone().or_else(|| {
                        labels
                            .as_ref()
                            .map(|labels| labels.label(&method, uri.path()))
                    });
                    let (plugin, route) = meter
                        .as_deref()
                        .map_or(("", ""), |meter| (&*meter.plugin, &*meter.route));
                    tracing::warn!(
                        status,
                        method = %method,
                        path = uri.path(),
                        plugin,
                        route,
                        "request failed"
                    );
                } else {
                    tracing::debug!(status, "request served");
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}
