//! Cluster-wide rate limits: the manifests' `rate_limit`s enforced across every instance
//! that shares one Redis, with keyed limits per tenant or per caller.
//!
//! Without this service, a plugin's `rate_limit` (`"10/1s"`) is a token bucket per process:
//! N instances admit N times the rate. With it (feature `redis`), every instance takes its
//! tokens from Redis: one GCRA script per call or route request (one round trip, atomic, on
//! the Redis server's clock), so the cluster admits the manifest's rate.
//!
//! ```yaml
//! services:
//!   rate_limits:
//!     url: ${REDIS_URL:-redis://127.0.0.1:6379/0}
//!     fallback: local          # local (default) | open | closed
//!     timeout: 100ms           # per Redis command (default 100 ms)
//!     per:                     # the key of each plugin's limit (default: plugin)
//!       orders: tenant         # orders' limit applies to each tenant apart
//!       search: caller         # search's, to each calling plugin (and the host) apart
//! ```
//!
//! Or by hand: `Xcore::builder().service(RateLimitsService::new(options)?)`.
//!
//! # Keys
//!
//! | `per` | one limit for | Redis key |
//! |---|---|---|
//! | `plugin` (default) | all the plugin's calls and route requests | `<prefix>:<plugin>` |
//! | `tenant` | each tenant's calls and requests | `<prefix>:<plugin>:t:<tenant>` |
//! | `caller` | each caller's calls: a plugin (by name) or the host (`host`, and every route request) | `<prefix>:<plugin>:c:<caller>` |
//!
//! The rate and the burst are the manifest's (`calls` per `per`, `calls` at once, as the
//! local bucket); a plugin without `rate_limit` is not limited. A key expires once its
//! bucket is full again, so idle tenants and callers hold no memory.
//!
//! # When Redis is down
//!
//! A call waits at most twice `timeout` for Redis (the connection, then the command; the wait
//! behind another call's connection attempt included); after a failure, Redis is not asked
//! again for `retry` (default 1 s) — the calls meanwhile apply the fallback at once, without
//! any wait — then the next call tries again. The service reports itself **degraded** from the first
//! failure until Redis answers again (a call, or a health check's `PING`).
//!
//! | `fallback` | a call while Redis is down | the cluster admits |
//! |---|---|---|
//! | `local` (default) | the plugin's local bucket (per process, per plugin: the keys are not applied) | up to N × the rate, N the instances |
//! | `open` | admitted | everything |
//! | `closed` | refused: `unavailable` (no internals in the message) | nothing |
//!
//! Redis keeps the buckets in memory only: a Redis restart empties them, so each key
//! starts again with a full burst. Nothing else is lost.

use std::time::Duration;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// What a plugin's limit is kept for: the key of its bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LimitKey {
    /// One bucket for the plugin (the manifest's meaning).
    #[default]
    Plugin,
    /// One bucket per tenant of the call.
    Tenant,
    /// One bucket per caller: a calling plugin, or the host.
    Caller,
}

/// What a call does while Redis cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Fallback {
    /// The local, per-process bucket decides (the default).
    #[default]
    Local,
    /// Admitted (fail open).
    Open,
    /// Refused with `unavailable` (fail closed).
    Closed,
}

/// The `services.rate_limits` section: where the cluster-wide limits live and what happens
/// when Redis is down; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RateLimitsOptions {
    /// The Redis every instance shares (`redis://…`).
    pub url: String,
    /// The prefix of the keys (default `xcore:rate`).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// What a call does while Redis is down (default [`Fallback::Local`]).
    #[serde(default)]
    pub fallback: Fallback,
    /// How long one Redis command (or a connection) may take (default 100 ms).
    #[serde(default = "default_timeout", with = "crate::services::serde_duration")]
    pub timeout: Duration,
    /// How long Redis is not asked after a failure (default 1 s).
    #[serde(default = "default_retry", with = "crate::services::serde_duration")]
    pub retry: Duration,
    /// The key of each plugin's limit, by plugin name (default [`LimitKey::Plugin`]).
    #[serde(default)]
    pub per: IndexMap<String, LimitKey>,
}

fn default_prefix() -> String {
    "xcore:rate".into()
}

fn default_timeout() -> Duration {
    Duration::from_millis(100)
}

fn default_retry() -> Duration {
    Duration::from_secs(1)
}

impl RateLimitsOptions {
    /// The limits on the Redis at `url`, with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: default_prefix(),
            fallback: Fallback::default(),
            timeout: default_timeout(),
            retry: default_retry(),
            per: IndexMap::new(),
        }
    }

    /// Keys `plugin`'s limit by `key`.
    pub fn per(mut self, plugin: impl Into<String>, key: LimitKey) -> Self {
        self.per.insert(plugin.into(), key);
        self
    }

    /// What a call does while Redis is down.
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = fallback;
        self
    }

    /// Checks the bounds: a timeout and a retry of 1 ms to 10 s, a prefix of 1 to 64
    /// characters without spaces.
    pub fn check(&self) -> Result<(), String> {
        let bounded =
            |d: Duration| (Duration::from_millis(1)..=Duration::from_secs(10)).contains(&d);
        if !bounded(self.timeout) {
            return Err(format!(
                "`services.rate_limits.timeout` is {:?}: it must be 1ms to 10s",
                self.timeout
            ));
        }
        if !bounded(self.retry) {
            return Err(format!(
                "`services.rate_limits.retry` is {:?}: it must be 1ms to 10s",
                self.retry
            ));
        }
        if self.prefix.is_empty()
            || self.prefix.len() > 64
            || self.prefix.chars().any(char::is_whitespace)
        {
            return Err(format!(
                "`services.rate_limits.prefix` `{}` must be 1 to 64 characters without spaces",
                self.prefix
            ));
        }
        Ok(())
    }
}

#[cfg(feature = "redis")]
mod service;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use service::{RateLimitsError, RateLimitsService, RateLimitsStats};
