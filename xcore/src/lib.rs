//! xcore: an embeddable plugin framework for Rust host applications.
//!
//! A host adds `xcore` as a dependency; plugin crates are linked statically and register
//! themselves at compile time with [`#[plugin]`](macro@plugin). The host owns an [`Xcore`]
//! value and drives it: it inspects the [plan](Xcore::plan), [boots](Xcore::boot) services and
//! plugins in dependency waves (concurrently inside a wave), [calls](Xcore::call) plugins
//! through a tower pipeline, and [shuts it down](Xcore::shutdown). Nothing is global: two
//! `Xcore` values in one process never share state.
//!
//! ```
//! use xcore::prelude::*;
//! use serde_json::json;
//!
//! #[derive(Default)]
//! #[plugin(name = "counter", version = "1.0.0", timeout = "2s")]
//! struct Counter {
//!     hits: std::sync::atomic::AtomicU64,
//! }
//!
//! #[async_trait]
//! impl Plugin for Counter {}
//!
//! #[actions]
//! impl Counter {
//!     #[action]
//!     async fn hit(&self, by: u64) -> Result<u64, CallError> {
//!         Ok(self.hits.fetch_add(by, std::sync::atomic::Ordering::Relaxed) + by)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let xcore = Xcore::builder().only_registered(["counter"]).build()?;
//! println!("{}", xcore.plan());
//! xcore.boot().await?;
//! assert_eq!(xcore.call("counter", "hit", json!(2)).await?, json!(2));
//! let err = xcore.call("counter", "hit", json!("two")).await.unwrap_err();
//! assert_eq!(err.code(), ErrorCode::InvalidPayload);
//! xcore.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Linking, failures, payloads
//!
//! **Linking.** A `#[plugin]` registers itself in the binary it is linked into, and the linker
//! leaves out a crate nothing references: a plugin crate the host lists in `Cargo.toml` but
//! never names in its code is silently **not linked**, so its plugin is not registered and
//! `Xcore::builder().build()` does not see it. Reference each plugin crate once from the host:
//!
//! ```rust,ignore
//! use my_plugin as _; // links my_plugin, and with it its #[plugin] registration
//! ```
//!
//! and make a missing one fail loudly at build time, listing what is registered:
//! [`XcoreBuilder::require_registered`]: `Xcore::builder().require_registered(["my_plugin", "billing"]).build()` returns
//! [`BuildError::NotRegistered`] when one is absent.
//!
//! By default a plugin that fails fails alone: [`Xcore::boot`] returns `Ok`, each node that
//! did not start is logged at WARN with its reason, and whatever the failed plugin registered
//! (event subscriptions, jobs, task handlers) is withdrawn as if it had stopped (see
//! [`Plugin`]). A host that needs every plugin calls [`BootReport::ensure_all_started`] on the
//! report ([`BootError::NotAllStarted`] lists each node with its phase and reason), or sets
//! [`OnFailure::Abort`] for plugins to roll the whole boot back.
//!
//! A typed action input is decoded with serde ([`plugin::decode_input`]): unknown fields are
//! **ignored**, serde's default. `#[serde(deny_unknown_fields)]` on the input type (and on the
//! nested types that should be strict) rejects them with `invalid_payload` naming the field.
//!
//! # Modules
//!
//! | module | concept |
//! |---|---|
//! | [`plugin`](mod@plugin) | the [`Plugin`] contract, typed [`Actions`], registration, [`PluginContext`] |
//! | [`container`] | the graph of services and plugins, waves, [`BootReport`] |
//! | [`call`] | [`CallContext`], [`CallError`], the call pipeline and its layers |
//! | [`config`] | the config file: [`Config`](config::Config), `${VAR}` interpolation, `XCORE__…` overrides, typed sections |
//! | [`events`] | the event bus, the kernel events |
//! | [`observability`] | metrics through the `metrics` facade (a recorder per `Xcore`), the Prometheus exporter, the log setup |
//! | [`runtime`] | the running plugins: stop, start, reload; the [`Gate`](runtime::Gate) every way into plugin code passes |
//! | [`permissions`] | one typed [`Resource`](permissions::Resource) and one [`Policy`](permissions::Policy) check at every boundary, the audit of denials |
//! | [`tenancy`] | [`TenantId`], the admission of tenants ([`Tenants`](tenancy::Tenants)) |
//! | [`web`] | plugins' HTTP [`Routes`](web::Routes), the [`Web`](web::Web) service (tenant, tracing, body limit, JSON envelopes), the admin API, adapters |
//!
//! # Feature flags
//!
//! The kernel — plugins, container, calls, permissions, events, tenancy, config, the memory
//! cache, the framework-neutral web layer and the admin API — builds with no feature
//! (`--no-default-features`). Features add backends and adapters:
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `sqlite` | yes | `services::db` on SQLite (sqlx) |
//! | `postgres` | no | `services::db` on Postgres (sqlx); on Postgres also the worker's durable queue (`LISTEN`/`NOTIFY` wake-ups), the scheduler's firing lock and the event bridge (`events::EventBridge`) |
//! | `redis` | no | the Redis and tiered backends of `services::cache` (bb8-redis); Redis routes of the event bridge (`events::EventBridge`); cluster-wide rate limits (`services::rate_limits`) |
//! | `scheduler` | yes | `services::scheduler` (tokio-cron-scheduler) |
//! | `axum` | yes | `web::axum`: mount plugins and the admin API into an axum `Router`; extractors (`CallContext`, `web::axum::Json`) |
//! | `hyper` | no | `web::hyper`: a service for hyper's server connections, `serve` with graceful shutdown |
//! | `actix` | no | `web::actix`: mount plugins and the admin API into an actix-web `App` |
//! | `prometheus` | no | `observability::Metrics::prometheus`: a Prometheus exporter rendered at `GET /xcore/metrics` (metrics-exporter-prometheus, no listener) |
//! | `logging` | no | `observability::init_tracing`: a `tracing` subscriber from the `observability` config and `RUST_LOG` (tracing-subscriber) |
//! | `opentelemetry` | no | the `xcore.http` span continues the W3C `traceparent` with any `tracing-opentelemetry` layer; `init_tracing` exports spans over OTLP/HTTP when `observability.otlp_endpoint` is set (opentelemetry, opentelemetry-otlp, tracing-opentelemetry; implies `logging`) |
//! | `openapi` | no | `web::openapi`: the OpenAPI 3.1 document of plugin routes, typed actions and the admin API at `GET /xcore/openapi.json` and `GET /xcore/openapi/<plugin>.json`; request and response schemas from the Rust types (schemars, JSON Schema 2020-12) |
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod call;
pub mod config;
pub mod container;
pub mod events;
mod health;
pub mod observability;
pub mod permissions;
pub mod plugin;
pub mod runtime;
pub mod services;
pub mod tenancy;
pub mod web;
mod xcore;

