//! The running state of an `Xcore`: one slot per plugin, each instance behind a [`Gate`].
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
//! Each span carries the plugin, the tenant and the trace id.

mod change;
mod gate;

pub use change::{LifecycleAction, LifecycleReport, RuntimeError};
pub use gate::{Gate, Pass, Way};
mod slot;

use std::{collections::HashMap, sync::Arc};

pub use slot::PluginState;
pub(crate) use slot::{Instance, Live, Refused, Slot, enter};

/// The plugins' slots of one `Xcore`, by name: fixed at build (every plugin of the plan has
/// one), each changing its instance as the plugin starts, stops and reloads.
pub(crate) struct Runtime {
    slots: HashMap<Arc<str>, Slot>,
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
