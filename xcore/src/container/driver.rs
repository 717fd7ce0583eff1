//! The boot and shutdown driver: waves, concurrency, timeouts, failure policy, rollback.

use std::{
    collections::HashMap, future::Future, panic::AssertUnwindSafe, sync::Arc, time::Duration,
};

use futures_util::{FutureExt, future::join_all};
use tokio::time::Instant;

use super::{
    BootAbort, BootError, BootReport, NodeKind, NodeReport, NodeState, OnFailure, Phase, Plan,
    Service, ServiceContext, ShutdownReport, StartedPlugin, StopOutcome, graph::GraphError,
};
use serde_json::{Value, json};

use crate::{
    HookError, Plugin, PluginContext, PluginIdentity, TenantId,
    call::{build_pipeline, layers::catch_panic_message},
    events::{Dispatch, Event, EventSource},
    runtime::{Instance, Live, PluginState},
    runtime::{Lifecycle, Shared},
};

/// Emits a kernel event and waits for its handlers.
pub(super) async fn kernel_event(shared: &Shared, name: String, payload: Value) {
    let event = Event::with_source(name, payload, EventSource::Kernel, TenantId::default(), 0);
    shared.events().emit(event, Dispatch::Sequential).await;
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Plan => "plan",
        Phase::Load => "load",
        Phase::Start => "start",
    }
}

/// Emits `plugin.<name>.<what>` for the plugins of `indices` whose status `pick` selects.
async fn plugin_events(shared: &Shared, nodes: &Nodes, indices: &[usize], phase: Phase) {
    let plan = shared.plan();
    for &i in indices {
        let node = &plan.nodes[i];
        if node.kind() != NodeKind::Plugin {
            continue;
        }
        let (what, payload) = match (&nodes.status[i], phase) {
            (Status::Loaded, Phase::Load) | (Status::Started, Phase::Start) => {
                let Entry::Plugin { identity, .. } = &nodes.entries[i] else {
                    continue;
                };
                let what = if phase == Phase::Load {
                    "loaded"
                } else {
                    "started"
                };
                (
                    what,
                    json!({
                        "plugin": node.name(),
                        "version": identity.manifest().version().to_string(),
                        "wave": plan.wave_of[i],
                    }),
                )
            }
            (Status::Failed(p, reason), _) | (Status::Skipped(p, reason), _) if *p == phase => (
                "failed",
                json!({
                    "plugin": node.name(),
                    "state": if matches!(nodes.status[i], Status::Failed(..)) { "failed" } else { "skipped" },
                    "phase": phase_name(phase),
                    "reason": reason,
                }),
            ),
            _ => continue,
        };
        kernel_event(shared, format!("plugin.{}.{what}", node.name()), payload).await;
    }
}

/// One node's instance, before and after its load hook.
pub(crate) enum Entry {
    Service {
        fresh: Option<Box<dyn Service>>,
        loaded: Option<Arc<dyn Service>>,
    },
    Plugin {
        identity: PluginIdentity,
        ctx: PluginContext,
        fresh: Option<Box<dyn Plugin>>,
        loaded: Option<Arc<dyn Plugin>>,
        /// Makes a fresh instance (for a start after a stop, a reload, a restart); `None`
        /// for a plugin added as an instance.
        factory: Option<Factory>,
    },
}

/// Makes fresh instances of a plugin.
pub(crate) type Factory = Arc<dyn Fn() -> Box<dyn Plugin> + Send + Sync>;

#[derive(Debug, Clone)]
pub(super) enum Status {
    Pending,
    Loaded,
    Started,
    /// Stopped at runtime (by the host, or because a plugin it requires stopped).
    Stopped,
    Failed(Phase, String),
    Skipped(Phase, String),
    RolledBack,
}

/// The instances of an `Xcore`, indexed like the plan's nodes.
pub(crate) struct Nodes {
    pub(super) entries: Vec<Entry>,
    pub(super) status: Vec<Status>,
    /// For a plugin stopped because a plugin it requires stopped: that plugin (whose start
    /// brings it back).
    pub(super) stopped_for: Vec<Option<usize>>,
    load_took: Vec<Option<Duration>>,
    start_took: Vec<Option<Duration>>,
}

