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

/// Whether a database error with SQLSTATE `code` means the connection is unusable: a
/// connection exception (`08`), an operator intervention (`57`: the server shuts down or
/// terminated the session), insufficient resources (`53`), a system error (`58`), an
/// internal error (`XX`).
fn connection_lost(code: Option<&str>) -> bool {
    code.is_none_or(|code| {
        ["08", "57", "53", "58", "XX"]
            .iter()
            .any(|c| code.starts_with(c))
    })
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
        let fine = match &result {
            Ok(_) | Err(sqlx::Error::RowNotFound) => true,
            Err(sqlx::Error::Database(error)) => !connection_lost(error.code().as_deref()),
            Err(_) => false,
        };
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

#[cfg(test)]
mod tests {
    use sqlx::any::AnyPoolOptions;

    use super::*;

    /// The shared test server, if any (`XCORE_TEST_POSTGRES_URL`).
    async fn pool() -> Option<AnyPool> {
        let url = std::env::var("XCORE_TEST_POSTGRES_URL").ok()?;
        sqlx::any::install_default_drivers();
        Some(
            AnyPoolOptions::new()
                .max_connections(4)
                .connect(&url)
                .await
                .unwrap(),
        )
    }

    /// The server process of the connection a statement runs on.
    async fn pid(conns: &Conns) -> Result<i32, sqlx::Error> {
        let mut checkout = conns.checkout().await?;
        let result = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(checkout.conn())
            .await;
        checkout.done(result)
    }

    async fn terminate(pool: &AnyPool, pid: i32) {
        let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .fetch_one(pool)
            .await
            .unwrap();
        assert!(ended);
        // The backend is gone once the server says so.
        for _ in 0..100 {
            let alive: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = $1")
                    .bind(pid)
                    .fetch_one(pool)
                    .await
                    .unwrap();
            if alive == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("backend {pid} still alive");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kept_connections_serve_the_next_statements_and_lost_ones_are_replaced() {
        let Some(pool) = pool().await else {
            eprintln!("no XCORE_TEST_POSTGRES_URL: skipped");
            return;
        };
        let conns = Conns::new(pool.clone(), 2);
        let first = pid(&conns).await.unwrap();
        assert_eq!(pid(&conns).await.unwrap(), first, "the connection is kept");
        assert_eq!(pool.num_idle(), 0, "kept out of the pool");

        // Ended by the server and used at once: the statement fails, the connection is
        // closed, and the next statement runs on a new one.
        terminate(&pool, first).await;
        let error = pid(&conns).await.unwrap_err();
        assert!(
            !matches!(&error, sqlx::Error::Database(e) if !connection_lost(e.code().as_deref())),
            "{error}"
        );
        let second = pid(&conns).await.unwrap();
        assert_ne!(second, first);

        // Ended by the server while idle for over `IDLE_CHECK`: the ping before use finds
        // out, and the statement runs on a new connection.
        terminate(&pool, second).await;
        tokio::time::sleep(IDLE_CHECK + Duration::from_millis(100)).await;
        let third = pid(&conns).await.unwrap();
        assert_ne!(third, second);
        assert_eq!(pid(&conns).await.unwrap(), third);

        // A database error leaves the connection kept.
        let mut checkout = conns.checkout().await.unwrap();
        let result = sqlx::query("SELECT 1/0").execute(checkout.conn()).await;
        assert!(matches!(
            checkout.done(result),
            Err(sqlx::Error::Database(_))
        ));
        assert_eq!(pid(&conns).await.unwrap(), third);

        conns.close_kept().await;
        pool.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shared_pool_keeps_nothing_and_pids_are_only_learned_when_kept() {
        let Some(pool) = pool().await else {
            eprintln!("no XCORE_TEST_POSTGRES_URL: skipped");
            return;
        };
        let shared = Conns::new(pool.clone(), 0);
        let mut checkout = shared.checkout().await.unwrap();
        checkout.set_pid(42);
        checkout.done(Ok::<_, sqlx::Error>(())).unwrap();
        assert!(!shared.own_pids().contains(42));
        assert!(lock(&shared.kept).is_empty());

        let own = Conns::new(pool.clone(), 1);
        let mut checkout = own.checkout().await.unwrap();
        checkout.set_pid(43);
        checkout.done(Ok::<_, sqlx::Error>(())).unwrap();
        assert!(own.own_pids().contains(43));
        // Leaving the kept set, a connection's pid is forgotten.
        own.close_kept().await;
        assert!(!own.own_pids().contains(43));
        pool.close().await;
    }

    #[test]
    fn lost_connections_by_sqlstate() {
        assert!(connection_lost(Some("57P01")));
        assert!(connection_lost(Some("08006")));
        assert!(connection_lost(None));
        assert!(!connection_lost(Some("22012")));
        assert!(!connection_lost(Some("23505")));
    }
}
