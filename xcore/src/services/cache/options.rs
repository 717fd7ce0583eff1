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

impl CacheOptions {
    /// Checks the options: a positive default TTL of at most 100 years, a `max_size` of at
    /// least 1, a usable prefix, and (for `redis` and `tiered`) a positive pool size and
    /// timeouts. `CacheService`'s `init` runs this check.
    pub fn check(&self) -> Result<(), super::CacheError> {
        let fail = |message: String| Err(super::CacheError::InvalidOptions { message });
        if self.ttl == 0 {
            return fail(
                "`services.cache.ttl` is 0: set the default TTL in seconds (at least 1); write \
                 entries that never expire with `Ttl::Never`"
                    .into(),
            );
        }
        if Duration::from_secs(self.ttl) > super::MAX_TTL {
            return fail(format!(
                "`services.cache.ttl` is {} seconds, more than 100 years",
                self.ttl
            ));
        }
        if self.max_size == 0 || self.max_size > super::lru::MAX_CAPACITY {
            return fail(format!(
                "`services.cache.max_size` is {}: it must be between 1 and {}",
                self.max_size,
                super::lru::MAX_CAPACITY
            ));
        }
        if self.prefix.is_empty()
            || self.prefix.len() > 64
            || self
                .prefix
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            return fail(format!(
                "`services.cache.prefix` `{}` must be 1 to 64 characters without spaces or \
                 control characters",
                self.prefix.escape_debug()
            ));
        }
        if self.backend != CacheBackendKind::Memory {
            let r = &self.redis;
            if r.url.is_empty() {
                return fail("`services.cache.redis.url` is empty".into());
            }
            if r.pool_size == 0 {
                return fail("`services.cache.redis.pool_size` is 0: it must be at least 1".into());
            }
            if r.connect_timeout.is_zero() || r.command_timeout.is_zero() {
                return fail(
                    "`services.cache.redis.connect_timeout` and `command_timeout` must be \
                     longer than zero"
                        .into(),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        assert!(CacheOptions::default().check().is_ok());
        let bad = [
            CacheOptions {
                ttl: 0,
                ..CacheOptions::default()
            },
            CacheOptions {
                max_size: 0,
                ..CacheOptions::default()
            },
            CacheOptions {
                prefix: String::new(),
                ..CacheOptions::default()
            },
            CacheOptions {
                prefix: "a b".into(),
                ..CacheOptions::default()
            },
            CacheOptions {
                backend: CacheBackendKind::Redis,
                redis: RedisOptions {
                    pool_size: 0,
                    ..RedisOptions::default()
                },
                ..CacheOptions::default()
            },
            CacheOptions {
                backend: CacheBackendKind::Tiered,
                redis: RedisOptions {
                    command_timeout: Duration::ZERO,
                    ..RedisOptions::default()
                },
                ..CacheOptions::default()
            },
        ];
        for options in bad {
            let err = options.check().unwrap_err();
            assert!(err.to_string().contains("services.cache"), "{err}");
        }
    }
}