impl Nodes {
    pub(crate) fn new(entries: Vec<Entry>) -> Self {
        let n = entries.len();
        Self {
            entries,
            status: vec![Status::Pending; n],
            stopped_for: vec![None; n],
            load_took: vec![None; n],
            start_took: vec![None; n],
        }
    }
}

/// Runs one hook under a timeout, with panic isolation; returns the outcome and its duration.
pub(super) async fn run_hook<F>(limit: Duration, hook: F) -> (Result<(), String>, Duration)
where
    F: Future<Output = Result<(), HookError>>,
{
    let started = Instant::now();
    let outcome = match tokio::time::timeout(limit, AssertUnwindSafe(hook).catch_unwind()).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(err))) => Err(err.to_string()),
        Ok(Err(panic)) => Err(format!("panicked: {}", catch_panic_message(&*panic))),
        Err(_) => Err(format!("timed out after {limit:?}")),
    };
    (outcome, started.elapsed())
}

fn policy(shared: &Shared, kind: NodeKind) -> OnFailure {
    match kind {
        NodeKind::Service => shared.options().on_service_failure,
        NodeKind::Plugin => shared.options().on_plugin_failure,
    }
}

/// The first dependency of `i` not in the wanted state, described for a skip reason.
fn blocked_by(
    plan: &Plan,
    status: &[Status],
    i: usize,
    wanted: fn(&Status) -> bool,
) -> Option<String> {
    plan.deps[i]
        .iter()
        .find(|&&d| !wanted(&status[d]))
        .map(|&d| {
            let what = match &status[d] {
                Status::Skipped(..) => "was skipped",
                _ => "failed",
            };
            format!("dependency `{}` {what}", plan.nodes[d].name())
        })
}

/// The context of service `i`: its loaded service dependencies.
fn service_context(shared: &Shared, entries: &[Entry], i: usize) -> ServiceContext {
    let plan = shared.plan();
    let deps: HashMap<String, Arc<dyn Service>> = plan.deps[i]
        .iter()
        .filter_map(|&d| match &entries[d] {
            Entry::Service {
                loaded: Some(s), ..
            } => Some((plan.nodes[d].name().to_owned(), s.clone())),
            _ => None,
        })
        .collect();
    ServiceContext::new(
        plan.nodes[i].name(),
        deps,
        shared.config(),
        shared.weak_self(),
    )
}

