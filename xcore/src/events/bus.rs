use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::{FutureExt, future::join_all};
use tokio_util::task::TaskTracker;
use xcore_manifest::ResourcePattern;

use super::{Dispatch, Event, EventHandler, Flow};
use crate::{call::layers::catch_panic_message, permissions::Audit};

/// Identifies a subscription, to remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(u64);

/// How to subscribe: priority (higher first, default 0) and `once`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscribeOptions {
    priority: i32,
    once: bool,
}

impl SubscribeOptions {
    /// Default options: priority 0, every time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs before handlers of lower priority.
    #[must_use]
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Fires for one event only, then unsubscribes.
    #[must_use]
    pub fn once(mut self) -> Self {
        self.once = true;
        self
    }
}

/// What one handler did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It returned `Ok`.
    Handled(Flow),
    /// It returned an error.
    Failed(String),
    /// It panicked.
    Panicked(String),
}

/// One handler's outcome in an [`EmitReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerOutcome {
    /// The subscription.
    pub subscription: SubscriptionId,
    /// The subscribing plugin, or `None` for the host.
    pub subscriber: Option<String>,
    /// What the handler did.
    pub outcome: Outcome,
}

/// The outcome of an emit: every handler that ran, in priority order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmitReport {
    outcomes: Vec<HandlerOutcome>,
    stopped: bool,
}

impl EmitReport {
    /// Each handler that ran, in priority order.
    pub fn outcomes(&self) -> &[HandlerOutcome] {
        &self.outcomes
    }

    /// How many handlers returned `Ok`.
    pub fn handled(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o.outcome, Outcome::Handled(_)))
            .count()
    }

    /// The handlers that failed or panicked.
    pub fn failures(&self) -> impl Iterator<Item = &HandlerOutcome> + '_ {
        self.outcomes
            .iter()
            .filter(|o| !matches!(o.outcome, Outcome::Handled(_)))
    }

    /// Whether a handler stopped the propagation.
    pub fn stopped(&self) -> bool {
        self.stopped
    }
}

struct Subscription {
    id: SubscriptionId,
    owner: Option<Arc<str>>,
    pattern: ResourcePattern,
    priority: i32,
    once: bool,
    fired: AtomicBool,
    handler: Arc<dyn EventHandler>,
}

/// The bus of one `Xcore`.
pub(crate) struct EventBus {
    subs: RwLock<Vec<Arc<Subscription>>>,
    /// Where bridged events go (the event bridge service, once started).
    #[cfg(any(feature = "postgres", feature = "redis"))]
    bridge: std::sync::OnceLock<super::bridge::Outbox>,
    next_id: AtomicU64,
    tasks: TaskTracker,
    pub(crate) audit: Arc<Audit>,
    metrics: crate::observability::Metrics,
}

impl EventBus {
    pub(crate) fn new(audit: Arc<Audit>, metrics: crate::observability::Metrics) -> Self {
        Self {
            subs: RwLock::new(Vec::new()),
            #[cfg(any(feature = "postgres", feature = "redis"))]
            bridge: std::sync::OnceLock::new(),
            next_id: AtomicU64::new(1),
            tasks: TaskTracker::new(),
            audit,
            metrics,
        }
    }

    pub(crate) fn subscribe(
        &self,
        owner: Option<&str>,
        pattern: ResourcePattern,
        options: SubscribeOptions,
        handler: Arc<dyn EventHandler>,
    ) -> SubscriptionId {
        let id = SubscriptionId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let sub = Arc::new(Subscription {
            id,
            owner: owner.map(Arc::from),
            pattern,
            priority: options.priority,
            once: options.once,
            fired: AtomicBool::new(false),
            handler,
        });
        let mut subs = self.subs.write().unwrap_or_else(|p| p.into_inner());
        // Higher priority first; among equals, older first.
        let at = subs.partition_point(|s| s.priority >= sub.priority);
        subs.insert(at, sub);
        id
    }

