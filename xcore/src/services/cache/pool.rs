//! Connections to Redis: a `bb8` pool of `bb8-redis` multiplexed connections, and [`RedisPool::run`],
//! which runs one command (or pipeline) under the command timeout.
//!
//! Connections are not pinged on checkout (that would double every round trip). Instead a
//! connection that fails with an I/O error or a timeout is marked broken (the pool drops it and
//! opens another), and an I/O error also moves the pool to a new *epoch*: every connection opened
//! before it is dropped when next checked out, since a server that went away took them all. An
//! idempotent command that met a lost connection is retried once on a fresh one, so the first
//! calls after a restart of the server succeed.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bb8_redis::{
    RedisConnectionManager,
    bb8::{self, ManageConnection, PooledConnection, RunError},
    redis::{self, FromRedisValue, RedisError, aio::MultiplexedConnection},
};

use super::{CacheError, RedisOptions};

/// A pooled connection, with what the pool needs to know to retire it.
pub(crate) struct Conn {
    inner: MultiplexedConnection,
    epoch: u64,
    broken: bool,
}

/// Opens connections through `bb8-redis`, stamps them with the epoch, and remembers why the
/// last attempt failed (for error messages).
struct Manager {
    inner: RedisConnectionManager,
    epoch: Arc<AtomicU64>,
    last_error: Arc<Mutex<Option<String>>>,
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = RedisError;

    async fn connect(&self) -> Result<Conn, RedisError> {
        let epoch = self.epoch.load(Ordering::Acquire);
        let outcome = self.inner.connect().await;
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
            outcome.as_ref().err().map(ToString::to_string);
        outcome.map(|inner| Conn {
            inner,
            epoch,
            broken: false,
        })
    }

    async fn is_valid(&self, conn: &mut Conn) -> Result<(), RedisError> {
        self.inner.is_valid(&mut conn.inner).await
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.broken || conn.epoch < self.epoch.load(Ordering::Acquire)
    }
}

/// A command or a pipeline.
pub(crate) trait Query: Sync {
    /// As the one thing [`RedisPool::run`] sends.
    fn request(&self) -> Request<'_>;
}

/// What [`RedisPool::run`] sends.
pub(crate) enum Request<'a> {
    Cmd(&'a redis::Cmd),
    Pipe(&'a redis::Pipeline),
}

impl Query for redis::Cmd {
    fn request(&self) -> Request<'_> {
        Request::Cmd(self)
    }
}

impl Query for redis::Pipeline {
    fn request(&self) -> Request<'_> {
        Request::Pipe(self)
    }
}

async fn send<T: FromRedisValue>(
    request: &Request<'_>,
    conn: &mut MultiplexedConnection,
) -> Result<T, RedisError> {
    match request {
        Request::Cmd(cmd) => cmd.query_async(conn).await,
        Request::Pipe(pipe) => pipe.query_async(conn).await,
    }
}

/// Why [`RedisPool::run`] failed: a cache error, or an error reply of the server (which the
/// caller may interpret, as `incr` does).
pub(crate) enum Failure {
    Cache(CacheError),
    Reply(RedisError),
}

impl Failure {
    /// As a [`CacheError`], an error reply becoming [`CacheError::Backend`].
    pub(crate) fn into_cache(self, operation: &str) -> CacheError {
        match self {
            Failure::Cache(e) => e,
            Failure::Reply(e) => CacheError::Backend {
                operation: operation.to_owned(),
                message: e.to_string(),
            },
        }
    }
}

/// The Redis connections of one cache service.
pub(crate) struct RedisPool {
    pool: bb8::Pool<Manager>,
    client: redis::Client,
    epoch: Arc<AtomicU64>,
    last_error: Arc<Mutex<Option<String>>>,
    max_checkouts: u32,
    connect_timeout: Duration,
    command_timeout: Duration,
    url: String,
}

