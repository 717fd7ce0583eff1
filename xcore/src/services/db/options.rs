use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One entry of `services.databases.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseOptions {
    /// `sqlite::memory:`, `sqlite://data/app.db`, `postgres://user:pass@127.0.0.1/app`.
    pub url: String,
    /// Most connections in the pool.
    pub max_connections: u32,
    /// Connections kept open when idle.
    pub min_connections: u32,
    /// How long to wait for a connection before failing with an acquire timeout.
    #[serde(with = "crate::services::serde_duration")]
    pub acquire_timeout: Duration,
    /// Close connections idle this long.
    #[serde(with = "crate::services::serde_duration::option")]
    pub idle_timeout: Option<Duration>,
    /// Close connections older than this.
    #[serde(with = "crate::services::serde_duration::option")]
    pub max_lifetime: Option<Duration>,
    /// Log every statement (at `debug`).
    pub log_statements: bool,
    /// Postgres: the URL of a login with read privileges only, used by read-only handles.
    /// When unset, xcore creates (or updates) such a login itself with the main login, which
    /// then needs `CREATEROLE`; see [Connection state](super#connection-state).
    pub read_only_url: Option<String>,
    /// Most connections in the read-write pool, and in the read-only pool, of each tenant.
    pub tenant_max_connections: u32,
    /// Most tenants whose pools are open at once. Beyond, the least recently used tenant that
    /// no handle holds is closed (its data stays, it reopens on next use); when every open
    /// tenant is in use, a new one is refused with [`DbError::TenantCapacity`](super::DbError)
    /// (503). So the connections of this database never exceed
    /// `2 × (max_connections + tenant_pools × tenant_max_connections)`.
    pub tenant_pools: usize,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        Self {
            url: "sqlite::memory:".into(),
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            log_statements: false,
            read_only_url: None,
            tenant_max_connections: 2,
            tenant_pools: 64,
        }
    }
}
