//! Services plugins use through scoped handles, and host extensions.
//!
//! A plugin reaches a service only through its [`PluginContext`](crate::PluginContext), and
//! only if it declared the service in its manifest (`services = ["cache"]`: that also orders
//! the boot) and holds a grant for it. Each handle carries the plugin's identity and what its
//! grants allow; an operation the grants do not allow fails with a clear error.
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
