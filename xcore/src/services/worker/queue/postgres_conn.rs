//! The connections the durable queue runs its statements on: [`Conns`].
//!
//! A statement on a sqlx pool costs up to three round trips: the pool pings an idle connection
//! before handing it out (`test_before_acquire`), the statement, and a ping when the connection
//! goes back (always, in a background task). On the queue's own pool (`services.worker.url`)
//! the queue keeps the connections it used, out of the pool, and runs its next statements on
//! them: one round trip per statement.
//!
//! | case | what happens |
//! |---|---|
//! | a kept connection used within 1 s | the statement runs on it at once |
//! | a kept connection idle for 1 s or more | pinged first; if that fails, closed, and the next one is tried |
//! | a kept connection older than 10 min | given back to the pool (which retires connections by age) |
//! | a statement fails on the connection (I/O, protocol) | the connection is closed, never kept |
//! | a statement fails in the database (a constraint, …) | the connection is kept (it is fine) |
//! | a statement is dropped half-way (its caller gave up) | the connection goes back to the pool, whose ping on release cleans it up |
//! | none kept | one from the pool, with its checks |
//! | the `db` service's pool (shared with the application) | nothing is kept: each statement borrows a connection from the pool |
//!
//! The queue also learns the server-side process id of each kept connection that inserted a
//! task (the insert returns `pg_backend_pid()`): the `LISTEN` connection then skips the
//! notifications of this instance's own sends, which woke its consumer already.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use sqlx::{Any, AnyConnection, AnyPool, Connection, pool::PoolConnection};
use tokio::time::Instant;

/// A kept connection idle for this long is pinged before use.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// A kept connection held for this long goes back to the pool.
const MAX_HELD: Duration = Duration::from_secs(600);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connection kept between statements.
struct Kept {
    conn: PoolConnection<Any>,
    /// Its server process id, once an insert returned it.
    pid: Option<u32>,
    /// When it was taken from the pool.
    since: Instant,
    /// When its last statement ended.
    used: Instant,
}

/// The server process ids of the kept connections that sent tasks: the notifications they
/// cause are this instance's own.
#[derive(Default)]
pub(super) struct OwnPids(Mutex<HashSet<u32>>);

impl OwnPids {
    /// Whether a notification from `pid` comes from one of this instance's sends.
    pub(super) fn contains(&self, pid: u32) -> bool {
        lock(&self.0).contains(&pid)
    }

    fn insert(&self, pid: u32) {
        lock(&self.0).insert(pid);
    }

    fn remove(&self, pid: Option<u32>) {
        if let Some(pid) = pid {
            lock(&self.0).remove(&pid);
        }
    }
}

/// The queue's connections: its pool, and the connections it keeps out of it.
pub(super) struct Conns {
    pool: AnyPool,
    /// At most `keep`, the most recently used last.
    kept: Mutex<Vec<Kept>>,
    keep: usize,
    pids: Arc<OwnPids>,
}

impl Conns {
    /// The connections of `pool`, keeping at most `keep` of them between statements (0: the
    /// pool is shared, nothing is kept).
    pub(super) fn new(pool: AnyPool, keep: usize) -> Self {
        Self {
            pool,
            kept: Mutex::new(Vec::with_capacity(keep)),
            keep,
            pids: Arc::default(),
        }
    }

    pub(super) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The process ids of this instance's sending connections (for the listener).
    pub(super) fn own_pids(&self) -> Arc<OwnPids> {
        self.pids.clone()
    }

    /// A connection for one statement: a kept one if any (checked if it was idle), else one
    /// from the pool.
    pub(super) async fn checkout(&self) -> Result<Checkout<'_>, sqlx::Error> {
        loop {
            let Some(mut kept) = lock(&self.kept).pop() else {
                break;
            };
            if kept.since.elapsed() >= MAX_HELD {
                self.pids.remove(kept.pid);
                continue; // dropped: back to the pool
            }
            if kept.used.elapsed() >= IDLE_CHECK && kept.conn.ping().await.is_err() {
                self.pids.remove(kept.pid);
                kept.conn.close_on_drop();
                continue;
            }
            return Ok(Checkout {
                conns: self,
                conn: Some(kept.conn),
                pid: kept.pid,
                since: kept.since,
            });
        }
        let conn = self.pool.acquire().await?;
        Ok(Checkout {
            conns: self,
            conn: Some(conn),
            pid: None,
            since: Instant::now(),
        })
    }

    /// Closes the kept connections (before the pool closes: it waits for them).
    pub(super) async fn close_kept(&self) {
        let kept = std::mem::take(&mut *lock(&self.kept));
        for kept in kept {
            let _ = kept.conn.close().await;
        }
        lock(&self.pids.0).clear();
    }

    fn keep(&self, kept: Kept) {
        let mut list = lock(&self.kept);
        if list.len() < self.keep {
            list.push(kept);
        } else {
            drop(list);
            self.pids.remove(kept.pid);
        }
    }
}

/// A connection checked out for one statement. Dropped without [`done`](Self::done) (the
/// statement was cancelled), it goes back to the pool.
pub(super) struct Checkout<'a> {
    conns: &'a Conns,
    conn: Option<PoolConnection<Any>>,
    pid: Option<u32>,
    since: Instant,
}

impl Checkout<'_> {
    /// The connection.
    pub(super) fn conn(&mut self) -> &mut AnyConnection {
        self.conn
            .as_deref_mut()
            .expect("a checkout holds its connection until done")
    }

    /// The connection's server process id, as an insert on it returned it.
    pub(super) fn set_pid(&mut self, pid: u32) {
        if self.conns.keep > 0 {
            self.pid = Some(pid);
            self.conns.pids.insert(pid);
        }
    }

    /// Ends the statement whose result is `result`: the connection is kept if it is fine,
    /// closed if the statement failed on it.
    pub(super) fn done<T>(mut self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        let Some(mut conn) = self.conn.take() else {
            return result;
        };
        let fine = matches!(
            &result,
            Ok(_) | Err(sqlx::Error::Database(_) | sqlx::Error::RowNotFound)
        );
        if !fine {
            self.conns.pids.remove(self.pid);
            conn.close_on_drop();
        } else if self.conns.keep > 0 {
            self.conns.keep(Kept {
                conn,
                pid: self.pid,
                since: self.since,
                used: Instant::now(),
            });
        }
        result
    }
}

impl Drop for Conns {
    /// Outside a runtime (the queue dropped without being closed), the kept connections are
    /// detached from the pool (a pooled connection dropped there would panic: its return to the
    /// pool is a task).
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_err() {
            for kept in std::mem::take(&mut *lock(&self.kept)) {
                drop(kept.conn.detach());
            }
        }
    }
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        if self.conn.is_some() {
            self.conns.pids.remove(self.pid);
        }
    }
}
