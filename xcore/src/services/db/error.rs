use crate::{CallError, ErrorCode};

/// What went wrong with a database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// No connection of that name is configured.
    #[error("no database connection `{name}`; configured: {available}")]
    UnknownConnection {
        /// The name asked for.
        name: String,
        /// The configured names, comma-separated.
        available: String,
    },
    /// The handle is read-only (the plugin holds `db.<name>: read` only).
    #[error(
        "the handle on database `{connection}` is read-only: plugin `{plugin}` holds no grant \
         `db.{connection}: write`, so it cannot {operation}"
    )]
    ReadOnly {
        /// The plugin.
        plugin: String,
        /// The connection.
        connection: String,
        /// What was attempted.
        operation: &'static str,
    },
    /// No connection could be acquired from the pool in time.
    #[error(
        "database `{connection}`: no connection available within {timeout:?} (pool exhausted or server unreachable)"
    )]
    AcquireTimeout {
        /// The connection.
        connection: String,
        /// The acquire timeout.
        timeout: std::time::Duration,
    },
    /// A migration already applied has changed since.
    #[error(
        "migration {version} (`{name}`) of plugin `{plugin}` was changed after it was applied; \
         add a new migration instead of editing an applied one"
    )]
    MigrationChanged {
        /// The plugin.
        plugin: String,
        /// The version.
        version: i64,
        /// The name.
        name: String,
    },
    /// Migrations are not in strictly increasing version order.
    #[error(
        "migrations of plugin `{plugin}` must have strictly increasing versions; {version} comes after {previous}"
    )]
    MigrationOrder {
        /// The plugin.
        plugin: String,
        /// The version out of order.
        version: i64,
        /// The version before it.
        previous: i64,
    },
    /// The URL names a database kind this build does not support.
    #[error("unsupported URL `{url}` for database `{connection}`: {reason}")]
    UnsupportedUrl {
        /// The connection.
        connection: String,
        /// The URL with its password hidden.
        url: String,
        /// Why.
        reason: String,
    },
    /// A tenant's database could not be provisioned (created, opened or migrated). Retrying
    /// later may succeed.
    #[error("database `{connection}`: tenant `{tenant}` could not be provisioned: {reason}")]
    Provisioning {
        /// The connection.
        connection: String,
        /// The tenant.
        tenant: String,
        /// Why.
        reason: String,
    },
    /// The tenant is not admitted by the `Xcore`'s [`Tenants`](crate::tenancy::Tenants):
    /// nothing was provisioned for it.
    #[error(transparent)]
    TenantRefused(crate::tenancy::TenantRejection),
    /// Every tenant whose pools are open is in use: a new tenant cannot be opened now.
    #[error(
        "database `{connection}`: {open} tenants have pools open and all are in use \
         (`tenant_pools`); retry later"
    )]
    TenantCapacity {
        /// The connection.
        connection: String,
        /// How many tenants are open.
        open: usize,
    },
    /// An error from sqlx or the server.
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// The plugin may not have the handle (grants, manifest), or asked for it outside a call
    /// a plugin serves.
    #[error(transparent)]
    Access(#[from] crate::services::AccessError),
}

impl From<DbError> for CallError {
    fn from(err: DbError) -> Self {
        if let DbError::Access(access) = err {
            return access.into();
        }
        let code = match &err {
            DbError::ReadOnly { .. } => ErrorCode::PermissionDenied,
            DbError::TenantRefused(crate::tenancy::TenantRejection::Unknown(_)) => {
                ErrorCode::NotFound
            }
            DbError::TenantRefused(_) => ErrorCode::PermissionDenied,
            DbError::AcquireTimeout { .. }
            | DbError::Provisioning { .. }
            | DbError::TenantCapacity { .. } => ErrorCode::Unavailable,
            _ => ErrorCode::HandlerError,
        };
        let error = CallError::new(code, err.to_string());
        if code == ErrorCode::Unavailable {
            error.with_details(serde_json::json!({ "retry_after_ms": 1000 }))
        } else {
            error
        }
    }
}

/// Hides the password of a database URL for messages.
pub(crate) use crate::services::redact_url as redact;

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
