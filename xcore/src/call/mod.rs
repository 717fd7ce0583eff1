//! Calls: [`CallContext`], [`CallError`], and the pipeline every call goes through.
//!
//! A call — from the host (`Xcore::call`) or from a plugin (`ctx.plugin("b").call(…)`) — runs
//! through one tower stack per target plugin, built when the plugin starts:
//!
//! ```text
//! trace → host layers → authorize → rate limit → concurrency limit → timeout → catch panic → handle
//! ```
//!
//! | layer | rejects with |
//! |---|---|
//! | [`TraceLayer`](layers::TraceLayer) | — (a `tracing` span per call: plugin, action, caller, tenant, trace id) |
//! | host layers ([`XcoreBuilder::call_layer`](crate::XcoreBuilder::call_layer)) | whatever the host decides |
//! | [`AuthorizeLayer`](layers::AuthorizeLayer) | `permission_denied` (the calling plugin lacks `plugin:<target>: <action>`), `caller_denied` (the target's `allowed_callers` does not admit it); host calls are exempt |
//! | [`RateLimitLayer`](layers::RateLimitLayer) | `rate_limited`, with `retry_after_ms` in the details; per process, or cluster-wide with the `rate_limits` service (feature `redis`), then `unavailable` too when Redis is down and its fallback is `closed` |
//! | [`ConcurrencyLimitLayer`](layers::ConcurrencyLimitLayer) | `overloaded` (never waits) |
//! | [`TimeoutLayer`](layers::TimeoutLayer) | `timeout`: the manifest's `timeout` or the context's deadline, whichever is earlier |
//! | [`CatchPanicLayer`](layers::CatchPanicLayer) | `panicked` |

mod context;
mod error;
pub mod layers;
mod pipeline;

pub use context::{CallContext, Caller, PluginIdentity, TraceContext};
pub use error::{CallError, ErrorCode, envelope};
pub(crate) use pipeline::{ActionName, HostLayer, build_pipeline, host_layer};
pub use pipeline::{BoxCallService, CallFuture, CallRequest};
