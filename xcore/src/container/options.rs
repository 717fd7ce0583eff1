//! Boot options: timeouts and failure policy.

use std::time::Duration;

/// What a failure of a node of some kind does to the whole boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnFailure {
    /// Stop the boot at the end of the wave, roll back what started, and return an error.
    Abort,
    /// Report the node (its dependents are skipped) and go on with the rest.
    Continue,
}

/// How long each lifecycle hook may take, and what failures do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BootOptions {
    /// Limit of each `init` / `on_load` (default 30 s).
    pub load_timeout: Duration,
    /// Limit of each `start` / `on_start` (default 30 s).
    pub start_timeout: Duration,
    /// Limit of each `shutdown` / `on_stop` (default 10 s).
    pub stop_timeout: Duration,
    /// Limit of each health check (default 2 s).
    pub health_timeout: Duration,
    /// How long a call or route request waits for a plugin being reloaded (default 30 s, cut
    /// by the call's deadline); past it, `unavailable`.
    pub swap_wait: Duration,
    /// What a failed service does (default: [`OnFailure::Abort`]).
    pub on_service_failure: OnFailure,
    /// What a failed plugin does (default: [`OnFailure::Continue`]).
    pub on_plugin_failure: OnFailure,
}

impl Default for BootOptions {
    fn default() -> Self {
        Self {
            load_timeout: Duration::from_secs(30),
            start_timeout: Duration::from_secs(30),
            stop_timeout: Duration::from_secs(10),
            health_timeout: Duration::from_secs(2),
            swap_wait: Duration::from_secs(30),
            on_service_failure: OnFailure::Abort,
            on_plugin_failure: OnFailure::Continue,
        }
    }
}
