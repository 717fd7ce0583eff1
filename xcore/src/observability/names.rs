//! The names of xcore's metrics (see the [module docs](super) for their labels).

/// Calls through a running plugin's pipeline: counter, `plugin`, `action`, `code`.
pub const CALLS_TOTAL: &str = "xcore_calls_total";
/// How long calls took: histogram (seconds), `plugin`, `action`.
pub const CALL_DURATION_SECONDS: &str = "xcore_call_duration_seconds";
/// HTTP requests served: counter, `plugin`, `route`, `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "xcore_http_requests_total";
/// How long HTTP requests took until the response head: histogram (seconds), `plugin`, `route`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "xcore_http_request_duration_seconds";
/// Denials: counter, `plugin`, `kind`.
pub const DENIALS_TOTAL: &str = "xcore_denials_total";
/// Events emitted: counter, `event`.
pub const EVENTS_EMITTED_TOTAL: &str = "xcore_events_emitted_total";
/// Operations a cache service sent to its backend: counter, `backend`, `op`, `result`
/// (`hit`, `miss`, `ok`, `error`).
pub const CACHE_OPERATIONS_TOTAL: &str = "xcore_cache_operations_total";
/// Runs of scheduled jobs: counter, `plugin`, `job`, `outcome` (`succeeded`, `failed`,
/// `skipped`).
pub const JOB_RUNS_TOTAL: &str = "xcore_job_runs_total";
/// Attempts of worker tasks: counter, `plugin`, `task`, `outcome` (`succeeded`, `retried`,
/// `dead`).
pub const TASKS_TOTAL: &str = "xcore_tasks_total";
/// The state of each plugin: gauge (1 for its state, 0 for the others), `plugin`, `state`.
pub const PLUGIN_STATE: &str = "xcore_plugin_state";
/// The connections of each database's pools (tenants' included): gauge, `db`, `state`
/// (`idle`, `in_use`).
pub const DB_POOL_CONNECTIONS: &str = "xcore_db_pool_connections";

/// Every metric, with its kind and help text (what recorders are told at the start).
pub(crate) const DESCRIPTIONS: &[(&str, Kind, &str)] = &[
    (
        CALLS_TOTAL,
        Kind::Counter,
        "Calls through a running plugin's pipeline, by outcome code.",
    ),
    (
        CALL_DURATION_SECONDS,
        Kind::Histogram,
        "Time through the call pipeline (authorisation, limits, handler).",
    ),
    (
        HTTP_REQUESTS_TOTAL,
        Kind::Counter,
        "HTTP requests served, by route template and status.",
    ),
    (
        HTTP_REQUEST_DURATION_SECONDS,
        Kind::Histogram,
        "Time until the response head of HTTP requests, by route template.",
    ),
    (
        DENIALS_TOTAL,
        Kind::Counter,
        "Denials by the permission checks, by refused plugin and kind.",
    ),
    (
        EVENTS_EMITTED_TOTAL,
        Kind::Counter,
        "Events emitted on the event bus, by event name.",
    ),
    (
        CACHE_OPERATIONS_TOTAL,
        Kind::Counter,
        "Operations sent to the cache backends, by operation and result.",
    ),
    (
        JOB_RUNS_TOTAL,
        Kind::Counter,
        "Firings of scheduled jobs run (or skipped) here, by outcome.",
    ),
    (
        TASKS_TOTAL,
        Kind::Counter,
        "Attempts of worker tasks run here, by outcome.",
    ),
    (
        PLUGIN_STATE,
        Kind::Gauge,
        "1 for the plugin's current state, 0 for the others.",
    ),
    (
        DB_POOL_CONNECTIONS,
        Kind::Gauge,
        "Connections open in each database's pools (tenants' included), idle or in use.",
    ),
];

/// The kind of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}
