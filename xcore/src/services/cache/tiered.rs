//! The tiered backend: an in-process L1 ([`Near`]) over Redis (L2).
//!
//! - Reads try L1, then L2; an L2 hit fills L1 with the entry's **remaining** L2 TTL (read with
//!   `PTTL` in the same round trip), capped at the default TTL, so an L1 entry never outlives
//!   its L2 entry and a missed invalidation is stale for at most the default TTL.
//! - Writes and deletes go to L2 and L1, and publish the full key (or the pattern) on
//!   `<prefix>:invalidate` in the same pipeline; the other instances sharing the Redis drop it
//!   from their L1 ([`invalidation`](super::invalidation)). An instance ignores its own messages.
//! - L1 serves reads only while the subscription is up: when it drops, L1 is emptied and
//!   bypassed until it is back (it could have missed invalidations meanwhile), and after
//!   `shutdown`.
//! - A fill that raced with an invalidation is not kept: every invalidation (and every local
//!   write) moves an epoch under the L1 lock, and a fill only lands if the epoch has not moved
//!   since its L2 read began.
//! - `exists`, `ttl`, `incr` and `keys` are answered by L2.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use bb8_redis::redis::{self, Value};
use tokio::task::JoinHandle;

use super::{
    CacheError, CacheStats, KeyTtl, RedisOptions,
    backend::Backend,
    invalidation::{self, Kind},
    lru::Blob,
    memory::{MemoryBackend, deadline},
    redis::{RedisBackend, add_mset, incr_failure, set_cmd, utf8_keys},
};

/// The L1 of a tiered cache, shared with its subscriber task.
pub(crate) struct Near {
    mem: MemoryBackend,
    /// Whether L1 may serve reads (the subscription is up and the service not shut down).
    live: AtomicBool,
    /// Moves on every invalidation and local write (under the L1 lock).
    epoch: AtomicU64,
    /// Upper bound of an L1 entry's life: the default TTL.
    cap: Duration,
}

impl Near {
    fn new(max_size: usize, cap: Duration) -> Self {
        Self {
            mem: MemoryBackend::new(max_size),
            live: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            cap,
        }
    }

    fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Empties L1 and says whether it may serve reads from now on.
    pub(crate) fn reset(&self, live: bool) {
        self.mem.locked(|lru| {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            lru.clear();
            self.live.store(live, Ordering::Release);
        });
    }

    /// Drops `key` (another instance changed it).
    pub(crate) fn invalidate_key(&self, key: &str) {
        self.mem.locked(|lru| {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            lru.remove(key);
        });
    }

    /// Drops the keys matching `pattern` (another instance deleted them).
    pub(crate) fn invalidate_pattern(&self, pattern: &str) {
        self.mem.locked(|lru| {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            lru.remove_matching(pattern);
        });
    }

    fn l1_ttl(&self, ttl: Option<Duration>) -> Duration {
        ttl.map_or(self.cap, |t| t.min(self.cap))
    }

    /// Writes through (a local write): L1 gets the value, racing fills are voided.
    fn write(&self, entries: &[(String, Blob)], ttl: Option<Duration>) {
        let expires = deadline(Some(self.l1_ttl(ttl)));
        let live = self.is_live();
        self.mem.locked(|lru| {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            for (key, value) in entries {
                if live {
                    lru.insert(key, value.clone(), expires);
                } else {
                    lru.remove(key);
                }
            }
        });
    }

    /// Drops `key` locally, voiding racing fills.
    fn forget(&self, key: &str) {
        self.invalidate_key(key);
    }

    /// Fills L1 after an L2 read that began at `epoch`, with the remaining L2 TTL `pttl`.
    fn fill(&self, key: &str, value: &Blob, pttl: i64, epoch: u64) {
        let remaining = match KeyTtl::from_pttl(pttl) {
            KeyTtl::Persistent => None,
            KeyTtl::Expires(d) if !d.is_zero() => Some(d),
            _ => return,
        };
        let expires = deadline(Some(self.l1_ttl(remaining)));
        self.mem.locked(|lru| {
            if self.is_live() && self.epoch.load(Ordering::Acquire) == epoch {
                lru.insert(key, value.clone(), expires);
            }
        });
    }
}

