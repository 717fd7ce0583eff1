//! The typed sections of the config file.

use std::{fmt, time::Duration};

use indexmap::IndexMap;
use serde::Deserialize;

use super::RawSection;
use crate::services::{cache::CacheOptions, db::DatabaseOptions};

/// The `app` section.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AppConfig {
    /// The application's name (logs, traces). Default `xcore`.
    pub name: String,
    /// `development` (default), `staging` or `production`. In production, secrets are checked.
    pub env: Environment,
    /// The application's signing secret. Default empty; production needs at least 16
    /// characters that are not a well-known placeholder.
    pub secret_key: String,
    /// The bearer token of the admin API; no token (the default) disables token access.
    /// Distinct from `secret_key`.
    pub admin_token: Option<String>,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            name: "xcore".to_owned(),
            env: Environment::default(),
            secret_key: String::new(),
            admin_token: None,
        }
    }
}

/// Secrets never appear in debug output.
impl fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("AppConfig")
            .field("name", &self.name)
            .field("env", &self.env)
            .field("secret_key", &redact(&self.secret_key))
            .field("admin_token", &self.admin_token.as_deref().map(redact))
            .finish()
    }
}

/// The deployment environment (`app.env`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Local development (the default).
    #[default]
    Development,
    /// A pre-production environment.
    Staging,
    /// Production: secrets must be set and strong.
    Production,
}

/// The `services` section.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ServicesConfig {
    /// Named databases, in the order of the file: the first is the default database `db`.
    /// Empty by default.
    pub databases: IndexMap<String, DatabaseOptions>,
    /// The cache.
    pub cache: CacheOptions,
    /// The scheduler.
    pub scheduler: SchedulerConfig,
    /// The background job worker.
    pub worker: WorkerConfig,
    /// Cluster-wide rate limits on Redis (none by default: per-process limits).
    pub rate_limits: Option<crate::services::rate_limits::RateLimitsOptions>,
    /// Each host extension's own section, by extension name; read one with
    /// [`Config::extension_section`](super::Config::extension_section).
    pub extensions: IndexMap<String, RawSection>,
}

/// The `services.scheduler` section: the scheduler's own options (enabled, default time zone,
/// multi-instance lock, shutdown timeout, jobs that call plugins).
pub type SchedulerConfig = crate::services::scheduler::SchedulerOptions;

/// The `services.worker` section: the task worker's own options, defined with the worker
/// ([`services::worker`](crate::services::worker)).
pub use crate::services::worker::{WorkerBackend, WorkerConfig};

/// The `tenancy` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TenancyConfig {
    /// Whether requests are resolved to tenants. Default `false`: everything runs as
    /// `default`.
    pub enabled: bool,
    /// The HTTP header naming the tenant. Default `X-Tenant-ID`.
    pub header: String,
    /// Whether the first label of the host (`acme.example.com`) names the tenant. Default
    /// `false`.
    pub subdomain: bool,
    /// The tenant of requests that name none. Default `default`.
    pub default: String,
    /// What an unseen tenant id gets: `auto` (admitted up to `max_tenants`, the default) or
    /// `known` (only the tenants registered by the host or listed in `tenants`; others get
    /// 404 `unknown_tenant`). See [`Tenants`](crate::tenancy::Tenants).
    pub provision: crate::tenancy::Provision,
    /// Most tenants served (registered ones included). Default 100.
    pub max_tenants: usize,
    /// Tenants registered at start.
    pub tenants: Vec<String>,
}

impl TenancyConfig {
    /// The admission policy of this section (invalid ids in `tenants` are skipped with a
    /// warning; [`Config`](super::Config) loading validates them).
    pub fn tenants(&self) -> crate::tenancy::Tenants {
        let tenants = crate::tenancy::Tenants::new(self.provision, self.max_tenants);
        for id in &self.tenants {
            match crate::TenantId::new(id) {
                Ok(id) => {
                    tenants.register(id);
                }
                Err(err) => tracing::warn!(%err, "tenancy.tenants: skipped"),
            }
        }
        tenants
    }
}

impl Default for TenancyConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            header: "X-Tenant-ID".to_owned(),
            subdomain: false,
            default: "default".to_owned(),
            provision: crate::tenancy::Provision::Auto,
            max_tenants: crate::tenancy::Tenants::DEFAULT_MAX,
            tenants: Vec::new(),
        }
    }
}

/// The `web` section: the time limits at the HTTP edge, applied by every adapter (see
/// `xcore::web::EdgeLimits`). Durations are written as in manifests (`"500ms"`, `"10s"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct WebConfig {
    /// How long a client may take to send a request's headers; then it is disconnected.
    /// Default 10 s.
    #[serde(with = "crate::services::serde_duration")]
    pub header_read_timeout: Duration,
    /// How long a request body may go without a byte; then 408. Default 10 s.
    #[serde(with = "crate::services::serde_duration")]
    pub body_idle_timeout: Duration,
    /// How long a whole request body may take; then 408. Default 60 s.
    #[serde(with = "crate::services::serde_duration")]
    pub body_read_timeout: Duration,
    /// How long writing a response may make no progress; then the client is disconnected.
    /// Default 30 s.
    #[serde(with = "crate::services::serde_duration")]
    pub response_write_timeout: Duration,
    /// The most connections served at once; the next wait in the kernel's backlog. Default:
    /// no cap.
    pub max_connections: Option<usize>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            response_write_timeout: Duration::from_secs(30),
            max_connections: None,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The `observability` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ObservabilityConfig {
    /// The log filter: `info` (default), `debug`, or directives like `info,xcore=debug`.
    pub log_level: String,
    /// `text` (default) or `json`.
    pub log_format: LogFormat,
    /// The base URL of an OTLP/HTTP collector (`http://127.0.0.1:4318`) to export spans to
    /// (feature `opentelemetry`), applied by
    /// [`init_tracing`](crate::observability::init_tracing); none by default.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of the exported spans (default `xcore`).
    pub service_name: String,
}

impl Default for ObservabilityConfig {
    fn default() -> Self {
        Self {
            log_level: "info".to_owned(),
            log_format: LogFormat::default(),
            otlp_endpoint: None,
            service_name: "xcore".to_owned(),
        }
    }
}
