//! [`WorkerOptions`]: how a [`WorkerService`](super::WorkerService) queues and runs tasks;
//! [`WorkerConfig`]: the `services.worker` section of the config they are read from.

use std::time::Duration;

use serde::Deserialize;

/// Where background jobs are queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerBackend {
    /// In process (the default): jobs are lost on restart.
    #[default]
    Memory,
    /// Redis Streams (`url: redis://…`), shared by every instance pointed at the server.
    Redis,
    /// A Postgres table.
    Postgres,
}

/// The `services.worker` section: the task worker
/// ([`WorkerService`](crate::services::worker::WorkerService)).
///
/// Durations are written as in manifests (`"250ms"`, `"5s"`, `"7d"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// `memory` (default), `redis` or `postgres`.
    pub backend: WorkerBackend,
    /// Jobs run at once. Default 8; at least 1.
    pub concurrency: usize,
    /// Retries of a failing job before it is dead. Default 3.
    pub max_retries: u32,
    /// The wait before the first retry; each next one waits twice as long. Default 1 s.
    #[serde(with = "crate::services::serde_duration")]
    pub backoff: Duration,
    /// The longest wait between two attempts. Default 5 min.
    #[serde(with = "crate::services::serde_duration")]
    pub max_backoff: Duration,
    /// How long one attempt may run before it counts as failed. Default 5 min.
    #[serde(with = "crate::services::serde_duration")]
    pub timeout: Duration,
    /// How long shutdown (and a stopping plugin) waits for running tasks before interrupting
    /// them; interrupted tasks go back to the queue. Default 5 s.
    #[serde(with = "crate::services::serde_duration")]
    pub shutdown_timeout: Duration,
    /// `memory` and `redis`: the most tasks queued, delayed or running at once; a send beyond
    /// it is refused at once (`queue_full`). Default 10000.
    pub queue_capacity: usize,
    /// `memory`: how many succeeded tasks (and their results) are kept for `status`, and how
    /// many dead letters; the oldest go first. Default 10000 each.
    pub keep_finished: usize,
    /// `postgres`: the connection of `services.databases` that holds the table `xcore_tasks`.
    /// Default: the first one (unless `url` is set).
    pub database: Option<String>,
    /// `postgres`: a server of the worker's own, instead of `database`; `redis`: the server
    /// (`redis://…`, required).
    pub url: Option<String>,
    /// `postgres`: how often an idle worker looks for due tasks (`redis`: how long it waits
    /// after a failed claim). Default 250 ms.
    #[serde(with = "crate::services::serde_duration")]
    pub poll_interval: Duration,
    /// `postgres` and `redis`: the lease of a claimed task, renewed while it runs; a task
    /// whose instance stopped renewing it is delivered again when it expires. Default 30 s.
    #[serde(with = "crate::services::serde_duration")]
    pub lease: Duration,
    /// `postgres`: succeeded tasks are deleted this long after they finish (so idempotency
    /// keys are remembered this long); `redis`: succeeded tasks expire this long after they
    /// finish, idempotency keys this long after the send. Default 7 days.
    #[serde(with = "crate::services::serde_duration")]
    pub retention: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            backend: WorkerBackend::default(),
            concurrency: 8,
            max_retries: 3,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            timeout: Duration::from_secs(300),
            shutdown_timeout: Duration::from_secs(5),
            queue_capacity: 10_000,
            keep_finished: 10_000,
            database: None,
            url: None,
            poll_interval: Duration::from_millis(250),
            lease: Duration::from_secs(30),
            retention: Duration::from_secs(7 * 86_400),
        }
    }
}

/// Where tasks are queued.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueBackend {
    /// In process: a bounded queue, lost when the process ends.
    Memory,
    /// The table `xcore_tasks` of a Postgres database (feature `postgres`), shared by every
    /// instance pointed at it, surviving restarts.
    Postgres(PostgresQueue),
    /// Redis Streams at this URL (feature `redis`): one stream and consumer group per task
    /// name, shared by every instance pointed at the server.
    Redis(String),
}

/// Which Postgres database holds the durable queue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PostgresQueue {
    /// A connection of the `db` service (`services.databases`), by name; `None` for the first.
    /// The worker then depends on `db` and shares its pool.
    Database(Option<String>),
    /// A server of the worker's own: a pool of `concurrency + 4` connections.
    Url(String),
}

