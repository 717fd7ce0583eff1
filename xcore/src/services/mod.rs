//! Services plugins use through scoped handles, and host extensions.
//!
//! A plugin reaches a service only through its [`PluginContext`](crate::PluginContext), and
//! only if it declared the service in its manifest (`services = ["cache"]`: that also orders
//! the boot) and holds a grant for it, checked once per handle by the
//! [`Policy`](crate::permissions::Policy) on a typed [`Resource`](crate::permissions::Resource)
//! (a refusal is audited). Each handle carries the plugin's identity and what its grants
//! allow; an operation the grants do not allow fails with a clear error.
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
//!
//! What a plugin declares for a service (its `#[job]`s for the scheduler) reaches the service
//! as a typed entry of the plugin's [`Declarations`](crate::plugin::Declarations).
//!
//! | handle | obtained with | resource | actions |
//! |---|---|---|---|
//! | [cache](cache::Cache) | [`PluginContext::cache`](crate::PluginContext::cache) | `cache.<namespace>` | `read` (get, exists, ttl, mget, keys), `write` (set, incr, mset), `delete` (delete, delete_pattern, clear) |
//! | extension | [`PluginContext::extension`](crate::PluginContext::extension) | `service:<name>` | `use` |
//! | scheduler | [`PluginContext::scheduler`](crate::PluginContext::scheduler) | `service:scheduler` | `schedule` |
//! | [worker](worker::Worker) | [`PluginContext::worker`](crate::PluginContext::worker) | `service:worker` | `execute` |

mod access;
mod builtin;
pub mod cache;
pub mod db;
mod extension;
pub mod scheduler;
pub(crate) mod serde_duration;
pub mod worker;

pub use access::AccessError;
pub(crate) use access::{check_declared, grant_mask};
pub(crate) use builtin::builtin;
pub use extension::{Extension, ExtensionHandle};
