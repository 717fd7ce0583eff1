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

mod gate;

pub use gate::{Gate, Pass, Way};