/// How a [`WorkerService`](super::WorkerService) queues and runs tasks: the
/// `services.worker` section of the config ([`from_config`](Self::from_config)), or built in
/// code.
///
/// ```
/// use std::time::Duration;
/// use xcore::services::worker::WorkerOptions;
///
/// let options = WorkerOptions::memory()
///     .concurrency(4)
///     .max_attempts(5)
///     .backoff(Duration::from_millis(100), Duration::from_secs(10));
/// // After attempt 1 fails: 100 ms, after attempt 2: 200 ms, after attempt 3: 400 ms...
/// assert_eq!(options.backoff_after(3), Duration::from_millis(400));
/// assert_eq!(options.backoff_after(30), Duration::from_secs(10));
///
/// let durable = WorkerOptions::postgres_url("postgres://xcore@127.0.0.1/app");
/// assert_eq!(durable.default_max_attempts(), 4); // 3 retries by default
///
/// // Redis Streams, shared by every instance pointed at the server.
/// let streams = WorkerOptions::redis("redis://127.0.0.1:6379/0").lease(Duration::from_secs(10));
/// assert!(matches!(streams.backend(), xcore::services::worker::QueueBackend::Redis(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerOptions {
    pub(crate) backend: QueueBackend,
    pub(crate) concurrency: usize,
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) queue_capacity: usize,
    pub(crate) keep_finished: usize,
    pub(crate) poll_interval: Duration,
    pub(crate) lease: Duration,
    pub(crate) retention: Duration,
    pub(crate) unsupported: Option<&'static str>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self::from_config(&WorkerConfig::default())
    }
}

impl WorkerOptions {
    /// The in-process queue with the defaults of the config section.
    pub fn memory() -> Self {
        Self::default()
    }

    /// The durable queue in the Postgres database of the `db` service's connection
    /// `database` (`None`: the first one).
    pub fn postgres_database(database: Option<&str>) -> Self {
        Self {
            backend: QueueBackend::Postgres(PostgresQueue::Database(database.map(str::to_owned))),
            ..Self::default()
        }
    }

    /// The durable queue in the Postgres database at `url`, with a pool of its own.
    pub fn postgres_url(url: impl Into<String>) -> Self {
        Self {
            backend: QueueBackend::Postgres(PostgresQueue::Url(url.into())),
            ..Self::default()
        }
    }

    /// The queue on Redis Streams at `url` (`redis://…`).
    pub fn redis(url: impl Into<String>) -> Self {
        Self {
            backend: QueueBackend::Redis(url.into()),
            ..Self::default()
        }
    }

    /// The options of a `services.worker` section.
    pub fn from_config(config: &WorkerConfig) -> Self {
        let (backend, unsupported) = match config.backend {
            WorkerBackend::Memory => (QueueBackend::Memory, None),
            WorkerBackend::Postgres => (
                QueueBackend::Postgres(match &config.url {
                    Some(url) => PostgresQueue::Url(url.clone()),
                    None => PostgresQueue::Database(config.database.clone()),
                }),
                None,
            ),
            WorkerBackend::Redis => match &config.url {
                Some(url) => (QueueBackend::Redis(url.clone()), None),
                None => (
                    QueueBackend::Memory,
                    Some("`redis` needs `services.worker.url` (`redis://…`)"),
                ),
            },
        };
        Self {
            backend,
            concurrency: config.concurrency,
            max_attempts: config.max_retries.saturating_add(1),
            backoff: config.backoff,
            max_backoff: config.max_backoff,
            timeout: config.timeout,
            shutdown_timeout: config.shutdown_timeout,
            queue_capacity: config.queue_capacity,
            keep_finished: config.keep_finished,
            poll_interval: config.poll_interval,
            lease: config.lease,
            retention: config.retention,
            unsupported,
        }
    }

