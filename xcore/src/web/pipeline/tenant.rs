//! [`call_context`]: the tenant and the call context of each request.

use http::{HeaderMap, HeaderName, HeaderValue, Request};

use crate::{
    CallContext, TenantId, TraceContext,
    web::{Body, HttpError, tenant::TenantResolution, traceparent},
};

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Resolves the request's tenant and puts a [`CallContext`] for it in the request's
/// extensions (the only one: the tenant is [`CallContext::tenant`]): the host as caller, the
/// tenant, and the trace of the `traceparent` header if there is a valid one (else the
/// OpenTelemetry layer's trace, else a new one). An invalid tenant id is a 400
/// `invalid_tenant`, never a fallback to the default. The tenant and the trace id are
/// recorded on `span` (the request's).
pub(crate) fn call_context(
    resolution: &TenantResolution,
    request: &mut Request<Body>,
    span: &tracing::Span,
) -> Result<(), HttpError> {
    // Without tenancy, every request is for the default tenant: the parts are not needed.
    let tenant = if resolution.enabled {
        let (parts, body) = std::mem::take(request).into_parts();
        let resolved = resolution.resolve(&parts);
        *request = Request::from_parts(parts, body);
        resolved
            .inspect_err(|err| tracing::debug!(parent: span, error = %err, "tenant rejected"))?
    } else {
        TenantId::default()
    };
    let trace = match traceparent_header(request.headers())
        .and_then(|v| traceparent::parse(v.as_bytes()))
    {
        Some(trace) => trace,
        None => otel_trace(span).unwrap_or_else(TraceContext::new_root),
    };
    if !span.is_disabled() {
        span.record("tenant", tenant.as_str());
        let trace_id = trace.trace_id();
        span.record(
            "trace_id",
            tracing::field::display(format_args!("{trace_id:032x}")),
        );
    }
    request
        .extensions_mut()
        .insert(CallContext::host_request(tenant, trace));
    Ok(())
}

/// The `traceparent` header (its first value): among a few headers, found by comparing names
/// (most are standard headers, told apart at once) rather than by hashing its name.
fn traceparent_header(headers: &HeaderMap) -> Option<&HeaderValue> {
    if headers.len() <= 16 {
        headers
            .iter()
            .find(|(name, _)| **name == TRACEPARENT)
            .map(|(_, value)| value)
    } else {
        headers.get(TRACEPARENT)
    }
}

/// The trace the OpenTelemetry layer chose for the request's span, if there is one.
#[cfg(feature = "opentelemetry")]
fn otel_trace(span: &tracing::Span) -> Option<TraceContext> {
    crate::observability::otel::trace_id(span).map(TraceContext::root_of)
}

#[cfg(not(feature = "opentelemetry"))]
fn otel_trace(_: &tracing::Span) -> Option<TraceContext> {
    None
}
