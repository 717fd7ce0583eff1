//! [`RateLimitsService`]: the GCRA script on Redis, the connection, the fallback.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use redis::{Client, aio::MultiplexedConnection};
use tokio::time::Instant;

use super::{Fallback, LimitKey, RateLimitsOptions};
use crate::{
    CallContext, Health, Service, ServiceContext, ServiceError, async_trait,
    call::layers::{ClusterRate, Verdict, VerdictFuture},
};

/// GCRA (the generic cell rate algorithm) on one key, on the server's clock.
///
/// KEYS[1]: the key; ARGV[1]: the emission interval (µs, the period / the calls); ARGV[2]:
/// the burst (calls). The key holds the theoretical arrival time (µs). Returns 0 (admitted)
/// or how long until a call would be admitted (µs).
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - window - now
if wait > 0 then return wait end
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1)
return 0
";

/// Why a [`RateLimitsService`] cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitsError {
    /// The options are out of their bounds.
    #[error("rate limits: {0}")]
    Options(String),
    /// The URL is not a Redis URL.
    #[error("rate limits: `{0}` is not a Redis URL (`redis://…`)")]
    Url(String),
}

/// What the limiter counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitsStats {
    /// Tokens Redis granted.
    pub admitted: u64,
    /// Calls Redis refused (over the limit).
    pub limited: u64,
    /// Calls decided by the fallback, Redis being down.
    pub fallbacks: u64,
}

/// The cluster-wide rate limiter (service name `rate_limits`); see the
/// [module docs](super).
pub struct RateLimitsService {
    inner: Arc<Limiter>,
}

struct Limiter {
    options: RateLimitsOptions,
    /// The redacted URL, for messages.
    target: String,
    client: Client,
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    /// The last failure and until when Redis is not asked, until Redis answers again.
    down: Mutex<Option<(String, Instant)>>,
    admitted: AtomicU64,
    limited: AtomicU64,
    fallbacks: AtomicU64,
}

impl RateLimitsService {
    /// A limiter with these options; checked here, connected when the service starts.
    pub fn new(options: RateLimitsOptions) -> Result<Self, RateLimitsError> {
        options.check().map_err(RateLimitsError::Options)?;
        let target = crate::services::redact_url(&options.url);
        if !(options.url.starts_with("redis://") || options.url.starts_with("rediss://")) {
            return Err(RateLimitsError::Url(target));
        }
        let client =
            Client::open(options.url.as_str()).map_err(|_| RateLimitsError::Url(target.clone()))?;
        Ok(Self {
            inner: Arc::new(Limiter {
                options,
                target,
                client,
                conn: tokio::sync::Mutex::new(None),
                down: Mutex::new(None),
                admitted: AtomicU64::new(0),
                limited: AtomicU64::new(0),
                fallbacks: AtomicU64::new(0),
            }),
        })
    }

    /// What the limiter counted so far.
    pub fn stats(&self) -> RateLimitsStats {
        RateLimitsStats {
            admitted: self.inner.admitted.load(Ordering::Relaxed),
            limited: self.inner.limited.load(Ordering::Relaxed),
            fallbacks: self.inner.fallbacks.load(Ordering::Relaxed),
        }
    }
}

impl Limiter {
    fn down(&self) -> std::sync::MutexGuard<'_, Option<(String, Instant)>> {
        self.down.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn failed(&self, why: String) {
        let mut down = self.down();
        if down.is_none() {
            tracing::warn!(redis = %self.target, error = %why, "rate limits: Redis is unreachable; the fallback applies");
        }
        *down = Some((why, Instant::now() + self.options.retry));
    }

    fn answered(&self) {
        if self.down().take().is_some() {
            tracing::info!(redis = %self.target, "rate limits: Redis answers again");
        }
    }

