//! [`Trace`]: a `tracing` span per request, and the HTTP metrics.

use std::sync::Arc;

use http::{Method, Request, Response, Uri};
use tracing::{Instrument, field::Empty};

use super::ready;
use crate::{
    observability::RouteMeter,
    web::{Body, ResponseFuture, route_label::RouteLabels},
};

/// What every request's [`Trace`] is begun with: the labels of requests, and whether to
/// record metrics.
#[derive(Debug)]
pub(crate) struct Tracing {
    labels: Arc<RouteLabels>,
    measure: bool,
}

impl Tracing {
    /// Labels requests with `labels`; records metrics if `measure`.
    pub(crate) fn new(labels: RouteLabels, measure: bool) -> Self {
        Self {
            labels: Arc::new(labels),
            measure,
        }
    }
}

/// One request's `xcore.http` span (`method`, `path`, `plugin`, `route` — the route template,
/// see [`RouteLabels::label`] —, `tenant`, `trace_id`, `status`, `latency_ms`) and its
/// metrics: `xcore_http_requests_total{plugin,route,status}` and
/// `xcore_http_request_duration_seconds{plugin,route}`.
///
/// Begun before anything else runs; [finished](Self::finish) once, when the response head is
/// ready: the status and latency recorded, the request counted, a 5xx logged at WARN with
/// its labels, a bare error response given its JSON envelope
/// ([`envelope_bare`](super::envelope_bare)).
///
/// Costs nothing but the span's callsite check when neither a subscriber wants the span nor
/// metrics are on: no labels, no clock.
pub(crate) struct Trace {
    span: tracing::Span,
    /// Set when the span is on or metrics are.
    labels: Option<Arc<RouteLabels>>,
    /// With the span on, the labels are known before the handler runs; with metrics only,
    /// the meter is looked up when the response is ready (no reference kept meanwhile).
    meter: Option<Arc<RouteMeter>>,
    measure: bool,
    start: u64,
    method: Method,
}

impl Trace {
    /// Begins the trace of `request` (its span is not entered).
    pub(crate) fn begin(tracing: &Tracing, request: &Request<Body>) -> Self {
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
        let traced = !span.is_disabled();
        let measure = tracing.measure;
        let mut meter = None;
        let labels = if traced {
            let early = tracing.labels.label(request.method(), request.uri().path());
            if !early.plugin.is_empty() {
                span.record("plugin", &*early.plugin);
            }
            span.record("route", &*early.route);
            meter = Some(early);
            Some(tracing.labels.clone())
        } else {
            measure.then(|| tracing.labels.clone())
        };
        let start = labels.as_ref().map_or(0, |labels| labels.clock().raw());
        #[cfg(feature = "opentelemetry")]
        crate::observability::otel::continue_trace(&span, request.headers());
        Self {
            span,
            labels,
            meter,
            measure,
            start,
            method: request.method().clone(),
        }
    }

    /// The request's span.
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Finishes the trace of the request for `uri` (its URI as the client sent it) answered
    /// with `response`, which is returned (enveloped if it was a bare error).
    pub(crate) fn finish(self, mut response: Response<Body>, uri: &Uri) -> Response<Body> {
        let traced = !self.span.is_disabled();
        let _entered = traced.then(|| self.span.enter());
        super::envelope_bare(&mut response, &self.method, uri);
        let status = response.status().as_u16();
        if traced {
            self.span.record("status", status);
        }
        if let Some(labels) = &self.labels {
            let clock = labels.clock();
            let took = clock.delta(self.start, clock.raw());
            if traced {
                self.span.record("latency_ms", took.as_secs_f64() * 1e3);
            }
            if self.measure {
                match &self.meter {
                    Some(meter) => meter.record(status, took),
                    None => labels.record(&self.method, uri.path(), status, took),
                }
            }
        }
        if status >= 500 {
            // With the request's labels on the line itself (the span may be filtered out: a
            // log at WARN).
            let meter = self.meter.clone().or_else(|| {
                self.labels
                    .as_ref()
                    .map(|labels| labels.label(&self.method, uri.path()))
            });
            let (plugin, route) = meter
                .as_deref()
                .map_or(("", ""), |meter| (&*meter.plugin, &*meter.route));
            tracing::warn!(
                status,
                method = %self.method,
                path = uri.path(),
                plugin,
                route,
                "request failed"
            );
        } else {
            tracing::debug!(status, "request served");
        }
        response
    }

    /// [`finish`](Self::finish)es with a response known at once.
    pub(crate) fn ready(self, response: Response<Body>, uri: &Uri) -> ResponseFuture {
        ready(self.finish(response, uri))
    }

    /// Answers `err` at once (a 5xx logged in the request's span) and finishes.
    pub(crate) fn reject(self, err: crate::web::HttpError, uri: &Uri) -> ResponseFuture {
        let response = {
            let _entered = (!self.span.is_disabled()).then(|| self.span.enter());
            err.into_response()
        };
        self.ready(response, uri)
    }

    /// Finishes once `response` is ready (a request not served by a plugin's routes: the
    /// admin API, a reload in progress).
    pub(crate) fn after(self, uri: Uri, response: ResponseFuture) -> ResponseFuture {
        let span = self.span.clone();
        Box::pin(
            async move {
                let Ok(response) = response.await;
                Ok(self.finish(response, &uri))
            }
            .instrument(span),
        )
    }
}
