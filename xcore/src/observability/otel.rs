//! OpenTelemetry (feature `opentelemetry`): the `xcore.http` span continues the W3C
//! `traceparent` it receives, and a request without one gets the trace id the OpenTelemetry
//! layer chose, so logs, the [`CallContext`](crate::CallContext) and exported spans name one
//! trace.
//!
//! Both work with any `tracing-opentelemetry` layer: the one [`init_tracing`](super::init_tracing)
//! installs from `observability.otlp_endpoint`, or the host's own. Without such a layer (or
//! with the span filtered out) they do nothing.

use opentelemetry::{
    propagation::{Extractor, TextMapPropagator},
    trace::TraceContextExt,
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The request's headers, as the propagator reads them.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Makes the remote span of a valid `traceparent` (and its `tracestate`) the parent of
/// `span`, which must not be entered yet.
pub(crate) fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    if span.is_disabled() || !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    if parent.span().span_context().is_valid() {
        // Refused only for a span already started or filtered out: nothing to continue then.
        let _ = span.set_parent(parent);
    }
}

/// The trace id the OpenTelemetry layer gave `span`, if one did.
pub(crate) fn trace_id(span: &tracing::Span) -> Option<u128> {
    if span.is_disabled() {
        return None;
    }
    let cx = span.context();
    let otel = cx.span();
    let span_context = otel.span_context();
    span_context
        .is_valid()
        .then(|| u128::from_be_bytes(span_context.trace_id().to_bytes()))
}
