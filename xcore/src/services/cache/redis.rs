//! The Redis backend: one command (or one pipeline) per operation, under the command timeout.
//!
//! `SET … PX`, `PTTL`, `INCRBY`, `MGET`, `MSET` + `PEXPIRE` in one `MULTI` pipeline, and
//! `SCAN … MATCH` for listing and deleting by pattern: never `KEYS` (which blocks the server)
//! and never `FLUSHDB` (which would delete keys xcore does not own).

use std::time::Duration;

use bb8_redis::redis::{self, Cmd, Pipeline};

use super::{
    CacheError, CacheStats, KeyTtl, RedisOptions,
    backend::Backend,
    lru::Blob,
    pool::{Failure, RedisPool},
    stats::ReadCounters,
    ttl::millis,
};

/// How many keys one `SCAN` step asks for.
const SCAN_COUNT: usize = 500;

/// The Redis backend.
pub(crate) struct RedisBackend {
    pool: RedisPool,
    reads: ReadCounters,
}

/// `SET key value [PX ms]`.
pub(crate) fn set_cmd(key: &str, value: &[u8], ttl: Option<Duration>) -> Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(value);
    if let Some(ttl) = ttl {
        cmd.arg("PX").arg(millis(ttl));
    }
    cmd
}

/// Appends `MSET` and one `PEXPIRE` per key (if `ttl`) to `pipe`, replies ignored.
pub(crate) fn add_mset(pipe: &mut Pipeline, entries: &[(String, Blob)], ttl: Option<Duration>) {
    let mut mset = redis::cmd("MSET");
    for (key, value) in entries {
        mset.arg(key.as_str()).arg(&value[..]);
    }
    pipe.add_command(mset).ignore();
    if let Some(ttl) = ttl {
        let ms = millis(ttl);
        for (key, _) in entries {
            pipe.cmd("PEXPIRE").arg(key.as_str()).arg(ms).ignore();
        }
    }
}

impl RedisBackend {
    /// A backend for `options`; checks that the server answers.
    pub(crate) async fn connect(options: &RedisOptions) -> Result<Self, CacheError> {
        let backend = Self {
            pool: RedisPool::new(options).await?,
            reads: ReadCounters::default(),
        };
        backend.ping().await?;
        Ok(backend)
    }

    pub(crate) fn pool(&self) -> &RedisPool {
        &self.pool
    }

    /// Counts reads served by the caller (the tiered backend's L2 reads).
    pub(crate) fn record_reads(&self, hits: u64, misses: u64) {
        self.reads.record(hits, misses);
    }

    /// Every key matching `pattern`, through `SCAN` (each step under the command timeout),
    /// sorted and without duplicates, as bytes (another client may have written keys that are
    /// not UTF-8 under the prefix).
    pub(crate) async fn scan(&self, pattern: &str) -> Result<Vec<Vec<u8>>, CacheError> {
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT);
            let (next, batch): (u64, Vec<Vec<u8>>) = self.pool.query("SCAN", &cmd, true).await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }

    /// Deletes `keys` in batches; how many existed. If `also` is given, it is added to the
    /// last batch's pipeline (a `PUBLISH`, say).
    pub(crate) async fn delete_keys(
        &self,
        keys: &[Vec<u8>],
        also: Option<Cmd>,
    ) -> Result<u64, CacheError> {
        let mut deleted = 0;
        let mut batches = keys.chunks(SCAN_COUNT).peekable();
        if batches.peek().is_none() {
            if let Some(cmd) = also {
                self.pool.query::<_, ()>("PUBLISH", &cmd, true).await?;
            }
            return Ok(0);
        }
        let mut also = also;
        while let Some(batch) = batches.next() {
            let mut pipe = redis::pipe();
            pipe.cmd("DEL").arg(batch);
            if batches.peek().is_none()
                && let Some(cmd) = also.take()
            {
                pipe.add_command(cmd).ignore();
            }
            let (n,): (u64,) = self.pool.query("DEL", &pipe, true).await?;
            deleted += n;
        }
        Ok(deleted)
    }
}

