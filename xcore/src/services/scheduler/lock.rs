//! [`FiringLock`]: how several instances agree on which one runs a firing, on Redis or on
//! Postgres (`lock_postgres`: the same semantics with a firings table and a running-marks
//! table; a Postgres-only deployment needs no Redis). Below, the Redis form.
//!
//! Every instance plans the same instants. Before running the firing of job `J` planned for
//! instant `T`, an instance *claims* it: `SET <prefix>:fire:<J>:<T in ms> <token> NX PX <ttl>`.
//! The instance that set the key runs the firing; the others count it as run elsewhere. The
//! claim is never deleted early: it lives its TTL, so an instance that reaches the firing late
//! (its timer fired after the winner finished) still finds it taken and never runs it twice.
//!
//! A job that does not allow overlap also holds a *running* mark,
//! `<prefix>:run:<J>`, set with the claim (in one Lua script, which claims nothing and
//! answers "overlap" if the mark is already there) and released after the run by a
//! compare-and-delete script: an instance deletes the mark only if it still holds its own
//! token, never one another instance set after it expired.

use chrono::{DateTime, Utc};

use super::{LockOptions, SchedulerError};

/// What an instance holds after winning a firing.
#[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
pub(crate) struct Claim {
    /// The running mark to release, for a job that does not allow overlap.
    pub(crate) running_key: Option<String>,
    pub(crate) token: String,
}

/// The answer to a claim.
#[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
pub(crate) enum Acquired {
    /// This instance runs the firing.
    Won(Claim),
    /// Another instance claimed it.
    Lost,
    /// This instance claimed it, but the job is still running (here or elsewhere): skip.
    Overlap,
}

/// The answer to storing a shared job.
#[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
pub(crate) enum Put {
    Stored,
    /// The job is new and its owner is at its bound: nothing stored.
    TooMany,
}

/// One stored shared job: its key, its record (JSON of `shared_job::Stored`), whether it is
/// paused.
#[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
pub(crate) struct StoredRow {
    pub(crate) key: String,
    pub(crate) record: String,
    pub(crate) paused: bool,
}

/// Dispatches to the backend.
macro_rules! backend {
    ($self:ident, $lock:ident => $call:expr, $($unused:expr),*) => {
        match $self {
            #[cfg(feature = "redis")]
            FiringLock::Redis($lock) => $call,
            #[cfg(feature = "postgres")]
            FiringLock::Postgres($lock) => $call,
            #[cfg(not(any(feature = "redis", feature = "postgres")))]
            _ => {
                let _ = ($($unused),*);
                unreachable_backend()
            }
        }
    };
}

/// The lock backend.
pub(crate) enum FiringLock {
    #[cfg(feature = "redis")]
    Redis(Box<super::lock_redis::RedisLock>),
    #[cfg(feature = "postgres")]
    Postgres(Box<super::lock_postgres::PostgresLock>),
}

/// Checks `services.scheduler.lock` without connecting: a Redis URL (with the `redis`
/// feature), a TTL of at least 1 s.
pub(crate) fn check(options: &LockOptions) -> Result<(), SchedulerError> {
    let invalid = |message: String| Err(SchedulerError::InvalidOptions { message });
    if options.ttl.as_millis() < 1000 {
        return invalid(format!(
            "`services.scheduler.lock.ttl` is {:?}; it must be at least 1s",
            options.ttl
        ));
    }
    match options.url.split_once("://").map_or("", |(s, _)| s) {
        "redis" | "rediss" if cfg!(feature = "redis") => Ok(()),
        "redis" | "rediss" => invalid(
            "`services.scheduler.lock.url` is a Redis URL, but xcore was built without its \
             `redis` feature"
                .into(),
        ),
        "postgres" | "postgresql" if cfg!(feature = "postgres") => Ok(()),
        "postgres" | "postgresql" => invalid(
            "`services.scheduler.lock.url` is a Postgres URL, but xcore was built without its \
             `postgres` feature"
                .into(),
        ),
        _ => invalid(
            "`services.scheduler.lock.url` must be a Redis URL (`redis://host:6379/0`) or a \
             Postgres URL (`postgres://user@host/db`)"
                .into(),
        ),
    }
}

impl FiringLock {
    /// Connects to the server of `options.url` and checks that it answers.
    pub(crate) async fn connect(
        options: &LockOptions,
        instance: &str,
    ) -> Result<Self, SchedulerError> {
        check(options)?;
        let postgres = options.url.starts_with("postgres");
        #[cfg(feature = "postgres")]
        if postgres {
            return super::lock_postgres::PostgresLock::connect(options, instance)
                .await
                .map(|lock| FiringLock::Postgres(Box::new(lock)));
        }
        #[cfg(feature = "redis")]
        if !postgres {
            return super::lock_redis::RedisLock::connect(options, instance)
                .await
                .map(|lock| FiringLock::Redis(Box::new(lock)));
        }
        let _ = (instance, postgres);
        Err(SchedulerError::InvalidOptions {
            message: "no lock backend for this URL is compiled in".into(),
        })
    }

