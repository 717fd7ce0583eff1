//! What boot and shutdown report.

use std::{fmt, time::Duration};

use crate::container::NodeId;

/// Where a node ended up after boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// Loaded and started.
    Started,
    /// Its own hook failed, timed out or panicked, or the graph rejected it.
    Failed,
    /// Not attempted because a dependency failed or was skipped.
    Skipped,
    /// Started, then stopped by the rollback of a failed boot.
    RolledBack,
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeState::Started => "started",
            NodeState::Failed => "failed",
            NodeState::Skipped => "skipped",
            NodeState::RolledBack => "rolled back",
        })
    }
}

/// Which phase a node was in when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Planning (graph errors).
    Plan,
    /// `init` / `on_load`.
    Load,
    /// `start` / `on_start`.
    Start,
}

/// One node's line in the [`BootReport`].
#[derive(Debug, Clone)]
pub struct NodeReport {
    pub(crate) node: NodeId,
    pub(crate) wave: Option<usize>,
    pub(crate) state: NodeState,
    pub(crate) phase: Option<Phase>,
    pub(crate) reason: Option<String>,
    pub(crate) load: Option<Duration>,
    pub(crate) start: Option<Duration>,
}

impl NodeReport {
    /// The node.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// Its wave, if it was planned.
    pub fn wave(&self) -> Option<usize> {
        self.wave
    }

    /// Its state.
    pub fn state(&self) -> NodeState {
        self.state
    }

    /// The phase it failed or was skipped in.
    pub fn phase(&self) -> Option<Phase> {
        self.phase
    }

    /// Why it failed or was skipped.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// How long its load hook took.
    pub fn load_duration(&self) -> Option<Duration> {
        self.load
    }

    /// How long its start hook took.
    pub fn start_duration(&self) -> Option<Duration> {
        self.start
    }
}

/// The outcome of `Xcore::boot`: the waves, every node's state and reason, and timings.
#[derive(Debug, Clone)]
pub struct BootReport {
    pub(crate) waves: Vec<Vec<NodeId>>,
    pub(crate) nodes: Vec<NodeReport>,
    pub(crate) load_phase: Duration,
    pub(crate) start_phase: Duration,
}

impl BootReport {
    /// The waves, as planned.
    pub fn waves(&self) -> &[Vec<NodeId>] {
        &self.waves
    }

    /// Every node, sorted by wave then name; unplanned nodes last.
    pub fn nodes(&self) -> &[NodeReport] {
        &self.nodes
    }

    /// The report of one plugin.
    pub fn plugin(&self, name: &str) -> Option<&NodeReport> {
        self.find(&NodeId::plugin(name))
    }

    /// The report of one service.
    pub fn service(&self, name: &str) -> Option<&NodeReport> {
        self.find(&NodeId::service(name))
    }

    fn find(&self, id: &NodeId) -> Option<&NodeReport> {
        self.nodes.iter().find(|n| &n.node == id)
    }

    /// The nodes in a given state.
    pub fn in_state(&self, state: NodeState) -> impl Iterator<Item = &NodeId> + '_ {
        self.nodes
            .iter()
            .filter(move |n| n.state == state)
            .map(|n| &n.node)
    }

    /// `Ok` if every node started; otherwise [`BootError::NotAllStarted`] listing each node
    /// that failed or was skipped, with its reason. With the default
    /// [`OnFailure::Continue`](crate::OnFailure::Continue) policy for plugins, `boot()`
    /// returns `Ok` even when plugins fail (the others run; the failed ones are logged at
    /// WARN with their reason): a host that needs all its plugins calls this on the report
    /// (or sets `on_plugin_failure(OnFailure::Abort)` to roll everything back instead).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use xcore::{BootError, Manifest, Plugin, PluginContext, PluginError, Xcore, async_trait};
    /// # struct Broken;
    /// # #[async_trait]
    /// # impl xcore::Actions for Broken {
    /// #     async fn handle(&self, a: &str, _: serde_json::Value, _: &xcore::CallContext)
    /// #         -> Result<serde_json::Value, xcore::CallError> {
    /// #         Err(xcore::CallError::unknown_action(a, &[]))
    /// #     }
    /// # }
    /// # #[async_trait]
    /// # impl Plugin for Broken {
    /// #     async fn on_start(&self, _: &PluginContext) -> Result<(), PluginError> {
    /// #         Err(PluginError::msg("no license key"))
    /// #     }
    /// # }
    /// let manifest = Manifest::builder("broken", "1.0.0").build().unwrap();
    /// let xcore = Xcore::builder().without_registered().plugin(manifest, Broken).build().unwrap();
    /// let report = xcore.boot().await.unwrap(); // `Ok`: plugins fail alone by default
    /// let err = report.ensure_all_started().unwrap_err();
    /// assert!(matches!(&err, BootError::NotAllStarted { nodes } if nodes.len() == 1));
    /// assert!(err.to_string().contains("plugin `broken` failed (start): no license key"), "{err}");
    /// # xcore.shutdown().await;
    /// # }
    /// ```
    pub fn ensure_all_started(&self) -> Result<(), BootError> {
        let nodes: Vec<(NodeId, NodeState, String)> = self
            .nodes
            .iter()
            .filter(|n| n.state != NodeState::Started)
            .map(|n| {
                let phase = n
                    .phase
                    .map(|p| format!(" ({})", phase_label(p)))
                    .unwrap_or_default();
                (
                    n.node.clone(),
                    n.state,
                    format!(
                        "{phase}: {}",
                        n.reason.as_deref().unwrap_or("no reason given")
                    ),
                )
            })
            .collect();
        if nodes.is_empty() {
            Ok(())
        } else {
            Err(BootError::NotAllStarted { nodes })
        }
    }

    /// How long the load phase took.
    pub fn load_phase(&self) -> Duration {
        self.load_phase
    }

    /// How long the start phase took.
    pub fn start_phase(&self) -> Duration {
        self.start_phase
    }
}

