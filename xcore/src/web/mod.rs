//! The web layer: plugins' HTTP routes, the admin API, and adapters for web frameworks.
//!
//! - A plugin serves HTTP by returning framework-neutral [`Routes`] from
//!   [`Plugin::routes`](crate::Plugin::routes): a tower service over `http` types, built from
//!   an axum `Router` or any tower service — or with `Routes::axum()`, which declares each
//!   route once (router, endpoint list, [`openapi`] documentation).
//! - [`Web`] (from [`Xcore::web`](crate::Xcore::web)) is the one service adapters mount. It
//!   routes by path, at request time: the admin API under `/xcore` first, then
//!   `/plugin/<name>/…` to the routes of the **running** plugin `<name>` (prefix stripped;
//!   a failed or stopped plugin is a 503, an unknown one a 404). Prefixes match whole
//!   segments: `/plugin/a` never serves `/plugin/ab`.
//! - Every request goes through the same pipeline under every adapter, run by [`Web`] in one
//!   function (not a stack of tower layers: one boxed future per plugin route request): a
//!   `tracing` span (method, path, plugin, route template, tenant, status, latency) and the
//!   HTTP metrics (see [`observability`](crate::observability)), a body limit (413), tenant
//!   resolution (400 `invalid_tenant` for an invalid id or a tenant header given more than
//!   once, never a fallback), the dispatch, the plugin's gate (timeout, panics), and JSON
//!   error envelopes. The steps, in order, with what each rejects:
//!
//!   | step | does | rejects with |
//!   |---|---|---|
//!   | trace | the `xcore.http` span, the HTTP metrics, finished when the response head is ready; a bare error response (a router's empty 404 or 405) given its JSON envelope | — |
//!   | body limit | the declared length, then the bytes read | 413 `payload_too_large` |
//!   | tenant | a [`CallContext`](crate::CallContext) in the request's extensions: host caller, tenant, `traceparent` trace | 400 `invalid_tenant` (or the resolver's error; 404 `unknown_tenant`, 403 `tenant_limit` from admission) |
//!   | dispatch | the admin API first, then `/plugin/<name>/…` to the running plugin's routes (path rewritten) | 404 `not_found`, 503 `unavailable` |
//!   | gate | the plugin's pass (rate and concurrency limits), its manifest's timeout, panics caught | 429 `rate_limited`, 503 `overloaded`, 504 `timeout`, 500 `panicked` |
//!   Handlers find a [`CallContext`](crate::CallContext) (host caller, tenant,
//!   `traceparent` trace) in the request's extensions — with axum, as extractors, the
//!   [`TenantId`](crate::TenantId) too — and pass the context on to the calls they make.
//! - Errors are [`HttpError`]s answered as `{"status":"error","code":…,"message":…}`;
//!   a [`CallError`](crate::CallError) keeps its code and status; invalid JSON and failed
//!   [`Validate`] checks are 422 `invalid_payload` with the field paths. A 5xx answers its
//!   code, a generic message and an error id; its cause is logged at ERROR with that id.
//! - [`Edge`] limits under every adapter: header read, body idle and total, response write
//!   timeouts and a connection cap (the `web` config section; see [`EdgeLimits`]).
//!
//! | adapter | feature | mounts with |
//! |---|---|---|
//! | `xcore::web::axum` | `axum` (default) | `xcore::web::axum::mount(router, &web)` |
//! | `xcore::web::hyper` | `hyper` | `xcore::web::hyper::serve(listener, web, shutdown)` or its service |
//! | `xcore::web::actix` | `actix` | `App::new().configure(xcore::web::actix::configure(web))` |
//!
//! The admin API (`/xcore` by default; bearer token from `app.admin_token` or
//! [`WebBuilder::admin_token`]):
//!
//! | endpoint | auth | answers |
//! |---|---|---|
//! | `GET /xcore/health/live` | none | 200 |
//! | `GET /xcore/health/ready` | none | 200 unless unhealthy, else 503: ready or not and each node's status name, no messages |
//! | `GET /xcore/health` | token | the full health report (messages, timings) |
//! | `GET /xcore` | token | the endpoints |
//! | `GET /xcore/plugins` | token | every plugin: name, state, version, wave, routes |
//! | `GET /xcore/boot` | token | the boot report |
//! | `GET /xcore/openapi.json`, `GET /xcore/openapi/<plugin>.json` | token | the OpenAPI 3.1 document of the plugins' routes, typed actions and the admin API, or of one plugin (feature `openapi`; see [`openapi`]); 404 without the feature |
//! | `GET /xcore/metrics` | token | the Prometheus text of the `Xcore`'s metrics (feature `prometheus`, [`Metrics::prometheus`](crate::observability::Metrics)); 404 without that exporter |
//! | `POST /xcore/ipc/<plugin>/<action>` | token | calls the plugin with the JSON body as payload: `{"status":"ok","plugin":…,"action":…,"result":…}` or the error envelope with the call error's status |
//!
//! A plugin with routes, without framework (see `Routes::from_axum`, feature `axum`, for axum):
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Method, Request, Response};
//! use xcore::{prelude::*, web::{Body, Routes}};
//!
//! #[derive(Default)]
//! #[plugin(name = "hello", version = "1.0.0")]
//! struct Hello;
//!
//! #[async_trait]
//! impl Plugin for Hello {
//!     fn routes(&self, _ctx: &PluginContext) -> Option<Routes> {
//!         let service = tower::service_fn(|req: Request<Body>| async move {
//!             let cx = req.extensions().get::<CallContext>().cloned().unwrap_or_default();
//!             Ok::<_, Infallible>(Response::new(Body::from(format!("hello, {}", cx.tenant()))))
//!         });
//!         Some(Routes::from_service(service).endpoint(Method::GET, "/"))
//!     }
//! }
//!
//! #[actions]
//! impl Hello {}
//! ```

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix;
mod admin;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
mod body;
mod builder;
mod dispatch;
mod edge;
mod error;
#[cfg(feature = "hyper")]
#[cfg_attr(docsrs, doc(cfg(feature = "hyper")))]
pub mod hyper;
mod json;
pub mod openapi;
mod pipeline;
mod prefix;
mod route_label;
mod routes;
#[cfg(any(feature = "hyper", feature = "axum"))]
mod server;
mod service;
mod tenant;
mod traceparent;
mod validate;

pub use self::body::{Body, BoxError};
pub use self::builder::{DEFAULT_BODY_LIMIT, WebBuildError, WebBuilder};
pub use self::edge::{
    BodyTimedOut, BodyTimeout, BodyTimeoutFuture, BodyTimeoutLayer, Edge, EdgeLimits, EdgeStats,
    TimeoutBody,
};
pub use self::error::{HttpError, call_error_response, json_response, ok_response};
pub use self::json::{BodyLimitInForce, decode_json, decode_valid, is_json, read_body};
pub(crate) use self::routes::collect_routes;
pub use self::routes::{Endpoint, ResponseFuture, Routes};
pub use self::service::Web;
pub use self::tenant::TenantResolver;
pub use self::validate::{FieldError, FieldErrors, Validate};
