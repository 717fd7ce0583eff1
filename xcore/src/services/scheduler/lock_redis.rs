//! The Redis [`FiringLock`](super::lock::FiringLock): one multiplexed connection, reopened
//! after an I/O error, every command under the command timeout.

use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::{Client, FromRedisValue, aio::MultiplexedConnection};
use tokio::sync::Mutex;

use super::{
    LockOptions, SchedulerError,
    lock::{Acquired, Claim},
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

/// `url` with the password (if any) replaced by `***`.
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
