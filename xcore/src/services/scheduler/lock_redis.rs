//! The Redis [`FiringLock`](super::lock::FiringLock): one multiplexed connection, reopened
//! after an I/O error, every command under the command timeout.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use redis::{Client, FromRedisValue, aio::MultiplexedConnection};
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use super::{
    LockOptions, SchedulerError,
    lock::{Acquired, Claim, Put, StoredRow},
};

/// Claims a firing (KEYS[1]) and, with a second key, checks and sets the job's running mark.
/// Returns 1 (won), 0 (claimed by another instance) or 2 (claimed, but the job is running).
const ACQUIRE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if #KEYS > 1 and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('SET', KEYS[1], 'overlap', 'PX', ARGV[2])
  return 2
end
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
if #KEYS > 1 then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) end
return 1
";

/// Compare-and-delete: deletes KEYS[1] only if it holds ARGV[1].
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Stores a shared job: KEYS = the jobs hash, the owner's set, the paused hash; ARGV = the
/// job's key, its record, the owner's bound, the channel. Returns -1 (the owner is at its
/// bound and the job is new) or 1. A stored job is not paused.
const PUT_JOB: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0
   and redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('PUBLISH', ARGV[4], ARGV[1])
return 1
";

/// Pauses (ARGV[2] = 1) or resumes a shared job: KEYS = the jobs hash, the paused hash.
/// Returns 0 if there is no such job.
const PAUSE_JOB: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] == '1' then redis.call('HSET', KEYS[2], ARGV[1], '1')
else redis.call('HDEL', KEYS[2], ARGV[1]) end
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1
";

/// Removes a shared job: KEYS = the jobs hash, the paused hash, the owner's set. Returns 0 if
/// there is no such job.
const DELETE_JOB: &str = r"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return 1
";

/// Every shared job and the paused ones, read at once.
const LOAD_JOBS: &str = r"
return { redis.call('HGETALL', KEYS[1]), redis.call('HKEYS', KEYS[2]) }
";

pub(crate) struct RedisLock {
    client: Client,
    conn: Mutex<Option<MultiplexedConnection>>,
    prefix: String,
    ttl_ms: u64,
    timeout: Duration,
    url: String,
    instance: String,
}

impl RedisLock {
    pub(crate) async fn connect(
        options: &LockOptions,
        instance: &str,
    ) -> Result<Self, SchedulerError> {
        let url = crate::services::redact_url(&options.url);
        let client =
            Client::open(options.url.as_str()).map_err(|e| SchedulerError::InvalidOptions {
                message: format!("`services.scheduler.lock.url` `{url}` is not a Redis URL: {e}"),
            })?;
        let lock = Self {
            client,
            conn: Mutex::new(None),
            prefix: options.prefix.clone(),
            ttl_ms: u64::try_from(options.ttl.as_millis()).unwrap_or(u64::MAX),
            timeout: options.command_timeout,
            url,
            instance: instance.to_owned(),
        };
        let pong: String = lock
            .query(&redis::cmd("PING"))
            .await
            .map_err(|message| SchedulerError::Lock { message })?;
        if pong != "PONG" {
            return Err(SchedulerError::Lock {
                message: format!("{} answered `{pong}` to PING", lock.url),
            });
        }
        Ok(lock)
    }

    pub(crate) fn describe(&self) -> String {
        format!("redis at {}", self.url)
    }

