use std::{fmt, future::Future, pin::Pin, sync::Arc, time::Duration};

use sqlx::{Any, AnyPool, Transaction, pool::PoolConnection};
use tokio::time::Instant;

use super::{
    Backend, DbError, Migration, MigrationReport,
    location::tenant_schema,
    migrate,
    service::{Connection, Pools},
};
use crate::{
    CallContext, PluginContext, TenantId,
    plugin::handle::{Bind, Handle, HostHandle, NamedHandle, NamedHostHandle},
    services::{AccessError, grant_mask},
};

/// The future of the work done in [`Db::transaction`].
pub type TxFuture<'t, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 't>>;

/// A handle on one database connection, as a plugin's grants allow: read-write, or read-only.
///
/// Run queries with sqlx on [`pool`](Self::pool), or in a [`transaction`](Self::transaction).
///
/// ```
/// use xcore::services::db::{DatabaseOptions, DatabaseService, Db, DbError, sqlx};
/// use xcore::prelude::*;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let mut service = DatabaseService::new([("default", DatabaseOptions::default())]);
/// # let xcore = Xcore::builder().without_registered().service(service).build()?;
/// # xcore.boot().await?;
/// # let db: Db = xcore.named::<Db>("default")?;
/// sqlx::query("CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
///     .execute(db.pool())
///     .await?;
/// db.transaction(|tx| {
///     Box::pin(async move {
///         sqlx::query("INSERT INTO notes (id, body) VALUES ($1, $2)")
///             .bind(1_i64)
///             .bind("hello")
///             .execute(&mut **tx)
///             .await?;
///         Ok::<_, DbError>(())
///     })
/// })
/// .await?;
/// let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notes").fetch_one(db.pool()).await?;
/// assert_eq!(count, 1);
/// # xcore.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Db {
    conn: Arc<Connection>,
    pools: Arc<Pools>,
    tenant: TenantId,
    read_only: bool,
    plugin: Arc<str>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("connection", &self.conn.name)
            .field("backend", &self.conn.backend)
            .field("tenant", &self.tenant)
            .field("read_only", &self.read_only)
            .field("plugin", &self.plugin)
            .finish()
    }
}

impl Db {
    pub(crate) fn new(conn: Arc<Connection>, read_only: bool, plugin: &str) -> Self {
        Self {
            pools: conn.base.clone(),
            conn,
            tenant: TenantId::default(),
            read_only,
            plugin: Arc::from(plugin),
        }
    }

    /// The same handle for another tenant: its own schema `tenant_<id>` on Postgres (every
    /// connection's `search_path`, and `SET LOCAL search_path` in every transaction), its own
    /// file beside the main one on SQLite. The tenant's database is provisioned on first use,
    /// with every migration applied so far through this connection. Tenant `default` is the
    /// main database.
    pub async fn for_tenant(&self, tenant: &TenantId) -> Result<Db, DbError> {
        if *tenant == self.tenant {
            return Ok(self.clone());
        }
        let pools = self.conn.tenant_pools(tenant).await?;
        Ok(Self {
            conn: self.conn.clone(),
            pools,
            tenant: tenant.clone(),
            read_only: self.read_only,
            plugin: self.plugin.clone(),
        })
    }

    /// How many tenants of this connection have pools open (or being opened) right now: at
    /// most `tenant_pools`.
    pub fn open_tenants(&self) -> usize {
        self.conn.open_tenants()
    }

    /// The tenant this handle works for.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The connection's name.
    pub fn connection(&self) -> &str {
        &self.conn.name
    }

    /// SQLite or Postgres.
    pub fn backend(&self) -> Backend {
        self.conn.backend
    }

    /// Whether writes fail through this handle.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The pool to run queries on (read-only connections for a read-only handle).
    pub fn pool(&self) -> &AnyPool {
        if self.read_only {
            &self.pools.ro
        } else {
            &self.pools.rw
        }
    }

    fn map(&self, err: sqlx::Error) -> DbError {
        match err {
            sqlx::Error::PoolTimedOut => DbError::AcquireTimeout {
                connection: self.conn.name.clone(),
                timeout: self.conn.acquire_timeout,
            },
            other => DbError::Sqlx(other),
        }
    }

    /// A connection from the pool; fails with [`DbError::AcquireTimeout`] if none frees up
    /// within the acquire timeout.
    pub async fn acquire(&self) -> Result<PoolConnection<Any>, DbError> {
        self.pool().acquire().await.map_err(|e| self.map(e))
    }