/// Memory L1 over Redis L2, invalidated across instances.
pub(crate) struct TieredBackend {
    near: Arc<Near>,
    l2: RedisBackend,
    channel: String,
    instance: String,
    subscriber: Mutex<Option<JoinHandle<()>>>,
}

impl TieredBackend {
    /// Connects L2, subscribes to the invalidation channel `<prefix>:invalidate`, and waits
    /// until the subscription is up (at most the connect timeout).
    pub(crate) async fn connect(
        options: &RedisOptions,
        prefix: &str,
        max_size: usize,
        default_ttl: Duration,
    ) -> Result<Self, CacheError> {
        let l2 = RedisBackend::connect(options).await?;
        let near = Arc::new(Near::new(max_size, default_ttl));
        let channel = format!("{prefix}:invalidate");
        let instance = format!("{:016x}", fastrand::u64(..));
        let (task, ready) = invalidation::spawn(
            l2.pool().client().clone(),
            channel.clone(),
            instance.clone(),
            near.clone(),
            options.connect_timeout,
        );
        let subscribed = tokio::time::timeout(options.connect_timeout * 2, ready).await;
        let failure = match subscribed {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(e))) => Some(e),
            Ok(Err(_)) => Some("the subscriber task ended".to_owned()),
            Err(_) => Some(format!(
                "no answer within {:?}",
                options.connect_timeout * 2
            )),
        };
        if let Some(reason) = failure {
            task.abort();
            return Err(CacheError::Unavailable {
                message: format!(
                    "could not subscribe to the invalidation channel `{channel}` on Redis at {}: \
                     {reason}",
                    l2.pool().url()
                ),
            });
        }
        Ok(Self {
            near,
            l2,
            channel,
            instance,
            subscriber: Mutex::new(Some(task)),
        })
    }

    /// Stops the subscriber; L1 is emptied and no longer used.
    pub(crate) async fn stop(&self) {
        let task = self
            .subscriber
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        self.near.reset(false);
    }

    pub(crate) fn subscribed(&self) -> bool {
        self.near.is_live()
    }

    fn publish(&self, kind: Kind, text: &str) -> redis::Cmd {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(&self.channel)
            .arg(invalidation::encode(&self.instance, kind, text));
        cmd
    }

    /// The values of `keys` from L2, with their remaining TTLs.
    async fn l2_read(&self, keys: &[&str]) -> Result<Vec<(Option<Blob>, i64)>, CacheError> {
        let mut pipe = redis::pipe();
        pipe.cmd("MGET").arg(keys);
        for key in keys {
            pipe.cmd("PTTL").arg(*key);
        }
        let replies: Vec<Value> = self.l2.pool().query("MGET", &pipe, true).await?;
        let malformed = || CacheError::Backend {
            operation: "MGET".into(),
            message: "unexpected reply shape".into(),
        };
        let mut replies = replies.into_iter();
        let values: Vec<Option<Vec<u8>>> = replies
            .next()
            .and_then(|v| redis::from_redis_value(v).ok())
            .ok_or_else(malformed)?;
        let pttls: Vec<i64> = replies
            .map(|v| redis::from_redis_value::<i64>(v).unwrap_or(-2))
            .collect();
        if values.len() != keys.len() || pttls.len() != keys.len() {
            return Err(malformed());
        }
        let hits = values.iter().filter(|v| v.is_some()).count() as u64;
        self.l2.record_reads(hits, keys.len() as u64 - hits);
        Ok(values
            .into_iter()
            .map(|v| v.map(Blob::from))
            .zip(pttls)
            .collect())
    }
}

impl Backend for TieredBackend {
    async fn get(&self, key: &str) -> Result<Option<Blob>, CacheError> {
        if self.near.is_live()
            && let Some(v) = self.near.mem.get_now(key)
        {
            return Ok(Some(v));
        }
        let epoch = self.near.epoch.load(Ordering::Acquire);
        let mut read = self.l2_read(&[key]).await?;
        let (value, pttl) = read.pop().unwrap_or((None, -2));
        if let Some(v) = &value {
            self.near.fill(key, v, pttl, epoch);
        }
        Ok(value)
    }