    /// Tasks run at once (at least 1). Default 8.
    #[must_use]
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Attempts of a task before it becomes a dead letter (at least 1), unless its
    /// [`SendOptions`](super::SendOptions) say otherwise. Default 4 (3 retries).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The wait after a first failed attempt (`base`), doubled after each next one, at most
    /// `max`. Default 1 s and 5 min.
    #[must_use]
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff = base;
        self.max_backoff = max;
        self
    }

    /// How long one attempt may run before it counts as failed. Default 5 min.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long shutdown (and a stopping plugin) waits for running tasks before interrupting
    /// them (they go back to the queue, their attempt not counted). Default 5 s. Keep it below
    /// the `Xcore`'s stop timeout.
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// In-process and Redis queues: the most tasks queued, delayed or running at once.
    /// Default 10000.
    #[must_use]
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// In-process queue: succeeded tasks kept for `status` (and dead letters kept). Default
    /// 10000 each.
    #[must_use]
    pub fn keep_finished(mut self, keep: usize) -> Self {
        self.keep_finished = keep;
        self
    }

    /// Postgres queue: how often an idle worker looks for due tasks (Redis: the wait after a
    /// failed claim; an idle worker blocks on `XREADGROUP` instead). Default 250 ms.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Postgres and Redis queues: the lease of a claimed task, renewed every third of it while
    /// the task runs; a task whose lease expired is delivered again. Default 30 s.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Postgres and Redis queues: how long succeeded tasks are kept (Redis: and idempotency
    /// keys, from the send). Default 7 days.
    #[must_use]
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The backend.
    pub fn backend(&self) -> &QueueBackend {
        &self.backend
    }

    /// Tasks run at once.
    pub fn concurrency_limit(&self) -> usize {
        self.concurrency
    }

    /// The number of attempts of a task whose [`SendOptions`](super::SendOptions) set none.
    pub fn default_max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait after failed attempt `attempt` (1 for the first): `base × 2^(attempt − 1)`,
    /// at most the maximum backoff.
    pub fn backoff_after(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }

    /// Checks the options; the message names the key.
    pub(crate) fn check(&self) -> Result<(), String> {
        if let Some(why) = self.unsupported {
            return Err(format!("`services.worker.backend`: {why}"));
        }
        if self.concurrency == 0 {
            return Err("`services.worker.concurrency` must be at least 1".into());
        }
        if self.max_attempts == 0 {
            return Err("the worker's `max_attempts` must be at least 1".into());
        }
        if self.queue_capacity == 0 {
            return Err("`services.worker.queue_capacity` must be at least 1".into());
        }
        if let QueueBackend::Redis(_) = self.backend
            && !cfg!(feature = "redis")
        {
            return Err("`services.worker.backend: redis` needs xcore's `redis` feature".into());
        }
        if let QueueBackend::Postgres(_) | QueueBackend::Redis(_) = self.backend {
            if matches!(self.backend, QueueBackend::Postgres(_)) && !cfg!(feature = "postgres") {
                return Err(
                    "`services.worker.backend: postgres` needs xcore's `postgres` feature".into(),
                );
            }
            if self.lease < Duration::from_secs(1) {
                return Err("`services.worker.lease` must be at least 1s".into());
            }
            if self.poll_interval.is_zero() {
                return Err("`services.worker.poll_interval` must be above 0".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_the_config_section() {
        let mut config = WorkerConfig {
            max_retries: 2,
            backend: WorkerBackend::Postgres,
            ..WorkerConfig::default()
        };
        let options = WorkerOptions::from_config(&config);
        assert_eq!(options.max_attempts, 3);
        assert_eq!(
            options.backend,
            QueueBackend::Postgres(PostgresQueue::Database(None))
        );
        config.url = Some("postgres://h/db".into());
        let options = WorkerOptions::from_config(&config);
        assert_eq!(
            options.backend,
            QueueBackend::Postgres(PostgresQueue::Url("postgres://h/db".into()))
        );
        config.backend = WorkerBackend::Redis;
        config.url = Some("redis://h:6379/0".into());
        let options = WorkerOptions::from_config(&config);
        assert_eq!(
            options.backend,
            QueueBackend::Redis("redis://h:6379/0".into())
        );
        config.url = None;
        let err = WorkerOptions::from_config(&config).check().unwrap_err();
        assert!(err.contains("needs `services.worker.url`"), "{err}");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let o = WorkerOptions::memory().backoff(Duration::from_secs(1), Duration::from_secs(60));
        let waits: Vec<u64> = (1..=8).map(|a| o.backoff_after(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(o.backoff_after(u32::MAX), Duration::from_secs(60));
        assert!(WorkerOptions::memory().concurrency(0).check().is_err());
        assert!(WorkerOptions::memory().max_attempts(0).check().is_err());
    }
}
