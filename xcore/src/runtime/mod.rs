//! The running state of an `Xcore`: one slot per plugin, each instance behind a [`Gate`].
//!
//! A plugin's lifecycle is not frozen at boot: the host (or an operator, through the admin
//! API) stops, starts, reloads and restarts one plugin while the others serve.
//!
//! | change | [`Xcore`](crate::Xcore) | admin API (token) | from | what happens | kernel events |
//! |---|---|---|---|---|---|
//! | stop | [`stop_plugin`](crate::Xcore::stop_plugin) | `POST {admin}/plugins/<name>/stop` | running | the running plugins that require it stop first (reverse waves); for each: new calls and requests get `unavailable` (503) at once, the gate drains what is inside (at most the stop timeout), its routes, subscriptions, jobs, task handlers and extension claims are withdrawn, its `on_stop` runs | `plugin.<n>.stopped` per plugin, dependents first |
//! | start | [`start_plugin`](crate::Xcore::start_plugin) | `…/start` | stopped, failed, skipped | a fresh instance (its registration or [`plugin_factory`](crate::XcoreBuilder::plugin_factory)) and a fresh [`PluginContext`](crate::PluginContext): `on_load`, `on_start`, routes and declarations, gate opened; then its dependents that are down because of it, in waves | `plugin.<n>.started` per plugin |
//! | reload | [`reload_plugin`](crate::Xcore::reload_plugin) | `…/reload` | running | the config file re-read (a file that no longer loads changes nothing); calls and requests arriving meanwhile **wait** for the new instance (at most [`BootOptions::swap_wait`](crate::BootOptions::swap_wait) and their deadline); the old instance drains, is withdrawn, gets `on_stop`; the fresh one loads and starts; dependents keep running | `plugin.<n>.reloaded` (`took_ms`) |
//! | restart | [`restart_plugin`](crate::Xcore::restart_plugin) | `…/restart` | any but pending | stop (if running) then start, dependents included: the way back for a failed plugin | as stop and start |
//!
//! A change that cannot apply is refused before anything changes ([`RuntimeError`]: 404
//! `not_found`, 409 `conflict`, 503 `not_ready` over HTTP). A fresh instance that fails in a
//! hook leaves the plugin `failed` (whatever it registered withdrawn, `plugin.<n>.failed`
//! emitted); [`Xcore::plugins`](crate::Xcore::plugins) and `GET {admin}/plugins` show each
//! plugin's live [`PluginState`] and reason. Changes are serialized with each other and with
//! boot and shutdown; a kernel event handler must not await a lifecycle change (it would wait
//! for itself).
//!
//! A plugin added as an instance ([`XcoreBuilder::plugin`](crate::XcoreBuilder::plugin)) can
//! be stopped but not made fresh: [`RuntimeError::NoFactory`].
//!
//! # The gate
//!
//! Every way into a plugin's code passes the gate of the plugin's current instance:
//!
//! | way | lifecycle state (drained on stop) | `rate_limit`, `max_concurrency` | timeout | panic | span |
//! |---|---|---|---|---|---|
//! | action call | `unavailable` (503) once stopping | yes (`rate_limited`, `overloaded`) | the manifest's `timeout` (`timeout`, 504) | `panicked` (500) | `xcore.call` |
//! | route request | `unavailable` (503) once stopping | yes, shared with calls | the manifest's `timeout` (504) | 500 envelope with an error id | `xcore.plugin` (`way = "route"`) |
//! | event handler | skipped (reported as failed) | no | none | reported in the `EmitReport` | `xcore.plugin` (`way = "event"`) |
//! | scheduled job | not run | no | the job's own | the run fails (`panicked`) | `xcore.plugin` (`way = "job"`) |
//! | worker task | not run (retried per the task's policy) | no | the task's own | the attempt fails (`panicked`) | `xcore.plugin` (`way = "task"`) |
//!
//! The `rate_limit` is a bucket per process; with the `rate_limits` service (feature `redis`,
//! [`services::rate_limits`](crate::services::rate_limits)) calls and route requests take
//! their tokens from Redis instead, cluster-wide (then a route request is admitted by
//! [`Gate::admit_async`], one round trip bounded by the service's timeout).
//!
//! Each span carries the plugin, the tenant and the trace id. The pass of a route request is
//! held until the response head is ready (a streamed body is not waited for by a drain).
//! Each instance has its own gate: what an old instance registered and that still reaches it
//! (a handle it kept, a task spawned in a hook) is refused once it stops.

mod change;
mod gate;
mod shared;

pub use change::{LifecycleAction, LifecycleReport, RuntimeError};
pub use gate::{Gate, Pass, Way};
mod slot;

use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
    sync::Arc,
};

pub(crate) use shared::{Lifecycle, Parts, Shared};
pub use slot::PluginState;
pub(crate) use slot::{Instance, Live, Refused, Slot, enter};

/// The plugins' slots of one `Xcore`, by name: fixed at build (every plugin of the plan has
/// one), each changing its instance as the plugin starts, stops and reloads.
pub(crate) struct Runtime {
    slots: HashMap<Arc<str>, Slot, BuildHasherDefault<NameHasher>>,
}

/// FNV-1a, for maps of plugin names: the names looked up come from requests and calls, and
/// are short; the maps hold the plan's names only (fixed at build, never a name from a
/// request), so a keyed hash buys nothing and costs a SipHash per call.
#[derive(Default)]
pub(crate) struct NameHasher(u64);

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

impl Runtime {
    pub(crate) fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            slots: names
                .into_iter()
                .map(|n| (Arc::from(n), Slot::new()))
                .collect(),
        }
    }

    /// The slot of plugin `name`.
    pub(crate) fn slot(&self, name: &str) -> Option<&Slot> {
        self.slots.get(name)
    }

    /// The running instance of plugin `name`, now.
    pub(crate) fn running(&self, name: &str) -> Option<Arc<Instance>> {
        self.slot(name)?.running()
    }

    /// The running instances, sorted by name.
    pub(crate) fn instances(&self) -> Vec<Arc<Instance>> {
        let mut all: Vec<Arc<Instance>> = self.slots.values().filter_map(Slot::running).collect();
        all.sort_by(|a, b| a.ctx.name().cmp(b.ctx.name()));
        all
    }
}
