//! One plugin's lifecycle at runtime: stop, start, reload, restart — with its dependents.

use std::{sync::Arc, time::Duration};

use serde_json::json;
use tokio::time::Instant;

use super::{
    NodeKind, Phase,
    driver::{
        Entry, Nodes, Status, activate, deactivate, kernel_event, loaded_services, run_hook,
        withdraw,
    },
};
use crate::{
    PluginContext,
    config::{Config, Origin},
    runtime::{Lifecycle, Shared},
    runtime::{LifecycleAction, LifecycleReport, Live, PluginState, RuntimeError},
};

/// Runs `action` on plugin `name`, under the container's lock (one lifecycle change at a
/// time, never during boot or shutdown).
pub(crate) async fn run(
    shared: &Arc<Shared>,
    name: &str,
    action: LifecycleAction,
) -> Result<LifecycleReport, RuntimeError> {
    let mut nodes = shared.nodes().lock().await;
    if !shared.is_running() {
        return Err(RuntimeError::NotRunning);
    }
    let i = index(shared, name)?;
    // A change that needs a fresh instance is refused before anything changes when none
    // can be made.
    let fresh_possible = matches!(
        &nodes.entries[i],
        Entry::Plugin { fresh: Some(_), .. }
            | Entry::Plugin {
                factory: Some(_),
                ..
            }
    );
    if action != LifecycleAction::Stop && !fresh_possible {
        return Err(RuntimeError::NoFactory {
            plugin: name.to_owned(),
        });
    }
    let started = Instant::now();
    let mut report = LifecycleReport::new(action, name);
    match action {
        LifecycleAction::Stop => stop(shared, &mut nodes, i, &mut report).await?,
        LifecycleAction::Start => start(shared, &mut nodes, i, &mut report).await?,
        LifecycleAction::Reload => reload(shared, &mut nodes, i, &mut report).await?,
        LifecycleAction::Restart => {
            if matches!(nodes.status[i], Status::Started) {
                stop(shared, &mut nodes, i, &mut report).await?;
            }
            start(shared, &mut nodes, i, &mut report).await?;
        }
    }
    report.took = started.elapsed();
    tracing::info!(
        plugin = name,
        action = action.as_str(),
        stopped = ?report.stopped,
        started = ?report.started,
        failed = ?report.failed,
        took = ?report.took,
        "plugin lifecycle change"
    );
    Ok(report)
}

/// The plan index of plugin `name`.
fn index(shared: &Shared, name: &str) -> Result<usize, RuntimeError> {
    let plan = shared.plan();
    plan.nodes
        .iter()
        .position(|n| n.kind() == NodeKind::Plugin && n.name() == name)
        .ok_or_else(|| {
            let mut names: Vec<&str> = shared.identities().iter().map(|i| i.name()).collect();
            names.sort_unstable();
            RuntimeError::NotFound {
                plugin: name.to_owned(),
                plugins: names.join(", "),
            }
        })
}

/// The plugins that require `i`, directly or not, in wave order.
fn dependents(shared: &Shared, i: usize) -> Vec<usize> {
    let plan = shared.plan();
    let mut marked = vec![false; plan.nodes.len()];
    marked[i] = true;
    let mut out = Vec::new();
    for wave in &plan.waves {
        for &j in wave {
            if j != i && plan.deps[j].iter().any(|&d| marked[d]) {
                marked[j] = true;
                out.push(j);
            }
        }
    }
    out
}

fn state_of(status: &Status) -> PluginState {
    match status {
        Status::Pending => PluginState::Pending,
        Status::Loaded | Status::Started => PluginState::Running,
        Status::Stopped => PluginState::Stopped,
        Status::Failed(..) => PluginState::Failed,
        Status::Skipped(..) => PluginState::Skipped,
        Status::RolledBack => PluginState::RolledBack,
    }
}

/// Stops `i` and, first, every running plugin that requires it (reverse waves).
async fn stop(
    shared: &Arc<Shared>,
    nodes: &mut Nodes,
    i: usize,
    report: &mut LifecycleReport,
) -> Result<(), RuntimeError> {
    if !matches!(nodes.status[i], Status::Started) {
        return Err(RuntimeError::InvalidState {
            plugin: shared.plan().nodes[i].name().to_owned(),
            state: state_of(&nodes.status[i]),
            action: report.action,
        });
    }
    let name = shared.plan().nodes[i].name().to_owned();
    for &j in dependents(shared, i).iter().rev() {
        if matches!(nodes.status[j], Status::Started) {
            let why = format!("stopped because `{name}`, which it requires, stopped");
            take_down(shared, nodes, j, Some(&why)).await;
            nodes.stopped_for[j] = Some(i);
            report
                .stopped
                .push(shared.plan().nodes[j].name().to_owned());
        }
    }
    take_down(shared, nodes, i, None).await;
    nodes.stopped_for[i] = None;
    report.stopped.push(name);
    Ok(())
}

