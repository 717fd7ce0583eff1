use std::{
    collections::HashMap,
    fmt,
    path::Path,
    str::FromStr,
    sync::{Arc, OnceLock},
    time::Duration,
};

use async_trait::async_trait;
use sqlx::{
    AnyPool, ConnectOptions, Executor,
    any::{AnyConnectOptions, AnyPoolOptions},
};

use super::{DatabaseOptions, Db, DbError, Migration, error::redact, migrate};
use crate::{Health, Service, ServiceContext, ServiceError, TenantId};

/// Which server a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite (feature `sqlite`).
    Sqlite,
    /// Postgres (feature `postgres`).
    Postgres,
}

impl Backend {
    fn of(name: &str, url: &str) -> Result<Self, DbError> {
        let unsupported = |reason: &str| DbError::UnsupportedUrl {
            connection: name.to_owned(),
            url: redact(url),
            reason: reason.to_owned(),
        };
        if url.starts_with("sqlite:") {
            if cfg!(feature = "sqlite") {
                Ok(Backend::Sqlite)
            } else {
                Err(unsupported("SQLite needs xcore's `sqlite` feature"))
            }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            if cfg!(feature = "postgres") {
                Ok(Backend::Postgres)
            } else {
                Err(unsupported("Postgres needs xcore's `postgres` feature"))
            }
        } else {
            Err(unsupported("expected `sqlite:…` or `postgres://…`"))
        }
    }

    /// The session setting that makes a connection read-only.
    fn read_only_statement(self) -> &'static str {
        match self {
            Backend::Sqlite => "PRAGMA query_only = ON",
            Backend::Postgres => "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
        }
    }
}

/// One configured connection: a read-write pool and a read-only pool on the same database.
pub(crate) struct Connection {
    pub(crate) name: String,
    pub(crate) backend: Backend,
    /// The URL as opened (SQLite: rewritten, see `sqlite_url`).
    url: String,
    options: DatabaseOptions,
    /// The main database: tenant `default`.
    pub(crate) base: Arc<Pools>,
    tenants: tokio::sync::Mutex<HashMap<TenantId, Arc<Pools>>>,
    migrations: std::sync::Mutex<Vec<(String, &'static [Migration])>>,
    pub(crate) acquire_timeout: Duration,
    pub(crate) migrate_lock: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.name)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// SQLite URLs as xcore opens them: `sqlite::memory:` becomes a named shared-cache in-memory
/// database (so the read-only pool sees the same data), and files are created if missing.
fn sqlite_url(url: &str) -> Result<String, String> {
    if url == "sqlite::memory:" || url == "sqlite://:memory:" {
        return Ok(format!(
            "sqlite:file:xcore-mem-{:016x}?mode=memory&cache=shared",
            fastrand::u64(..)
        ));
    }
    if url.contains("mode=") {
        return Ok(url.to_owned());
    }
    let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = path.split('?').next().unwrap_or(path);
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{sep}mode=rwc"))
}

/// A read-write pool and a read-only pool on one database (or one tenant's schema or file).
pub(crate) struct Pools {
    pub(crate) rw: AnyPool,
    pub(crate) ro: AnyPool,
}

impl Pools {
    pub(crate) async fn close(&self) {
        self.ro.close().await;
        self.rw.close().await;
    }
}

/// Builds the pools of `url`; `search_path` (Postgres) is set on every connection.
async fn pools(
    url: &str,
    options: &DatabaseOptions,
    backend: Backend,
    search_path: Option<String>,
) -> Result<Pools, DbError> {
    let mut connect = AnyConnectOptions::from_str(url)?;
    if !options.log_statements {
        connect = connect.disable_statement_logging();
    }
    let memory = url.contains("mode=memory");
    let pool = |min: u32| {
        let search_path = search_path.clone();
        AnyPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .min_connections(min)
            .acquire_timeout(options.acquire_timeout)
            // An in-memory database lives as long as one of its connections.
            .idle_timeout(if memory { None } else { options.idle_timeout })
            .max_lifetime(if memory { None } else { options.max_lifetime })
            .after_connect(move |conn, _meta| {
                let search_path = search_path.clone();
                Box::pin(async move {
                    if let Some(path) = search_path {
                        conn.execute(sqlx::AssertSqlSafe(format!("SET search_path TO {path}")))
                            .await?;
                    }
                    Ok(())
                })
            })
    };
    let rw = pool(if memory { 1 } else { options.min_connections })
        .connect_with(connect.clone())
        .await?;
    let read_only = backend.read_only_statement();
    let ro = pool(0)
        .after_connect({
            let search_path = search_path.clone();
            move |conn, _meta| {
                let search_path = search_path.clone();
                Box::pin(async move {
                    if let Some(path) = search_path {
                        conn.execute(sqlx::AssertSqlSafe(format!("SET search_path TO {path}")))
                            .await?;
                    }
                    conn.execute(read_only).await?;
                    Ok(())
                })
            }
        })
        .connect_lazy_with(connect);
    Ok(Pools { rw, ro })
}

async fn open(name: &str, options: &DatabaseOptions) -> Result<Connection, DbError> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of(name, &options.url)?;
    let url = match backend {
        Backend::Sqlite => sqlite_url(&options.url).map_err(|reason| DbError::UnsupportedUrl {
            connection: name.to_owned(),
            url: redact(&options.url),
            reason,
        })?,
        Backend::Postgres => options.url.clone(),
    };
    let base = pools(&url, options, backend, None).await?;
    Ok(Connection {
        name: name.to_owned(),
        backend,
        url,
        options: options.clone(),
        base: Arc::new(base),
        tenants: tokio::sync::Mutex::new(HashMap::new()),
        migrations: std::sync::Mutex::new(Vec::new()),
        acquire_timeout: options.acquire_timeout,
        migrate_lock: tokio::sync::Mutex::new(()),
    })
}

