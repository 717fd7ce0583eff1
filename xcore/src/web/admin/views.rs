//! The JSON the admin API answers: plugins, the boot report, health.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    BootReport, HealthReport, NodeKind, NodeState, Xcore, container::Phase, web::prefix::Prefix,
};

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn kind(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Service => "service",
        NodeKind::Plugin => "plugin",
    }
}

fn state_name(state: NodeState) -> &'static str {
    match state {
        NodeState::Started => "started",
        NodeState::Failed => "failed",
        NodeState::Skipped => "skipped",
        NodeState::RolledBack => "rolled_back",
    }
}

fn phase(phase: Phase) -> &'static str {
    match phase {
        Phase::Plan => "plan",
        Phase::Load => "load",
        Phase::Start => "start",
    }
}

/// Every plugin of the plan, by name: its live state ([`PluginState`](crate::runtime::PluginState):
/// `running`, `reloading`, `stopped`, `failed`, `skipped`, `rolled_back`, or `pending` before
/// boot), version, wave, the reason it is not running, and
/// the routes it serves while running (full paths).
pub(crate) fn plugins(xcore: &Xcore, plugin_prefix: &Prefix) -> Value {
    let shared = &xcore.shared;
    let list: Vec<Value> = xcore
        .plugins()
        .into_iter()
        .map(|status| {
            let name = status.name.as_str();
            let routes: Vec<Value> = shared
                .runtime()
                .running(name)
                .as_ref()
                .and_then(|live| live.routes())
                .map(|routes| {
                    routes
                        .endpoints()
                        .iter()
                        .map(|e| {
                            let path = format!("{plugin_prefix}/{name}{}", e.path());
                            json!({ "method": e.method().as_str(), "path": path })
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "name": name,
                "version": status.version,
                "state": status.state.as_str(),
                "reason": status.reason,
                "wave": shared.plan().wave_of(&crate::NodeId::plugin(name)),
                "routes": routes,
            })
        })
        .collect();
    Value::Array(list)
}

/// The boot report: waves (`service:db`, `plugin:users`), and every node's state, phase,
/// reason and durations (ms).
pub(crate) fn boot(report: &BootReport) -> Value {
    let nodes: Vec<Value> = report
        .nodes()
        .iter()
        .map(|n| {
            json!({
                "name": n.node().name(),
                "kind": kind(n.node().kind()),
                "wave": n.wave(),
                "state": state_name(n.state()),
                "phase": n.phase().map(phase),
                "reason": n.reason(),
                "load_ms": n.load_duration().map(millis),
                "start_ms": n.start_duration().map(millis),
            })
        })
        .collect();
    let waves: Vec<Vec<String>> = report
        .waves()
        .iter()
        .map(|w| {
            w.iter()
                .map(|n| format!("{}:{}", kind(n.kind()), n.name()))
                .collect()
        })
        .collect();
    json!({
        "waves": waves,
        "nodes": nodes,
        "load_ms": millis(report.load_phase()),
        "start_ms": millis(report.start_phase()),
    })
}

/// A health report: the overall status and every node's.
pub(crate) fn health(report: &HealthReport) -> Value {
    let nodes: Vec<Value> = report
        .nodes()
        .iter()
        .map(|n| {
            json!({
                "name": n.node().name(),
                "kind": kind(n.node().kind()),
                "status": n.health().status(),
                "message": n.health().message(),
                "took_ms": millis(n.took()),
            })
        })
        .collect();
    json!({ "status": report.status(), "nodes": nodes })
}

/// What anyone may see of a health report: ready or not, the overall status and each node's
/// status name.
pub(crate) fn readiness(report: &HealthReport, ready: bool) -> Value {
    let nodes: Vec<Value> = report
        .nodes()
        .iter()
        .map(|n| json!({ "name": n.node().name(), "status": n.health().status() }))
        .collect();
    json!({ "ready": ready, "status": report.status(), "nodes": nodes })
}
