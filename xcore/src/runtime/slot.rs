//! A plugin's [`Slot`]: its current instance, or why it has none, and the wait for a swap.

use std::{fmt, sync::Arc, time::Duration};

use tokio::sync::watch;

use crate::{
    CallError, ErrorCode, Plugin, PluginContext, call::BoxCallService, runtime::Way, web::Routes,
};

/// The live state of one plugin, as [`Xcore::plugins`](crate::Xcore::plugins) and
/// `GET /xcore/plugins` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PluginState {
    /// Not started yet (before or during boot).
    Pending,
    /// Serving calls, routes, events, jobs and tasks.
    Running,
    /// Being reloaded: calls and requests wait for the new instance.
    Reloading,
    /// Stopped: by [`Xcore::stop_plugin`](crate::Xcore::stop_plugin), because a plugin it
    /// requires stopped, or by the shutdown.
    Stopped,
    /// Failed in a hook (boot, start or reload); [`Xcore::restart_plugin`](crate::Xcore::restart_plugin)
    /// tries again with a fresh instance.
    Failed,
    /// Not started because of a dependency, or of the plan.
    Skipped,
    /// Started, then rolled back by a failed boot.
    RolledBack,
}

impl PluginState {
    /// Every state, in listing order.
    pub const ALL: [PluginState; 7] = [
        PluginState::Pending,
        PluginState::Running,
        PluginState::Reloading,
        PluginState::Stopped,
        PluginState::Failed,
        PluginState::Skipped,
        PluginState::RolledBack,
    ];

    /// `pending`, `running`, `reloading`, `stopped`, `failed`, `skipped`, `rolled_back`.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginState::Pending => "pending",
            PluginState::Running => "running",
            PluginState::Reloading => "reloading",
            PluginState::Stopped => "stopped",
            PluginState::Failed => "failed",
            PluginState::Skipped => "skipped",
            PluginState::RolledBack => "rolled_back",
        }
    }
}

impl fmt::Display for PluginState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A started instance: what calls and requests reach.
pub(crate) struct Instance {
    pub(crate) ctx: PluginContext,
    pub(crate) plugin: Arc<dyn Plugin>,
    pub(crate) pipeline: BoxCallService,
    /// Records the calls when the `Xcore` has metrics.
    pub(crate) meter: Option<crate::observability::CallMeter>,
    pub(crate) routes: Option<Routes>,
}

impl Instance {
    pub(crate) fn routes(&self) -> Option<&Routes> {
        self.routes.as_ref()
    }
}

/// What a slot holds.
#[derive(Clone)]
pub(crate) enum Live {
    Running(Arc<Instance>),
    /// A reload is swapping instances: wait.
    Swapping,
    Down(PluginState, Option<Arc<str>>),
}

/// One plugin's place in the runtime: its live state, watched by the callers that wait for a
/// swap.
pub(crate) struct Slot {
    live: watch::Sender<Live>,
}

impl Slot {
    pub(crate) fn new() -> Self {
        Self {
            live: watch::Sender::new(Live::Down(PluginState::Pending, None)),
        }
    }

    pub(crate) fn get(&self) -> Live {
        self.live.borrow().clone()
    }

    pub(crate) fn set(&self, live: Live) {
        self.live.send_replace(live);
    }

    /// The state and reason, for listings.
    pub(crate) fn state(&self) -> (PluginState, Option<Arc<str>>) {
        match &*self.live.borrow() {
            Live::Running(_) => (PluginState::Running, None),
            Live::Swapping => (PluginState::Reloading, None),
            Live::Down(state, reason) => (*state, reason.clone()),
        }
    }

    /// The running instance, waiting (at most `wait`) while a reload swaps it.
    pub(crate) async fn instance(&self, wait: Duration) -> Result<Arc<Instance>, Live> {
        if let Live::Running(instance) = &*self.live.borrow() {
            return Ok(instance.clone());
        }
        let mut rx = self.live.subscribe();
        let settled = tokio::time::timeout(wait, rx.wait_for(|l| !matches!(l, Live::Swapping)));
        match settled.await {
            Ok(Ok(live)) => match &*live {
                Live::Running(instance) => Ok(instance.clone()),
                other => Err(other.clone()),
            },
            _ => Err(Live::Swapping),
        }
    }

    /// The running instance now, without waiting.
    pub(crate) fn running(&self) -> Option<Arc<Instance>> {
        match &*self.live.borrow() {
            Live::Running(instance) => Some(instance.clone()),
            _ => None,
        }
    }
}

/// Why [`enter`] admitted nothing.
pub(crate) enum Refused {
    /// No instance runs: the slot's state (`Live::Swapping` when a reload outlasted the wait).
    Absent(Live),
    /// The instance runs, and a limit of its manifest refused (`rate_limited`, `overloaded`).
    Limit(CallError),
}

/// Admits one entry by `way`, made under `cx`, into the slot's instance, waiting (at most
/// `wait`) for a reload to finish: the instance and its pass.
pub(crate) async fn enter(
    slot: &Slot,
    way: Way,
    wait: Duration,
    cx: &crate::CallContext,
) -> Result<(Arc<Instance>, crate::runtime::Pass), Refused> {
    // Twice at most: an instance that began to stop between the lookup and the gate is
    // either being replaced (a reload: wait for the new one) or down.
    for _ in 0..2 {
        let instance = slot.instance(wait).await.map_err(Refused::Absent)?;
        let admitted = match way {
            // Calls pass the limits in their pipeline.
            Way::Call => instance.ctx.gate().enter(way),
            _ if instance.ctx.gate().rate_is_cluster_wide() => {
                instance.ctx.gate().admit_async(way, cx).await
            }
            _ => instance.ctx.gate().admit(way),
        };
        match admitted {
            Ok(pass) => return Ok((instance, pass)),
            Err(err) if err.code() == ErrorCode::Unavailable => continue,
            Err(err) => return Err(Refused::Limit(err)),
        }
    }
    Err(Refused::Absent(slot.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call waiting for a swap gets the slot's state when the swap ends without an
    /// instance, and `Swapping` once its wait is over: the wait is bounded.
    #[tokio::test(start_paused = true)]
    async fn the_wait_for_a_swap_is_bounded() {
        let slot = Arc::new(Slot::new());
        slot.set(Live::Swapping);
        let waited = slot.instance(Duration::from_millis(500)).await;
        assert!(matches!(waited, Err(Live::Swapping)));

        let ending = {
            let slot = slot.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                slot.set(Live::Down(PluginState::Failed, Some(Arc::from("boom"))));
            })
        };
        let waited = slot.instance(Duration::from_secs(30)).await;
        assert!(matches!(waited, Err(Live::Down(PluginState::Failed, _))));
        ending.await.unwrap();
        assert_eq!(slot.state().0, PluginState::Failed);
    }
}