impl Backend for RedisBackend {
    async fn get(&self, key: &str) -> Result<Option<Blob>, CacheError> {
        let value: Option<Vec<u8>> = self
            .pool
            .query("GET", &*redis::cmd("GET").arg(key), true)
            .await?;
        self.reads
            .record(u64::from(value.is_some()), u64::from(value.is_none()));
        Ok(value.map(Blob::from))
    }

    async fn set(&self, key: &str, value: Blob, ttl: Option<Duration>) -> Result<(), CacheError> {
        self.pool
            .query("SET", &set_cmd(key, &value, ttl), true)
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let n: u64 = self
            .pool
            .query("DEL", &*redis::cmd("DEL").arg(key), true)
            .await?;
        Ok(n > 0)
    }

    async fn exists(&self, key: &str) -> Result<bool, CacheError> {
        let n: u64 = self
            .pool
            .query("EXISTS", &*redis::cmd("EXISTS").arg(key), true)
            .await?;
        Ok(n > 0)
    }

    async fn incr(&self, key: &str, by: i64) -> Result<i64, CacheError> {
        self.pool
            .run("INCRBY", &*redis::cmd("INCRBY").arg(key).arg(by), false)
            .await
            .map_err(|f| incr_failure(f, key))
    }

    async fn ttl(&self, key: &str) -> Result<KeyTtl, CacheError> {
        let pttl: i64 = self
            .pool
            .query("PTTL", &*redis::cmd("PTTL").arg(key), true)
            .await?;
        Ok(KeyTtl::from_pttl(pttl))
    }

    async fn mget(&self, keys: &[String]) -> Result<Vec<Option<Blob>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<Vec<u8>>> = self
            .pool
            .query("MGET", &*redis::cmd("MGET").arg(keys), true)
            .await?;
        let hits = values.iter().filter(|v| v.is_some()).count() as u64;
        self.reads.record(hits, values.len() as u64 - hits);
        Ok(values.into_iter().map(|v| v.map(Blob::from)).collect())
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
        self.pool.query("MSET", &pipe, true).await
    }

    async fn keys(&self, pattern: &str) -> Result<Vec<String>, CacheError> {
        Ok(utf8_keys(self.scan(pattern).await?))
    }

    async fn delete_pattern(&self, pattern: &str) -> Result<u64, CacheError> {
        let keys = self.scan(pattern).await?;
        self.delete_keys(&keys, None).await
    }

    async fn ping(&self) -> Result<(), CacheError> {
        let pong: String = self.pool.query("PING", &redis::cmd("PING"), true).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(CacheError::Backend {
                operation: "PING".into(),
                message: format!("the server answered `{pong}` instead of `PONG`"),
            })
        }
    }

    fn stats(&self) -> CacheStats {
        let (hits, misses) = self.reads.snapshot();
        CacheStats {
            hits,
            misses,
            ..CacheStats::default()
        }
    }
}

/// The keys that are UTF-8 (the others cannot be named through the handle).
pub(crate) fn utf8_keys(keys: Vec<Vec<u8>>) -> Vec<String> {
    keys.into_iter()
        .filter_map(|k| String::from_utf8(k).ok())
        .collect()
}

/// An `INCRBY` failure: error replies about the value become `NotAnInteger` / `Overflow`.
pub(crate) fn incr_failure(failure: Failure, key: &str) -> CacheError {
    match failure {
        Failure::Reply(e) => {
            let text = e.to_string();
            if text.contains("overflow") {
                CacheError::Overflow {
                    key: key.to_owned(),
                }
            } else if text.contains("not an integer") {
                CacheError::NotAnInteger {
                    key: key.to_owned(),
                }
            } else {
                CacheError::Backend {
                    operation: "INCRBY".into(),
                    message: text,
                }
            }
        }
        Failure::Cache(e) => e,
    }
}