/// Takes the started plugin `i` down: its slot first (new calls are answered
/// `unavailable`), then its gate drains, its registrations go, its `on_stop` runs.
async fn take_down(shared: &Arc<Shared>, nodes: &mut Nodes, i: usize, why: Option<&str>) {
    let name = shared.plan().nodes[i].name();
    if let Some(slot) = shared.runtime().slot(name) {
        slot.set(Live::Down(PluginState::Stopped, why.map(Arc::from)));
    }
    let services = loaded_services(&nodes.entries);
    let Entry::Plugin { ctx, loaded, .. } = &mut nodes.entries[i] else {
        return;
    };
    let outcome = match loaded.take() {
        Some(plugin) => {
            let limit = shared.options().stop_timeout;
            match deactivate(shared, &services, ctx, &plugin, limit).await.0 {
                Ok(()) => "stopped".to_owned(),
                Err(reason) => format!("failed: {reason}"),
            }
        }
        None => "stopped".to_owned(),
    };
    nodes.status[i] = Status::Stopped;
    let payload = json!({ "plugin": name, "outcome": outcome, "reason": why });
    kernel_event(shared, format!("plugin.{name}.stopped"), payload).await;
}

/// Whether every dependency of `i` (services and plugins) runs; else the first that does not.
fn blocked(shared: &Shared, nodes: &Nodes, i: usize) -> Option<String> {
    shared.plan().deps[i]
        .iter()
        .find(|&&d| !matches!(nodes.status[d], Status::Started))
        .map(|&d| shared.plan().nodes[d].name().to_owned())
}

/// Starts `i` with a fresh instance, then the plugins that require it and are down because
/// of it (stopped with it, or skipped at boot), in waves.
async fn start(
    shared: &Arc<Shared>,
    nodes: &mut Nodes,
    i: usize,
    report: &mut LifecycleReport,
) -> Result<(), RuntimeError> {
    let name = shared.plan().nodes[i].name().to_owned();
    match &nodes.status[i] {
        Status::Stopped => {}
        Status::Failed(phase, _) | Status::Skipped(phase, _) if *phase != Phase::Plan => {}
        other => {
            return Err(RuntimeError::InvalidState {
                plugin: name,
                state: state_of(other),
                action: report.action,
            });
        }
    }
    if let Some(dependency) = blocked(shared, nodes, i) {
        return Err(RuntimeError::DependencyDown {
            plugin: name,
            dependency,
        });
    }
    if let Err((phase, reason)) = bring_up(shared, nodes, i, false).await {
        return Err(RuntimeError::Failed {
            plugin: name,
            phase,
            reason,
        });
    }
    report.started.push(name);
    for j in dependents(shared, i) {
        let down_for_it = nodes.stopped_for[j] == Some(i)
            || matches!(&nodes.status[j], Status::Skipped(p, _) if *p != Phase::Plan);
        if !down_for_it || blocked(shared, nodes, j).is_some() {
            continue;
        }
        let dependent = shared.plan().nodes[j].name().to_owned();
        match bring_up(shared, nodes, j, false).await {
            Ok(()) => report.started.push(dependent),
            Err((_, reason)) => report.failed.push((dependent, reason)),
        }
        nodes.stopped_for[j] = None;
    }
    Ok(())
}

/// Reloads the running plugin `i`: the config re-read, calls held while a fresh instance
/// replaces the old one.
async fn reload(
    shared: &Arc<Shared>,
    nodes: &mut Nodes,
    i: usize,
    report: &mut LifecycleReport,
) -> Result<(), RuntimeError> {
    let name = shared.plan().nodes[i].name().to_owned();
    if !matches!(nodes.status[i], Status::Started) {
        return Err(RuntimeError::InvalidState {
            plugin: name,
            state: state_of(&nodes.status[i]),
            action: report.action,
        });
    }
    if !matches!(
        &nodes.entries[i],
        Entry::Plugin {
            factory: Some(_),
            ..
        }
    ) {
        return Err(RuntimeError::NoFactory { plugin: name });
    }
    // The config first: a file that no longer loads changes nothing.
    if let Some(config) = shared.config()
        && let Origin::File(path) = config.origin()
    {
        let fresh = Config::from_file(&**path).map_err(|e| RuntimeError::Config {
            plugin: name.clone(),
            source: Box::new(e),
        })?;
        shared.set_config(fresh);
    }
    let slot = shared.runtime().slot(&name);
    if let Some(slot) = slot {
        slot.set(Live::Swapping);
    }
    let services = loaded_services(&nodes.entries);
    if let Entry::Plugin { ctx, loaded, .. } = &mut nodes.entries[i]
        && let Some(old) = loaded.take()
    {
        let limit = shared.options().stop_timeout;
        if let Err(reason) = deactivate(shared, &services, ctx, &old, limit).await.0 {
            tracing::warn!(plugin = %name, %reason, "the old instance did not stop cleanly");
        }
    }
    match bring_up(shared, nodes, i, true).await {
        Ok(()) => {
            report.stopped.push(name.clone());
            report.started.push(name);
            Ok(())
        }
        Err((phase, reason)) => Err(RuntimeError::Failed {
            plugin: name,
            phase,
            reason,
        }),
    }
}

