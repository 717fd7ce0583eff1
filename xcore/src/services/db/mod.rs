//! Databases (sqlx): named connections, read-only handles for read grants, transactions,
//! per-plugin migrations.
//!
//! One service, named `db`, holds every connection of `services.databases` (features `sqlite`,
//! the default, and `postgres`). A plugin that declares `services = ["db"]` obtains a
//! connection with [`PluginContext::db`](crate::PluginContext::db):
//!
//! | grant on `db.<connection>` | handle |
//! |---|---|
//! | `read` | read-only: its connections run with SQLite's `query_only` or in Postgres read-only transactions, so a write fails |
//! | `write` (with or without `read`) | read-write |
//!
//! **Tenants**: [`Db::for_tenant`] gives the same handle for another tenant — a schema
//! `tenant_<id>` on Postgres (the `search_path` of every connection of its own pools, and
//! `SET LOCAL search_path` in every transaction), a file beside the main one on SQLite —,
//! provisioned on first use with the migrations applied so far. Tenant `default` is the main
//! database.
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
pub mod session;

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
