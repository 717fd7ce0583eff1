//! The firing lock on Postgres: a firings table and a running-marks table, with the same
//! semantics as the Redis lock (see [`lock`](super::lock)).
//!
//! | table | row | lives |
//! |---|---|---|
//! | `<prefix>_firings` | one per claimed firing: `key` (`<job>:<instant in ms>`), the winner's token | its TTL; expired rows are deleted by later claims |
//! | `<prefix>_running` | one per job that does not allow overlap and is running: `job`, the runner's token | until the run ends (compare-and-delete), or its TTL after a crash |
//! | `<prefix>_jobs` | one per shared job definition: `key`, `owner`, `record` (JSON), `paused`, `updated_at` | until unshared |
//!
//! A claim is one transaction holding a transaction-level advisory lock on the job (so
//! claims of one job are serialized across instances): insert the firing (`ON CONFLICT DO
//! NOTHING`: lost if it exists); for an exclusive job, a live running mark makes it an
//! overlap (the firing stays claimed, so nobody else runs it), else the mark is set.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sqlx::{
    AssertSqlSafe, Connection, PgPool, Row,
    postgres::{PgConnectOptions, PgListener, PgPoolOptions},
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{
    LockOptions, SchedulerError,
    lock::{Acquired, Claim, Put, StoredRow},
};

/// The class of the advisory locks taken by claims (the first key of the two-key form).
const ADVISORY_CLASS: i32 = 0x7863_7363; // "xcsc"

pub(crate) struct PostgresLock {
    pool: PgPool,
    firings: String,
    running: String,
    /// The shared job definitions; also the name of their change channel.
    jobs: String,
    ttl: Duration,
    timeout: Duration,
    url: String,
    instance: String,
}

/// The table names are made of `[a-z0-9_]` only ([`table_prefix`]), so the SQL built with them
/// is safe (`AssertSqlSafe`).
///
/// A table-name prefix from the lock's key prefix: `xcore:scheduler` → `xcore_scheduler`.
fn table_prefix(prefix: &str) -> Result<String, SchedulerError> {
    let name: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.len() > 48 || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(SchedulerError::InvalidOptions {
            message: format!(
                "`services.scheduler.lock.prefix` `{prefix}` does not make a Postgres table \
                 name: 1 to 48 characters, not starting with a digit"
            ),
        });
    }
    Ok(name)
}

impl PostgresLock {
    pub(crate) async fn connect(
        options: &LockOptions,
        instance: &str,
    ) -> Result<Self, SchedulerError> {
        let url = crate::services::redact_url(&options.url);
        let connect: PgConnectOptions =
            options
                .url
                .parse()
                .map_err(|e| SchedulerError::InvalidOptions {
                    message: format!(
                        "`services.scheduler.lock.url` `{url}` is not a Postgres URL: {e}"
                    ),
                })?;
        let prefix = table_prefix(&options.prefix)?;
        let pool = PgPoolOptions::new()
            // Claims, shared job writes, and the `LISTEN` connection (detached from the pool).
            .max_connections(3)
            .acquire_timeout(options.command_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| SchedulerError::Lock {
                message: format!("cannot connect to {url}: {e}"),
            })?;
        let lock = Self {
            pool,
            firings: format!("{prefix}_firings"),
            running: format!("{prefix}_running"),
            jobs: format!("{prefix}_jobs"),
            ttl: options.ttl,
            timeout: options.command_timeout,
            url,
            instance: instance.to_owned(),
        };
        lock.create_tables()
            .await
            .map_err(|message| SchedulerError::Lock { message })?;
        Ok(lock)
    }

