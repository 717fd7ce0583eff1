//! Health of plugins and services.

use std::{fmt, time::Duration};

use serde::Serialize;

use crate::NodeId;

/// How healthy a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Working.
    Healthy,
    /// Working, with reduced capacity or a failing optional part.
    Degraded,
    /// Not working.
    Unhealthy,
}

/// The answer of a health check: a status and an optional message.
///
/// ```
/// use xcore::{Health, HealthStatus};
/// let h = Health::degraded("replica lagging");
/// assert_eq!(h.status(), HealthStatus::Degraded);
/// assert_eq!(h.message(), Some("replica lagging"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    status: HealthStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

impl Health {
    /// Healthy, no message.
    pub fn healthy() -> Self {
        Self {
            status: HealthStatus::Healthy,
            message: None,
        }
    }

    /// Healthy, with a message (latencies, sizes).
    pub fn healthy_with(message: impl Into<String>) -> Self {
        Self {
            status: HealthStatus::Healthy,
            message: Some(message.into()),
        }
    }

    /// Degraded, with the reason.
    pub fn degraded(message: impl Into<String>) -> Self {
        Self {
            status: HealthStatus::Degraded,
            message: Some(message.into()),
        }
    }

    /// Unhealthy, with the reason.
    pub fn unhealthy(message: impl Into<String>) -> Self {
        Self {
            status: HealthStatus::Unhealthy,
            message: Some(message.into()),
        }
    }

    /// The status.
    pub fn status(&self) -> HealthStatus {
        self.status
    }

    /// The message, if any.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
}

impl Default for Health {
    fn default() -> Self {
        Self::healthy()
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match self.status {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        };
        match &self.message {
            Some(m) => write!(f, "{status}: {m}"),
            None => f.write_str(status),
        }
    }
}

/// One node's line in a [`HealthReport`].
#[derive(Debug, Clone)]
pub struct NodeHealth {
    pub(crate) node: NodeId,
    pub(crate) health: Health,
    pub(crate) took: Duration,
}

impl NodeHealth {
    /// The node.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// Its health.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// How long its check took.
    pub fn took(&self) -> Duration {
        self.took
    }
}

/// The outcome of [`Xcore::health`](crate::Xcore::health): an overall status and every node's.
///
/// Overall: `unhealthy` if xcore is not running or a service is unhealthy; `degraded` if a
/// service is degraded or a plugin is not healthy (including plugins that failed to boot);
/// `healthy` otherwise.
#[derive(Debug, Clone)]
pub struct HealthReport {
    pub(crate) status: HealthStatus,
    pub(crate) nodes: Vec<NodeHealth>,
}

impl HealthReport {
    /// The overall status.
    pub fn status(&self) -> HealthStatus {
        self.status
    }

    /// Every node checked, services first, then plugins, by name.
    pub fn nodes(&self) -> &[NodeHealth] {
        &self.nodes
    }

    /// One node's health.
    pub fn node(&self, node: &NodeId) -> Option<&NodeHealth> {
        self.nodes.iter().find(|n| &n.node == node)
    }
}