/// The load phase of one wave.
async fn load_wave(
    shared: &Arc<Shared>,
    nodes: &mut Nodes,
    wave: &[usize],
) -> Option<(usize, String)> {
    let plan = shared.plan();
    let limit = shared.options().load_timeout;
    let mut plugin_hooks = Vec::new();
    let mut service_hooks = Vec::new();
    for &i in wave {
        if let Some(reason) = blocked_by(plan, &nodes.status, i, |s| matches!(s, Status::Loaded)) {
            nodes.status[i] = Status::Skipped(Phase::Load, reason);
            continue;
        }
        match &mut nodes.entries[i] {
            Entry::Plugin { ctx, fresh, .. } => {
                let (ctx, fresh) = (ctx.clone(), fresh.take());
                plugin_hooks.push(async move {
                    let mut plugin = fresh?;
                    let (outcome, took) = run_hook(limit, plugin.on_load(&ctx)).await;
                    Some((i, plugin, outcome, took))
                });
            }
            Entry::Service { .. } => {
                let ctx = service_context(shared, &nodes.entries, i);
                let Entry::Service { fresh, .. } = &mut nodes.entries[i] else {
                    continue;
                };
                let fresh = fresh.take();
                service_hooks.push(async move {
                    let mut service = fresh?;
                    let (outcome, took) = run_hook(limit, service.init(&ctx)).await;
                    Some((i, service, outcome, took))
                });
            }
        }
    }
    let (plugins, services) = tokio::join!(join_all(plugin_hooks), join_all(service_hooks));
    let mut abort = None;
    let mut record = |nodes: &mut Nodes, i: usize, outcome: Result<(), String>, took| {
        nodes.load_took[i] = Some(took);
        match outcome {
            Ok(()) => nodes.status[i] = Status::Loaded,
            Err(reason) => {
                tracing::warn!(node = %plan.nodes[i], %reason, "load failed");
                if policy(shared, plan.nodes[i].kind()) == OnFailure::Abort {
                    abort.get_or_insert((i, reason.clone()));
                }
                nodes.status[i] = Status::Failed(Phase::Load, reason);
            }
        }
    };
    for (i, plugin, outcome, took) in plugins.into_iter().flatten() {
        if outcome.is_ok()
            && let Entry::Plugin { loaded, .. } = &mut nodes.entries[i]
        {
            *loaded = Some(Arc::from(plugin));
        }
        record(nodes, i, outcome, took);
    }
    for (i, service, outcome, took) in services.into_iter().flatten() {
        if outcome.is_ok()
            && let Entry::Service { loaded, .. } = &mut nodes.entries[i]
        {
            let service: Arc<dyn Service> = Arc::from(service);
            shared.register_service(plan.nodes[i].name(), service.clone());
            *loaded = Some(service);
        }
        record(nodes, i, outcome, took);
    }
    withdraw_failed(shared, nodes, wave, Phase::Load).await;
    plugin_events(shared, nodes, wave, Phase::Load).await;
    abort
}

/// The start phase of one wave. Started plugins become callable at once.
async fn start_wave(
    shared: &Arc<Shared>,
    nodes: &mut Nodes,
    wave: &[usize],
) -> Option<(usize, String)> {
    let plan = shared.plan();
    let limit = shared.options().start_timeout;
    let mut hooks = Vec::new();
    for &i in wave {
        if !matches!(nodes.status[i], Status::Loaded) {
            continue;
        }
        if let Some(reason) = blocked_by(plan, &nodes.status, i, |s| matches!(s, Status::Started)) {
            nodes.status[i] = Status::Skipped(Phase::Start, reason);
            continue;
        }
        match &nodes.entries[i] {
            Entry::Plugin {
                ctx,
                loaded: Some(plugin),
                ..
            } => {
                let (ctx, plugin) = (ctx.clone(), plugin.clone());
                hooks.push(
                    async move {
                        let (outcome, took) = run_hook(limit, plugin.on_start(&ctx)).await;
                        (i, outcome, took)
                    }
                    .boxed(),
                );
            }
            Entry::Service {
                loaded: Some(service),
                ..
            } => {
                let ctx = service_context(shared, &nodes.entries, i);
                let service = service.clone();
                hooks.push(
                    async move {
                        let (outcome, took) = run_hook(limit, service.start(&ctx)).await;
                        (i, outcome, took)
                    }
                    .boxed(),
                );
            }
            _ => {
                nodes.status[i] =
                    Status::Failed(Phase::Start, "no instance (internal error)".into())
            }
        }
    }
    let mut abort = None;
    let mut failed_after_start = Vec::new();
    for (i, outcome, took) in join_all(hooks).await {
        nodes.start_took[i] = Some(took);
        match outcome {
            Ok(()) => {
                nodes.status[i] = Status::Started;
                if let Entry::Plugin {
                    ctx,
                    loaded: Some(plugin),
                    ..
                } = &nodes.entries[i]
                {
                    let services = loaded_services(&nodes.entries);
                    if let Err(reason) = activate(shared, &services, ctx, plugin).await {
                        failed_after_start.push((i, reason));
                    }
                }
            }
            Err(reason) => {
                tracing::warn!(node = %plan.nodes[i], %reason, "start failed");
                if policy(shared, plan.nodes[i].kind()) == OnFailure::Abort {
                    abort.get_or_insert((i, reason.clone()));
                }
                nodes.status[i] = Status::Failed(Phase::Start, reason);
            }
        }
    }
    for (i, reason) in failed_after_start {
        tracing::warn!(node = %plan.nodes[i], %reason, "start failed");
        if policy(shared, plan.nodes[i].kind()) == OnFailure::Abort {
            abort.get_or_insert((i, reason.clone()));
        }
        nodes.status[i] = Status::Failed(Phase::Start, reason);
    }
    // Those refused by a service were withdrawn already; withdrawing again finds nothing.
    withdraw_failed(shared, nodes, wave, Phase::Start).await;
    plugin_events(shared, nodes, wave, Phase::Start).await;
    abort
}