pub use async_trait::async_trait;
pub use xcore_macros::{actions, plugin};
pub use xcore_manifest::{
    Effect, Grant, GrantError, GrantErrorKind, GrantSpec, Grants, MAX_PATTERN_LEN,
    MAX_PATTERN_SEGMENTS, Manifest, ManifestBuilder, ManifestError, Mode, RateLimit, Requirement,
    ResourcePattern, Version, VersionReq,
};

pub use crate::call::{
    CallContext, CallError, Caller, ErrorCode, PluginIdentity, TraceContext, envelope,
};
pub use crate::container::{
    BootError, BootOptions, BootReport, NodeId, NodeKind, NodeState, OnFailure, Plan, Service,
    ServiceContext, ShutdownReport, StartedPlugin,
};
pub use crate::health::{Health, HealthReport, HealthStatus, NodeHealth};
pub use crate::plugin::{
    Actions, HookError, Plugin, PluginClient, PluginContext, PluginError, ServiceError,
};
pub use crate::tenancy::TenantId;
pub use crate::xcore::{BuildError, Xcore, XcoreBuilder};

/// What plugin and host code usually needs: `use xcore::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Actions, CallContext, CallError, ErrorCode, Health, Plugin, PluginContext, PluginError,
        Service, ServiceContext, ServiceError, TenantId, Xcore, actions, async_trait, plugin,
    };
}

/// What the macros expand to. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use inventory;
    pub use serde_json::Value;

    pub use crate::plugin::schema::{MaybeSchema, ProbeAny, ProbeJsonSchema, SchemaProbe};
}