    pub(crate) fn unsubscribe(&self, id: SubscriptionId) -> bool {
        let mut subs = self.subs.write().unwrap_or_else(|p| p.into_inner());
        let before = subs.len();
        subs.retain(|s| s.id != id);
        subs.len() != before
    }

    /// Removes every subscription of a plugin (when it stops).
    pub(crate) fn remove_owner(&self, plugin: &str) -> usize {
        let mut subs = self.subs.write().unwrap_or_else(|p| p.into_inner());
        let before = subs.len();
        subs.retain(|s| s.owner.as_deref() != Some(plugin));
        before - subs.len()
    }

    pub(crate) fn subscription_count(&self) -> usize {
        self.subs.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Sends the events the bridge publishes to it from now on (once per bus).
    #[cfg(any(feature = "postgres", feature = "redis"))]
    pub(crate) fn attach_bridge(&self, outbox: super::bridge::Outbox) {
        if self.bridge.set(outbox).is_err() {
            tracing::warn!("a second event bridge on one Xcore is ignored");
        }
    }

    pub(crate) async fn emit(&self, event: Event, dispatch: Dispatch) -> EmitReport {
        self.metrics.event_emitted(event.name());
        #[cfg(any(feature = "postgres", feature = "redis"))]
        if let Some(outbox) = self.bridge.get() {
            outbox.offer(&event);
        }
        let mut once_fired = false;
        let selected: Vec<Arc<Subscription>> = {
            let subs = self.subs.read().unwrap_or_else(|p| p.into_inner());
            subs.iter()
                .filter(|s| s.pattern.matches(event.name()))
                // Claiming a `once` subscription is atomic: only one emit can win it.
                .filter(|s| !s.once || !s.fired.swap(true, Ordering::AcqRel))
                .inspect(|s| once_fired |= s.once)
                .cloned()
                .collect()
        };
        if once_fired {
            self.subs
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|s| !(s.once && s.fired.load(Ordering::Acquire)));
        }
        let mut report = EmitReport::default();
        match dispatch {
            Dispatch::Sequential => {
                for sub in selected {
                    let outcome = run(&sub, event.clone()).await;
                    let stop = outcome.outcome == Outcome::Handled(Flow::Stop);
                    report.outcomes.push(outcome);
                    if stop {
                        report.stopped = true;
                        break;
                    }
                }
            }
            Dispatch::Concurrent => {
                report.outcomes = join_all(selected.iter().map(|s| run(s, event.clone()))).await;
            }
        }
        for failure in report.failures() {
            tracing::warn!(event = event.name(), subscriber = ?failure.subscriber, outcome = ?failure.outcome, "event handler failed");
        }
        report
    }

    pub(crate) fn emit_background(self: &Arc<Self>, event: Event, dispatch: Dispatch) {
        let bus = self.clone();
        self.tasks.spawn(async move {
            bus.emit(event, dispatch).await;
        });
    }

    /// Waits for the background emits in flight, at most `limit`; returns how many were left.
    pub(crate) async fn drain(&self, limit: Duration) -> usize {
        self.tasks.close();
        let _ = tokio::time::timeout(limit, self.tasks.wait()).await;
        self.tasks.reopen();
        self.tasks.len()
    }
}

async fn run(sub: &Subscription, event: Event) -> HandlerOutcome {
    let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| sub.handler.handle(event))) {
        Err(panic) => Outcome::Panicked(catch_panic_message(&*panic)),
        Ok(fut) => match AssertUnwindSafe(fut).catch_unwind().await {
            Ok(Ok(flow)) => Outcome::Handled(flow),
            Ok(Err(e)) => Outcome::Failed(e),
            Err(panic) => Outcome::Panicked(catch_panic_message(&*panic)),
        },
    };
    HandlerOutcome {
        subscription: sub.id,
        subscriber: sub.owner.as_deref().map(str::to_owned),
        outcome,
    }
}
