use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Any, Connection, Row, Transaction};

use super::DbError;

/// One migration of a plugin: a version, a name and SQL (one or more statements).
///
/// Embed them in the plugin crate, e.g. with `include_str!`:
///
/// ```
/// use xcore::services::db::Migration;
///
/// const MIGRATIONS: &[Migration] = &[
///     Migration::new(1, "create users", "CREATE TABLE users (id BIGINT PRIMARY KEY, email TEXT NOT NULL)"),
///     Migration::new(2, "index email", "CREATE UNIQUE INDEX users_email ON users (email)"),
/// ];
/// # assert_eq!(MIGRATIONS.len(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

impl Migration {
    /// A migration.
    pub const fn new(version: i64, name: &'static str, sql: &'static str) -> Self {
        Self { version, name, sql }
    }

    /// Its version.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    fn checksum(&self) -> String {
        // FNV-1a: detects edits, no cryptography needed.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.sql.bytes() {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{hash:016x}")
    }
}

/// What [`Db::migrate`](super::Db::migrate) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// The versions applied by this run.
    pub applied: Vec<i64>,
    /// The versions that were already applied.
    pub already_applied: Vec<i64>,
}

pub(crate) const TABLE: &str = "CREATE TABLE IF NOT EXISTS xcore_migrations (\
    plugin TEXT NOT NULL, \
    version BIGINT NOT NULL, \
    name TEXT NOT NULL, \
    checksum TEXT NOT NULL, \
    applied_at BIGINT NOT NULL, \
    PRIMARY KEY (plugin, version))";

/// Applies what is missing of `migrations` for `plugin`, each in its own transaction.
pub(crate) async fn run(
    pool: &sqlx::AnyPool,
    lock: &tokio::sync::Mutex<()>,
    key: i64,
    plugin: &str,
    migrations: &[Migration],
) -> Result<MigrationReport, DbError> {
    for pair in migrations.windows(2) {
        if pair[1].version <= pair[0].version {
            return Err(DbError::MigrationOrder {
                plugin: plugin.to_owned(),
                version: pair[1].version,
                previous: pair[0].version,
            });
        }
    }
    // One migration run at a time: in this process (the lock), and across instances sharing
    // a Postgres server (an advisory lock held by the connection doing the work).
    let _local = lock.lock().await;
    let mut conn = pool.acquire().await?;
    let postgres = conn.backend_name().eq_ignore_ascii_case("postgresql")
        || conn.backend_name() == "PostgreSQL";
    if postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut *conn)
            .await?;
    }
    let outcome = run_locked(&mut conn, plugin, migrations).await;
    if postgres {
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(key)
            .execute(&mut *conn)
            .await;
        if let Err(e) = unlocked {
            // Closing the connection releases the lock.
            tracing::warn!(error = %e, "could not release the migration lock; closing the connection");
            conn.detach();
        }
    }
    outcome
}

/// Creates a tenant's schema (Postgres) under the same locks as migrations: two instances
/// provisioning one tenant at once both succeed (`CREATE SCHEMA IF NOT EXISTS` alone races).
pub(crate) async fn create_schema(
    pool: &sqlx::AnyPool,
    lock: &tokio::sync::Mutex<()>,
    key: i64,
    schema: &str,
) -> Result<(), DbError> {
    let _local = lock.lock().await;
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(&mut *conn)
        .await?;
    let created = sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {schema}"
    )))
    .execute(&mut *conn)
    .await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(&mut *conn)
        .await;
    if unlocked.is_err() {
        conn.detach();
    }
    created?;
    Ok(())
}

/// The key of the Postgres advisory lock taken while migrating the main database.
const ADVISORY_KEY: i64 = 0x7863_6f72_655f_6d67; // "xcore_mg"

/// The key of the Postgres advisory lock of one database or tenant schema: migrations (and
/// the creation of the schema) of one tenant are serialized across instances, other tenants
/// are not held up.
pub(crate) fn advisory_key(tenant: &crate::TenantId) -> i64 {
    if tenant.as_str() == "default" {
        return ADVISORY_KEY;
    }
    // FNV-1a of the id, in the key space of xcore's locks.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tenant.as_str().bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash >> 1) as i64
}

async fn run_locked(
    conn: &mut sqlx::pool::PoolConnection<Any>,
    plugin: &str,
    migrations: &[Migration],
) -> Result<MigrationReport, DbError> {
    sqlx::query(TABLE).execute(&mut **conn).await?;
    let mut report = MigrationReport::default();
    for m in migrations {
        let mut tx: Transaction<'_, Any> = conn.begin().await?;
        let existing =
            sqlx::query("SELECT checksum FROM xcore_migrations WHERE plugin = $1 AND version = $2")
                .bind(plugin)
                .bind(m.version)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(row) = existing {
            let checksum: String = row.try_get(0)?;
            if checksum != m.checksum() {
                return Err(DbError::MigrationChanged {
                    plugin: plugin.to_owned(),
                    version: m.version,
                    name: m.name.to_owned(),
                });
            }
            report.already_applied.push(m.version);
            continue;
        }
        sqlx::raw_sql(m.sql).execute(&mut *tx).await?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        sqlx::query(
            "INSERT INTO xcore_migrations (plugin, version, name, checksum, applied_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(plugin)
        .bind(m.version)
        .bind(m.name)
        .bind(m.checksum())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(
            plugin,
            version = m.version,
            name = m.name,
            "migration applied"
        );
        report.applied.push(m.version);
    }
    Ok(report)
}
