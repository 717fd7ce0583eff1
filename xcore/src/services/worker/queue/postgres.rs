//! The durable queue: the table `xcore_tasks` of a Postgres database, claimed with
//! `SELECT … FOR UPDATE SKIP LOCKED` (or at the send, by a sender with a free slot), shared by
//! every instance that uses the database. Its statements run on [`Conns`].

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;
use sqlx::{AnyPool, Row, any::AnyRow};

use super::{
    Claim, Claimed, Counts, NewTask, Outcome, Queue, Scope, Wake,
    postgres_conn::{Conns, OwnPids},
    sql,
};
use crate::{
    TenantId, TraceContext, async_trait,
    services::worker::{
        TaskId, TaskInfo, TaskStatus, WorkerError, name::FullName, registry::Names,
    },
};

/// The durable queue.
pub(crate) struct PgQueue {
    conns: Conns,
    /// Notified by the listener on `xcore_tasks` (tasks pushed by any instance).
    woken: Arc<tokio::sync::Notify>,
    /// The names the consumer claims (set at each claim; `None` before the first): the
    /// listener wakes it for these names only.
    wanted: Arc<Wanted>,
    /// The listener task, when the queue listens.
    listener: Option<tokio::task::JoinHandle<()>>,
    /// Whether the pool is the queue's own (closed with it) or the `db` service's.
    owned: bool,
    /// This instance's mark on the tasks it claims.
    instance: String,
    lease: Duration,
    retention: Duration,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn id_of(id: i64) -> TaskId {
    TaskId::new(u64::try_from(id).unwrap_or(0))
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// A trace as stored: `<trace id>-<span id>` in hex.
fn trace_text(trace: &TraceContext) -> String {
    format!("{:032x}-{:016x}", trace.trace_id(), trace.span_id())
}

fn parse_trace(text: &str) -> Option<(u128, u64)> {
    let (trace, span) = text.split_once('-')?;
    Some((
        u128::from_str_radix(trace, 16).ok()?,
        u64::from_str_radix(span, 16).ok()?,
    ))
}

fn namespace_of<'a>(scope: &Scope<'a>) -> &'a str {
    scope.namespace.unwrap_or("")
}

fn tenant_of<'a>(scope: &Scope<'a>) -> &'a str {
    scope.tenant.map_or("", TenantId::as_str)
}

fn info(row: &AnyRow) -> Result<TaskInfo, WorkerError> {
    let bad = |what: &str| WorkerError::Backend {
        message: format!("a row of xcore_tasks holds an invalid {what}"),
    };
    let name: String = row.try_get("name")?;
    let name = FullName::parse(&name).map_err(|_| bad("name"))?;
    let tenant: String = row.try_get("tenant")?;
    let tenant = TenantId::new(&tenant).map_err(|_| bad("tenant"))?;
    let payload: String = row.try_get("payload")?;
    let attempts = count(row.try_get("attempts")?);
    let error = || -> Result<String, WorkerError> {
        Ok(row
            .try_get::<Option<String>, _>("last_error")?
            .unwrap_or_default())
    };
    let status: String = row.try_get("status")?;
    let status = match status.as_str() {
        "queued" if attempts > 0 => match row.try_get::<Option<String>, _>("last_error")? {
            Some(error) => TaskStatus::Failed { error, attempts },
            None => TaskStatus::Queued,
        },
        "queued" => TaskStatus::Queued,
        "running" => TaskStatus::Running { attempt: attempts },
        "succeeded" => {
            let result: Option<String> = row.try_get("result")?;
            TaskStatus::Succeeded {
                result: result
                    .map(|r| serde_json::from_str(&r).map_err(|_| bad("result")))
                    .transpose()?
                    .unwrap_or(Value::Null),
                attempts,
            }
        }
        "dead" => TaskStatus::Dead {
            error: error()?,
            attempts,
        },
        _ => return Err(bad("status")),
    };
    Ok(TaskInfo {
        id: id_of(row.try_get("id")?),
        name: name.local().to_owned(),
        plugin: name.plugin().map(str::to_owned),
        tenant,
        payload: serde_json::from_str(&payload).unwrap_or(Value::String(payload)),
        status,
        attempts,
        max_attempts: count(row.try_get("max_attempts")?),
        created_at: time(row.try_get("created_at")?),
        updated_at: time(row.try_get("updated_at")?),
        run_at: time(row.try_get("run_at")?),
    })
}