    async fn connection(&self) -> Result<MultiplexedConnection, String> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let conn = match tokio::time::timeout(
            self.timeout,
            self.client.get_multiplexed_async_connection(),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(format!("cannot connect to {}: {e}", self.url)),
            Err(_) => {
                return Err(format!(
                    "no connection to {} within {:?}",
                    self.url, self.timeout
                ));
            }
        };
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, String> {
        let mut conn = self.connection().await?;
        match tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if e.is_io_error() || e.is_unrecoverable_error() || e.is_connection_dropped() {
                    *self.conn.lock().await = None;
                }
                Err(format!("{}: {e}", self.url))
            }
            Err(_) => {
                *self.conn.lock().await = None;
                Err(format!("{}: no answer within {:?}", self.url, self.timeout))
            }
        }
    }

    pub(crate) async fn acquire(
        &self,
        job: &str,
        at: DateTime<Utc>,
        exclusive: bool,
    ) -> Result<Acquired, String> {
        let token = format!("{}:{:016x}", self.instance, fastrand::u64(..));
        let fire_key = format!("{}:fire:{job}:{}", self.prefix, at.timestamp_millis());
        let running_key = exclusive.then(|| format!("{}:run:{job}", self.prefix));
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(ACQUIRE)
            .arg(if exclusive { 2 } else { 1 })
            .arg(&fire_key);
        if let Some(key) = &running_key {
            cmd.arg(key);
        }
        cmd.arg(&token).arg(self.ttl_ms);
        match self.query::<i64>(&cmd).await? {
            1 => Ok(Acquired::Won(Claim { running_key, token })),
            2 => Ok(Acquired::Overlap),
            _ => Ok(Acquired::Lost),
        }
    }

    pub(crate) async fn release(&self, claim: Claim) -> Result<(), String> {
        let Some(key) = claim.running_key else {
            return Ok(());
        };
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(RELEASE).arg(1).arg(&key).arg(&claim.token);
        let deleted: i64 = self.query(&cmd).await?;
        if deleted == 0 {
            tracing::warn!(
                key,
                "the running mark had expired (or was taken over) before the run ended; raise \
                 `services.scheduler.lock.ttl` above the longest run"
            );
        }
        Ok(())
    }
}

/// Shared job definitions: `<prefix>:jobs` (hash: job key → record), `<prefix>:jobs:paused`
/// (hash of the paused ones), `<prefix>:jobs:owner:<owner>` (set: the owner's jobs, for its
/// bound), changes published on `<prefix>:jobs:changed`.
impl RedisLock {
    fn jobs_key(&self) -> String {
        format!("{}:jobs", self.prefix)
    }

    fn paused_key(&self) -> String {
        format!("{}:jobs:paused", self.prefix)
    }

    fn owner_key(&self, owner: &str) -> String {
        format!("{}:jobs:owner:{owner}", self.prefix)
    }

    fn channel(&self) -> String {
        format!("{}:jobs:changed", self.prefix)
    }

    pub(crate) async fn put_job(
        &self,
        owner: &str,
        key: &str,
        record: &str,
        max: usize,
    ) -> Result<Put, String> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(PUT_JOB)
            .arg(3)
            .arg(self.jobs_key())
            .arg(self.owner_key(owner))
            .arg(self.paused_key())
            .arg(key)
            .arg(record)
            .arg(max)
            .arg(self.channel());
        Ok(match self.query::<i64>(&cmd).await? {
            1 => Put::Stored,
            _ => Put::TooMany,
        })
    }

    pub(crate) async fn pause_job(&self, key: &str, paused: bool) -> Result<bool, String> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(PAUSE_JOB)
            .arg(2)
            .arg(self.jobs_key())
            .arg(self.paused_key())
            .arg(key)
            .arg(if paused { "1" } else { "0" })
            .arg(self.channel());
        Ok(self.query::<i64>(&cmd).await? == 1)
    }

    pub(crate) async fn delete_job(&self, owner: &str, key: &str) -> Result<bool, String> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(DELETE_JOB)
            .arg(3)
            .arg(self.jobs_key())
            .arg(self.paused_key())
            .arg(self.owner_key(owner))
            .arg(key)
            .arg(self.channel());
        Ok(self.query::<i64>(&cmd).await? == 1)
    }

    pub(crate) async fn load_jobs(&self) -> Result<Vec<StoredRow>, String> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(LOAD_JOBS)
            .arg(2)
            .arg(self.jobs_key())
            .arg(self.paused_key());
        let (all, paused): (Vec<String>, Vec<String>) = self.query(&cmd).await?;
        let paused: std::collections::HashSet<String> = paused.into_iter().collect();
        Ok(all
            .chunks_exact(2)
            .map(|pair| StoredRow {
                paused: paused.contains(&pair[0]),
                key: pair[0].clone(),
                record: pair[1].clone(),
            })
            .collect())
    }

    /// Subscribes to the change channel, waking `wake` at each message and after each
    /// (re)subscription; resubscribes with a backoff (up to 2 s) after the connection is
    /// lost. Ends with `stop`.
    pub(crate) fn watch_jobs(
        &self,
        wake: Arc<Notify>,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let (client, channel) = (self.client.clone(), self.channel());
        super::lock::watch_channel(self.channel(), self.timeout, wake, stop, move || {
            let (client, channel) = (client.clone(), channel.clone());
            async move {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(pubsub.into_on_message().map(|_| ()))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::services::redact_url as redact;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("redis://:secret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