/// Loads and starts a fresh instance of plugin `i` (its unused boot instance, or one from its
/// factory) with a fresh context, and makes it reachable. On failure the plugin is `failed`
/// (whatever it registered withdrawn) and `plugin.<name>.failed` is emitted.
async fn bring_up(
    shared: &Arc<Shared>,
    nodes: &mut Nodes,
    i: usize,
    reloading: bool,
) -> Result<(), (Phase, String)> {
    let started = Instant::now();
    let services = loaded_services(&nodes.entries);
    let plan = shared.plan();
    let name = plan.nodes[i].name().to_owned();
    let Entry::Plugin {
        identity,
        ctx,
        fresh,
        loaded,
        factory,
    } = &mut nodes.entries[i]
    else {
        return Err((Phase::Load, "not a plugin (internal error)".into()));
    };
    let instance = match (fresh.take(), factory) {
        (Some(instance), _) => instance,
        (None, Some(make)) => make(),
        (None, None) => {
            let reason = "added as an instance (`XcoreBuilder::plugin`), it has no factory to \
                          make a fresh one; add it with `XcoreBuilder::plugin_factory`"
                .to_owned();
            return Err((Phase::Load, reason));
        }
    };
    *ctx = PluginContext::new(identity.clone(), shared.weak_self(), shared.rate_slot());
    let ctx = ctx.clone();
    let version = identity.manifest().version().to_string();
    let outcome = load_and_start(shared, &services, &ctx, instance).await;
    let (phase, reason) = match outcome {
        Ok(plugin) => {
            *loaded = Some(plugin);
            nodes.status[i] = Status::Started;
            let (what, payload) = if reloading {
                let took = started.elapsed();
                let payload = json!({
                    "plugin": name,
                    "version": version,
                    "took_ms": took.as_secs_f64() * 1e3,
                });
                ("reloaded", payload)
            } else {
                let payload =
                    json!({ "plugin": name, "version": version, "wave": plan.wave_of[i] });
                ("started", payload)
            };
            kernel_event(shared, format!("plugin.{name}.{what}"), payload).await;
            return Ok(());
        }
        Err(failure) => failure,
    };
    tracing::warn!(plugin = %name, %reason, "the plugin failed to start");
    if let Some(slot) = shared.runtime().slot(&name) {
        slot.set(Live::Down(
            PluginState::Failed,
            Some(Arc::from(reason.as_str())),
        ));
    }
    nodes.status[i] = Status::Failed(phase, reason.clone());
    let payload = json!({
        "plugin": name,
        "state": "failed",
        "phase": if phase == Phase::Load { "load" } else { "start" },
        "reason": reason,
    });
    kernel_event(shared, format!("plugin.{name}.failed"), payload).await;
    Err((phase, reason))
}

/// `on_load`, `on_start`, then [`activate`]; what the instance registered is withdrawn on a
/// failure.
async fn load_and_start(
    shared: &Arc<Shared>,
    services: &[Arc<dyn crate::Service>],
    ctx: &PluginContext,
    mut instance: Box<dyn crate::Plugin>,
) -> Result<Arc<dyn crate::Plugin>, (Phase, String)> {
    let limit: Duration = shared.options().load_timeout;
    if let (Err(reason), _) = run_hook(limit, instance.on_load(ctx)).await {
        withdraw(shared, services, ctx.name()).await;
        return Err((Phase::Load, reason));
    }
    let plugin: Arc<dyn crate::Plugin> = Arc::from(instance);
    let limit = shared.options().start_timeout;
    if let (Err(reason), _) = run_hook(limit, plugin.on_start(ctx)).await {
        withdraw(shared, services, ctx.name()).await;
        return Err((Phase::Start, reason));
    }
    activate(shared, services, ctx, &plugin)
        .await
        .map_err(|reason| (Phase::Start, reason))?;
    Ok(plugin)
}

impl Shared {
    /// Whether the `Xcore` runs (booted, not shutting down).
    pub(crate) fn is_running(&self) -> bool {
        self.lifecycle_is(Lifecycle::Running)
    }
}