/// The names the consumer claims, for the listener.
#[derive(Default)]
struct Wanted(std::sync::Mutex<Option<Vec<Arc<str>>>>);

impl Wanted {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<Arc<str>>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a notification for a task named `name` (empty: unknown) may concern the
    /// consumer.
    fn wants(&self, name: &str) -> bool {
        name.is_empty()
            || self
                .lock()
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| **n == *name))
    }

    fn set(&self, names: &[Arc<str>]) {
        let mut wanted = self.lock();
        if wanted.as_deref() != Some(names) {
            *wanted = Some(names.to_vec());
        }
    }
}

/// Runs `$query.$method(connection)` on a connection of `$conns` ([`Conns`]), `?` on its
/// error.
macro_rules! on_conn {
    ($conns:expr, $query:expr, $method:ident) => {{
        let mut checkout = $conns.checkout().await?;
        let result = $query.$method(checkout.conn()).await;
        checkout.done(result)?
    }};
}

/// Listens on the channel `xcore_tasks` (the table's insert trigger notifies it with the
/// task's name) and wakes `woken` at each notification, except those of this instance's own
/// sends (`own`: they woke the consumer already) and those of names it has no handler for.
/// The connection is sqlx's `PgListener`: it reconnects by itself; while it cannot, the queue
/// is polled (every `poll_interval`) as before.
async fn listen(
    url: &str,
    woken: Arc<tokio::sync::Notify>,
    own: Arc<OwnPids>,
    wanted: Arc<Wanted>,
) -> Result<tokio::task::JoinHandle<()>, WorkerError> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen("xcore_tasks").await?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.recv().await {
                // A send of this instance woke its consumer already.
                Ok(note) if own.contains(note.process_id()) => {}
                // A task of a name this instance has no handler for.
                Ok(note) if !wanted.wants(note.payload()) => {}
                Ok(_) => woken.notify_one(),
                Err(error) => {
                    tracing::warn!(%error, "the worker's LISTEN connection failed; polling until it is back");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }))
}

impl PgQueue {
    /// The queue on `pool`; creates the table if missing (under an advisory lock, so that
    /// instances starting together do not race).
    pub(crate) async fn open(
        pool: AnyPool,
        owned: bool,
        lease: Duration,
        retention: Duration,
        keep: usize,
        listen_url: Option<&str>,
    ) -> Result<Self, WorkerError> {
        let mut tx = pool.begin().await?;
        sqlx::query(sql::LOCK_SCHEMA)
            .bind(sql::SCHEMA_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(sql::SCHEMA).execute(&mut *tx).await?;
        tx.commit().await?;
        let woken = Arc::new(tokio::sync::Notify::new());
        let conns = Conns::new(pool, if owned { keep } else { 0 });
        let wanted = Arc::new(Wanted::default());
        let listener = match listen_url {
            Some(url) => Some(listen(url, woken.clone(), conns.own_pids(), wanted.clone()).await?),
            None => None,
        };
        Ok(Self {
            conns,
            wanted,
            woken,
            listener,
            owned,
            instance: format!("{:016x}", fastrand::u64(..)),
            lease,
            retention,
        })
    }

    /// The task that already holds `task`'s idempotency key (its insert found the key taken).
    async fn by_key(&self, task: NewTask) -> Result<TaskId, WorkerError> {
        let existing: i64 = on_conn!(
            self.conns,
            sqlx::query_scalar(sql::BY_KEY)
                .bind(task.name.full.to_string())
                .bind(task.tenant.as_str().to_owned())
                .bind(task.key.unwrap_or_default()),
            fetch_one
        );
        Ok(id_of(existing))
    }

    fn claimed(row: &AnyRow) -> Result<Claimed, WorkerError> {
        let name: String = row.try_get("name")?;
        let tenant: String = row.try_get("tenant")?;
        let payload: String = row.try_get("payload")?;
        let trace: Option<String> = row.try_get("trace")?;
        Ok(Claimed {
            id: id_of(row.try_get("id")?),
            name: Arc::from(name),
            tenant: TenantId::new(&tenant).unwrap_or_default(),
            payload: serde_json::from_str(&payload)
                .map_err(|e| format!("the stored payload is not JSON: {e}")),
            attempt: count(row.try_get("attempts")?),
            max_attempts: count(row.try_get("max_attempts")?),
            trace: trace.as_deref().and_then(parse_trace),
        })
    }
}

#[async_trait]
impl Queue for PgQueue {
    async fn push(&self, task: NewTask) -> Result<TaskId, WorkerError> {
        let mut checkout = self.conns.checkout().await?;
        let inserted: Result<Option<(i64, i32)>, sqlx::Error> = sqlx::query_as(sql::INSERT)
            .bind(task.name.namespace().to_owned())
            .bind(task.name.full.to_string())
            .bind(task.tenant.as_str().to_owned())
            .bind(task.payload.to_string())
            .bind(i32::try_from(task.max_attempts).unwrap_or(i32::MAX))
            .bind(ms(task.delay))
            .bind(task.key.clone())
            .bind(task.trace.as_ref().map(trace_text))
            .fetch_optional(checkout.conn())
            .await;
        if let Ok(Some((_, pid))) = &inserted {
            checkout.set_pid(u32::try_from(*pid).unwrap_or(0));
        }
        let inserted = checkout.done(inserted)?.map(|(id, _)| id);
        if let Some(id) = inserted {
            return Ok(id_of(id));
        }
        // The key is known: the task it belongs to.
        self.by_key(task).await
    }