    /// Begins a transaction. It rolls back when dropped without `commit`. For a tenant other
    /// than `default` on Postgres, it starts with `SET LOCAL search_path` to the tenant's
    /// schema. On SQLite, a read-write handle begins with `BEGIN IMMEDIATE`: the transaction
    /// takes the write lock first (waiting up to the busy timeout for another writer), so
    /// concurrent read-then-write transactions queue instead of failing.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, DbError> {
        let begun = if self.conn.backend == Backend::Sqlite && !self.read_only {
            self.pool().begin_with("BEGIN IMMEDIATE").await
        } else {
            self.pool().begin().await
        };
        let mut tx = begun.map_err(|e| self.map(e))?;
        if self.conn.backend == Backend::Postgres && self.tenant.as_str() != "default" {
            let schema = tenant_schema(&self.tenant);
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SET LOCAL search_path TO {schema}"
            )))
            .execute(&mut *tx)
            .await?;
        }
        Ok(tx)
    }

    /// Runs `work` in a transaction: commits if its future returns `Ok`, rolls back if it
    /// returns `Err` (or panics, or is dropped).
    pub async fn transaction<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: for<'t> FnOnce(&'t mut Transaction<'static, Any>) -> TxFuture<'t, T, E>,
        E: From<DbError>,
    {
        let mut tx = self.begin().await?;
        match work(&mut tx).await {
            Ok(value) => {
                tx.commit().await.map_err(|e| E::from(self.map(e)))?;
                Ok(value)
            }
            Err(err) => {
                if let Err(rollback) = tx.rollback().await {
                    tracing::warn!(connection = %self.conn.name, error = %rollback, "rollback failed");
                }
                Err(err)
            }
        }
    }

    /// Applies the plugin's migrations that are not applied yet, tracked per plugin in the
    /// table `xcore_migrations` (so two plugins' versions never collide). Each migration
    /// runs in its own transaction. Needs a read-write handle. The migrations are remembered:
    /// tenants provisioned later get them too.
    pub async fn migrate(
        &self,
        migrations: &'static [Migration],
    ) -> Result<MigrationReport, DbError> {
        if self.read_only {
            return Err(DbError::ReadOnly {
                plugin: self.plugin.to_string(),
                connection: self.conn.name.clone(),
                operation: "run migrations",
            });
        }
        self.conn.register_migrations(&self.plugin, migrations);
        migrate::run(
            self.pool(),
            &self.conn.migrate_lock,
            migrate::advisory_key(&self.tenant),
            &self.plugin,
            migrations,
        )
        .await
    }

    /// Runs `SELECT 1`; returns how long it took.
    pub async fn ping(&self) -> Result<Duration, DbError> {
        let started = Instant::now();
        sqlx::query("SELECT 1")
            .execute(self.pool())
            .await
            .map_err(|e| self.map(e))?;
        Ok(started.elapsed())
    }
}

/// The database connection `name` (from `services.databases`), as the plugin's grants allow:
/// `db.<name>: write` gives a read-write handle, `db.<name>: read` a read-only one. The plugin
/// must declare `services = ["db"]`.
impl NamedHandle for Db {
    fn obtain_named(ctx: &PluginContext, name: &str) -> Result<Self, AccessError> {
        let (shared, service) = ctx.declared_service("db")?;
        let any: Arc<dyn std::any::Any + Send + Sync> = service;
        let service =
            any.downcast::<super::DatabaseService>()
                .map_err(|_| AccessError::WrongType {
                    service: "db".into(),
                    expected: "DatabaseService",
                })?;
        let conn = service
            .connection(name)
            .map_err(|e| AccessError::Unavailable {
                service: "db".into(),
                reason: e.to_string(),
            })?;
        let mask = grant_mask(
            ctx.identity(),
            shared.audit(),
            "db",
            name,
            &["read", "write"],
        )?;
        let read_only = mask & 0b10 == 0;
        if read_only && let Some(reason) = conn.read_only_refusal() {
            return Err(AccessError::Unavailable {
                service: "db".into(),
                reason: format!("database `{name}`: {reason}"),
            });
        }
        Ok(Db::new(conn, read_only, ctx.name()))
    }
}

/// The connection `default`: `ctx.handle::<Db>()` is `ctx.named::<Db>("default")`.
impl Handle for Db {
    fn obtain(ctx: &PluginContext) -> Result<Self, AccessError> {
        ctx.named::<Db>("default")
    }
}

/// The same connection, the call's tenant's database (provisioned on first use:
/// [`Db::for_tenant`]).
impl Bind for Db {
    type Error = DbError;

    async fn bind(&self, cx: &CallContext) -> Result<Self, DbError> {
        self.for_tenant(cx.tenant()).await
    }
}

/// A read-write handle on database connection `name`, for the host (not subject to grants):
/// `xcore.named::<Db>(name)`. Available once the `db` service has loaded.
impl NamedHostHandle for Db {
    type Error = DbError;

    fn obtain_host_named(xcore: &crate::Xcore, name: &str) -> Result<Self, DbError> {
        let service = xcore
            .shared
            .service("db")
            .ok_or_else(|| DbError::UnknownConnection {
                name: name.to_owned(),
                available: "none (no `db` service is loaded)".into(),
            })?;
        let any: Arc<dyn std::any::Any + Send + Sync> = service;
        let service =
            any.downcast::<super::DatabaseService>()
                .map_err(|_| DbError::UnknownConnection {
                    name: name.to_owned(),
                    available: "none (the `db` service is not xcore's DatabaseService)".into(),
                })?;
        service.handle(name)
    }
}

/// The host's read-write handle on the connection `default`: `xcore.handle::<Db>()`.
impl HostHandle for Db {
    type Error = DbError;

    fn obtain_host(xcore: &crate::Xcore) -> Result<Self, DbError> {
        Db::obtain_host_named(xcore, "default")
    }
}
