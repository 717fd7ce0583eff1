//! The queues tasks wait in: [`Queue`], implemented in process ([`memory`]), on Postgres
//! ([`postgres`], feature `postgres`) and on Redis Streams ([`redis`], feature `redis`).

use std::{sync::Arc, time::Duration};

use serde_json::Value;
use tokio::time::Instant;

use super::{TaskId, TaskInfo, WorkerError, name::FullName, registry::Names};
use crate::{TenantId, TraceContext, async_trait};

pub(crate) mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "postgres")]
mod postgres_conn;
#[cfg(feature = "redis")]
pub(crate) mod redis;
#[cfg(feature = "redis")]
mod redis_lua;
#[cfg(feature = "postgres")]
mod sql;

/// A task to queue.
pub(crate) struct NewTask {
    pub(crate) name: FullName,
    pub(crate) tenant: TenantId,
    pub(crate) payload: Value,
    pub(crate) max_attempts: u32,
    pub(crate) delay: Duration,
    pub(crate) key: Option<String>,
    pub(crate) trace: Option<TraceContext>,
}

/// A task claimed for one attempt.
pub(crate) struct Claimed {
    pub(crate) id: TaskId,
    /// The full name.
    pub(crate) name: Arc<str>,
    pub(crate) tenant: TenantId,
    /// The payload, or why it cannot be read (a durable row edited by hand).
    pub(crate) payload: Result<Value, String>,
    pub(crate) attempt: u32,
    pub(crate) max_attempts: u32,
    /// The trace id and span id of the call that sent the task.
    pub(crate) trace: Option<(u128, u64)>,
}

impl Claimed {
    pub(crate) fn claim(&self) -> Claim {
        Claim {
            id: self.id,
            attempt: self.attempt,
        }
    }
}

/// What finishing or releasing an attempt refers to: the task and the attempt (the fencing
/// token: an attempt whose lease was lost and re-delivered can no longer finish the task).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claim {
    pub(crate) id: TaskId,
    pub(crate) attempt: u32,
}

/// How an attempt ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Succeeded(Value),
    Retry { error: String, after: Duration },
    Dead(String),
}

/// Which tasks a handle sees: a plugin's in one tenant, or (the host) every task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope<'a> {
    /// The namespace (a plugin's name); `None`: every namespace.
    pub(crate) namespace: Option<&'a str>,
    /// The tenant; `None`: every tenant.
    pub(crate) tenant: Option<&'a TenantId>,
}

impl Scope<'_> {
    pub(crate) fn sees(&self, name: &FullName, tenant: &TenantId) -> bool {
        self.namespace.is_none_or(|n| n == name.namespace())
            && self.tenant.is_none_or(|t| t == tenant)
    }
}

/// Task counts, for health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Queued and due.
    pub(crate) ready: u64,
    /// Queued with a delay or a backoff still to wait.
    pub(crate) delayed: u64,
    /// Claimed (by any instance, for a shared queue).
    pub(crate) running: u64,
    /// Dead letters.
    pub(crate) dead: u64,
}

/// When the consumer should look again.
pub(crate) enum Wake {
    /// At this instant (the next delayed task), or earlier if woken.
    At(Instant),
    /// Only when woken (a send, a registration).
    Woken,
    /// After the poll interval (a queue shared with other processes).
    Poll,
}

/// A queue of tasks.
#[async_trait]
pub(crate) trait Queue: Send + Sync + 'static {
    /// Queues a task (or, with an idempotency key already known, returns its task's id).
    async fn push(&self, task: NewTask) -> Result<TaskId, WorkerError>;

    /// Whether [`push_claimed`](Self::push_claimed) claims the task it queues (a shared queue,
    /// where a claim costs a round trip of its own).
    fn claims_on_push(&self) -> bool {
        false
    }

    /// Queues a task already claimed by this instance for its first attempt (it has a free
    /// slot and a handler for it); with an idempotency key already known, the existing task's
    /// id and no claim.
    async fn push_claimed(&self, task: NewTask) -> Result<(TaskId, Option<Claimed>), WorkerError> {
        Ok((self.push(task).await?, None))
    }

    /// Claims at most `max` due tasks of `names` (oldest due first), counting an attempt.
    async fn claim(&self, names: &Names, max: usize) -> Result<Vec<Claimed>, WorkerError>;

    /// Records how an attempt ended; `false` if the attempt no longer holds the task (its
    /// lease expired and it was delivered again).
    async fn finish(&self, claim: Claim, outcome: Outcome) -> Result<bool, WorkerError>;

    /// Puts a claimed task back, its attempt not counted (an interrupted attempt).
    async fn release(&self, claim: Claim) -> Result<(), WorkerError>;

    /// A task, if `scope` sees it.
    async fn info(&self, id: TaskId, scope: Scope<'_>) -> Result<Option<TaskInfo>, WorkerError>;

    /// The oldest `limit` dead letters `scope` sees.
    async fn dead(&self, scope: Scope<'_>, limit: usize) -> Result<Vec<TaskInfo>, WorkerError>;

    /// Queues a dead letter again, with its attempts reset.
    async fn redrive(&self, id: TaskId, scope: Scope<'_>) -> Result<(), WorkerError>;

    /// Counts, for health.
    async fn counts(&self) -> Result<Counts, WorkerError>;

    /// When the consumer should look for tasks of `names` again.
    fn wake(&self, names: &Names) -> Wake;

    /// Notified when another instance (or this one) pushed a task, for a queue that can tell
    /// (Postgres: `LISTEN xcore_tasks`); `None` for one that is only polled.
    fn woken(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }

    /// Interrupts a claim waiting on the server (Redis: a blocking `XREADGROUP`), so that the
    /// consumer looks again at once: its names changed, a retry came due sooner, it stops.
    fn unblock(&self) {}

    /// How often [`maintain`](Self::maintain) must run; `None`: never.
    fn maintenance_interval(&self) -> Option<Duration> {
        None
    }

    /// Renews the leases of `inflight`, the attempts actually running in this process (never
    /// every task marked with this instance: one whose attempt was lost, in a crash or an
    /// outage, must see its lease expire), puts back the tasks whose lease expired, and the
    /// like.
    async fn maintain(&self, inflight: &[Claim]) -> Result<(), WorkerError> {
        let _ = inflight;
        Ok(())
    }

    /// Releases the queue's resources.
    async fn close(&self) {}

    /// `memory`, `postgres` or `redis`.
    fn kind(&self) -> &'static str;
}