impl Connection {
    /// The pools of `tenant`, provisioned on first use: a schema `tenant_<id>` (Postgres) or a
    /// file beside the main one (SQLite), with every migration registered so far applied.
    /// Tenant `default` is the main database.
    pub(crate) async fn tenant_pools(&self, tenant: &TenantId) -> Result<Arc<Pools>, DbError> {
        if tenant.as_str() == "default" {
            return Ok(self.base.clone());
        }
        let mut tenants = self.tenants.lock().await;
        if let Some(pools) = tenants.get(tenant) {
            return Ok(pools.clone());
        }
        let created = match self.backend {
            Backend::Postgres => {
                let schema = tenant_schema(tenant);
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE SCHEMA IF NOT EXISTS {schema}"
                )))
                .execute(&self.base.rw)
                .await?;
                pools(&self.url, &self.options, self.backend, Some(schema)).await?
            }
            Backend::Sqlite => {
                pools(
                    &tenant_sqlite_url(&self.url, tenant),
                    &self.options,
                    self.backend,
                    None,
                )
                .await?
            }
        };
        let created = Arc::new(created);
        let registered: Vec<(String, &'static [Migration])> = self
            .migrations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (plugin, migrations) in registered {
            migrate::run(&created.rw, &self.migrate_lock, &plugin, migrations).await?;
        }
        tracing::info!(connection = %self.name, %tenant, "tenant database provisioned");
        tenants.insert(tenant.clone(), created.clone());
        Ok(created)
    }

    /// Remembers a plugin's migrations, so tenants provisioned later get them too.
    pub(crate) fn register_migrations(&self, plugin: &str, migrations: &'static [Migration]) {
        let mut registered = self.migrations.lock().unwrap_or_else(|p| p.into_inner());
        registered.retain(|(p, _)| p != plugin);
        registered.push((plugin.to_owned(), migrations));
    }

    pub(crate) async fn close(&self) {
        for pools in self.tenants.lock().await.values() {
            pools.close().await;
        }
        self.base.close().await;
    }
}

/// The Postgres schema of a tenant, quoted (tenant ids are validated: no quote can appear).
pub(crate) fn tenant_schema(tenant: &TenantId) -> String {
    format!("\"tenant_{}\"", tenant.as_str())
}