    fn claims_on_push(&self) -> bool {
        true
    }

    async fn push_claimed(&self, task: NewTask) -> Result<(TaskId, Option<Claimed>), WorkerError> {
        let max_attempts = i32::try_from(task.max_attempts).unwrap_or(i32::MAX);
        let inserted: Option<i64> = on_conn!(
            self.conns,
            sqlx::query_scalar(sql::INSERT_CLAIMED)
                .bind(task.name.namespace().to_owned())
                .bind(task.name.full.to_string())
                .bind(task.tenant.as_str().to_owned())
                .bind(task.payload.to_string())
                .bind(max_attempts)
                .bind(task.key.clone())
                .bind(task.trace.as_ref().map(trace_text))
                .bind(self.instance.clone())
                .bind(ms(self.lease)),
            fetch_optional
        );
        let Some(id) = inserted else {
            return Ok((self.by_key(task).await?, None));
        };
        let claimed = Claimed {
            id: id_of(id),
            name: task.name.full.clone(),
            tenant: task.tenant,
            payload: Ok(task.payload),
            attempt: 1,
            max_attempts: count(max_attempts),
            trace: task.trace.map(|t| (t.trace_id(), t.span_id())),
        };
        Ok((claimed.id, Some(claimed)))
    }

    async fn claim(&self, names: &Names, max: usize) -> Result<Vec<Claimed>, WorkerError> {
        if names.list.is_empty() || max == 0 {
            return Ok(Vec::new());
        }
        // Before the statement: a task queued after it notifies with these names known.
        self.wanted.set(&names.list);
        let rows = on_conn!(
            self.conns,
            sqlx::query(sql::CLAIM)
                .bind(names.joined.clone())
                .bind(i64::try_from(max).unwrap_or(i64::MAX))
                .bind(self.instance.clone())
                .bind(ms(self.lease)),
            fetch_all
        );
        rows.iter().map(Self::claimed).collect()
    }

    async fn finish(&self, claim: Claim, outcome: Outcome) -> Result<bool, WorkerError> {
        let id = i64::try_from(claim.id.get()).unwrap_or(i64::MAX);
        let attempt = i32::try_from(claim.attempt).unwrap_or(i32::MAX);
        let query = match outcome {
            Outcome::Succeeded(result) => sqlx::query(sql::SUCCEED).bind(result.to_string()),
            Outcome::Retry { error, after } => sqlx::query(sql::RETRY).bind(error).bind(ms(after)),
            Outcome::Dead(error) => sqlx::query(sql::DEAD).bind(error),
        };
        let done = on_conn!(
            self.conns,
            query.bind(id).bind(self.instance.clone()).bind(attempt),
            execute
        );
        Ok(done.rows_affected() == 1)
    }

    async fn release(&self, claim: Claim) -> Result<(), WorkerError> {
        on_conn!(
            self.conns,
            sqlx::query(sql::RELEASE)
                .bind(i64::try_from(claim.id.get()).unwrap_or(i64::MAX))
                .bind(self.instance.clone())
                .bind(i32::try_from(claim.attempt).unwrap_or(i32::MAX)),
            execute
        );
        Ok(())
    }

    async fn info(&self, id: TaskId, scope: Scope<'_>) -> Result<Option<TaskInfo>, WorkerError> {
        let Ok(id) = i64::try_from(id.get()) else {
            return Ok(None);
        };
        let row = on_conn!(
            self.conns,
            sqlx::query(sql::INFO)
                .bind(id)
                .bind(namespace_of(&scope).to_owned())
                .bind(tenant_of(&scope).to_owned()),
            fetch_optional
        );
        row.as_ref().map(info).transpose()
    }

