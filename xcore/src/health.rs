//! Health of plugins and services.

use std::fmt;

use serde::Serialize;

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