    /// Whether Redis is not to be asked now (a recent failure).
    fn resting(&self) -> bool {
        self.down()
            .as_ref()
            .is_some_and(|(_, until)| Instant::now() < *until)
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, String> {
        let timeout = self.options.timeout;
        let mut conn = {
            let mut slot = self.conn.lock().await;
            match slot.as_ref() {
                Some(conn) => conn.clone(),
                None => {
                    let conn = match tokio::time::timeout(
                        timeout,
                        self.client.get_multiplexed_async_connection(),
                    )
                    .await
                    {
                        Ok(Ok(conn)) => conn,
                        Ok(Err(e)) => return Err(format!("cannot connect: {e}")),
                        Err(_) => return Err(format!("no connection within {timeout:?}")),
                    };
                    *slot = Some(conn.clone());
                    conn
                }
            }
        };
        match tokio::time::timeout(timeout, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if e.is_io_error() || e.is_unrecoverable_error() || e.is_connection_dropped() {
                    *self.conn.lock().await = None;
                }
                Err(e.to_string())
            }
            Err(_) => {
                *self.conn.lock().await = None;
                Err(format!("no answer within {timeout:?}"))
            }
        }
    }

    fn fallback(&self) -> Verdict {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        match self.options.fallback {
            Fallback::Local => Verdict::Local,
            Fallback::Open => Verdict::Admit,
            Fallback::Closed => Verdict::Closed,
        }
    }

    /// The Redis key of `plugin`'s bucket for the call under `cx`.
    fn key(&self, plugin: &str, cx: &CallContext) -> String {
        let prefix = &self.options.prefix;
        match self.options.per.get(plugin).copied().unwrap_or_default() {
            LimitKey::Plugin => format!("{prefix}:{plugin}"),
            LimitKey::Tenant => format!("{prefix}:{plugin}:t:{}", cx.tenant()),
            LimitKey::Caller => format!(
                "{prefix}:{plugin}:c:{}",
                cx.caller().plugin_name().unwrap_or("host")
            ),
        }
    }

    async fn take(self: Arc<Self>, key: String, limit: xcore_manifest::RateLimit) -> Verdict {
        if self.resting() {
            return self.fallback();
        }
        let calls = u64::from(limit.calls().get());
        let period = u64::try_from(limit.per().as_micros()).unwrap_or(u64::MAX);
        let interval = (period / calls).max(1);
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(GCRA).arg(1).arg(&key).arg(interval).arg(calls);
        // One bound for the whole verdict: the wait for the connection slot (other calls
        // connecting), the connection, the command.
        let deadline = self.options.timeout * 2;
        let answer = match tokio::time::timeout(deadline, self.query::<i64>(&cmd)).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("no verdict within {deadline:?}")),
        };
        match answer {
            Ok(0) => {
                self.answered();
                self.admitted.fetch_add(1, Ordering::Relaxed);
                Verdict::Admit
            }
            Ok(wait) => {
                self.answered();
                self.limited.fetch_add(1, Ordering::Relaxed);
                Verdict::Limited(Duration::from_micros(wait.unsigned_abs()))
            }
            Err(why) => {
                self.failed(why);
                self.fallback()
            }
        }
    }
}

/// The limiter as attached to the gates: an `Arc`, so that each verdict's future owns it.
struct Attached(Arc<Limiter>);

impl ClusterRate for Attached {
    fn acquire(
        &self,
        plugin: &str,
        limit: xcore_manifest::RateLimit,
        cx: &CallContext,
    ) -> VerdictFuture {
        let key = self.0.key(plugin, cx);
        Box::pin(self.0.clone().take(key, limit))
    }
}

#[async_trait]
impl Service for RateLimitsService {
    fn name(&self) -> &str {
        "rate_limits"
    }