    async fn dead(&self, scope: Scope<'_>, limit: usize) -> Result<Vec<TaskInfo>, WorkerError> {
        let rows = on_conn!(
            self.conns,
            sqlx::query(sql::DEAD_LETTERS)
                .bind(namespace_of(&scope).to_owned())
                .bind(tenant_of(&scope).to_owned())
                .bind(i64::try_from(limit).unwrap_or(i64::MAX)),
            fetch_all
        );
        rows.iter().map(info).collect()
    }

    async fn redrive(&self, id: TaskId, scope: Scope<'_>) -> Result<(), WorkerError> {
        let done = on_conn!(
            self.conns,
            sqlx::query(sql::REDRIVE)
                .bind(i64::try_from(id.get()).unwrap_or(i64::MAX))
                .bind(namespace_of(&scope).to_owned())
                .bind(tenant_of(&scope).to_owned()),
            execute
        );
        if done.rows_affected() == 1 {
            return Ok(());
        }
        match self.info(id, scope).await? {
            Some(task) => Err(WorkerError::NotDead {
                id,
                status: task.status.label(),
            }),
            None => Err(WorkerError::UnknownTask { id }),
        }
    }

    async fn counts(&self) -> Result<Counts, WorkerError> {
        let row = on_conn!(self.conns, sqlx::query(sql::COUNTS), fetch_one);
        let n = |i: usize| -> Result<u64, WorkerError> {
            Ok(u64::try_from(row.try_get::<i64, _>(i)?).unwrap_or(0))
        };
        Ok(Counts {
            ready: n(0)?,
            delayed: n(1)?,
            running: n(2)?,
            dead: n(3)?,
        })
    }

    fn wake(&self, _names: &Names) -> Wake {
        Wake::Poll
    }

    fn maintenance_interval(&self) -> Option<Duration> {
        Some(self.lease / 3)
    }

    async fn maintain(&self, inflight: &[Claim]) -> Result<(), WorkerError> {
        if !inflight.is_empty() {
            let ids: Vec<String> = inflight.iter().map(|c| c.id.get().to_string()).collect();
            let attempts: Vec<String> = inflight.iter().map(|c| c.attempt.to_string()).collect();
            on_conn!(
                self.conns,
                sqlx::query(sql::EXTEND)
                    .bind(ms(self.lease))
                    .bind(self.instance.clone())
                    .bind(ids.join(","))
                    .bind(attempts.join(",")),
                execute
            );
        }
        let requeued = on_conn!(self.conns, sqlx::query(sql::REQUEUE), execute);
        if requeued.rows_affected() > 0 {
            tracing::warn!(
                tasks = requeued.rows_affected(),
                "tasks whose instance stopped renewing their lease are delivered again"
            );
        }
        let reaped = on_conn!(self.conns, sqlx::query(sql::REAP), execute);
        if reaped.rows_affected() > 0 {
            tracing::warn!(
                tasks = reaped.rows_affected(),
                "tasks whose last attempt lost its lease became dead letters"
            );
        }
        on_conn!(
            self.conns,
            sqlx::query(sql::PURGE).bind(ms(self.retention)),
            execute
        );
        Ok(())
    }

    fn woken(&self) -> Option<Arc<tokio::sync::Notify>> {
        self.listener.as_ref().map(|_| self.woken.clone())
    }

    async fn close(&self) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
        self.conns.close_kept().await;
        if self.owned {
            self.conns.pool().close().await;
        }
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use sqlx::{AnyPool, any::AnyPoolOptions};

    use super::{PgQueue, Wanted};
    use crate::{
        TenantId,
        services::worker::{
            name::FullName,
            queue::{NewTask, Outcome, Queue},
        },
    };

    #[test]
    fn the_listener_wants_the_names_last_claimed() {
        let wanted = Wanted::default();
        assert!(wanted.wants("@host.a"), "every name before the first claim");
        wanted.set(&[Arc::from("@host.a"), Arc::from("p.b")]);
        assert!(wanted.wants("@host.a") && wanted.wants("p.b"));
        assert!(!wanted.wants("@host.c"));
        assert!(wanted.wants(""), "a notification without a name");
        wanted.set(&[Arc::from("@host.c")]);
        assert!(wanted.wants("@host.c") && !wanted.wants("@host.a"));
    }

