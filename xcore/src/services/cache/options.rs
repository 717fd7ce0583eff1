use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which cache backend runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheBackendKind {
    /// In-process LRU with TTLs (the embedded default).
    #[default]
    Memory,
    /// Redis, through a `bb8-redis` pool (feature `redis`).
    Redis,
    /// Memory L1 over Redis L2, with invalidation across instances (feature `redis`).
    Tiered,
}

/// Redis connection settings of the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisOptions {
    /// `redis://127.0.0.1:6379/0`.
    pub url: String,
    /// Pool size.
    pub pool_size: u32,
    /// How long to wait for a connection.
    #[serde(with = "crate::services::serde_duration")]
    pub connect_timeout: Duration,
    /// How long one command may take.
    #[serde(with = "crate::services::serde_duration")]
    pub command_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379/0".into(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(1),
        }
    }
}

/// The `services.cache` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheOptions {
    /// `memory` (default), `redis` or `tiered`.
    pub backend: CacheBackendKind,
    /// Default TTL in seconds of entries set with `Ttl::Default`.
    pub ttl: u64,
    /// Most entries the memory backend (or the tiered L1) keeps; least recently used go first.
    pub max_size: usize,
    /// Prefix of every key xcore writes: `<prefix>:<tenant>:<namespace>:<key>`.
    pub prefix: String,
    /// Redis settings, for `redis` and `tiered`.
    pub redis: RedisOptions,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            backend: CacheBackendKind::Memory,
            ttl: 300,
            max_size: 10_000,
            prefix: "xcore".into(),
            redis: RedisOptions::default(),
        }
    }
}