/// Makes a plugin instance whose `on_start` succeeded reachable: its pipeline and routes,
/// then what services take from it (its declared jobs, ...), then its gate opens and its slot
/// holds it. A service refusing it undoes everything (the instance gets its `on_stop`): the
/// reason is returned.
pub(super) async fn activate(
    shared: &Arc<Shared>,
    services: &[Arc<dyn Service>],
    ctx: &PluginContext,
    plugin: &Arc<dyn Plugin>,
) -> Result<(), String> {
    let identity = ctx.identity();
    let limit = shared.options().start_timeout;
    let pipeline = build_pipeline(ctx, plugin.clone(), shared.layers(), shared.audit());
    let metrics = shared.metrics();
    let meter = metrics.is_enabled().then(|| {
        crate::observability::CallMeter::new(
            metrics.clone(),
            identity.name(),
            plugin.action_names(),
        )
    });
    // Its routes, asked for once, right after a successful `on_start`.
    let routes = crate::web::collect_routes(&**plugin, ctx);
    // Services take what the plugin declared for them (its jobs, ...).
    let started = StartedPlugin::new(identity, plugin.declarations());
    let mut refused = started.check_declared_services().err();
    // The gate opens before the services take the plugin's declarations: a job may fire
    // at once.
    ctx.gate().open();
    for service in services.iter().filter(|_| refused.is_none()) {
        let (outcome, _) = run_hook(limit, service.on_plugin_start(&started)).await;
        if let Err(reason) = outcome {
            refused = Some(format!("service `{}`: {reason}", service.name()));
            break;
        }
    }
    if let Some(reason) = refused {
        let stop = shared.options().stop_timeout;
        let _ = deactivate(shared, services, ctx, plugin, stop).await;
        return Err(reason);
    }
    if let Some(slot) = shared.runtime().slot(ctx.name()) {
        slot.set(Live::Running(Arc::new(Instance {
            ctx: ctx.clone(),
            plugin: plugin.clone(),
            pipeline,
            meter,
            routes,
        })));
    }
    Ok(())
}

/// Takes a started instance out: its gate closes and drains (at most `limit`), what it
/// registered is withdrawn, then its `on_stop` runs (under `limit`). The caller has already
/// moved its slot off it. Returns the `on_stop` outcome and its duration.
pub(super) async fn deactivate(
    shared: &Shared,
    services: &[Arc<dyn Service>],
    ctx: &PluginContext,
    plugin: &Arc<dyn Plugin>,
    limit: Duration,
) -> (Result<(), String>, Duration) {
    let left = ctx.gate().close(limit).await;
    if left > 0 {
        tracing::warn!(
            plugin = ctx.name(),
            left,
            "stopping with entries still inside after the stop timeout"
        );
    }
    withdraw(shared, services, ctx.name()).await;
    let (ctx, plugin) = (ctx.clone(), plugin.clone());
    run_hook(limit, async move { plugin.on_stop(&ctx).await }).await
}

/// Withdraws everything plugin `name` registered: it stops serving calls and routes, its event
/// subscriptions go, and every loaded service withdraws what it holds for it
/// ([`Service::on_plugin_stop`]: its jobs, its task handlers, what extensions keep for it).
/// The one path for a plugin that stops and one that fails (in `on_load`, in `on_start`, refused
/// by a service, timed out, panicked) or never starts (skipped after loading).
pub(super) async fn withdraw(shared: &Shared, services: &[Arc<dyn Service>], name: &str) {
    let subscriptions = shared.events().remove_owner(name);
    if subscriptions > 0 {
        tracing::debug!(
            plugin = name,
            subscriptions,
            "withdrew the event subscriptions of a plugin"
        );
    }
    for service in services {
        service.on_plugin_stop(name).await;
    }
}

