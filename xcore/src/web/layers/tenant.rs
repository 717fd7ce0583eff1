//! [`ResolveTenant`]: the tenant and the call context of each request.

use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use super::{WebService, ready};
use crate::{
    CallContext,
    web::{Body, ResponseFuture, tenant::TenantResolution, traceparent},
};

/// Wraps a service in [`ResolveTenant`].
#[derive(Debug, Clone)]
pub(crate) struct ResolveTenantLayer {
    resolution: std::sync::Arc<TenantResolution>,
}

impl ResolveTenantLayer {
    pub(crate) fn new(resolution: TenantResolution) -> Self {
        Self {
            resolution: std::sync::Arc::new(resolution),
        }
    }
}

impl<S> Layer<S> for ResolveTenantLayer {
    type Service = ResolveTenant<S>;

    fn layer(&self, inner: S) -> ResolveTenant<S> {
        ResolveTenant {
            inner,
            resolution: self.resolution.clone(),
        }
    }
}

/// Resolves the request's tenant and puts a [`CallContext`] for it in the request's
/// extensions (the only one: the tenant is [`CallContext::tenant`]): the host as caller, the tenant, and the trace of the
/// `traceparent` header if there is a valid one (else a new trace). An invalid tenant id is
/// a 400 `invalid_tenant`, never a fallback to the default.
#[derive(Debug, Clone)]
pub(crate) struct ResolveTenant<S> {
    inner: S,
    resolution: std::sync::Arc<TenantResolution>,
}

impl<S: WebService> Service<Request<Body>> for ResolveTenant<S> {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> ResponseFuture {
        let (mut parts, body) = request.into_parts();
        let tenant = match self.resolution.resolve(&parts) {
            Ok(tenant) => tenant,
            Err(err) => {
                tracing::debug!(error = %err, "tenant rejected");
                return ready(err.into_response());
            }
        };
        tracing::Span::current().record("tenant", tenant.as_str());
        let mut cx = CallContext::host().with_tenant(tenant.clone());
        if let Some(trace) = parts
            .headers
            .get("traceparent")
            .and_then(|v| traceparent::parse(v.as_bytes()))
        {
            cx = cx.with_trace(trace);
        } else {
            #[cfg(feature = "opentelemetry")]
            if let Some(trace_id) = crate::observability::otel::trace_id(&tracing::Span::current())
            {
                cx = cx.with_trace(crate::TraceContext::root_of(trace_id));
            }
        }
        let trace_id = cx.trace().trace_id();
        tracing::Span::current().record(
            "trace_id",
            tracing::field::display(format_args!("{trace_id:032x}")),
        );
        parts.extensions.insert(cx);
        self.inner.call(Request::from_parts(parts, body))
    }
}
