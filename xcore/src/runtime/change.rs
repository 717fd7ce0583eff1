//! What a lifecycle change of one plugin did, or why it was refused.

use std::{fmt, time::Duration};

use serde_json::{Value, json};

use crate::{CallError, ErrorCode, config::ConfigError, container::Phase, runtime::PluginState};

/// A lifecycle change of one plugin at runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LifecycleAction {
    /// [`Xcore::stop_plugin`](crate::Xcore::stop_plugin).
    Stop,
    /// [`Xcore::start_plugin`](crate::Xcore::start_plugin).
    Start,
    /// [`Xcore::reload_plugin`](crate::Xcore::reload_plugin).
    Reload,
    /// [`Xcore::restart_plugin`](crate::Xcore::restart_plugin).
    Restart,
}

impl LifecycleAction {
    /// `stop`, `start`, `reload`, `restart`.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleAction::Stop => "stop",
            LifecycleAction::Start => "start",
            LifecycleAction::Reload => "reload",
            LifecycleAction::Restart => "restart",
        }
    }

    /// The action named `name` (as in `POST /xcore/plugins/{name}/{action}`).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "stop" => LifecycleAction::Stop,
            "start" => LifecycleAction::Start,
            "reload" => LifecycleAction::Reload,
            "restart" => LifecycleAction::Restart,
            _ => return None,
        })
    }
}

impl fmt::Display for LifecycleAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a lifecycle change did: the plugins stopped and started, in order (dependents
/// included), and those of its dependents that failed to come back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LifecycleReport {
    /// The change.
    pub action: LifecycleAction,
    /// The plugin asked for.
    pub plugin: String,
    /// The plugins stopped, in order: dependents first (reverse waves), then the plugin.
    pub stopped: Vec<String>,
    /// The plugins started, in order: the plugin, then its dependents (waves).
    pub started: Vec<String>,
    /// Dependents that failed to start again, with the reason.
    pub failed: Vec<(String, String)>,
    /// How long the change took.
    pub took: Duration,
}

impl LifecycleReport {
    pub(crate) fn new(action: LifecycleAction, plugin: &str) -> Self {
        Self {
            action,
            plugin: plugin.to_owned(),
            stopped: Vec::new(),
            started: Vec::new(),
            failed: Vec::new(),
            took: Duration::ZERO,
        }
    }

    /// The report as the admin API answers it.
    pub fn to_json(&self) -> Value {
        json!({
            "action": self.action.as_str(),
            "plugin": self.plugin,
            "stopped": self.stopped,
            "started": self.started,
            "failed": self
                .failed
                .iter()
                .map(|(plugin, reason)| json!({ "plugin": plugin, "reason": reason }))
                .collect::<Vec<_>>(),
            "took_ms": self.took.as_secs_f64() * 1e3,
        })
    }
}

/// Why a lifecycle change was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// No plugin of that name in the plan.
    #[error("no plugin `{plugin}`; plugins: {plugins}")]
    NotFound {
        /// The name asked for.
        plugin: String,
        /// The plugins of the plan, comma-separated.
        plugins: String,
    },
    /// The `Xcore` is not running (not booted yet, shutting down, stopped).
    #[error("xcore is not running: plugins change only between boot and shutdown")]
    NotRunning,
    /// The plugin is not in a state the change applies to.
    #[error(
        "cannot {action} plugin `{plugin}`: it is {state}{}",
        match (action, state) {
            (LifecycleAction::Stop | LifecycleAction::Reload, _) => " (only a running plugin can be stopped or reloaded)",
            (_, PluginState::Running) => " (use reload or restart)",
            _ => " (a plugin the plan rejected cannot start)",
        }
    )]
    InvalidState {
        /// The plugin.
        plugin: String,
        /// Its state.
        state: PluginState,
        /// The change refused.
        action: LifecycleAction,
    },
    /// A plugin or service it requires is not running.
    #[error(
        "cannot start plugin `{plugin}`: `{dependency}`, which it requires, is not running; start it first"
    )]
    DependencyDown {
        /// The plugin.
        plugin: String,
        /// The first dependency down.
        dependency: String,
    },
    /// The plugin was added as an instance and cannot be made fresh.
    #[error(
        "cannot make a fresh instance of plugin `{plugin}` (to start it again, reload or \
         restart it): it was added as an instance (`XcoreBuilder::plugin`), with no factory; \
         add it with `XcoreBuilder::plugin_factory`"
    )]
    NoFactory {
        /// The plugin.
        plugin: String,
    },
    /// Re-reading the config file for a reload failed; nothing changed.
    #[error("cannot reload plugin `{plugin}`: the config no longer loads: {source}")]
    Config {
        /// The plugin.
        plugin: String,
        /// The config error.
        source: Box<ConfigError>,
    },
    /// The fresh instance failed in a hook: the plugin is now `failed`.
    #[error("plugin `{plugin}` failed to {}: {reason}", if *phase == Phase::Load { "load" } else { "start" })]
    Failed {
        /// The plugin.
        plugin: String,
        /// The hook's phase.
        phase: Phase,
        /// Why.
        reason: String,
    },
}

impl From<&RuntimeError> for CallError {
    fn from(err: &RuntimeError) -> Self {
        let code = match err {
            RuntimeError::NotFound { .. } => ErrorCode::NotFound,
            RuntimeError::NotRunning => ErrorCode::NotReady,
            RuntimeError::InvalidState { .. }
            | RuntimeError::DependencyDown { .. }
            | RuntimeError::NoFactory { .. }
            | RuntimeError::Config { .. } => ErrorCode::Conflict,
            RuntimeError::Failed { .. } => ErrorCode::Unavailable,
        };
        CallError::new(code, err.to_string())
    }
}