    async fn set(&self, key: &str, value: Blob, ttl: Option<Duration>) -> Result<(), CacheError> {
        let mut pipe = redis::pipe();
        pipe.add_command(set_cmd(key, &value, ttl)).ignore();
        pipe.add_command(self.publish(Kind::Key, key)).ignore();
        let outcome: Result<(), CacheError> = self.l2.pool().query("SET", &pipe, true).await;
        match outcome {
            Ok(()) => self.near.write(&[(key.to_owned(), value)], ttl),
            Err(_) => self.near.forget(key),
        }
        outcome
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        self.near.forget(key);
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(key);
        pipe.add_command(self.publish(Kind::Key, key)).ignore();
        let (n,): (u64,) = self.l2.pool().query("DEL", &pipe, true).await?;
        Ok(n > 0)
    }

    async fn exists(&self, key: &str) -> Result<bool, CacheError> {
        self.l2.exists(key).await
    }

    async fn incr(&self, key: &str, by: i64) -> Result<i64, CacheError> {
        self.near.forget(key);
        let mut pipe = redis::pipe();
        pipe.cmd("INCRBY").arg(key).arg(by);
        pipe.add_command(self.publish(Kind::Key, key)).ignore();
        let outcome = self
            .l2
            .pool()
            .run::<_, (i64,)>("INCRBY", &pipe, false)
            .await;
        outcome.map(|(n,)| n).map_err(|f| incr_failure(f, key))
    }

    async fn ttl(&self, key: &str) -> Result<KeyTtl, CacheError> {
        self.l2.ttl(key).await
    }

    async fn mget(&self, keys: &[String]) -> Result<Vec<Option<Blob>>, CacheError> {
        let live = self.near.is_live();
        let mut out: Vec<Option<Blob>> = keys
            .iter()
            .map(|k| if live { self.near.mem.get_now(k) } else { None })
            .collect();
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| out[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(out);
        }
        let epoch = self.near.epoch.load(Ordering::Acquire);
        let wanted: Vec<&str> = missing.iter().map(|&i| keys[i].as_str()).collect();
        let read = self.l2_read(&wanted).await?;
        for (&i, (value, pttl)) in missing.iter().zip(read) {
            if let Some(v) = &value {
                self.near.fill(&keys[i], v, pttl, epoch);
            }
            out[i] = value;
        }
        Ok(out)
    }

    async fn mset(
        &self,
        entries: &[(String, Blob)],
        ttl: Option<Duration>,
    ) -> Result<(), CacheError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        add_mset(&mut pipe, entries, ttl);
        for (key, _) in entries {
            pipe.add_command(self.publish(Kind::Key, key)).ignore();
        }
        let outcome: Result<(), CacheError> = self.l2.pool().query("MSET", &pipe, true).await;
        match &outcome {
            Ok(()) => self.near.write(entries, ttl),
            Err(_) => {
                for (key, _) in entries {
                    self.near.forget(key);
                }
            }
        }
        outcome
    }

    async fn keys(&self, pattern: &str) -> Result<Vec<String>, CacheError> {
        Ok(utf8_keys(self.l2.scan(pattern).await?))
    }

    async fn delete_pattern(&self, pattern: &str) -> Result<u64, CacheError> {
        self.near.invalidate_pattern(pattern);
        let keys = self.l2.scan(pattern).await?;
        let n = self
            .l2
            .delete_keys(&keys, Some(self.publish(Kind::Pattern, pattern)))
            .await?;
        self.near.invalidate_pattern(pattern);
        Ok(n)
    }

    async fn ping(&self) -> Result<(), CacheError> {
        self.l2.ping().await
    }

    fn stats(&self) -> CacheStats {
        let l1 = self.near.mem.stats_now();
        let l2 = self.l2.stats();
        CacheStats {
            hits: l1.hits + l2.hits,
            misses: l2.misses,
            evictions: l1.evictions,
            expirations: l1.expirations,
            entries: l1.entries,
            l1_hits: l1.hits,
        }
    }
}
