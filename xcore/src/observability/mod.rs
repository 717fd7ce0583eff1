//! Observability: metrics through the [`metrics`](::metrics) facade, an optional Prometheus exporter,
//! and (feature `logging`) a `tracing` subscriber configured from the `observability` section.
//!
//! # Logs
//!
//! [`init_tracing`] (feature `logging`) installs a `tracing` subscriber from the
//! `observability` section — `log_level`, `log_format` (`text` or `json`) — with `RUST_LOG`
//! winning over `log_level` when set. xcore's spans:
//!
//! | span | level | fields |
//! |---|---|---|
//! | `xcore.http` | INFO | `method`, `path`, `plugin`, `route` (the template), `tenant`, `trace_id`, `status`, `latency_ms`; a 5xx is logged at WARN inside it, with `status`, `method`, `path`, `plugin` and `route` on the line itself (so a log filtered at WARN still shows which route failed) |
//! | `xcore.call` | DEBUG | `plugin`, `action`, `caller`, `tenant`, `trace_id`, `outcome` (`ok` or the error code) |
//! | `xcore.boot`, `xcore.shutdown` | INFO | `nodes` |
//!
//! # Traces (feature `opentelemetry`)
//!
//! xcore's spans become OpenTelemetry spans through any `tracing-opentelemetry` layer: the one
//! [`init_tracing`] adds when `observability.otlp_endpoint` is set (OTLP/HTTP, protobuf,
//! batched on a thread of its own; keep its [`TracingGuard`] until the end), or a host's own.
//!
//! | request | the `xcore.http` span | the call context's trace |
//! |---|---|---|
//! | a valid `traceparent` (and `tracestate`) | a child of the remote span it names | its trace id, the remote span as parent |
//! | none, or an invalid one | the root of a new trace | the new trace's id (the one exported) |
//!
//! A call made while serving (`xcore.call`), and the plugin's own spans, are children of the
//! request's span, so one trace holds the request, its calls and what they did.
//!
//! # Metrics
//!
//! Each [`Xcore`](crate::Xcore) records into the [`Metrics`] it was built with
//! ([`XcoreBuilder::metrics`](crate::XcoreBuilder::metrics)); by default
//! [`Metrics::disabled`], which records nothing and costs nothing (the call pipeline does not
//! even get its metrics layer). There is **no process-wide recorder**: `Metrics` holds its own
//! `Arc<dyn metrics::Recorder>` and registers every series through it, so two `Xcore` values
//! in one process never mix their figures, and a host's own global recorder (if any) is left
//! alone.
//!
//! - [`Metrics::with_recorder`] records into any [`metrics::Recorder`](::metrics::Recorder): the host picks its
//!   exporter (Prometheus, StatsD, OpenTelemetry, ...).
//! - [`Metrics::prometheus`] (feature `prometheus`) builds a Prometheus recorder of its own
//!   (no listener, no push gateway) whose text the admin API renders at
//!   `GET {admin}/metrics` (admin token); [`Metrics::render_prometheus`] gives the same text
//!   to a host that serves it elsewhere. Histograms have the buckets of [`SECONDS_BUCKETS`].
//!   On the hot paths xcore keeps the figures itself with this exporter (fixed buckets of
//!   atomics for the durations, a call answered `Ok` counted by its bucket: two relaxed adds
//!   per call or request) and renders them beside the exporter's text; with another
//!   recorder every figure goes through it. Durations are read from a [`quanta`] clock
//!   (the TSC where it is reliable) calibrated once per `Metrics` and per web layer.
//!
//! The cost, measured (`cargo bench --bench metrics -- interleaved`, off and on in
//! alternating rounds of one process): about 8 % on a pipeline call (≈ 30 ns on 360 ns) and
//! 4–5 % on an in-process route request (≈ 55 ns on 1.2 µs); see `BENCHMARKS.md`.
//!
//! | metric | kind | labels | recorded |
//! |---|---|---|---|
//! | `xcore_calls_total` | counter | `plugin`, `action`, `code` | every call through a running plugin's pipeline; `code` is `ok` or the [`ErrorCode`](crate::ErrorCode) |
//! | `xcore_call_duration_seconds` | histogram | `plugin`, `action` | the same calls, whole pipeline (authorisation, limits, handler) |
//! | `xcore_http_requests_total` | counter | `plugin`, `route`, `status` | every request through [`Web`](crate::web::Web), whatever the adapter |
//! | `xcore_http_request_duration_seconds` | histogram | `plugin`, `route` | the same requests, until the response head is ready |
//! | `xcore_denials_total` | counter | `plugin`, `kind` | every denial kept by the [`Audit`](crate::permissions::Audit) (`permission`, `caller`) |
//! | `xcore_events_emitted_total` | counter | `event` | every event emitted (published) on the bus |
//! | `xcore_cache_operations_total` | counter | `backend` (`memory`, `redis`, `tiered`), `op`, `result` | every operation a cache handle sent to the backend (not those refused before: denials, invalid keys): `result` is `hit` or `miss` for reads (`get`, and per key for `mget`), else `ok`, or `error` when it failed (the backend's error, `incr` on a value that is not an integer); kept by the service and reported when sampled by [`Xcore::sample_metrics`](crate::Xcore::sample_metrics) |
//! | `xcore_job_runs_total` | counter | `plugin`, `job`, `outcome` | every firing of a scheduled job this instance ran (`succeeded`, `failed` after its retries) or skipped (`skipped`: overlap, too late, lock unavailable) |
//! | `xcore_tasks_total` | counter | `plugin`, `task`, `outcome` | every attempt of a worker task run here: `succeeded`, `retried`, `dead` |
//! | `xcore_plugin_state` | gauge | `plugin`, `state` | 1 for the plugin's state, 0 for the others; sampled by [`Xcore::sample_metrics`](crate::Xcore::sample_metrics) |
//! | `xcore_db_pool_connections` | gauge | `db`, `state` (`idle`, `in_use`) | the connections open in each database's pools, tenants' included; sampled by [`Xcore::sample_metrics`](crate::Xcore::sample_metrics) through [`Service::sample_metrics`](crate::Service::sample_metrics) |
//!
//! # Cardinality
//!
//! Every label value comes from code or configuration, never from a request, so the number of
//! series is bounded by the program, not by its users. No tenant id, no raw path, no payload.
//!
//! | label | values | bounded by |
//! |---|---|---|
//! | `plugin` | names of the plugins in the plan; `""` for the admin API, for requests that name no known plugin, and for the host's own jobs and tasks | the plan |
//! | `action` | the plugin's declared [`action_names`](crate::Actions::action_names); `_unknown` for any other name (or, when a plugin declares none, for a call answered `unknown_action`) | the code |
//! | `code` | `ok` or one of the 13 error codes | the code |
//! | `route` | the route **template**: `{plugin prefix}/<plugin>` followed by the endpoint declared with [`Routes::endpoint`](crate::web::Routes::endpoint) that matches (`/plugin/users/{id}`); only the plugin's mount point when no declared endpoint matches; the plugin prefix alone for an unknown plugin; `{admin}/…` templates for the admin API (`/xcore/ipc/{plugin}/{action}`), the admin prefix for an unknown admin path; `""` for a path outside both prefixes | the declared endpoints |
//! | `status` | the HTTP status code | 100–999 |
//! | `kind` | `permission`, `caller` | the code |
//! | `event` | the event names emitted: plugin-defined, so bounded by the plugins' code (an event name built from user input would break the bound: don't) | the code |
//! | `job` | the job ids: chosen by the plugins' code (a declared `#[job]`, a config job, or an id given to the scheduler); a job id built from user data (one job per user, say) breaks the bound: give such jobs a fixed id prefix and keep them out of hot paths, or use the worker | the code |
//! | `task` | the task names registered by the plugins (`<name>` without the namespace) | the code |
//! | `backend`, `op`, `result` | the cache backends, the 10 operations (`get`, `set`, `delete`, `exists`, `incr`, `ttl`, `mget`, `mset`, `keys`, `delete_pattern`), the 4 results | the code |
//! | `outcome` | the fixed outcomes of jobs and tasks | the code |
//! | `state` | `pending`, `running`, `reloading`, `stopped`, `failed`, `skipped`, `rolled_back` ([`PluginState`](crate::runtime::PluginState)) | the code |

mod histogram;
#[cfg(feature = "logging")]
mod logging;
mod metrics;
pub mod names;
#[cfg(feature = "opentelemetry")]
pub(crate) mod otel;
#[cfg(feature = "prometheus")]
mod prometheus;

pub use self::histogram::SECONDS_BUCKETS;
#[cfg(feature = "logging")]
#[cfg_attr(docsrs, doc(cfg(feature = "logging")))]
pub use self::logging::{LogInitError, TracingGuard, init_tracing, tracing_subscriber};
pub use self::metrics::Metrics;
pub(crate) use self::metrics::{CallMeter, RouteMeter};
