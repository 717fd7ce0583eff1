use std::{
    collections::HashMap,
    fmt,
    str::FromStr,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use sqlx::{
    AnyConnection, AnyPool, ConnectOptions, Connection as _,
    any::{AnyConnectOptions, AnyPoolOptions},
};

use super::{
    DatabaseOptions, Db, DbError, Migration,
    error::redact,
    location::{SqliteLocation, tenant_schema},
    migrate, session,
};
use crate::{Health, Service, ServiceContext, ServiceError, TenantId, tenancy::Tenants};

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
}

/// How the pools of a connection (and of each of its tenants) are opened (one per
/// connection: the size difference of the variants does not matter).
#[allow(clippy::large_enum_variant)]
enum Target {
    Sqlite(SqliteLocation),
    Postgres {
        rw: AnyConnectOptions,
        /// The reader login, or why there is none (read-only handles are then refused).
        ro: Result<AnyConnectOptions, String>,
    },
}

/// One configured connection: a read-write pool and a read-only pool on the same database,
/// and the same for each tenant in use.
pub(crate) struct Connection {
    pub(crate) name: String,
    pub(crate) backend: Backend,
    target: Target,
    options: DatabaseOptions,
    /// The main database: tenant `default`.
    pub(crate) base: Arc<Pools>,
    tenants: std::sync::Mutex<HashMap<TenantId, Arc<TenantSlot>>>,
    /// Ticks of tenant use, for evicting the least recently used tenant pools.
    clock: AtomicU64,
    /// One connection per in-memory SQLite database, never used: it keeps the database alive
    /// for the life of the service.
    keepers: std::sync::Mutex<HashMap<String, AnyConnection>>,
    migrations: std::sync::Mutex<Vec<(String, &'static [Migration])>>,
    pub(crate) acquire_timeout: Duration,
    pub(crate) migrate_lock: tokio::sync::Mutex<()>,
    /// The `Xcore`'s tenants: a tenant must be admitted before it is provisioned.
    admission: Option<Arc<Tenants>>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.name)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// A tenant's pools, provisioned once (single flight: concurrent first requests wait for the
/// same provisioning, other tenants are not held up).
struct TenantSlot {
    pools: tokio::sync::OnceCell<Arc<Pools>>,
    last_used: AtomicU64,
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

fn pool_options(options: &DatabaseOptions, max: u32, min: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max.max(1))
        .min_connections(min.min(max))
        .acquire_timeout(options.acquire_timeout)
        .idle_timeout(options.idle_timeout)
        .max_lifetime(options.max_lifetime)
}

fn connect_options(url: &str, options: &DatabaseOptions) -> Result<AnyConnectOptions, DbError> {
    let mut connect = AnyConnectOptions::from_str(url)?;
    if !options.log_statements {
        connect = connect.disable_statement_logging();
    }
    Ok(connect)
}

/// The pools of a SQLite database: read-write connections, and read-only ones opened with
/// `SQLITE_OPEN_READONLY`.
async fn sqlite_pools(
    location: &SqliteLocation,
    options: &DatabaseOptions,
    max: u32,
    min: u32,
) -> Result<Pools, DbError> {
    let rw = pool_options(options, max, min)
        .connect_with(connect_options(&location.rw_url(), options)?)
        .await?;
    let ro = pool_options(options, max, 0)
        .after_connect(|conn, _| {
            Box::pin(async move {
                // Belt and braces: the file is open read-only already.
                sqlx::raw_sql("PRAGMA query_only = ON")
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .connect_lazy_with(connect_options(&location.ro_url(), options)?);
    Ok(Pools { rw, ro })
}

/// One Postgres pool whose connections carry `assert` (search path, read-only
/// characteristics) from their opening, and are reset to it (or closed) on every release.
fn pg_pool(
    connect: AnyConnectOptions,
    options: &DatabaseOptions,
    max: u32,
    min: u32,
    assert: String,
) -> AnyPool {
    let assert = Arc::<str>::from(assert);
    let on_connect = assert.clone();
    pool_options(options, max, min)
        .after_connect(move |conn, _| {
            let assert = on_connect.clone();
            Box::pin(async move {
                if !assert.is_empty() {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(assert.to_string()))
                        .execute(conn)
                        .await?;
                }
                Ok(())
            })
        })
        .after_release(move |conn, _| {
            let assert = assert.clone();
            Box::pin(async move { session::reset(conn, &assert).await })
        })
        .connect_lazy_with(connect)
}

impl Target {
    async fn pools(
        &self,
        options: &DatabaseOptions,
        tenant: Option<&TenantId>,
        max: u32,
        min: u32,
    ) -> Result<Pools, DbError> {
        match self {
            Target::Sqlite(location) => match tenant {
                None => sqlite_pools(location, options, max, min).await,
                Some(t) => sqlite_pools(&location.for_tenant(t), options, max, min).await,
            },
            Target::Postgres { rw, ro } => {
                let schema = tenant.map(tenant_schema);
                let path = schema.as_deref();
                let rw_pool = pg_pool(
                    rw.clone(),
                    options,
                    max,
                    min,
                    session::assert_sql(path, false),
                );
                // Without a reader login, read-only handles are refused; the pool is never used.
                let ro_pool = pg_pool(
                    ro.as_ref().unwrap_or(rw).clone(),
                    options,
                    max,
                    0,
                    session::assert_sql(path, true),
                );
                // Fail early when the server is unreachable.
                drop(rw_pool.acquire().await?);
                Ok(Pools {
                    rw: rw_pool,
                    ro: ro_pool,
                })
            }
        }
    }
}

async fn open(
    name: &str,
    options: &DatabaseOptions,
    admission: Option<Arc<Tenants>>,
) -> Result<Connection, DbError> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of(name, &options.url)?;
    let unsupported = |reason: String| DbError::UnsupportedUrl {
        connection: name.to_owned(),
        url: redact(&options.url),
        reason,
    };
    let keepers = std::sync::Mutex::new(HashMap::new());
    let target = match backend {
        Backend::Sqlite => {
            let location = SqliteLocation::parse(&options.url).map_err(unsupported)?;
            prepare_sqlite(&location, options, &keepers).await?;
            Target::Sqlite(location)
        }
        Backend::Postgres => {
            let rw = connect_options(&options.url, options)?;
            let ro = match &options.read_only_url {
                Some(url) => Ok(connect_options(url, options)?),
                None => {
                    let mut conn = rw.connect().await?;
                    let reader = session::reader_options(&rw, &mut conn).await;
                    let _ = conn.close().await;
                    if let Err(reason) = &reader {
                        tracing::warn!(connection = name, %reason, "read-only handles unavailable");
                    }
                    reader
                }
            };
            Target::Postgres { rw, ro }
        }
    };
    let base = target
        .pools(
            options,
            None,
            options.max_connections,
            options.min_connections,
        )
        .await?;
    Ok(Connection {
        name: name.to_owned(),
        backend,
        target,
        options: options.clone(),
        base: Arc::new(base),
        tenants: std::sync::Mutex::new(HashMap::new()),
        clock: AtomicU64::new(0),
        keepers,
        migrations: std::sync::Mutex::new(Vec::new()),
        acquire_timeout: options.acquire_timeout,
        migrate_lock: tokio::sync::Mutex::new(()),
        admission,
    })
}

/// Before the pools of a SQLite database open: an in-memory database gets its keeper, a file
/// is switched to WAL (readers never block the writer; set once, it is a property of the file).
async fn prepare_sqlite(
    location: &SqliteLocation,
    options: &DatabaseOptions,
    keepers: &std::sync::Mutex<HashMap<String, AnyConnection>>,
) -> Result<(), DbError> {
    let url = location.rw_url();
    if location.is_memory() {
        if lock(keepers).contains_key(&url) {
            return Ok(());
        }
        let keeper = connect_options(&url, options)?.connect().await?;
        lock(keepers).insert(url, keeper);
    } else {
        let mut conn = connect_options(&url, options)?.connect().await?;
        sqlx::raw_sql("PRAGMA journal_mode = WAL")
            .execute(&mut conn)
            .await?;
        let _ = conn.close().await;
    }
    Ok(())
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Connection {
    /// The connections open and idle across this database's pools, tenants' included.
    pub(crate) fn pool_counts(&self) -> (usize, usize) {
        let count = |pools: &Pools| {
            (
                pools.rw.size() as usize + pools.ro.size() as usize,
                pools.rw.num_idle() + pools.ro.num_idle(),
            )
        };
        let (mut open, mut idle) = count(&self.base);
        let tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        for slot in tenants.values() {
            if let Some(pools) = slot.pools.get() {
                let (o, i) = count(pools);
                open += o;
                idle += i;
            }
        }
        (open, idle)
    }

    /// The URL of the main database (for a connection of its own: a `LISTEN`, say).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn url(&self) -> &str {
        &self.options.url
    }

    /// Why read-only handles cannot be given on this connection, if they cannot.
    pub(crate) fn read_only_refusal(&self) -> Option<&str> {
        match &self.target {
            Target::Postgres {
                ro: Err(reason), ..
            } => Some(reason),
            _ => None,
        }
    }

    /// The pools of `tenant`, provisioned on first use: a schema (Postgres) or a database
    /// beside the main one (SQLite), with every migration registered so far applied. Tenant
    /// `default` is the main database.
    ///
    /// No lock is held across I/O: the map of tenants is locked only to find or insert the
    /// tenant's slot, and concurrent first requests for one tenant share one provisioning.
    /// At most `tenant_pools` tenants keep pools open; beyond, the least recently used tenant
    /// whose pools no handle holds is closed (its data stays; it is reopened on next use).
    pub(crate) async fn tenant_pools(&self, tenant: &TenantId) -> Result<Arc<Pools>, DbError> {
        if tenant.as_str() == "default" {
            return Ok(self.base.clone());
        }
        if let Some(tenants) = &self.admission {
            tenants.admit(tenant).map_err(DbError::TenantRefused)?;
        }
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        let slot = self.slot(tenant)?;
        slot.last_used.store(tick, Ordering::Relaxed);
        let pools = slot
            .pools
            .get_or_try_init(|| self.provision(tenant))
            .await
            .map_err(|err| match err {
                DbError::Provisioning { .. } => err,
                other => DbError::Provisioning {
                    connection: self.name.clone(),
                    tenant: tenant.to_string(),
                    reason: other.to_string(),
                },
            })?;
        Ok(pools.clone())
    }

    fn slot(&self, tenant: &TenantId) -> Result<Arc<TenantSlot>, DbError> {
        let mut tenants = lock(&self.tenants);
        if let Some(slot) = tenants.get(tenant) {
            return Ok(slot.clone());
        }
        let cap = self.options.tenant_pools.max(1);
        if tenants.len() >= cap {
            // Evict the least recently used tenant nobody holds (no handle, no waiter).
            let victim = tenants
                .iter()
                .filter(|(_, slot)| {
                    Arc::strong_count(slot) == 1
                        && slot.pools.get().is_none_or(|p| Arc::strong_count(p) == 1)
                })
                .min_by_key(|(_, slot)| slot.last_used.load(Ordering::Relaxed))
                .map(|(t, _)| t.clone());
            let Some(victim) = victim else {
                return Err(DbError::TenantCapacity {
                    connection: self.name.clone(),
                    open: tenants.len(),
                });
            };
            if let Some(pools) = tenants
                .remove(&victim)
                .and_then(|slot| slot.pools.get().cloned())
            {
                tracing::debug!(connection = %self.name, tenant = %victim, "closing idle tenant pools");
                tokio::spawn(async move { pools.close().await });
            }
        }
        let slot = Arc::new(TenantSlot {
            pools: tokio::sync::OnceCell::new(),
            last_used: AtomicU64::new(0),
        });
        tenants.insert(tenant.clone(), slot.clone());
        Ok(slot)
    }

    async fn provision(&self, tenant: &TenantId) -> Result<Arc<Pools>, DbError> {
        // Single flight per tenant already: a lock of this provisioning's own, so other
        // tenants never wait for it (across instances, the tenant's advisory lock).
        let own = tokio::sync::Mutex::new(());
        match &self.target {
            Target::Sqlite(location) => {
                prepare_sqlite(&location.for_tenant(tenant), &self.options, &self.keepers).await?
            }
            Target::Postgres { .. } => {
                migrate::create_schema(
                    &self.base.rw,
                    &own,
                    migrate::advisory_key(tenant),
                    &tenant_schema(tenant),
                )
                .await?
            }
        }
        let pools = self
            .target
            .pools(
                &self.options,
                Some(tenant),
                self.options.tenant_max_connections,
                0,
            )
            .await?;
        let pools = Arc::new(pools);
        let registered: Vec<(String, &'static [Migration])> = lock(&self.migrations).clone();
        for (plugin, migrations) in registered {
            if let Err(err) = migrate::run(
                &pools.rw,
                &own,
                migrate::advisory_key(tenant),
                &plugin,
                migrations,
            )
            .await
            {
                pools.close().await;
                return Err(err);
            }
        }
        tracing::info!(connection = %self.name, %tenant, "tenant database ready");
        Ok(pools)
    }

    /// How many tenants have pools open (or being opened).
    pub(crate) fn open_tenants(&self) -> usize {
        lock(&self.tenants).len()
    }

    /// Remembers a plugin's migrations, so tenants provisioned later get them too.
    pub(crate) fn register_migrations(&self, plugin: &str, migrations: &'static [Migration]) {
        let mut registered = lock(&self.migrations);
        registered.retain(|(p, _)| p != plugin);
        registered.push((plugin.to_owned(), migrations));
    }

    pub(crate) async fn close(&self) {
        let tenants: Vec<Arc<TenantSlot>> = lock(&self.tenants).drain().map(|(_, s)| s).collect();
        for slot in tenants {
            if let Some(pools) = slot.pools.get() {
                pools.close().await;
            }
        }
        self.base.close().await;
        let keepers: Vec<AnyConnection> = lock(&self.keepers).drain().map(|(_, c)| c).collect();
        for keeper in keepers {
            let _ = keeper.close().await;
        }
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

    async fn init(&mut self, ctx: &ServiceContext) -> Result<(), ServiceError> {
        let admission = ctx.xcore().map(|xcore| xcore.tenants().clone());
        let mut opened = Vec::with_capacity(self.configured.len());
        for (name, options) in &self.configured {
            match open(name, options, admission.clone()).await {
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

    fn sample_metrics(&self, metrics: &crate::observability::Metrics) {
        let Some(connections) = self.connections.get() else {
            return;
        };
        for conn in connections {
            let (open, idle) = conn.pool_counts();
            let name = conn.name.as_str();
            let gauge = crate::observability::names::DB_POOL_CONNECTIONS;
            metrics.set_gauge(gauge, &[("db", name), ("state", "idle")], idle as f64);
            metrics.set_gauge(
                gauge,
                &[("db", name), ("state", "in_use")],
                open.saturating_sub(idle) as f64,
            );
        }
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
