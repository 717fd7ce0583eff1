//! Plugins: the [`Plugin`] contract, typed [`Actions`], manifests and registration.
//!
//! | item | what it is |
//! |---|---|
//! | [`Plugin`], [`Actions`] | the contract: lifecycle hooks, calls |
//! | [`ActionSchema`] | what a typed action takes and returns (its JSON Schemas with feature `openapi`), for the OpenAPI document |
//! | [`Declarations`], [`Declaration`] | what a plugin declares for the services that run it (`#[job]` for the scheduler), a bag by type; no service is named by the contract |
//! | [`PluginContext`], [`PluginClient`] | what a plugin reaches while it runs |
//! | [`Registration`], [`PluginManifest`] | `#[plugin]`'s compile-time registration |
//! | [`PluginError`], [`HookError`], [`ServiceError`] | the errors of hooks and services |

mod action;
mod context;
mod declarations;
mod error;
pub mod handle;
mod registration;
pub(crate) mod schema;

use async_trait::async_trait;
use serde_json::Value;

pub use action::{decode_input, encode_output};
pub(crate) use context::WeakContext;
pub use context::{PluginClient, PluginContext};
pub use declarations::{Declaration, Declarations};
pub use error::{HookError, PluginError, ServiceError};
pub use handle::{Bind, Handle, HostHandle, NamedHandle, NamedHostHandle};
pub use registration::{PluginManifest, Registration, registered};
pub use schema::ActionSchema;

use crate::{CallContext, CallError, Health, web::Routes};

/// How a plugin answers calls: `handle(action, payload)`.
///
/// Write it with `#[actions]` on an `impl` block — each `#[action]` method becomes an action
/// with a typed input and output — or implement it by hand.
///
/// ```
/// use xcore::prelude::*;
/// use serde_json::{Value, json};
///
/// struct Echo;
///
/// #[async_trait]
/// impl Actions for Echo {
///     fn action_names(&self) -> &'static [&'static str] {
///         &["echo"]
///     }
///
///     async fn handle(&self, action: &str, payload: Value, _cx: &CallContext) -> Result<Value, CallError> {
///         match action {
///             "echo" => Ok(payload),
///             other => Err(CallError::unknown_action(other, self.action_names())),
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait Actions: Send + Sync + 'static {
    /// The names of the actions the plugin answers, for listings and `unknown_action` errors.
    fn action_names(&self) -> &'static [&'static str] {
        &[]
    }

    /// The schemas of the typed actions, for the [OpenAPI document](crate::web::openapi): one
    /// per action of `#[actions]` (its doc comment, input and output types). Asked when the
    /// document is built, not per call. The default describes none.
    fn action_schemas(&self) -> Vec<ActionSchema> {
        Vec::new()
    }

    /// What the plugin declares for the services that run it, by type: the jobs of its
    /// `#[job(...)]` methods (for the scheduler), or any [`Declaration`] of a host's service.
    /// Asked once, when the plugin has started; each service reads its own type
    /// ([`StartedPlugin::get`](crate::StartedPlugin::get)), and the plugin fails to start if
    /// its manifest lacks a service its declarations are for (see [`Declarations`]). The
    /// default declares nothing.
    fn declarations(&self) -> Declarations {
        Declarations::new()
    }

    /// Answers one call.
    ///
    /// Runs once the plugin has started, possibly many times concurrently, inside the call
    /// pipeline: after authorisation, rate and concurrency limits, under the plugin's timeout
    /// (the future is dropped when it expires) and with panic isolation (a panic becomes a
    /// `panicked` error and the plugin serves the next call). An error is returned to the
    /// caller as it is.
    async fn handle(
        &self,
        action: &str,
        payload: Value,
        cx: &CallContext,
    ) -> Result<Value, CallError>;
}