/// The SQLite URL of a tenant's database, beside the main one.
fn tenant_sqlite_url(url: &str, tenant: &TenantId) -> String {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let path = match path.rsplit_once('.') {
        Some((stem, ext)) if !ext.contains('/') && !stem.ends_with(':') => {
            format!("{stem}.tenant-{}.{ext}", tenant.as_str())
        }
        _ => format!("{path}-tenant-{}", tenant.as_str()),
    };
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

/// The database service (`db`): every connection of `services.databases`, by name.
///
/// ```
/// use xcore::services::db::{DatabaseOptions, DatabaseService};
/// use xcore::prelude::*;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let db = DatabaseService::new([("default", DatabaseOptions::default())]);
/// let xcore = Xcore::builder().without_registered().service(db).build()?;
/// xcore.boot().await?;
/// # xcore.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct DatabaseService {
    configured: Vec<(String, DatabaseOptions)>,
    connections: OnceLock<Vec<Arc<Connection>>>,
}

impl fmt::Debug for DatabaseService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseService")
            .field("connections", &self.connection_names())
            .finish()
    }
}

impl DatabaseService {
    /// The service for these connections, in order (the first is the default).
    pub fn new<I, S>(databases: I) -> Self
    where
        I: IntoIterator<Item = (S, DatabaseOptions)>,
        S: Into<String>,
    {
        Self {
            configured: databases.into_iter().map(|(n, o)| (n.into(), o)).collect(),
            connections: OnceLock::new(),
        }
    }

    /// The configured connection names, in order.
    pub fn connection_names(&self) -> Vec<&str> {
        self.configured.iter().map(|(n, _)| n.as_str()).collect()
    }

    pub(crate) fn connection(&self, name: &str) -> Result<Arc<Connection>, DbError> {
        self.connections
            .get()
            .and_then(|all| all.iter().find(|c| c.name == name))
            .cloned()
            .ok_or_else(|| DbError::UnknownConnection {
                name: name.to_owned(),
                available: self.connection_names().join(", "),
            })
    }

    /// A read-write handle for the host (not subject to grants). Available once initialised.
    pub fn handle(&self, name: &str) -> Result<Db, DbError> {
        Ok(Db::new(self.connection(name)?, false, "host"))
    }
}

#[async_trait]
impl Service for DatabaseService {
    fn name(&self) -> &str {
        "db"
    }

    async fn init(&mut self, _: &ServiceContext) -> Result<(), ServiceError> {
        let mut opened = Vec::with_capacity(self.configured.len());
        for (name, options) in &self.configured {
            match open(name, options).await {
                Ok(conn) => opened.push(Arc::new(conn)),
                Err(err) => {
                    for conn in &opened {
                        conn.close().await;
                    }
                    return Err(ServiceError::msg(match err {
                        DbError::UnsupportedUrl { .. } => err.to_string(),
                        _ => format!("database `{name}` ({}): {err}", redact(&options.url)),
                    }));
                }
            }
        }
        let _ = self.connections.set(opened);
        Ok(())
    }

    async fn health(&self) -> Health {
        let Some(connections) = self.connections.get() else {
            return Health::unhealthy("not initialised");
        };
        let mut report = Vec::new();
        let mut failed = false;
        for conn in connections {
            let db = Db::new(conn.clone(), false, "host");
            match tokio::time::timeout(Duration::from_secs(2), db.ping()).await {
                Ok(Ok(took)) => report.push(format!("{}: {took:?}", conn.name)),
                Ok(Err(e)) => {
                    failed = true;
                    report.push(format!("{}: {e}", conn.name));
                }
                Err(_) => {
                    failed = true;
                    report.push(format!("{}: no answer within 2s", conn.name));
                }
            }
        }
        if failed {
            Health::unhealthy(report.join("; "))
        } else {
            Health::healthy_with(report.join("; "))
        }
    }

    async fn shutdown(&self) -> Result<(), ServiceError> {
        if let Some(connections) = self.connections.get() {
            for conn in connections {
                conn.close().await;
            }
        }
        Ok(())
    }
}