/// Withdraws the registrations of the plugins of `wave` that failed or were skipped in `phase`
/// after they ran a hook (so may have registered something).
async fn withdraw_failed(shared: &Shared, nodes: &Nodes, wave: &[usize], phase: Phase) {
    let services = loaded_services(&nodes.entries);
    for &i in wave {
        let ran_a_hook = match (&nodes.status[i], phase) {
            (Status::Failed(p, _), _) => *p == phase,
            // Loaded, then skipped at start because a dependency did not start.
            (Status::Skipped(Phase::Start, _), Phase::Start) => nodes.load_took[i].is_some(),
            _ => false,
        };
        if ran_a_hook && matches!(nodes.entries[i], Entry::Plugin { .. }) {
            withdraw(shared, &services, shared.plan().nodes[i].name()).await;
        }
    }
}

pub(super) fn loaded_services(entries: &[Entry]) -> Vec<Arc<dyn Service>> {
    entries
        .iter()
        .filter_map(|e| match e {
            Entry::Service {
                loaded: Some(s), ..
            } => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// Stops, in reverse wave order and concurrently inside a wave, the started plugins and the
/// loaded services. Plugins stop receiving calls before their `on_stop`.
async fn stop_all(shared: &Arc<Shared>, nodes: &mut Nodes) -> ShutdownReport {
    let plan = shared.plan();
    let limit = shared.options().stop_timeout;
    let mut report = ShutdownReport::default();
    for wave in plan.waves.iter().rev() {
        let mut hooks = Vec::new();
        for &i in wave {
            match (&nodes.entries[i], &nodes.status[i]) {
                (
                    Entry::Plugin {
                        ctx,
                        loaded: Some(p),
                        ..
                    },
                    Status::Started,
                ) => {
                    // It stops serving calls at once (its slot, then its gate, which drains
                    // what is inside); every service withdraws what the plugin holds in it
                    // (jobs, tasks, ...) before the plugin's own `on_stop`.
                    if let Some(slot) = shared.runtime().slot(plan.nodes[i].name()) {
                        slot.set(Live::Down(PluginState::Stopped, None));
                    }
                    let services = loaded_services(&nodes.entries);
                    let (ctx, p, shared) = (ctx.clone(), p.clone(), shared.clone());
                    hooks.push(
                        async move { (i, deactivate(&shared, &services, &ctx, &p, limit).await) }
                            .boxed(),
                    );
                }
                // Loaded but never started (a rollback during boot): what its `on_load`
                // registered is withdrawn; it gets no `on_stop`, as it never started.
                (Entry::Plugin { .. }, Status::Loaded) => {
                    let services = loaded_services(&nodes.entries);
                    withdraw(shared, &services, plan.nodes[i].name()).await;
                }
                // A service whose `init` succeeded releases its resources, even if it
                // failed to start or was never started.
                (
                    Entry::Service {
                        loaded: Some(s), ..
                    },
                    _,
                ) => {
                    let s = s.clone();
                    hooks.push(async move { (i, run_hook(limit, async move { s.shutdown().await }).await) }.boxed());
                }
                _ => {}
            }
        }
        for (i, (outcome, took)) in join_all(hooks).await {
            let outcome = match outcome {
                Ok(()) => StopOutcome::Stopped,
                Err(reason) if reason.starts_with("timed out") => StopOutcome::TimedOut,
                Err(reason) => StopOutcome::Failed(reason),
            };
            if outcome != StopOutcome::Stopped {
                tracing::warn!(node = %plan.nodes[i], ?outcome, "did not stop cleanly");
            }
            if plan.nodes[i].kind() == NodeKind::Plugin {
                let outcome = match &outcome {
                    StopOutcome::Stopped => "stopped".to_owned(),
                    StopOutcome::TimedOut => "timed out".to_owned(),
                    StopOutcome::Failed(reason) => format!("failed: {reason}"),
                };
                let payload = json!({ "plugin": plan.nodes[i].name(), "outcome": outcome });
                kernel_event(
                    shared,
                    format!("plugin.{}.stopped", plan.nodes[i].name()),
                    payload,
                )
                .await;
            }
            report.nodes.push((plan.nodes[i].clone(), outcome, took));
        }
    }
    report
}

/// Puts every plugin that is not running in its slot as down, with its state and reason (a
/// started plugin's slot already holds its instance).
fn settle_slots(shared: &Shared, nodes: &Nodes) {
    for (i, node) in shared.plan().nodes.iter().enumerate() {
        let Some(slot) = shared
            .runtime()
            .slot(node.name())
            .filter(|_| node.kind() == NodeKind::Plugin)
        else {
            continue;
        };
        let (state, reason) = match &nodes.status[i] {
            Status::Started => continue,
            Status::Stopped => (PluginState::Stopped, None),
            Status::RolledBack => (
                PluginState::RolledBack,
                Some("rolled back after a failed boot".to_owned()),
            ),
            Status::Failed(_, reason) => (PluginState::Failed, Some(reason.clone())),
            Status::Skipped(_, reason) => (PluginState::Skipped, Some(reason.clone())),
            Status::Pending | Status::Loaded => (
                PluginState::Skipped,
                Some("not attempted: the boot was aborted".to_owned()),
            ),
        };
        slot.set(Live::Down(state, reason.map(Arc::from)));
    }
}

fn build_report(
    plan: &Plan,
    nodes: &Nodes,
    load_phase: Duration,
    start_phase: Duration,
) -> BootReport {
    let mut reports: Vec<NodeReport> = (0..plan.nodes.len())
        .map(|i| {
            let (state, phase, reason) = match &nodes.status[i] {
                // A boot report is built at the end of the boot: a plugin stopped at runtime
                // had started then.
                Status::Started | Status::Stopped => (NodeState::Started, None, None),
                Status::RolledBack => (
                    NodeState::RolledBack,
                    None,
                    Some("rolled back after a failed boot".into()),
                ),
                Status::Failed(p, r) => (NodeState::Failed, Some(*p), Some(r.clone())),
                Status::Skipped(p, r) => (NodeState::Skipped, Some(*p), Some(r.clone())),
                Status::Pending | Status::Loaded => (
                    NodeState::Skipped,
                    None,
                    Some("not attempted: the boot was aborted".into()),
                ),
            };
            NodeReport {
                node: plan.nodes[i].clone(),
                wave: plan.wave_of[i],
                state,
                phase,
                reason,
                load: nodes.load_took[i],
                start: nodes.start_took[i],
            }
        })
        .collect();
    reports.sort_by(|a, b| {
        (a.wave.is_none(), a.wave, &a.node).cmp(&(b.wave.is_none(), b.wave, &b.node))
    });
    BootReport {
        waves: plan
            .waves()
            .map(|w| w.into_iter().cloned().collect())
            .collect(),
        nodes: reports,
        load_phase,
        start_phase,
    }
}

/// Boots: the load phase wave by wave, then the start phase wave by wave.
pub(crate) async fn boot(shared: &Arc<Shared>) -> Result<BootReport, BootError> {
    shared.transition(Lifecycle::Built, Lifecycle::Booting)?;
    let mut guard = shared.nodes().lock().await;
    let nodes = &mut *guard;
    let plan = shared.plan();

    let mut abort = None;
    for (i, err) in &plan.rejected {
        nodes.status[*i] = match err {
            GraphError::Blocked { .. } => Status::Skipped(Phase::Plan, err.to_string()),
            _ => {
                if policy(shared, plan.nodes[*i].kind()) == OnFailure::Abort {
                    abort.get_or_insert((*i, err.to_string()));
                }
                Status::Failed(Phase::Plan, err.to_string())
            }
        };
    }

    let rejected: Vec<usize> = plan.rejected.iter().map(|(i, _)| *i).collect();
    plugin_events(shared, nodes, &rejected, Phase::Plan).await;

    let load_started = Instant::now();
    if abort.is_none() {
        for (k, wave) in plan.waves.iter().enumerate() {
            tracing::debug!(wave = k, nodes = wave.len(), "load wave");
            abort = load_wave(shared, nodes, wave).await;
            if abort.is_some() {
                break;
            }
        }
    }
    let load_phase = load_started.elapsed();

    let start_started = Instant::now();
    if abort.is_none() {
        for (k, wave) in plan.waves.iter().enumerate() {
            tracing::debug!(wave = k, nodes = wave.len(), "start wave");
            abort = start_wave(shared, nodes, wave).await;
            if abort.is_some() {
                break;
            }
        }
    }
    let start_phase = start_started.elapsed();

    if let Some((i, reason)) = abort {
        tracing::error!(node = %plan.nodes[i], %reason, "boot aborted; rolling back");
        let rollback = stop_all(shared, nodes).await;
        for status in &mut nodes.status {
            if matches!(status, Status::Started) {
                *status = Status::RolledBack;
            }
        }
        let report = build_report(plan, nodes, load_phase, start_phase);
        settle_slots(shared, nodes);
        shared.set_lifecycle(Lifecycle::Failed);
        return Err(BootError::Aborted(Box::new(BootAbort {
            node: plan.nodes[i].clone(),
            reason,
            report,
            rollback,
        })));
    }
    let report = build_report(plan, nodes, load_phase, start_phase);
    settle_slots(shared, nodes);
    // Every node that did not start, at WARN with its reason; the summary at WARN too then.
    for node in report
        .nodes()
        .iter()
        .filter(|n| n.state() != NodeState::Started)
    {
        tracing::warn!(
            node = %node.node(),
            state = %node.state(),
            phase = node.phase().map(phase_name).unwrap_or("boot"),
            reason = node.reason().unwrap_or(""),
            "did not start"
        );
    }
    let (started, failed, skipped) = (
        report.in_state(NodeState::Started).count(),
        report.in_state(NodeState::Failed).count(),
        report.in_state(NodeState::Skipped).count(),
    );
    if failed + skipped > 0 {
        tracing::warn!(
            started,
            failed,
            skipped,
            "booted, without every node (`BootReport::ensure_all_started` to require them all)"
        );
    } else {
        tracing::info!(started, failed, skipped, "booted");
    }
    shared.set_report(report.clone());
    shared.set_lifecycle(Lifecycle::Running);
    let names = |state| {
        report
            .in_state(state)
            .filter(|n| n.kind() == NodeKind::Plugin)
            .map(|n| n.name().to_owned())
            .collect::<Vec<_>>()
    };
    let payload = json!({
        "started": names(NodeState::Started),
        "failed": names(NodeState::Failed),
        "skipped": names(NodeState::Skipped),
    });
    kernel_event(shared, "xcore.booted".into(), payload).await;
    Ok(report)
}

/// Shuts down what boot started. Idempotent: a second call reports nothing.
pub(crate) async fn shutdown(shared: &Arc<Shared>) -> ShutdownReport {
    let mut guard = shared.nodes().lock().await;
    if shared
        .transition(Lifecycle::Running, Lifecycle::ShuttingDown)
        .is_err()
    {
        // Never booted, already stopped, or a failed boot (already rolled back).
        shared.stop_if_unbooted();
        return ShutdownReport::default();
    }
    kernel_event(shared, "xcore.shutdown".into(), json!({})).await;
    let left = shared.events().drain(shared.options().stop_timeout).await;
    if left > 0 {
        tracing::warn!(left, "background event handlers still running at shutdown");
    }
    let report = stop_all(shared, &mut guard).await;
    shared.set_lifecycle(Lifecycle::Stopped);
    tracing::info!(clean = report.is_clean(), "shut down");
    report
}
