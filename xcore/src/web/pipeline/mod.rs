//! The request pipeline: what every request goes through, whatever the adapter, in order.
//!
//! [`Web`](super::Web) runs these steps in one function, not as a stack of tower layers: a
//! request is moved as little as possible, and a request served by a plugin's routes costs
//! one boxed future ([`RouteGuard::guard`]) around the routes' own.
//!
//! | step | does | rejects with |
//! |---|---|---|
//! | [`Trace`] | a `tracing` span per request: method, path, plugin, route template, tenant, status, latency; the HTTP metrics; finished when the response head is ready, when it turns empty error responses (a router's bare 404 or 405) into JSON envelopes ([`envelope_bare`]) | — |
//! | [`limit_body`] | caps the body (declared length and bytes read) | 413 `payload_too_large` |
//! | [`call_context`] | puts a [`CallContext`](crate::CallContext) (host caller, tenant, `traceparent`) in the request's extensions (one extension: the tenant is the context's) | 400 `invalid_tenant`: an invalid id, the header given more than once (or the resolver's error) |
//! | [`Dispatch`](super::dispatch::Dispatch) | the admin API first, then `/plugin/<name>/…` to the running plugin's routes, the path rewritten | 404 `not_found`, 503 `unavailable` (a plugin not running), the gate's 429 `rate_limited` / 503 `overloaded` |
//! | [`RouteGuard`] | the gate's pass held, the manifest's timeout, panics caught, the gate's span | 504 `timeout`, 500 `panicked` |

mod body_limit;
mod envelope;
mod served;
mod tenant;
mod trace;

pub(crate) use body_limit::limit_body;
pub(crate) use envelope::envelope_bare;
pub(crate) use served::RouteGuard;
pub(crate) use tenant::call_context;
pub(crate) use trace::{Trace, Tracing};

/// A response already known.
pub(crate) fn ready(response: http::Response<super::Body>) -> super::ResponseFuture {
    Box::pin(std::future::ready(Ok(response)))
}
