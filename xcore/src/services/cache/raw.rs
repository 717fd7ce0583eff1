//! The memory backend's map without the handle (no grants, no key scoping or validation, no
//! serde), for the benches to measure what the handle adds. Not part of the public API.

use std::{sync::Arc, time::Duration};

use super::memory::MemoryBackend;

/// The memory backend's LRU map under its mutex, driven directly with full keys and bytes.
pub struct RawMemory(MemoryBackend);

impl std::fmt::Debug for RawMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawMemory")
    }
}

impl RawMemory {
    /// A map of at most `max_size` entries.
    pub fn new(max_size: usize) -> Self {
        Self(MemoryBackend::new(max_size))
    }

    /// The bytes at `key`.
    #[inline]
    pub fn get(&self, key: &str) -> Option<Arc<[u8]>> {
        self.0.get_now(key)
    }

    /// Writes `value` at `key`, expiring after `ttl` (`None`: never).
    #[inline]
    pub fn set(&self, key: &str, value: Arc<[u8]>, ttl: Option<Duration>) {
        self.0.set_now(key, value, ttl);
    }
}
