//! Opening the durable queue: on a pool of its own, or on a connection of the `db` service.

use std::time::Duration;

use sqlx::any::AnyPoolOptions;

use super::{PostgresQueue, WorkerOptions, queue::postgres::PgQueue};
use crate::{
    ServiceContext,
    services::db::{Backend, DatabaseService},
};

/// Opens the queue `target` names and creates its table if missing.
pub(super) async fn open(
    options: &WorkerOptions,
    target: &PostgresQueue,
    ctx: &ServiceContext,
) -> Result<PgQueue, String> {
    sqlx::any::install_default_drivers();
    let (pool, owned, url) = match target {
        PostgresQueue::Url(url) => {
            if !(url.starts_with("postgres:") || url.starts_with("postgresql:")) {
                return Err(
                    "`services.worker.url` must be a Postgres URL (`postgres://…`)".to_owned(),
                );
            }
            let pool = AnyPoolOptions::new()
                .max_connections(u32::try_from(options.concurrency + 4).unwrap_or(u32::MAX))
                .acquire_timeout(Duration::from_secs(5))
                .connect(url)
                .await
                .map_err(|e| format!("the worker's Postgres queue: {e}"))?;
            (pool, true, url.clone())
        }
        PostgresQueue::Database(name) => {
            let db = ctx.dependency::<DatabaseService>("db").ok_or(
                "the worker's Postgres queue needs the `db` service (xcore's DatabaseService)",
            )?;
            let name = match name {
                Some(name) => name.clone(),
                None => db
                    .connection_names()
                    .first()
                    .map(|n| (*n).to_owned())
                    .ok_or("no database is configured for the worker's Postgres queue")?,
            };
            let conn = db.handle(&name).map_err(|e| e.to_string())?;
            if conn.backend() != Backend::Postgres {
                return Err(format!(
                    "the worker's queue needs a Postgres database, and `{name}` is not one \
                     (`SELECT … FOR UPDATE SKIP LOCKED` is what lets instances share it)"
                ));
            }
            let url = db
                .connection(&name)
                .map_err(|e| e.to_string())?
                .url()
                .to_owned();
            (conn.pool().clone(), false, url)
        }
    };
    PgQueue::open(
        pool,
        owned,
        options.lease,
        options.retention,
        options.concurrency + 2,
        Some(&url),
    )
    .await
    .map_err(|e| format!("creating the table xcore_tasks: {e}"))
}