impl RedisPool {
    /// A pool for `options` (opens no connection yet).
    pub(crate) async fn new(options: &RedisOptions) -> Result<Self, CacheError> {
        let url = crate::services::redact_url(&options.url);
        let invalid = |e: RedisError| CacheError::InvalidOptions {
            message: format!("`services.cache.redis.url` `{url}` is not a Redis URL: {e}"),
        };
        let manager = RedisConnectionManager::new(options.url.as_str()).map_err(invalid)?;
        let client = redis::Client::open(options.url.as_str()).map_err(invalid)?;
        let epoch = Arc::new(AtomicU64::new(0));
        let last_error = Arc::new(Mutex::new(None));
        let pool = bb8::Pool::builder()
            .max_size(options.pool_size)
            .connection_timeout(options.connect_timeout)
            .test_on_check_out(false)
            .build(Manager {
                inner: manager,
                epoch: epoch.clone(),
                last_error: last_error.clone(),
            })
            .await
            .map_err(|e| CacheError::Unavailable {
                message: format!("could not open the Redis pool for {url}: {e}"),
            })?;
        Ok(Self {
            pool,
            client,
            epoch,
            last_error,
            max_checkouts: options.pool_size.saturating_add(1),
            connect_timeout: options.connect_timeout,
            command_timeout: options.command_timeout,
            url,
        })
    }

    /// A client for dedicated connections (pub/sub).
    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    /// The server's URL, password hidden.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    fn unavailable(&self) -> CacheError {
        let last = self
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        CacheError::Unavailable {
            message: format!(
                "no connection to Redis at {} within {:?} ({}); check that the server runs and \
                 `services.cache.redis.url`",
                self.url,
                self.connect_timeout,
                last.map_or_else(
                    || "every connection was busy or still being opened".to_owned(),
                    |e| format!("last error: {e}")
                ),
            ),
        }
    }

    async fn checkout(&self) -> Result<PooledConnection<'_, Manager>, CacheError> {
        for _ in 0..self.max_checkouts {
            let mut conn = self.pool.get().await.map_err(|e| match e {
                RunError::TimedOut => self.unavailable(),
                RunError::User(e) => CacheError::Unavailable {
                    message: format!("could not connect to Redis at {}: {e}", self.url),
                },
            })?;
            if conn.epoch < self.epoch.load(Ordering::Acquire) {
                conn.broken = true;
                continue;
            }
            conn.inner.set_response_timeout(self.command_timeout);
            return Ok(conn);
        }
        Err(self.unavailable())
    }

    /// Runs `query` on a pooled connection under the command timeout. A lost connection is
    /// retried once on a fresh one if the query is `idempotent`.
    pub(crate) async fn run<Q: Query, T: FromRedisValue + Send>(
        &self,
        operation: &'static str,
        query: &Q,
        idempotent: bool,
    ) -> Result<T, Failure> {
        let request = query.request();
        let mut retried = false;
        loop {
            let mut conn = self.checkout().await.map_err(Failure::Cache)?;
            let outcome =
                tokio::time::timeout(self.command_timeout, send::<T>(&request, &mut conn.inner))
                    .await;
            let err = match outcome {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => e,
                Err(_) => {
                    conn.broken = true;
                    return Err(Failure::Cache(self.timeout(operation)));
                }
            };
            if err.is_timeout() {
                conn.broken = true;
                return Err(Failure::Cache(self.timeout(operation)));
            }
            if !(err.is_io_error() || err.is_unrecoverable_error()) {
                return Err(Failure::Reply(err));
            }
            conn.broken = true;
            self.epoch.fetch_max(conn.epoch + 1, Ordering::AcqRel);
            drop(conn);
            if idempotent && !retried {
                retried = true;
                continue;
            }
            return Err(Failure::Cache(CacheError::Unavailable {
                message: format!(
                    "the connection to Redis at {} was lost during `{operation}` ({err}); the \
                     command may or may not have run",
                    self.url
                ),
            }));
        }
    }

    /// [`run`](Self::run), error replies made [`CacheError::Backend`].
    pub(crate) async fn query<Q: Query, T: FromRedisValue + Send>(
        &self,
        operation: &'static str,
        query: &Q,
        idempotent: bool,
    ) -> Result<T, CacheError> {
        self.run(operation, query, idempotent)
            .await
            .map_err(|f| f.into_cache(operation))
    }

    fn timeout(&self, operation: &str) -> CacheError {
        CacheError::Timeout {
            operation: operation.to_owned(),
            after: self.command_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::services::redact_url as redact;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(
            redact("redis://:secret@host:6379"),
            "redis://:***@host:6379"
        );
        assert_eq!(
            redact("redis://user:secret@host/1"),
            "redis://user:***@host/1"
        );
        assert_eq!(redact("redis://user@host"), "redis://user@host");
        assert_eq!(redact("not a url"), "not a url");
    }
}