    /// Drops the database `name` made by [`database`].
    async fn drop_database(name: &str) {
        let url = std::env::var("XCORE_TEST_POSTGRES_URL").unwrap();
        let admin = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&admin)
        .await
        .unwrap();
        admin.close().await;
    }

    /// A fresh database on the shared test server (`XCORE_TEST_POSTGRES_URL`), if any: its
    /// name, URL and a pool on it.
    async fn database() -> Option<(String, String, AnyPool)> {
        let url = std::env::var("XCORE_TEST_POSTGRES_URL").ok()?;
        sqlx::any::install_default_drivers();
        let admin = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let name = format!("xcore_pgq_{:016x}", fastrand::u64(..));
        // The name is ours: `xcore_pgq_` and hex digits.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let (base, query) = url.split_once('?').unwrap_or((&url, ""));
        let authority = base.find("://").map_or(0, |i| i + 3);
        let root = match base[authority..].find('/') {
            Some(slash) => &base[..authority + slash],
            None => base,
        };
        let url = if query.is_empty() {
            format!("{root}/{name}")
        } else {
            format!("{root}/{name}?{query}")
        };
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap();
        Some((name, url, pool))
    }

    fn task(key: Option<&str>) -> NewTask {
        NewTask {
            name: FullName::parse("@host.mail").unwrap(),
            tenant: TenantId::default(),
            payload: serde_json::json!({"to": "ann"}),
            max_attempts: 3,
            delay: Duration::ZERO,
            key: key.map(str::to_owned),
            trace: None,
        }
    }

    /// A task claimed at the send is stored `running` under this instance's lease, notifies
    /// nobody, and its outcome is recorded; a known key returns the existing task, unclaimed.
    /// A queued task notifies with its name.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_task_claimed_at_the_send_is_leased_and_notifies_nobody() {
        let Some((name, url, pool)) = database().await else {
            eprintln!("no XCORE_TEST_POSTGRES_URL: skipped");
            return;
        };
        let lease = Duration::from_secs(30);
        let queue = PgQueue::open(pool.clone(), true, lease, lease, 2, None)
            .await
            .unwrap();
        let mut listener = sqlx::postgres::PgListener::connect(&url).await.unwrap();
        listener.listen("xcore_tasks").await.unwrap();

        let (id, claimed) = queue.push_claimed(task(Some("k"))).await.unwrap();
        let claimed = claimed.expect("claimed at the send");
        assert_eq!(
            (claimed.id, claimed.attempt, claimed.max_attempts),
            (id, 1, 3)
        );
        assert_eq!(&*claimed.name, "@host.mail");
        assert_eq!(claimed.payload, Ok(serde_json::json!({"to": "ann"})));
        let (status, attempts, locked_by, leased_ms): (String, i32, String, i64) = sqlx::query_as(
            "SELECT status, attempts, locked_by, locked_until - updated_at \
                 FROM xcore_tasks WHERE id = $1",
        )
        .bind(i64::try_from(id.get()).unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            (status.as_str(), attempts, locked_by.as_str(), leased_ms),
            ("running", 1, queue.instance.as_str(), 30_000)
        );
        // The same key: the existing task, no second claim.
        let (again, none) = queue.push_claimed(task(Some("k"))).await.unwrap();
        assert_eq!(again, id);
        assert!(none.is_none());

        // A queued task notifies, with its name; the claimed one did not.
        let queued = queue.push(task(None)).await.unwrap();
        assert_ne!(queued, id);
        let note = tokio::time::timeout(Duration::from_secs(5), listener.recv())
            .await
            .expect("a notification")
            .unwrap();
        assert_eq!(note.payload(), "@host.mail");
        assert!(
            tokio::time::timeout(Duration::from_millis(300), listener.recv())
                .await
                .is_err(),
            "one notification only"
        );

        assert!(
            queue
                .finish(claimed.claim(), Outcome::Succeeded(serde_json::json!(1)))
                .await
                .unwrap()
        );
        let status: String = sqlx::query_scalar("SELECT status FROM xcore_tasks WHERE id = $1")
            .bind(i64::try_from(id.get()).unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(status, "succeeded");
        queue.close().await;
        pool.close().await;
        drop(listener);
        drop_database(&name).await;
    }

    #[test]
    fn traces_round_trip() {
        let trace = crate::TraceContext::new_root();
        let back = super::parse_trace(&super::trace_text(&trace)).unwrap();
        assert_eq!(back, (trace.trace_id(), trace.span_id()));
        assert!(super::parse_trace("nonsense").is_none());
    }
}
