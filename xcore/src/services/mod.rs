//! Services plugins use through scoped handles, and host extensions.
//!
//! A plugin reaches a service only through one typed path ([`plugin::handle`](crate::plugin::handle)):
//! its [`PluginContext`](crate::PluginContext) (`ctx.handle::<H>()`, `ctx.named::<H>(name)`,
//! for tenant `default`) or the [`CallContext`](crate::CallContext) of the call it serves
//! (`cx.handle::<H>().await`, `cx.named::<H>(name).await`, for the call's tenant), and only if
//! it declared the service in its manifest (`services = ["cache"]`: that also orders the boot)
//! and holds a grant for it. Each handle carries the plugin's identity and what its grants
//! allow; the grants are checked once per handle and plugin instance; an operation the grants
//! do not allow fails with a clear error. Built-in services and host extensions are reached
//! the same way: each handle type implements [`Handle`](crate::plugin::Handle) or
//! [`NamedHandle`](crate::plugin::NamedHandle), and [`Bind`](crate::plugin::Bind), in its own
//! module.
//!
//! With a config, the built-in services are built here from their own sections of
//! `services` (the config is data; a service added by hand under the same name wins):
//!
//! | service | section | options type |
//! |---|---|---|
//! | `db` | `services.databases` (added when one is configured) | [`db::DatabaseOptions`] by name |
//! | `scheduler` | `services.scheduler` (feature `scheduler`) | [`scheduler::SchedulerOptions`] |
//! | `cache` | `services.cache` | [`cache::CacheOptions`] |
//! | `worker` | `services.worker` | [`worker::WorkerConfig`], read into [`worker::WorkerOptions`] |
//! | `rate_limits` | `services.rate_limits` (added when present; feature `redis`) | [`rate_limits::RateLimitsOptions`] |
//!
//! What a plugin declares for a service (its `#[job]`s for the scheduler) reaches the service
//! as a typed entry of the plugin's [`Declarations`](crate::plugin::Declarations).
//!
//! | handle | obtained with | bound to the call | resource | actions |
//! |---|---|---|---|---|
//! | [db](db::Db) | `ctx.named::<Db>(name)`, `ctx.handle::<Db>()` (`default`) | the tenant's database, provisioned on first use | `db.<name>` | `read` (a read-only handle), `write` |
//! | [cache](cache::Cache) | `ctx.named::<Cache>(namespace)` | the tenant's keys | `cache.<namespace>` | `read` (get, exists, ttl, mget, keys), `write` (set, incr, mset), `delete` (delete, delete_pattern, clear) |
//! | [extension](ExtensionHandle) | `ctx.named::<ExtensionHandle<T>>(name)` | carries the call's context | `service:<name>` | `use` |
//! | [scheduler](scheduler::Scheduler) | `ctx.handle::<Scheduler>()` | the tenant's jobs | `service:scheduler` | `schedule` |
//! | [worker](worker::Worker) | `ctx.handle::<Worker>()` | tasks for the tenant, in the call's trace | `service:worker` | `execute` |
//! | [events](crate::events::Events) | `ctx.handle::<Events>()` | `publish` with the call's tenant and trace | `events:<name>` | `emit`, `subscribe` |
//!
//! What a plugin registers through its handles runs through its instance's
//! [gate](crate::runtime), with a context bound to the instance and the tenant:
//!
//! | registered with | runs | its context | a stopped instance |
//! |---|---|---|---|
//! | `Worker::register` | each attempt of a task | [`TaskContext::call_context`](worker::TaskContext::call_context) | the attempt fails, retried per the task's policy |
//! | `Scheduler::add` | each attempt of a firing | [`JobContext::call_context`](scheduler::JobContext::call_context) | the attempt fails (retried per the job's options) |
//! | `Events::subscribe` | each delivery | [`Event::context`](crate::events::Event::context) | the delivery is reported failed |
//!
//! Tasks and jobs in flight when the plugin stops are drained by their service (the worker's
//! shutdown timeout, the scheduler's grace period), right after the gate closes.

mod access;
mod builtin;
pub mod cache;
pub mod db;
mod extension;
pub mod rate_limits;
pub mod scheduler;
pub(crate) mod serde_duration;
pub mod worker;

pub use access::AccessError;
pub(crate) use access::{check_declared, grant_mask};
pub(crate) use builtin::builtin;
pub use extension::{Extension, ExtensionHandle};

/// `url` with its password hidden (`postgres://app:***@db/app`), for messages and logs.
#[cfg_attr(
    not(any(feature = "redis", feature = "postgres", feature = "sqlite")),
    allow(dead_code)
)]
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..end].rfind('@') else {
        return url.to_owned();
    };
    let user = rest[..at].split(':').next().unwrap_or("");
    let hidden = if rest[..at].contains(':') { ":***" } else { "" };
    format!("{scheme}://{user}{hidden}@{}", &rest[at + 1..])
}
