//! The state of a pooled connection, as its handle promises it: the reset run on every
//! release, the reader login of read-only handles on Postgres. The rules are in the module
//! docs of `services::db` ("Connection state").

use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row, any::AnyConnectOptions};

/// What a Postgres connection runs when it goes back to its pool, before the pool's own
/// `search_path` and read-only statements. The final `SELECT` tells whether the connection is
/// clean: outside any transaction block (`now()` is the start of the implicit transaction of
/// this very batch) and without SQL-level prepared statements.
pub(crate) const RESET_SQL: &str = "RESET ALL; RESET SESSION AUTHORIZATION; RESET ROLE; \
     DISCARD TEMP; UNLISTEN *; SELECT pg_advisory_unlock_all(); CLOSE ALL; ";

const CLEAN_CHECK: &str = "SELECT now() = statement_timestamp() \
     AND NOT EXISTS (SELECT 1 FROM pg_prepared_statements WHERE from_sql)";

/// The statements that give a Postgres connection the state of its pool.
pub(crate) fn assert_sql(search_path: Option<&str>, read_only: bool) -> String {
    let mut sql = String::new();
    if let Some(path) = search_path {
        sql.push_str("SET search_path TO ");
        sql.push_str(path);
        sql.push_str("; ");
    }
    if read_only {
        sql.push_str("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY; ");
    }
    sql
}

/// Resets a Postgres connection going back to its pool; `Ok(false)` (or an error) closes it.
pub(crate) async fn reset(conn: &mut AnyConnection, assert: &str) -> Result<bool, sqlx::Error> {
    let batch = format!("{RESET_SQL}{assert}{CLEAN_CHECK}");
    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(batch))
        .fetch_all(&mut *conn)
        .await?;
    let clean = match rows.last() {
        Some(row) => row.try_get::<bool, _>(0)?,
        None => false,
    };
    if !clean {
        tracing::debug!("closing a tampered connection instead of reusing it");
    }
    Ok(clean)
}

/// The Postgres advisory lock held while the reader login is created or updated.
const READER_LOCK: i64 = 0x7863_6f72_655f_726c; // "xcore_rl"

/// The login of read-only connections: `read_only_url` when configured, else the reader login
/// xcore creates with the main login.
pub(crate) async fn reader_options(
    main: &AnyConnectOptions,
    conn: &mut AnyConnection,
) -> Result<AnyConnectOptions, String> {
    let url = &main.database_url;
    let seed = format!(
        "{}@{}:{}{}",
        url.username(),
        url.host_str().unwrap_or(""),
        url.port().unwrap_or(5432),
        url.path()
    );
    let role = format!(
        "xcore_reader_{}",
        &hex(&Sha256::digest(seed.as_bytes()))[..12]
    );
    let password = hex(&Sha256::digest(
        format!("xcore-reader\0{}", url.as_str()).as_bytes(),
    ))[..32]
        .to_owned();
    // Creating a role twice at once fails: one instance at a time (advisory lock).
    let statements = [
        format!("SELECT pg_advisory_lock({READER_LOCK})"),
        format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') \
             THEN CREATE ROLE \"{role}\" LOGIN; END IF; END $$"
        ),
        format!(
            "ALTER ROLE \"{role}\" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
             NOBYPASSRLS PASSWORD '{password}'"
        ),
        format!("GRANT pg_read_all_data TO \"{role}\""),
    ];
    let mut outcome = Ok(());
    for sql in &statements {
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut *conn)
            .await
        {
            outcome = Err(e);
            break;
        }
    }
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SELECT pg_advisory_unlock({READER_LOCK})"
    )))
    .execute(&mut *conn)
    .await;
    outcome.map_err(|e| {
        format!(
            "read-only handles on Postgres log in as a login with read privileges only; \
             xcore could not create `{role}` ({e}): set `read_only_url` to such a login, or give \
             the main login CREATEROLE"
        )
    })?;
    let mut reader = main.clone();
    let mut url = url.clone();
    url.set_username(&role)
        .and_then(|()| url.set_password(Some(&password)))
        .map_err(|()| "the database URL has no user part".to_owned())?;
    reader.database_url = url;
    Ok(reader)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