impl fmt::Display for BootReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "boot: {} nodes in {} waves (load {:?}, start {:?})",
            self.nodes.len(),
            self.waves.len(),
            self.load_phase,
            self.start_phase
        )?;
        for n in &self.nodes {
            let wave = n.wave.map_or_else(|| "-".to_owned(), |w| w.to_string());
            write!(f, "  [wave {wave}] {}: {}", n.node, n.state)?;
            if let Some(reason) = &n.reason {
                write!(f, " ({reason})")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// How one node stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopOutcome {
    /// Its hook returned `Ok`.
    Stopped,
    /// Its hook returned an error or panicked.
    Failed(String),
    /// Its hook did not finish within the stop timeout; it was abandoned.
    TimedOut,
}

/// The outcome of `Xcore::shutdown`: every node that was stopped, in the order of the waves
/// (reversed), and what went wrong.
#[derive(Debug, Clone, Default)]
pub struct ShutdownReport {
    pub(crate) nodes: Vec<(NodeId, StopOutcome, Duration)>,
}

impl ShutdownReport {
    /// Each node stopped, with its outcome and how long it took, in stop order.
    pub fn nodes(&self) -> impl Iterator<Item = (&NodeId, &StopOutcome, Duration)> + '_ {
        self.nodes.iter().map(|(n, o, d)| (n, o, *d))
    }

    /// Whether every node stopped cleanly.
    pub fn is_clean(&self) -> bool {
        self.nodes
            .iter()
            .all(|(_, o, _)| *o == StopOutcome::Stopped)
    }

    /// The outcome of one node, if it was stopped.
    pub fn outcome(&self, node: &NodeId) -> Option<&StopOutcome> {
        self.nodes
            .iter()
            .find(|(n, _, _)| n == node)
            .map(|(_, o, _)| o)
    }
}

/// Why `boot()` failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BootError {
    /// A node failed under the [`OnFailure::Abort`](crate::OnFailure::Abort) policy. What had
    /// started was rolled back; the report says what happened to every node.
    #[error("boot aborted: {} failed: {}; everything started was rolled back", .0.node, .0.reason)]
    Aborted(Box<BootAbort>),
    /// `boot()` was called on an `Xcore` that is not freshly built.
    #[error("cannot boot: this Xcore is {0}; an Xcore boots once (build a new one)")]
    NotBootable(&'static str),
    /// From [`BootReport::ensure_all_started`]: nodes that did not start (the boot itself
    /// went on without them).
    #[error(
        "not every node started: {}",
        nodes.iter().map(|(n, s, why)| format!("{n} {s}{why}")).collect::<Vec<_>>().join("; ")
    )]
    NotAllStarted {
        /// Each node that failed or was skipped, its state, and ` (<phase>): <reason>`.
        nodes: Vec<(NodeId, NodeState, String)>,
    },
}

fn phase_label(phase: Phase) -> &'static str {
    match phase {
        Phase::Plan => "plan",
        Phase::Load => "load",
        Phase::Start => "start",
    }
}

/// The details of an aborted boot.
#[derive(Debug, Clone)]
pub struct BootAbort {
    pub(crate) node: NodeId,
    pub(crate) reason: String,
    pub(crate) report: BootReport,
    pub(crate) rollback: ShutdownReport,
}

impl BootAbort {
    /// The node whose failure aborted the boot.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// Why it failed.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The boot report, rolled-back nodes included.
    pub fn report(&self) -> &BootReport {
        &self.report
    }

    /// What the rollback did.
    pub fn rollback(&self) -> &ShutdownReport {
        &self.rollback
    }
}
