//! Databases (sqlx): named connections, read-only handles for read grants, transactions,
//! per-plugin migrations.
//!
//! One service, named `db`, holds every connection of `services.databases` (features `sqlite`,
//! the default, and `postgres`). A plugin that declares `services = ["db"]` obtains a
//! connection with `ctx.named::<Db>(name)` (`ctx.handle::<Db>()` for `default`), or, inside a
//! call, with `cx.handle::<Db>().await`: the call's tenant's database (see
//! [`plugin::handle`](crate::plugin::handle)):
//!
//! | grant on `db.<connection>` | handle |
//! |---|---|
//! | `read` | read-only, below SQL: SQLite opens its files (and in-memory databases) with `SQLITE_OPEN_READONLY`; Postgres connects as a login with read privileges only (see [Connection state](#connection-state)); no statement the plugin sends makes it write |
//! | `write` (with or without `read`) | read-write |
//!
//! # Tenants
//!
//! [`Db::for_tenant`] gives the same handle for another tenant, provisioned on first use with
//! the migrations applied so far; tenant `default` is the main database.
//!
//! | | SQLite | Postgres |
//! |---|---|---|
//! | storage | a file beside the main one (`app.tenant-<id>.db`), or an in-memory database of its own | a schema `tenant_<id>`; ids longer than 56 characters: `tenant_<first 35>~<80-bit hash>` (never truncated by the 63-byte limit, never equal to another tenant's) |
//! | scoping | the file | the `search_path` of the tenant pools' connections, re-asserted on every release, and `SET LOCAL search_path` in every transaction |
//! | admission | the `Xcore`'s [`Tenants`](crate::tenancy::Tenants) (`tenancy.provision`, `max_tenants`): a refused tenant gets [`DbError::TenantRefused`] and nothing is created | same |
//! | provisioning | single flight per tenant, no lock held over other tenants | same, with `CREATE SCHEMA` and migrations under a cross-instance advisory lock (two instances opening one new tenant both succeed) |
//! | failure | [`DbError::Provisioning`]: 503 with `retry_after_ms` (and a `Retry-After` header over HTTP) | same |
//! | bound | at most `tenant_pools` tenants keep pools (of `tenant_max_connections` each); the least recently used one that no handle holds is closed; all in use → [`DbError::TenantCapacity`] (503) | same |
//!
//! # The embedded default
//!
//! `sqlite::memory:` is an in-memory database of SQLite's `memdb` VFS under a random name:
//! every connection of the process shares it, and xcore keeps one connection open on it (and
//! on each tenant's) for the life of the service, so a request cancelled mid-query, which
//! closes its pooled connection, loses nothing. `memdb` and files lock like files: a writer
//! waits for another up to the busy timeout (5 s) instead of failing, read-write
//! transactions begin with `BEGIN IMMEDIATE` so read-then-write transactions queue instead of
//! deadlocking, and files run in WAL mode (readers never block the writer).
//!
//! # Connection state
//!
//! Plugin SQL runs on pooled connections and may change their session: `SET search_path`,
//! `SET SESSION CHARACTERISTICS`, `SET default_transaction_read_only`, `RESET ALL`,
//! `SET ROLE`, temporary tables, `LISTEN`, advisory locks, SQL-level `PREPARE`, a `BEGIN` left
//! open. None of it reaches the next user of the connection:
//!
//! | when | SQLite | Postgres |
//! |---|---|---|
//! | a connection opens | read-only pools open with `SQLITE_OPEN_READONLY` | `search_path` set to the tenant's schema; read-only pools log in as the reader login |
//! | a connection goes back to its pool | nothing to undo: the open mode is fixed for the connection's life | `RESET ALL`, `RESET SESSION AUTHORIZATION`, `RESET ROLE`, `DISCARD TEMP`, `UNLISTEN *`, advisory locks released, cursors closed, then the pool's `search_path` and read-only characteristics re-asserted; a connection still inside a transaction block, holding an SQL-level prepared statement, or failing the reset is **closed**, never reused |
//! | a transaction begins ([`Db::begin`]) | `BEGIN IMMEDIATE` on read-write handles | `SET LOCAL search_path` to the tenant's schema |
//!
//! **Read-only below SQL on Postgres.** Session settings can be switched back by the session
//! itself, so read-only handles connect as a separate login holding only read privileges
//! (`pg_read_all_data`, Postgres 14 or later): `read_only_url` when configured, otherwise a
//! login `xcore_reader_<hash>` that xcore creates or updates at start through the main login
//! (which then needs `CREATEROLE`). When neither is possible, read-only handles are refused
//! with the reason; read-write handles are unaffected. On Postgres 14 and older, where
//! `PUBLIC` may create tables in `public`, revoke that privilege for a strict read-only login.
//!
//! So plugin SQL may not rely on session state surviving the statement that set it when run
//! on [`Db::pool`] (each statement may get another connection), nor beyond the connection it
//! holds ([`Db::acquire`], [`Db::begin`]): settings, roles, temporary tables, listeners,
//! advisory locks and SQL-level prepared statements are dropped when the connection returns
//! to its pool.
//!
//! Queries go through sqlx's `Any` driver, so the same plugin code runs on SQLite (embedded)
//! and on Postgres (production): use `$1`-style placeholders, which both accept.

mod options;

pub use options::DatabaseOptions;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod error;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod handle;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod location;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod migrate;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod service;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod session;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use error::DbError;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use handle::{Db, TxFuture};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use migrate::{Migration, MigrationReport};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use service::{Backend, DatabaseService};
/// sqlx, as xcore uses it: run queries on a [`Db`] with it.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sqlx;