    /// Creates the tables if absent, under an advisory lock (concurrent `CREATE TABLE IF NOT
    /// EXISTS` can collide in Postgres' catalog).
    async fn create_tables(&self) -> Result<(), String> {
        let sql = format!(
            "SELECT pg_advisory_xact_lock({ADVISORY_CLASS}, 0);
             CREATE TABLE IF NOT EXISTS {f} (key TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL);
             CREATE INDEX IF NOT EXISTS {f}_expires ON {f} (expires_at);
             CREATE TABLE IF NOT EXISTS {r} (job TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL);
             CREATE TABLE IF NOT EXISTS {j} (key TEXT PRIMARY KEY, owner TEXT NOT NULL, record TEXT NOT NULL, paused BOOLEAN NOT NULL DEFAULT false, updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
             CREATE INDEX IF NOT EXISTS {j}_owner ON {j} (owner);",
            f = self.firings,
            r = self.running,
            j = self.jobs,
        );
        self.timed(async {
            let mut conn = self.pool.acquire().await?;
            let mut tx = conn.begin().await?;
            sqlx::raw_sql(AssertSqlSafe(sql.as_str()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
        .await
    }

    async fn timed<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, String> {
        match tokio::time::timeout(self.timeout, work).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(format!("{}: {e}", self.url)),
            Err(_) => Err(format!("{}: no answer within {:?}", self.url, self.timeout)),
        }
    }

    pub(crate) fn describe(&self) -> String {
        format!("postgres at {}", self.url)
    }

    pub(crate) async fn acquire(
        &self,
        job: &str,
        at: DateTime<Utc>,
        exclusive: bool,
    ) -> Result<Acquired, String> {
        let token = format!("{}:{:016x}", self.instance, fastrand::u64(..));
        let key = format!("{job}:{}", at.timestamp_millis());
        let ttl_ms = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let outcome = self
            .timed(async {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                    .bind(ADVISORY_CLASS)
                    .bind(job)
                    .execute(&mut *tx)
                    .await?;
                // Expired firings of this job go (each claim cleans after its own job).
                let cleanup = format!(
                    "DELETE FROM {} WHERE key LIKE $1 AND expires_at < now()",
                    self.firings
                );
                sqlx::query(AssertSqlSafe(cleanup.as_str()))
                    .bind(format!("{}:%", like_escape(job)))
                    .execute(&mut *tx)
                    .await?;
                let claim = format!(
                    "INSERT INTO {} (key, token, expires_at) \
                     VALUES ($1, $2, now() + $3 * interval '1 millisecond') \
                     ON CONFLICT (key) DO NOTHING",
                    self.firings
                );
                let claimed = sqlx::query(AssertSqlSafe(claim.as_str()))
                    .bind(&key)
                    .bind(&token)
                    .bind(ttl_ms)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
                if !claimed {
                    tx.rollback().await?;
                    return Ok(Acquired::Lost);
                }
                if !exclusive {
                    tx.commit().await?;
                    return Ok(Acquired::Won(Claim {
                        running_key: None,
                        token,
                    }));
                }
                let live = format!(
                    "SELECT count(*) FROM {} WHERE job = $1 AND expires_at > now()",
                    self.running
                );
                let running: i64 = sqlx::query(AssertSqlSafe(live.as_str()))
                    .bind(job)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get(0)?;
                if running > 0 {
                    // The firing stays claimed: nobody runs it.
                    tx.commit().await?;
                    return Ok(Acquired::Overlap);
                }
                let mark = format!(
                    "INSERT INTO {} (job, token, expires_at) \
                     VALUES ($1, $2, now() + $3 * interval '1 millisecond') \
                     ON CONFLICT (job) DO UPDATE SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at",
                    self.running
                );
                sqlx::query(AssertSqlSafe(mark.as_str()))
                    .bind(job)
                    .bind(&token)
                    .bind(ttl_ms)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Acquired::Won(Claim {
                    running_key: Some(job.to_owned()),
                    token,
                }))
            })
            .await?;
        Ok(outcome)
    }

    pub(crate) async fn release(&self, claim: Claim) -> Result<(), String> {
        let Some(job) = claim.running_key else {
            return Ok(());
        };
        let sql = format!("DELETE FROM {} WHERE job = $1 AND token = $2", self.running);
        let deleted = self
            .timed(
                sqlx::query(AssertSqlSafe(sql.as_str()))
                    .bind(&job)
                    .bind(&claim.token)
                    .execute(&self.pool),
            )
            .await?
            .rows_affected();
        if deleted == 0 {
            tracing::warn!(
                job,
                "the running mark had expired (or was taken over) before the run ended; raise \
                 `services.scheduler.lock.ttl` above the longest run"
            );
        }
        Ok(())
    }
}

/// Shared job definitions: the table `<prefix>_jobs` (`key`, `owner`, `record`, `paused`,
/// `updated_at`); each write is one transaction that ends with `pg_notify('<prefix>_jobs',
/// key)` (delivered at commit).
impl PostgresLock {
    pub(crate) async fn put_job(
        &self,
        owner: &str,
        key: &str,
        record: &str,
        max: usize,
    ) -> Result<Put, String> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.timed(async {
            let mut tx = self.pool.begin().await?;
            // Writes of one owner are serialized, so that its bound holds.
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(ADVISORY_CLASS)
                .bind(format!("jobs:{owner}"))
                .execute(&mut *tx)
                .await?;
            let count = format!(
                "SELECT count(*) FILTER (WHERE key <> $2), count(*) FILTER (WHERE key = $2)                  FROM {} WHERE owner = $1",
                self.jobs
            );
            let row = sqlx::query(AssertSqlSafe(count.as_str()))
                .bind(owner)
                .bind(key)
                .fetch_one(&mut *tx)
                .await?;
            let (others, this): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
            if this == 0 && others >= max {
                tx.rollback().await?;
                return Ok(Put::TooMany);
            }
            let upsert = format!(
                "INSERT INTO {} (key, owner, record, paused, updated_at)                  VALUES ($1, $2, $3, false, now())                  ON CONFLICT (key) DO UPDATE SET record = EXCLUDED.record, paused = false,                  updated_at = now()",
                self.jobs
            );
            sqlx::query(AssertSqlSafe(upsert.as_str()))
                .bind(key)
                .bind(owner)
                .bind(record)
                .execute(&mut *tx)
                .await?;
            self.notify(&mut tx, key).await?;
            tx.commit().await?;
            Ok(Put::Stored)
        })
        .await
    }

    async fn notify(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        key: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.jobs)
            .bind(key)
            .execute(&mut **tx)
            .await
            .map(drop)
    }

    pub(crate) async fn pause_job(&self, key: &str, paused: bool) -> Result<bool, String> {
        let sql = format!(
            "UPDATE {} SET paused = $2, updated_at = now() WHERE key = $1",
            self.jobs
        );
        let query = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(key)
            .bind(paused);
        self.change_one(query, key).await
    }

    pub(crate) async fn delete_job(&self, owner: &str, key: &str) -> Result<bool, String> {
        let sql = format!("DELETE FROM {} WHERE key = $1 AND owner = $2", self.jobs);
        let query = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(key)
            .bind(owner);
        self.change_one(query, key).await
    }

    /// Runs `query`, which changes the definition `key` (at most one row), in a transaction
    /// that notifies the change when it found the row; whether it did.
    async fn change_one(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
        key: &str,
    ) -> Result<bool, String> {
        self.timed(async {
            let mut tx = self.pool.begin().await?;
            let found = query.execute(&mut *tx).await?.rows_affected() == 1;
            if found {
                self.notify(&mut tx, key).await?;
            }
            tx.commit().await?;
            Ok(found)
        })
        .await
    }

    pub(crate) async fn load_jobs(&self) -> Result<Vec<StoredRow>, String> {
        let sql = format!("SELECT key, record, paused FROM {}", self.jobs);
        let rows = self
            .timed(sqlx::query(AssertSqlSafe(sql.as_str())).fetch_all(&self.pool))
            .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredRow {
                    key: row.try_get(0)?,
                    record: row.try_get(1)?,
                    paused: row.try_get(2)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(|e| format!("{}: {e}", self.url))
    }

    /// `LISTEN`s on the change channel, waking `wake` at each notification and after each
    /// (re)connection; listens again with a backoff (up to 2 s) after the connection is
    /// lost. Ends with `stop`.
    pub(crate) fn watch_jobs(
        &self,
        wake: Arc<Notify>,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let (pool, channel) = (self.pool.clone(), self.jobs.clone());
        super::lock::watch_channel(self.jobs.clone(), self.timeout, wake, stop, move || {
            let (pool, channel) = (pool.clone(), channel.clone());
            async move {
                let mut listener = PgListener::connect_with(&pool).await?;
                listener.listen(&channel).await?;
                // `recv` would reconnect silently and lose what came meanwhile: `try_recv`
                // tells (the stream ends), and the resync after listening again covers it.
                Ok::<_, sqlx::Error>(futures_util::stream::unfold(
                    listener,
                    |mut listener| async move {
                        match listener.try_recv().await {
                            Ok(Some(_)) => Some(((), listener)),
                            _ => None,
                        }
                    },
                ))
            }
        })
    }
}

/// `job` with the `LIKE` wildcards escaped (`\` is Postgres' default escape).
fn like_escape(job: &str) -> String {
    job.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert_eq!(table_prefix("xcore:scheduler").unwrap(), "xcore_scheduler");
        assert_eq!(table_prefix("App-1:Lock").unwrap(), "app_1_lock");
        assert!(table_prefix("").is_err());
        assert!(table_prefix("1abc").is_err());
        assert!(table_prefix(&"x".repeat(49)).is_err());
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(like_escape("a_b%c\\d"), "a\\_b\\%c\\\\d");
    }
}