/// A plugin: a unit of functionality with a manifest, a lifecycle and actions.
///
/// # Lifecycle contract
///
/// The host drives an `Xcore`; for each plugin, in this order:
///
/// 1. **`on_load`** — during the *load phase* of `Xcore::boot`, in the plugin's wave: after
///    every service and plugin it depends on has loaded, concurrently with the other nodes of
///    its wave, under the load timeout. It has `&mut self`: take the handles you need from the
///    context here. An error (or a panic, or the timeout) marks the plugin `failed`; plugins
///    that require it are `skipped`. No call reaches the plugin yet.
/// 2. **`on_start`** — during the *start phase*, which begins once every wave has loaded: wave
///    by wave, concurrently inside a wave, under the start timeout. Every `on_load` of every
///    wave has run before any `on_start`. When it returns `Ok`, the plugin is `started`: calls
///    reach it from then on, and its routes become live. An error marks it `failed` (it gets no
///    `on_stop`).
/// 3. **`handle`** (from [`Actions`]) — for every call, once started, until it stops.
/// 4. **`on_stop`** — during `Xcore::shutdown` (or the rollback of a failed boot), only if the
///    plugin started: in reverse wave order, concurrently inside a wave, under the stop timeout.
///    The plugin no longer receives calls when it runs. An error or a timeout is reported;
///    shutdown goes on regardless.
///
/// **At runtime** ([`runtime`](crate::runtime)): a plugin stopped with
/// [`Xcore::stop_plugin`](crate::Xcore::stop_plugin) gets its `on_stop` after its gate has
/// drained what was inside it and its registrations were withdrawn. Started again, reloaded
/// or restarted, a plugin is a **fresh instance** (from its registration, or
/// [`XcoreBuilder::plugin_factory`](crate::XcoreBuilder::plugin_factory)) with a fresh
/// [`PluginContext`]: `on_load` then `on_start` run for it, one after the other, under the
/// same timeouts; an instance never sees `on_start` twice, nor anything after its `on_stop`.
/// State that must outlive an instance belongs in a service (the database, the cache).
///
/// [`routes`](Plugin::routes) is called once, right after `on_start` succeeded;
/// [`health`](Plugin::health) may be called any time after that.
///
/// **A failed plugin keeps nothing.** Whatever it registered in its hooks — event
/// subscriptions, scheduler jobs, task handlers, what an extension keeps for it — is withdrawn
/// when it fails at any phase (`on_load` or `on_start` returning an error, panicking or timing
/// out; a service refusing it when it starts; loaded but skipped because a dependency did not
/// start), exactly as when it stops, through the same path (see
/// [`Service::on_plugin_stop`](crate::Service::on_plugin_stop)): after `boot()` its handlers
/// receive no event, its jobs are not listed and never fire, its task handlers are gone.
///
/// # Example
///
/// ```
/// use xcore::prelude::*;
///
/// #[derive(Default)]
/// #[plugin(name = "greeter", version = "1.0.0")]
/// struct Greeter {
///     greeting: String,
/// }
///
/// #[async_trait]
/// impl Plugin for Greeter {
///     async fn on_load(&mut self, _ctx: &PluginContext) -> Result<(), PluginError> {
///         self.greeting = "hello".into();
///         Ok(())
///     }
/// }
///
/// #[actions]
/// impl Greeter {
///     #[action]
///     async fn greet(&self, name: String) -> Result<String, CallError> {
///         Ok(format!("{}, {name}", self.greeting))
///     }
/// }
/// ```
#[async_trait]
pub trait Plugin: Actions {
    /// Prepares the plugin; see the lifecycle contract above.
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        let _ = ctx;
        Ok(())
    }

    /// Starts the plugin's activity (jobs, subscriptions); see the lifecycle contract above.
    async fn on_start(&self, ctx: &PluginContext) -> Result<(), PluginError> {
        let _ = ctx;
        Ok(())
    }

    /// Stops the plugin's activity and releases what it holds; see the contract above.
    async fn on_stop(&self, ctx: &PluginContext) -> Result<(), PluginError> {
        let _ = ctx;
        Ok(())
    }

    /// Reports the plugin's health. The default is healthy.
    async fn health(&self) -> Health {
        Health::healthy()
    }

    /// The plugin's HTTP routes, if it serves any (the default serves none).
    ///
    /// Called **once**, right after `on_start` succeeded and before the plugin becomes
    /// callable. The routes are live while the plugin runs: the web layer
    /// ([`xcore::web`](crate::web)) serves them under `/plugin/<name>/…` (the prefix is
    /// configurable; handlers see paths with it stripped) and withdraws them when the plugin
    /// stops. Build them from an axum `Router` ([`Routes::from_axum`](crate::web::Routes),
    /// feature `axum`) or any tower service
    /// ([`Routes::from_service`](crate::web::Routes::from_service)). Keep the context if
    /// handlers call other plugins. A panic here is logged and the plugin runs without
    /// routes.
    fn routes(&self, ctx: &PluginContext) -> Option<Routes> {
        let _ = ctx;
        None
    }
}