    /// Claims the firing of `job` (a namespaced key) planned for `at`; with `exclusive`, also
    /// checks and sets the job's running mark.
    pub(crate) async fn acquire(
        &self,
        job: &str,
        at: DateTime<Utc>,
        exclusive: bool,
    ) -> Result<Acquired, String> {
        match self {
            #[cfg(feature = "redis")]
            FiringLock::Redis(lock) => lock.acquire(job, at, exclusive).await,
            #[cfg(feature = "postgres")]
            FiringLock::Postgres(lock) => lock.acquire(job, at, exclusive).await,
            #[cfg(not(any(feature = "redis", feature = "postgres")))]
            _ => {
                let _ = (job, at, exclusive);
                unreachable_backend()
            }
        }
    }

    /// Releases the running mark of `claim`, if it still holds it.
    pub(crate) async fn release(&self, claim: Claim) -> Result<(), String> {
        match self {
            #[cfg(feature = "redis")]
            FiringLock::Redis(lock) => lock.release(claim).await,
            #[cfg(feature = "postgres")]
            FiringLock::Postgres(lock) => lock.release(claim).await,
            #[cfg(not(any(feature = "redis", feature = "postgres")))]
            _ => {
                let _ = claim;
                unreachable_backend()
            }
        }
    }

    /// Stores shared job `key` of `owner` (replacing it, unpaused), unless the owner already
    /// has `max` others; notifies every instance.
    pub(crate) async fn put_job(
        &self,
        owner: &str,
        key: &str,
        record: &str,
        max: usize,
    ) -> Result<Put, String> {
        backend!(self, lock => lock.put_job(owner, key, record, max).await, owner, key, record, max)
    }

    /// Pauses or resumes shared job `key`; `false` if there is none. Notifies every instance.
    pub(crate) async fn pause_job(&self, key: &str, paused: bool) -> Result<bool, String> {
        backend!(self, lock => lock.pause_job(key, paused).await, key, paused)
    }

    /// Removes shared job `key` of `owner`; `false` if there is none. Notifies every instance.
    pub(crate) async fn delete_job(&self, owner: &str, key: &str) -> Result<bool, String> {
        backend!(self, lock => lock.delete_job(owner, key).await, owner, key)
    }

    /// Every stored shared job.
    pub(crate) async fn load_jobs(&self) -> Result<Vec<StoredRow>, String> {
        backend!(self, lock => lock.load_jobs().await, ())
    }

    /// Watches the change notifications of shared jobs: wakes `wake` at each, and after
    /// each (re)connection, until `stop`.
    pub(crate) fn watch_jobs(
        &self,
        wake: std::sync::Arc<tokio::sync::Notify>,
        stop: tokio_util::sync::CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        match self {
            #[cfg(feature = "redis")]
            FiringLock::Redis(lock) => Some(lock.watch_jobs(wake, stop)),
            #[cfg(feature = "postgres")]
            FiringLock::Postgres(lock) => Some(lock.watch_jobs(wake, stop)),
            #[cfg(not(any(feature = "redis", feature = "postgres")))]
            _ => {
                let _ = (wake, stop);
                None
            }
        }
    }

    /// The server, password hidden.
    pub(crate) fn describe(&self) -> String {
        match self {
            #[cfg(feature = "redis")]
            FiringLock::Redis(lock) => lock.describe(),
            #[cfg(feature = "postgres")]
            FiringLock::Postgres(lock) => lock.describe(),
            #[cfg(not(any(feature = "redis", feature = "postgres")))]
            _ => String::new(),
        }
    }
}

#[cfg(not(any(feature = "redis", feature = "postgres")))]
fn unreachable_backend<T>() -> Result<T, String> {
    Err("no lock backend is compiled in".into())
}

/// Watches a change channel until `stop`: `subscribe` (bounded by `limit`) gives the stream of
/// its notifications; `wake` is woken after each (re)subscription and at each notification.
/// When the stream ends (the connection is lost) or a subscription fails, it subscribes again
/// after a backoff (50 ms, doubling up to 2 s). What is missed meanwhile is caught up by the
/// resync each wake-up triggers. The Redis and Postgres locks' `watch_jobs`.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn watch_channel<C, F, S, E>(
    channel: String,
    limit: std::time::Duration,
    wake: std::sync::Arc<tokio::sync::Notify>,
    stop: tokio_util::sync::CancellationToken,
    mut subscribe: C,
) -> tokio::task::JoinHandle<()>
where
    C: FnMut() -> F + Send + 'static,
    F: std::future::Future<Output = Result<S, E>> + Send,
    S: futures_util::Stream<Item = ()> + Send,
    E: std::fmt::Display + Send,
{
    use futures_util::StreamExt;
    use std::time::Duration;

    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(50);
        let watch = async {
            loop {
                match tokio::time::timeout(limit, subscribe()).await {
                    Ok(Ok(notifications)) => {
                        backoff = Duration::from_millis(50);
                        wake.notify_one();
                        let mut notifications = std::pin::pin!(notifications);
                        while notifications.next().await.is_some() {
                            wake.notify_one();
                        }
                        tracing::warn!(
                            channel,
                            "lost the shared job notifications; subscribing again"
                        );
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(channel, error = %e, "shared job notifications: subscribe failed")
                    }
                    Err(_) => {
                        tracing::debug!(channel, "shared job notifications: subscribe timed out")
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        };
        tokio::select! {
            () = stop.cancelled() => {}
            () = watch => {}
        }
    })
}
