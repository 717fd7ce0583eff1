//! The tower layers every request goes through, whatever the adapter, outermost first:
//!
//! | layer | does | rejects with |
//! |---|---|---|
//! | [`RequestTraceLayer`] | a `tracing` span per request: method, path, plugin, route template, tenant, status, latency; the HTTP metrics; turns empty error responses (a router's bare 404 or 405) into JSON envelopes | — |
//! | [`BodyLimitLayer`] | caps the body (declared length and bytes read) | 413 `payload_too_large` |
//! | [`ResolveTenantLayer`] | puts a [`CallContext`](crate::CallContext) (host caller, tenant, `traceparent`) in the request's extensions (one extension: the tenant is the context's) | 400 `invalid_tenant`: an invalid id, the header given more than once (or the resolver's error) |

mod body_limit;
mod envelope;
mod tenant;
mod trace;

pub(crate) use body_limit::{BodyLimit, BodyLimitLayer};
pub(crate) use envelope::envelope_bare;
pub(crate) use tenant::{ResolveTenant, ResolveTenantLayer};
pub(crate) use trace::{RequestTrace, RequestTraceLayer};

/// What the layers wrap: a service of the web layer's own request and response types.
pub(crate) trait WebService:
    tower::Service<
        http::Request<super::Body>,
        Response = http::Response<super::Body>,
        Error = std::convert::Infallible,
        Future = super::ResponseFuture,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> WebService for S where
    S: tower::Service<
            http::Request<super::Body>,
            Response = http::Response<super::Body>,
            Error = std::convert::Infallible,
            Future = super::ResponseFuture,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

/// A response already known.
pub(crate) fn ready(response: http::Response<super::Body>) -> super::ResponseFuture {
    Box::pin(std::future::ready(Ok(response)))
}
