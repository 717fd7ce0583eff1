//! The cache service: memory, Redis and tiered backends behind namespaced, typed handles.

mod options;

pub use options::{CacheBackendKind, CacheOptions, RedisOptions};
