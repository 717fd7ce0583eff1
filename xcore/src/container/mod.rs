//! The container: one graph of services and plugins, booted in dependency waves.
//!
//! See [`Xcore`](crate::Xcore) for the driver, [`Plan`] for the waves, [`BootReport`] and
//! [`ShutdownReport`] for what happened.

mod driver;
mod graph;
mod lifecycle;
mod options;
mod report;
mod service;

pub(crate) use driver::{Entry, Factory, Nodes, boot, shutdown};
pub use graph::{GraphError, NodeId, NodeKind, Plan};
pub(crate) use graph::{NodeSpec, plan};
pub(crate) use lifecycle::run as change_plugin;
pub use options::{BootOptions, OnFailure};
pub use report::{
    BootAbort, BootError, BootReport, NodeReport, NodeState, Phase, ShutdownReport, StopOutcome,
};
pub use service::{Service, ServiceContext, StartedPlugin};
