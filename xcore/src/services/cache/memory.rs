//! The in-process backend: an [`Lru`] under a mutex. Every operation is synchronous and
//! short; the async [`Backend`] methods complete at once.

use std::{
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use tokio::time::Instant;

use super::{
    CacheError, CacheStats, KeyTtl,
    backend::Backend,
    lru::{Blob, IncrError, Lru},
};

/// An LRU + TTL map of at most `max_size` entries.
pub(crate) struct MemoryBackend {
    lru: Mutex<Lru>,
}

/// When an entry written now with `ttl` expires (`None`: never; a TTL too long for the clock
/// counts as never).
pub(crate) fn deadline(ttl: Option<Duration>) -> Option<Instant> {
    ttl.and_then(|d| Instant::now().checked_add(d))
}

impl MemoryBackend {
    pub(crate) fn new(max_size: usize) -> Self {
        Self {
            lru: Mutex::new(Lru::new(max_size)),
        }
    }

    #[inline]
    fn lock(&self) -> MutexGuard<'_, Lru> {
        self.lru.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the map, under the lock.
    #[cfg(feature = "redis")]
    pub(crate) fn locked<R>(&self, f: impl FnOnce(&mut Lru) -> R) -> R {
        f(&mut self.lock())
    }

    #[inline]
    pub(crate) fn get_now(&self, key: &str) -> Option<Blob> {
        self.lock().get(key)
    }

    pub(crate) fn set_now(&self, key: &str, value: Blob, ttl: Option<Duration>) {
        let expires = deadline(ttl);
        self.lock().insert(key, value, expires);
    }

    pub(crate) fn set_many_now(&self, entries: &[(String, Blob)], ttl: Option<Duration>) {
        let expires = deadline(ttl);
        let mut lru = self.lock();
        for (key, value) in entries {
            lru.insert(key, value.clone(), expires);
        }
    }

    pub(crate) fn remove_now(&self, key: &str) -> bool {
        self.lock().remove(key)
    }

    pub(crate) fn remove_matching_now(&self, pattern: &str) -> u64 {
        self.lock().remove_matching(pattern)
    }

    pub(crate) fn stats_now(&self) -> CacheStats {
        let lru = self.lock();
        let c = lru.counters;
        CacheStats {
            hits: c.hits,
            misses: c.misses,
            evictions: c.evictions,
            expirations: c.expirations,
            entries: lru.len() as u64,
            l1_hits: 0,
        }
    }
}

impl Backend for MemoryBackend {
    #[inline]
    async fn get(&self, key: &str) -> Result<Option<Blob>, CacheError> {
        Ok(self.get_now(key))
    }

    async fn set(&self, key: &str, value: Blob, ttl: Option<Duration>) -> Result<(), CacheError> {
        self.set_now(key, value, ttl);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        Ok(self.remove_now(key))
    }

    async fn exists(&self, key: &str) -> Result<bool, CacheError> {
        Ok(self.lock().contains(key))
    }

    async fn incr(&self, key: &str, by: i64) -> Result<i64, CacheError> {
        self.lock().incr(key, by).map_err(|e| match e {
            IncrError::NotAnInteger => CacheError::NotAnInteger {
                key: key.to_owned(),
            },
            IncrError::Overflow => CacheError::Overflow {
                key: key.to_owned(),
            },
        })
    }

    async fn ttl(&self, key: &str) -> Result<KeyTtl, CacheError> {
        Ok(self.lock().ttl(key))
    }

    async fn mget(&self, keys: &[String]) -> Result<Vec<Option<Blob>>, CacheError> {
        let mut lru = self.lock();
        Ok(keys.iter().map(|k| lru.get(k)).collect())
    }

    async fn mset(
        &self,
        entries: &[(String, Blob)],
        ttl: Option<Duration>,
    ) -> Result<(), CacheError> {
        self.set_many_now(entries, ttl);
        Ok(())
    }

    async fn keys(&self, pattern: &str) -> Result<Vec<String>, CacheError> {
        Ok(self.lock().keys(pattern))
    }

    async fn delete_pattern(&self, pattern: &str) -> Result<u64, CacheError> {
        Ok(self.remove_matching_now(pattern))
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }

    fn stats(&self) -> CacheStats {
        self.stats_now()
    }
}
