//! [`CacheStats`]: what a cache service counted since it started.

use std::fmt;
#[cfg(feature = "redis")]
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Counters of one cache service ([`CacheService::stats`](super::CacheService::stats)).
///
/// `hits` and `misses` count keys read (`get`, `mget`, `get_or_set`). `evictions` (entries
/// dropped because the memory cache was full), `expirations` (entries found expired) and
/// `entries` describe the in-process memory: the whole cache for `memory`, the L1 for
/// `tiered`, nothing for `redis`. `l1_hits` is the part of `hits` the L1 of a tiered cache
/// served.
///
/// ```
/// use xcore::services::cache::{CacheOptions, CacheService, Ttl};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let service = CacheService::connect(CacheOptions::default()).await?;
/// let cache = service.handle("stats")?;
/// cache.set("a", &1, Ttl::Default).await?;
/// for key in ["a", "a", "a", "b"] {
///     cache.get::<i32>(key).await?;
/// }
/// let stats = service.stats();
/// assert_eq!((stats.hits, stats.misses, stats.entries), (3, 1, 1));
/// assert_eq!(stats.hit_ratio(), Some(0.75));
/// assert!(stats.to_string().contains("3 hits"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct CacheStats {
    /// Keys read and found.
    pub hits: u64,
    /// Keys read and not found (or expired).
    pub misses: u64,
    /// Entries the memory cache dropped, least recently used first, to stay within `max_size`.
    pub evictions: u64,
    /// Entries the memory cache found expired and dropped.
    pub expirations: u64,
    /// Entries held in memory now (expired ones not yet dropped included).
    pub entries: u64,
    /// Hits served by the L1 of a tiered cache.
    pub l1_hits: u64,
}

impl CacheStats {
    /// `hits / (hits + misses)`, if anything was read.
    pub fn hit_ratio(&self) -> Option<f64> {
        let reads = self.hits + self.misses;
        #[allow(clippy::cast_precision_loss)]
        (reads > 0).then(|| self.hits as f64 / reads as f64)
    }
}

impl fmt::Display for CacheStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} hits, {} misses, {} evictions, {} expirations, {} entries in memory",
            self.hits, self.misses, self.evictions, self.expirations, self.entries
        )
    }
}

/// Hit and miss counters of a backend that keeps no memory of its own (Redis).
#[cfg(feature = "redis")]
#[derive(Debug, Default)]
pub(crate) struct ReadCounters {
    hits: AtomicU64,
    misses: AtomicU64,
}

#[cfg(feature = "redis")]
impl ReadCounters {
    pub(crate) fn record(&self, hits: u64, misses: u64) {
        if hits > 0 {
            self.hits.fetch_add(hits, Ordering::Relaxed);
        }
        if misses > 0 {
            self.misses.fetch_add(misses, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}
