//! The task worker: named background tasks of plugins and of the host, with typed payloads,
//! retries with exponential backoff, dead letters, a concurrency limit, in process or shared
//! by several instances through Postgres or Redis Streams.
//!
//! The pieces:
//! - [`WorkerService`], the `worker` service a host registers, built from [`WorkerOptions`]
//!   (the `services.worker` section of the config, [`WorkerConfig`]);
//! - [`Worker`], the handle a plugin gets with `ctx.handle::<Worker>()`, or bound to a call
//!   with `cx.handle::<Worker>().await` ([`plugin::handle`](crate::plugin::handle); it declares
//!   `services = ["worker"]` and holds `service:worker: execute`) and the host with
//!   `xcore.handle::<Worker>()`: `register`, `send`, `send_with`, `status`,
//!   `result`, `wait`, `dead_letters`, `redrive`, `for_tenant`, `for_call`;
//! - [`TaskContext`] (what a handler receives besides its payload), [`TaskError`] (what it
//!   returns), [`SendOptions`], [`TaskId`], [`TaskStatus`], [`TaskInfo`], [`WorkerError`].
//!
//! ```
//! use std::time::Duration;
//! use serde::{Deserialize, Serialize};
//! use xcore::prelude::*;
//! use xcore::services::worker::{SendOptions, TaskError, Worker, WorkerOptions, WorkerService};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Welcome {
//!     email: String,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let options = WorkerOptions::memory().backoff(Duration::from_millis(10), Duration::from_secs(1));
//! let xcore = Xcore::builder().without_registered().service(WorkerService::new(options)?).build()?;
//! xcore.boot().await?;
//! let worker = xcore.handle::<Worker>()?;
//! worker.register("send_welcome", |task, w: Welcome| async move {
//!     if task.attempt() < 2 {
//!         return Err(TaskError::msg("smtp server busy")); // retried after the backoff
//!     }
//!     Ok(format!("welcomed {}", w.email))
//! })?;
//! let welcome = Welcome { email: "ada@example.com".into() };
//! let once = SendOptions::new().idempotency_key("welcome:ada");
//! let id = worker.send_with("send_welcome", &welcome, once.clone()).await?;
//! assert_eq!(worker.send_with("send_welcome", &welcome, once).await?, id); // deduplicated
//! assert!(worker.wait(id, Duration::from_secs(5)).await?.is_finished());
//! assert_eq!(worker.result::<String>(id).await?.as_deref(), Some("welcomed ada@example.com"));
//! xcore.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Names and tenants
//!
//! Task names are namespaced by plugin: a plugin registers and sends `send_welcome`, queued
//! as `mailer.send_welcome`; the host's own tasks are `@host.<name>`, and the host's handle
//! reaches any plugin's task by its full name. A task runs for the tenant of the handle that
//! sent it ([`Worker::for_tenant`], or [`Worker::for_call`] to take the tenant and the trace
//! of the call being served); its handler sees it in [`TaskContext::tenant`] and in the
//! [`CallContext`](crate::CallContext) it calls other plugins with.
//!
//! # Retries and dead letters
//!
//! An attempt fails when its handler returns an error, panics, or runs longer than the
//! worker's timeout (5 min by default). A failed attempt is retried after
//! `backoff × 2^(attempt − 1)`, at most `max_backoff` (1 s, 2 s, 4 s, … up to 5 min by
//! default), until the task's `max_attempts` (by default `max_retries + 1` = 4). A task whose
//! last attempt failed, or that failed [permanently](TaskError::permanent) — including a
//! payload its handler cannot read, which no retry fixes — becomes a **dead letter**: listed by
//! [`Worker::dead_letters`], sent back with its attempts reset by [`Worker::redrive`]. A
//! panicking handler only fails its attempt; the worker goes on.
//!
//! # Concurrency, the in-process queue, shutdown
//!
//! At most `concurrency` attempts run at once per worker service (per process). The
//! in-process queue (the default) is **bounded**: `queue_capacity` tasks queued, delayed or
//! running. A send to a full queue fails at once with [`WorkerError::QueueFull`] (mapped to
//! the call error `overloaded`): it never waits and never drops a task silently; the sender
//! decides (retry later, shed the request). Finished tasks are kept for `status` up to
//! `keep_finished` succeeded ones and as many dead letters (the oldest are forgotten first),
//! so memory stays bounded. Everything in it is lost when the process ends.
//!
//! `shutdown` stops claiming tasks, waits for the attempts in flight at most
//! `shutdown_timeout`, then interrupts the rest and puts them back in the queue with their
//! attempt not counted. When a plugin stops, its handlers are unregistered and its attempts in
//! flight drained the same way; **its queued tasks stay queued**: they run when a handler of
//! that name is registered again — in this process, or in another instance of a durable queue.
//!
//! # The durable queue (Postgres)
//!
//! With the backend `postgres` (feature `postgres`), tasks live in the table `xcore_tasks`
//! (created if missing: id, plugin, name, tenant, payload as JSON text, status, attempts,
//! max_attempts, run_at, locked_by, locked_until, last_error, result, idempotency_key, trace,
//! created_at, updated_at; times in milliseconds on the database server's clock). Every
//! instance pointed at the same database shares one queue: each claims due tasks of the names
//! it has handlers for with `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)`, so no
//! two instances claim the same task, and a task sent before a restart runs after it.
//!
//! **Wake-ups.** An insert trigger on the table notifies the channel `xcore_tasks` with the
//! task's name, and every instance `LISTEN`s on it (a connection of its own, sqlx's
//! `PgListener`, which reconnects by itself): a task sent on any instance wakes the instances
//! that have a handler for its name at once, not at their next poll. Polling (`poll_interval`) stays, for delayed tasks coming due, retries,
//! expired leases, and while the listening connection is down.
//!
//! **Claimed at the send.** A task due now, sent on an instance that has its handler and a
//! free slot (fewer than `concurrency` attempts in flight), is inserted already claimed by
//! that instance (`running`, its lease set, attempt 1) and its attempt starts at once: no
//! claim statement, and no notification (the trigger notifies queued tasks only). Such a
//! task may start ahead of older queued tasks of its name that no instance has claimed yet
//! (the sender's consumer claims those as soon as it is woken or polls). Otherwise (a delay,
//! no handler here, every slot busy) the task is queued and claimed as above.
//!
//! **Round trips per task** (one statement each): run where it was sent, 2 (the claimed
//! insert, the outcome); run elsewhere, 3 (the insert with its notification, a claim of up to
//! `concurrency` tasks, the outcome). On its own pool (`url`), the queue keeps the
//! connections it used between statements, so that a statement is one round trip (a sqlx pool
//! pings a connection when handing it out and when taking it back); one idle for a second is
//! pinged before use, one that failed is closed. On the `db` service's pool (shared with the
//! application), each statement borrows a connection from the pool, with its checks.
//! The `LISTEN` connection skips the notifications of its own instance's sends (by server
//! process id), which woke its consumer already, and those of names it has no handler for.
//!
//! A claim takes a **lease** (`lease`, 30 s by default), renewed every third of it while the
//! attempt runs: only the attempts actually in flight in the instance are renewed (by task id
//! and attempt), never every task it ever marked. When an instance dies, its leases expire and
//! its tasks are delivered again (the interrupted attempt counts; if it was the last one, the
//! task becomes a dead letter). When an instance loses the database while an attempt runs and
//! cannot record its outcome, the attempt is no longer in flight, its lease is no longer
//! renewed and expires: the task is delivered again (here or elsewhere) once the database is
//! back, so no task stays `running` longer than a lease after its attempt ended. An
//! attempt that lost its lease cannot record its outcome any more (its updates are fenced by
//! instance and attempt). Idle instances poll every `poll_interval` (250 ms); a send wakes the
//! sending instance at once (or, claimed at the send, runs there). Succeeded tasks are deleted `retention` (7 days) after they finish.
//!
//! # The Redis Streams queue
//!
//! With the backend `redis` (feature `redis`, `url: redis://…`, Redis 6.2 or later), every
//! instance pointed at the same server shares one queue. Keys share the hash tag
//! `{xcore:tasks}`; each step that touches several keys is one Lua script (atomic, on the
//! server's clock):
//!
//! - a task is a hash `{xcore:tasks}:t:<id>` (name, tenant, payload, attempts, status, times,
//!   last error, result, trace; ids from `INCR`) and, while it is ready or running, one
//!   entry of the **stream of its name** `{xcore:tasks}:s:<name>`. Each stream has the
//!   **consumer group** `xcore`; each instance is a consumer of it, and reads only the
//!   streams of the names it has handlers for;
//! - **wake-ups**: an idle instance waits in `XREADGROUP … BLOCK` (at most 1 s, less when a
//!   delayed task or a lease check is due sooner) on a connection of its own: an `XADD` by
//!   any instance wakes it at once, no polling. A registration, a retry and shutdown
//!   interrupt the wait (`CLIENT UNBLOCK`);
//! - **success**: `XACK` + `XDEL` (the stream holds only tasks ready or running, so it needs no
//!   `MAXLEN`: trimming would drop tasks); the hash keeps the result and expires `retention`
//!   after;
//! - **retries** wait in the sorted set `{xcore:tasks}:delayed` (by due time), as do tasks
//!   sent with a delay; a script moves those due back to their stream, run before each
//!   claim and by the lease renewal;
//! - **leases**: an entry read and not acknowledged stays in its consumer's pending list;
//!   while its attempt runs, the instance renews it every third of the `lease` (`XCLAIM …
//!   JUSTID`, only for the attempts in flight there, fenced by consumer and attempt). An
//!   entry idle longer than the lease (its instance died, or lost Redis) is **reclaimed**
//!   with `XAUTOCLAIM` by another instance: the interrupted attempt counts; if it was the
//!   last, the task becomes a dead letter;
//! - **dead letters**: the sorted set `{xcore:tasks}:dead` (by time), listed by
//!   [`Worker::dead_letters`] and re-driven by [`Worker::redrive`] from any instance; kept
//!   until re-driven;
//! - **idempotency keys**: a key with a TTL (`SET … PX retention`), looked up and set by the
//!   send's script, atomically: the same key for the same name and tenant, sent from any
//!   instance, returns the first task's id for `retention` after the send;
//! - `queue_capacity` bounds the tasks queued, delayed or running (`queue_full`);
//! - the key names are fixed: applications that must not share a queue use Redis databases
//!   of their own (`redis://host:6379/3`).
//!
//! **Outages.** Every command is bounded (2 s; the blocking read 1 s + 2 s). While Redis is
//! unreachable, sends fail at once with [`WorkerError::Backend`] (the task was not queued,
//! the sender decides), the worker's health is degraded, nothing panics; the consumer tries
//! again every `poll_interval`, reconnects by itself and reloads its scripts: health is
//! healthy again with no restart. An attempt that ended during the outage cannot record its
//! outcome: its entry stays pending and is delivered again after the lease (it may run
//! twice). What Redis acknowledged (an `XADD`, an outcome) survives a restart of Redis only
//! as far as Redis persists it: with `appendonly yes` and `appendfsync always`, nothing
//! acknowledged is lost; without persistence, a restarted Redis has forgotten every task.
//!
//! # The backends side by side
//!
//! | | `memory` | `postgres` | `redis` |
//! |---|---|---|---|
//! | shared by instances | no | yes (one table) | yes (one server) |
//! | survives a restart | no | yes | as far as Redis persists |
//! | delivery | at least once (never re-delivered across a crash) | at least once | at least once |
//! | claim | in process | `FOR UPDATE SKIP LOCKED`, or at the send (a free slot here) | consumer group (`XREADGROUP`) |
//! | wake-ups | in process | `LISTEN`/`NOTIFY`, and polling (`poll_interval`) | blocking `XREADGROUP` (≤ 1 s) |
//! | lease | none | `lease`, renewed while running | `lease`, renewed while running (`XCLAIM … JUSTID`) |
//! | reclaim of a dead instance's tasks | none | `locked_until` expired | `XAUTOCLAIM` idle ≥ `lease` |
//! | delayed tasks, retries | in process | `run_at` | sorted set, moved back by a script |
//! | dead letters | last `keep_finished` | rows, kept | sorted set, kept |
//! | idempotency keys | while the task is kept | unique index, until `retention` deletes the task | a key with a TTL, `retention` after the send |
//! | bound | `queue_capacity` | none (the database) | `queue_capacity` |
//!
//! # Delivery guarantee and idempotency
//!
//! Delivery is **at least once**. A task runs to success once in the common case, but it can
//! run again: after a failed attempt (by design), and on a durable queue when the instance
//! running it dies or loses the database before recording the outcome (its lease expires and
//! another instance runs it; on Redis Streams, the same after the lease). The in-process
//! queue never re-delivers across a crash: its tasks are lost with the process. So:
//!
//! - **Handlers should be idempotent**: use [`TaskContext::id`] (stable across attempts and
//!   re-deliveries) as the key of their side effects (`INSERT … ON CONFLICT (task_id) DO
//!   NOTHING`, an idempotency header to a payment API).
//! - **Sends are deduplicated by idempotency key** ([`SendOptions::idempotency_key`]): a send
//!   with a key already known for the same task name and tenant returns the existing task's id
//!   and queues nothing, as long as the queue remembers that task (in process: while it is kept;
//!   Postgres: a unique index, until `retention` deletes the succeeded task; Redis: a key
//!   with a TTL, `retention` after the send).

mod access;
mod engine;
mod error;
mod handle;
mod id;
mod name;
#[cfg(feature = "postgres")]
mod open_postgres;
mod options;
mod queue;
mod registry;
mod run;
mod send;
mod service;
mod status;
mod task;

pub use error::{TaskError, WorkerError};
pub use handle::{DEAD_LETTERS_PAGE, Worker};
pub use id::TaskId;
pub use name::MAX_TASK_NAME_LEN;
pub use options::{PostgresQueue, QueueBackend, WorkerBackend, WorkerConfig, WorkerOptions};
pub use send::{MAX_IDEMPOTENCY_KEY_LEN, SendOptions};
pub use service::WorkerService;
pub use status::{TaskInfo, TaskStatus};
pub use task::TaskContext;
