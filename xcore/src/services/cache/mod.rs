//! The cache service: memory, Redis and tiered backends behind namespaced, tenant-scoped,
//! typed handles.
//!
//! | backend | `services.cache.backend` | what it is |
//! |---|---|---|
//! | memory | `memory` (default) | in-process LRU with TTLs, at most `max_size` entries |
//! | Redis | `redis` (feature `redis`) | a `bb8-redis` pool; every command under `command_timeout` |
//! | tiered | `tiered` (feature `redis`) | memory L1 over Redis L2, L1 invalidated across instances by pub/sub |
//!
//! The pieces:
//! - [`CacheService`], the `cache` service a host registers, built from [`CacheOptions`];
//! - [`Cache`], the handle a plugin gets with `ctx.named::<Cache>(namespace)`, or bound to a
//!   call (the call's tenant's keys) with `cx.named::<Cache>(namespace).await`
//!   ([`plugin::handle`](crate::plugin::handle); checked against its `cache.<namespace>` grants) and a host with [`CacheService::handle`];
//! - [`Ttl`] (how long a write lives: `Default`, `Never`, `After(d)`; zero is rejected) and
//!   [`KeyTtl`] (how long an entry has left);
//! - [`CacheError`], which converts into a [`CallError`](crate::CallError).
//!
//! Memory TTLs follow tokio's clock, so a test can pause and advance time
//! (`#[tokio::test(start_paused = true)]`, `tokio::time::advance`) instead of sleeping.
//!
//! Keys are stored as `<prefix>:<tenant>:<namespace>:<key>` by every operation. Values are
//! stored as JSON, so they come back with the type they were written with. Listing and
//! deleting by pattern use Redis glob rules on every backend, and on Redis walk the keyspace
//! with `SCAN` (never `KEYS`); `clear` deletes one namespace of one tenant (never `FLUSHDB`).
//!
//! ```
//! use xcore::services::cache::{CacheOptions, CacheService, Ttl};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let options = CacheOptions { max_size: 2, ..CacheOptions::default() };
//! let cache = CacheService::connect(options).await?.handle("lru")?;
//! for key in ["a", "b", "c"] {
//!     cache.set(key, &key, Ttl::Never).await?;
//! }
//! // At most two entries: the least recently used went.
//! assert_eq!(cache.keys("*").await?, ["b", "c"]);
//! # Ok(())
//! # }
//! ```

mod backend;
mod context;
mod error;
mod flight;
mod glob;
mod handle;
mod key;
mod lru;
mod memory;
mod ops;
mod options;
#[doc(hidden)]
pub mod raw;
mod service;
mod stats;
mod ttl;

#[cfg(feature = "redis")]
mod invalidation;
#[cfg(feature = "redis")]
mod pool;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod tiered;

pub use error::CacheError;
pub use handle::Cache;
pub use key::{MAX_KEY_LEN, MAX_NAMESPACE_LEN};
pub use options::{CacheBackendKind, CacheOptions, RedisOptions};
pub use service::CacheService;
pub use stats::CacheStats;
pub use ttl::{KeyTtl, MAX_TTL, Ttl};
