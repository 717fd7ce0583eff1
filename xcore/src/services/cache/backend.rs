//! The internal contract of a cache backend, over full keys and JSON bytes, and [`Store`],
//! the backend a service runs (static dispatch: no boxed futures on the hot path).
//!
//! Keys reaching a backend are full keys (`<prefix>:<tenant>:<namespace>:<key>`) and patterns
//! are Redis globs whose scope part is already escaped; the handle validates and scopes them.
//! Errors that name a key (`NotAnInteger`, `Overflow`) carry the full key: the handle puts the
//! caller's key back.

use std::time::Duration;

use super::{CacheError, CacheStats, KeyTtl, lru::Blob, memory::MemoryBackend};
#[cfg(feature = "redis")]
use super::{redis::RedisBackend, tiered::TieredBackend};

/// What every backend does. `ttl: None` is no expiry.
pub(crate) trait Backend: Send + Sync {
    /// The value at `key`, counting a hit or a miss.
    async fn get(&self, key: &str) -> Result<Option<Blob>, CacheError>;
    /// Writes `value` at `key`.
    async fn set(&self, key: &str, value: Blob, ttl: Option<Duration>) -> Result<(), CacheError>;
    /// Deletes `key`; whether it existed.
    async fn delete(&self, key: &str) -> Result<bool, CacheError>;
    /// Whether `key` exists.
    async fn exists(&self, key: &str) -> Result<bool, CacheError>;
    /// Adds `by` to the integer at `key` (missing: 0, created without expiry).
    async fn incr(&self, key: &str, by: i64) -> Result<i64, CacheError>;
    /// The time `key` has left.
    async fn ttl(&self, key: &str) -> Result<KeyTtl, CacheError>;
    /// The values at `keys`, in order, counting hits and misses.
    async fn mget(&self, keys: &[String]) -> Result<Vec<Option<Blob>>, CacheError>;
    /// Writes every entry, all with the same expiry.
    async fn mset(
        &self,
        entries: &[(String, Blob)],
        ttl: Option<Duration>,
    ) -> Result<(), CacheError>;
    /// The keys matching the glob `pattern`, sorted, without duplicates.
    async fn keys(&self, pattern: &str) -> Result<Vec<String>, CacheError>;
    /// Deletes the keys matching the glob `pattern`; how many.
    async fn delete_pattern(&self, pattern: &str) -> Result<u64, CacheError>;
    /// Checks that the backend answers.
    async fn ping(&self) -> Result<(), CacheError>;
    /// The counters.
    fn stats(&self) -> CacheStats;
}

/// The backend of one cache service.
pub(crate) enum Store {
    Memory(MemoryBackend),
    #[cfg(feature = "redis")]
    Redis(RedisBackend),
    #[cfg(feature = "redis")]
    Tiered(TieredBackend),
}

/// Forwards a call to the backend in use.
macro_rules! each {
    ($store:expr, $b:ident => $call:expr) => {
        match $store {
            Store::Memory($b) => $call,
            #[cfg(feature = "redis")]
            Store::Redis($b) => $call,
            #[cfg(feature = "redis")]
            Store::Tiered($b) => $call,
        }
    };
}

impl Backend for Store {
    #[inline]
    async fn get(&self, key: &str) -> Result<Option<Blob>, CacheError> {
        each!(self, b => b.get(key).await)
    }

    async fn set(&self, key: &str, value: Blob, ttl: Option<Duration>) -> Result<(), CacheError> {
        each!(self, b => b.set(key, value, ttl).await)
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        each!(self, b => b.delete(key).await)
    }

    async fn exists(&self, key: &str) -> Result<bool, CacheError> {
        each!(self, b => b.exists(key).await)
    }

    async fn incr(&self, key: &str, by: i64) -> Result<i64, CacheError> {
        each!(self, b => b.incr(key, by).await)
    }

    async fn ttl(&self, key: &str) -> Result<KeyTtl, CacheError> {
        each!(self, b => b.ttl(key).await)
    }

    async fn mget(&self, keys: &[String]) -> Result<Vec<Option<Blob>>, CacheError> {
        each!(self, b => b.mget(keys).await)
    }

    async fn mset(
        &self,
        entries: &[(String, Blob)],
        ttl: Option<Duration>,
    ) -> Result<(), CacheError> {
        each!(self, b => b.mset(entries, ttl).await)
    }

    async fn keys(&self, pattern: &str) -> Result<Vec<String>, CacheError> {
        each!(self, b => b.keys(pattern).await)
    }

    async fn delete_pattern(&self, pattern: &str) -> Result<u64, CacheError> {
        each!(self, b => b.delete_pattern(pattern).await)
    }

    async fn ping(&self) -> Result<(), CacheError> {
        each!(self, b => b.ping().await)
    }

    fn stats(&self) -> CacheStats {
        each!(self, b => b.stats())
    }
}