    async fn start(&self, ctx: &ServiceContext) -> Result<(), ServiceError> {
        let shared = ctx
            .xcore()
            .ok_or_else(|| ServiceError::msg("the Xcore is gone"))?;
        let pong: String =
            self.inner.query(&redis::cmd("PING")).await.map_err(|e| {
                ServiceError::msg(format!("rate limits: {}: {e}", self.inner.target))
            })?;
        if pong != "PONG" {
            return Err(ServiceError::msg(format!(
                "rate limits: {} answered `{pong}` to PING",
                self.inner.target
            )));
        }
        if shared
            .rate_slot()
            .set(Arc::new(Attached(self.inner.clone())))
            .is_err()
        {
            tracing::warn!("a second cluster-wide rate limiter on one Xcore is ignored");
        }
        Ok(())
    }

    async fn health(&self) -> Health {
        let failing = self.inner.down().as_ref().map(|(why, _)| why.clone());
        let Some(why) = failing else {
            return Health::healthy();
        };
        // Probed: healthy again once Redis answers, though no call came since.
        if let Ok(pong) = self.inner.query::<String>(&redis::cmd("PING")).await
            && pong == "PONG"
        {
            self.inner.answered();
            return Health::healthy();
        }
        let fallback = match self.inner.options.fallback {
            Fallback::Local => "each instance applies its local limit",
            Fallback::Open => "calls are admitted unlimited",
            Fallback::Closed => "limited calls are refused",
        };
        Health::degraded(format!(
            "rate limits are not cluster-wide: {}: {why}; {fallback}",
            self.inner.target
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{PluginIdentity, TenantId};

    #[test]
    fn each_key_kind_names_its_bucket() {
        let options = RateLimitsOptions::new("redis://127.0.0.1:1/0")
            .per("orders", LimitKey::Tenant)
            .per("search", LimitKey::Caller);
        let limits = RateLimitsService::new(options).unwrap();
        let acme = CallContext::host().with_tenant(TenantId::new("acme").unwrap());
        let caller = PluginIdentity::new(Arc::new(
            xcore_manifest::Manifest::builder("shop", "1.0.0")
                .build()
                .unwrap(),
        ));
        let from_shop = CallContext::root(caller).with_tenant(TenantId::new("acme").unwrap());
        let l = &limits.inner;
        assert_eq!(l.key("billing", &acme), "xcore:rate:billing");
        assert_eq!(l.key("orders", &acme), "xcore:rate:orders:t:acme");
        assert_eq!(l.key("search", &acme), "xcore:rate:search:c:host");
        assert_eq!(l.key("search", &from_shop), "xcore:rate:search:c:shop");
    }

    #[test]
    fn options_out_of_bounds_and_urls_are_refused() {
        let mut options = RateLimitsOptions::new("redis://127.0.0.1:1/0");
        options.timeout = Duration::ZERO;
        assert!(matches!(
            RateLimitsService::new(options),
            Err(RateLimitsError::Options(m)) if m.contains("timeout")
        ));
        let mut options = RateLimitsOptions::new("redis://127.0.0.1:1/0");
        options.retry = Duration::from_secs(11);
        assert!(RateLimitsService::new(options).is_err());
        let mut options = RateLimitsOptions::new("redis://127.0.0.1:1/0");
        options.prefix = "has space".into();
        assert!(RateLimitsService::new(options).is_err());
        let err = RateLimitsService::new(RateLimitsOptions::new("postgres://u:secret@h/db"))
            .err()
            .unwrap();
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn the_section_reads_from_yaml_with_defaults() {
        let config = crate::config::Config::from_str(
            "services:\n  rate_limits:\n    url: redis://r:6379/0\n    fallback: closed\n    per:\n      orders: tenant\n",
            crate::config::Format::Yaml,
        )
        .unwrap();
        let options = config.services.rate_limits.unwrap();
        assert_eq!(options.fallback, Fallback::Closed);
        assert_eq!(options.per["orders"], LimitKey::Tenant);
        assert_eq!(options.timeout, Duration::from_millis(100));
        assert_eq!(options.retry, Duration::from_secs(1));
        assert_eq!(options.prefix, "xcore:rate");
    }
}
