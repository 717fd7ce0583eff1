//! [`Gate`]: the one way into a plugin instance's code.

use std::{
    fmt,
    future::Future,
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::FutureExt;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tracing::Instrument;

use crate::{
    CallContext, CallError, ErrorCode, PluginIdentity,
    call::layers::{ClusterSlot, ConcurrencyLimitLayer, RateLimitLayer, catch_panic_message},
};

/// How plugin code is entered: the row of the gate's table it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Way {
    /// An action call (`Xcore::call`, another plugin, the admin API's IPC).
    Call,
    /// An HTTP request to one of the plugin's routes.
    Route,
    /// An event delivered to one of the plugin's subscriptions.
    Event,
    /// A firing of one of the plugin's scheduled jobs.
    Job,
    /// A task of the plugin's run by the worker.
    Task,
}

impl Way {
    /// `call`, `route`, `event`, `job` or `task`.
    pub fn as_str(self) -> &'static str {
        match self {
            Way::Call => "call",
            Way::Route => "route",
            Way::Event => "event",
            Way::Job => "job",
            Way::Task => "task",
        }
    }

    /// Whether the manifest's `rate_limit` and `max_concurrency` apply (calls and routes).
    fn limited(self) -> bool {
        matches!(self, Way::Call | Way::Route)
    }
}

impl fmt::Display for Way {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The gate of one plugin instance: every way into its code — action calls, route requests,
/// event handlers, jobs, tasks — passes it (see the table in [`runtime`](crate::runtime)).
///
/// It admits while the instance runs and refuses with `unavailable` once the instance
/// begins to stop; it counts what is inside so a stop can drain it; it holds the manifest's
/// rate and concurrency limits, shared by calls and routes. Cheap to clone.
///
/// Services that run plugin code (a host extension calling back into a plugin, say) run it
/// through [`Gate::run`], obtained from the plugin's
/// [`PluginContext::gate`](crate::PluginContext::gate).
#[derive(Clone)]
pub struct Gate {
    inner: Arc<Inner>,
}

struct Inner {
    identity: PluginIdentity,
    open: AtomicBool,
    /// The entries inside.
    inside: AtomicUsize,
    /// Woken when the last entry leaves a closed gate.
    drained: Notify,
    rate: RateLimitLayer,
    concurrency: ConcurrencyLimitLayer,
}

impl Inner {
    /// One entry left.
    fn leave(&self) {
        if self.inside.fetch_sub(1, Ordering::SeqCst) == 1 && !self.open.load(Ordering::SeqCst) {
            self.drained.notify_waiters();
        }
    }
}

/// Admission through a [`Gate`]: while it is held, the plugin's stop waits for it (bounded by
/// the stop timeout), and it holds a concurrency permit for calls and routes.
#[must_use = "the pass admits for as long as it is held"]
pub struct Pass {
    gate: Arc<Inner>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.gate.leave();
    }
}

/// A [`Pass`] borrowing its gate (no reference count): for an entry that holds the instance
/// for as long as the pass (an action call).
#[must_use = "the pass admits for as long as it is held"]
pub(crate) struct ScopedPass<'a> {
    gate: &'a Inner,
}

impl Drop for ScopedPass<'_> {
    fn drop(&mut self) {
        self.gate.leave();
    }
}

impl fmt::Debug for Pass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pass")
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("plugin", &self.inner.identity.name())
            .field("open", &self.is_open())
            .field("inside", &self.inside())
            .finish()
    }
}

impl Gate {
    /// A closed gate for an instance of `identity`, with its manifest's limits; its rate
    /// limit cluster-wide once a limiter is attached to `cluster`.
    pub(crate) fn new(identity: PluginIdentity, cluster: Option<ClusterSlot>) -> Self {
        let manifest = identity.manifest();
        let mut rate = RateLimitLayer::new(manifest.rate_limit());
        if let Some(slot) = cluster {
            rate = rate.with_cluster(slot);
        }
        let concurrency = ConcurrencyLimitLayer::new(manifest.max_concurrency());
        Self {
            inner: Arc::new(Inner {
                identity,
                open: AtomicBool::new(false),
                inside: AtomicUsize::new(0),
                drained: Notify::new(),
                rate,
                concurrency,
            }),
        }
    }

    /// The plugin behind the gate.
    pub fn plugin(&self) -> &PluginIdentity {
        &self.inner.identity
    }

    /// Whether the gate admits (the instance runs).
    pub fn is_open(&self) -> bool {
        self.inner.open.load(Ordering::SeqCst)
    }

    /// How many entries are inside the instance's code now.
    pub fn inside(&self) -> usize {
        self.inner.inside.load(Ordering::SeqCst)
    }

    /// The rate limit, shared with the call pipeline.
    pub(crate) fn rate_layer(&self) -> RateLimitLayer {
        self.inner.rate.clone()
    }

    /// The concurrency limit, shared with the call pipeline.
    pub(crate) fn concurrency_layer(&self) -> ConcurrencyLimitLayer {
        self.inner.concurrency.clone()
    }

    /// Admits one entry by `way`: `unavailable` unless the instance runs; for calls and
    /// routes, also the manifest's rate limit (`rate_limited`) and concurrency limit
    /// (`overloaded`). Calls pass the limits in the pipeline, so their pass checks only the
    /// state ([`Gate::enter`]).
    ///
    /// The rate limit is the local (per-process) bucket here; with a cluster-wide limiter
    /// (the `rate_limits` service), use [`admit_async`](Self::admit_async), which takes the
    /// token from it.
    pub fn admit(&self, way: Way) -> Result<Pass, CallError> {
        let mut pass = self.enter(way)?;
        if way.limited() {
            let name = self.inner.identity.name();
            self.inner.rate.try_take(name)?;
            pass._permit = self.inner.concurrency.try_acquire(name)?;
        }
        Ok(pass)
    }

    /// [`admit`](Self::admit), with the rate token taken cluster-wide when a cluster-wide
    /// limiter is attached (one round trip to Redis, bounded by its timeout, its fallback
    /// when Redis is down; the key from `cx`'s tenant and caller); the same as `admit`
    /// otherwise.
    pub async fn admit_async(&self, way: Way, cx: &CallContext) -> Result<Pass, CallError> {
        let mut pass = self.enter(way)?;
        if way.limited() {
            let name = self.inner.identity.name();
            self.inner.rate.acquire(name, cx).await?;
            pass._permit = self.inner.concurrency.try_acquire(name)?;
        }
        Ok(pass)
    }

    /// Whether the rate limit is cluster-wide now: then [`admit`](Self::admit) does not
    /// apply it as it is, [`admit_async`](Self::admit_async) does.
    pub(crate) fn rate_is_cluster_wide(&self) -> bool {
        self.inner.rate.is_cluster_wide()
    }

    /// Admits one entry by `way` on the lifecycle state only (no limits).
    pub fn enter(&self, way: Way) -> Result<Pass, CallError> {
        self.count_in(way)?;
        Ok(Pass {
            gate: self.inner.clone(),
            _permit: None,
        })
    }

    /// [`enter`](Self::enter), with a pass borrowing the gate.
    pub(crate) fn enter_scoped(&self, way: Way) -> Result<ScopedPass<'_>, CallError> {
        self.count_in(way)?;
        Ok(ScopedPass { gate: &self.inner })
    }

    fn count_in(&self, way: Way) -> Result<(), CallError> {
        // Counted before the state is read: a stop that closes the gate after this check
        // finds this entry inside and waits for it.
        self.inner.inside.fetch_add(1, Ordering::SeqCst);
        if self.inner.open.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.inner.leave();
        Err(CallError::new(
            ErrorCode::Unavailable,
            format!(
                "plugin `{}` is not running (a {way} reached a stopped instance)",
                self.inner.identity.name()
            ),
        ))
    }

    /// The span of one entry: plugin, way, tenant and trace id.
    pub fn span(&self, way: Way, cx: &CallContext) -> tracing::Span {
        tracing::info_span!(
            "xcore.plugin",
            plugin = self.inner.identity.name(),
            way = way.as_str(),
            tenant = %cx.tenant(),
            trace_id = %format_args!("{:032x}", cx.trace().trace_id()),
        )
    }

    /// Runs `work` for the entry `way` made under `cx`: admitted by [`enter`](Self::enter)
    /// (the state; jobs and tasks keep their own timeouts, events have none), inside the
    /// entry's span, with a panic turned into a `panicked` error. The pass is held until
    /// `work` ends, so a stop drains it.
    pub async fn run<F, T>(&self, way: Way, cx: &CallContext, work: F) -> Result<T, CallError>
    where
        F: Future<Output = T>,
    {
        let pass = self.enter(way)?;
        let out = AssertUnwindSafe(work)
            .catch_unwind()
            .instrument(self.span(way, cx))
            .await;
        drop(pass);
        out.map_err(|panic| {
            let why = catch_panic_message(&*panic);
            tracing::error!(plugin = self.inner.identity.name(), %way, panic = %why, "plugin code panicked");
            CallError::new(
                ErrorCode::Panicked,
                format!(
                    "plugin `{}` panicked in a {way}: {why}",
                    self.inner.identity.name()
                ),
            )
        })
    }

    /// Opens the gate: the instance runs.
    pub(crate) fn open(&self) {
        self.inner.open.store(true, Ordering::SeqCst);
    }

    /// Closes the gate (new entries are refused) and waits, at most `limit`, for the entries
    /// inside to leave; returns how many were still inside.
    pub(crate) async fn close(&self, limit: Duration) -> usize {
        self.inner.open.store(false, Ordering::SeqCst);
        let drained = async {
            loop {
                let notified = self.inner.drained.notified();
                let mut notified = std::pin::pin!(notified);
                // Registered before the count is read: the last leave cannot be missed.
                notified.as_mut().enable();
                if self.inner.inside.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(limit, drained).await;
        self.inside()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(manifest: xcore_manifest::Manifest) -> Gate {
        Gate::new(PluginIdentity::new(Arc::new(manifest)), None)
    }

    #[tokio::test]
    async fn refuses_until_open_and_after_close() {
        let g = gate(
            xcore_manifest::Manifest::builder("p", "1.0.0")
                .build()
                .unwrap(),
        );
        assert_eq!(
            g.enter(Way::Call).unwrap_err().code(),
            ErrorCode::Unavailable
        );
        g.open();
        let pass = g.enter(Way::Job).unwrap();
        assert_eq!(g.inside(), 1);
        let closing = {
            let g = g.clone();
            tokio::spawn(async move { g.close(Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        assert!(!closing.is_finished(), "the close waits for the pass");
        assert_eq!(
            g.enter(Way::Event).unwrap_err().code(),
            ErrorCode::Unavailable
        );
        drop(pass);
        assert_eq!(closing.await.unwrap(), 0);
    }

    #[tokio::test]
    async fn close_is_bounded() {
        let g = gate(
            xcore_manifest::Manifest::builder("p", "1.0.0")
                .build()
                .unwrap(),
        );
        g.open();
        let _stuck = g.enter(Way::Task).unwrap();
        assert_eq!(g.close(Duration::from_millis(20)).await, 1);
    }

    #[tokio::test]
    async fn routes_share_the_call_limits() {
        let manifest = xcore_manifest::Manifest::builder("p", "1.0.0")
            .max_concurrency(1)
            .build()
            .unwrap();
        let g = gate(manifest);
        g.open();
        let held = g.admit(Way::Route).unwrap();
        assert_eq!(
            g.admit(Way::Route).unwrap_err().code(),
            ErrorCode::Overloaded
        );
        // Jobs and tasks are not limited by the manifest.
        let _job = g.admit(Way::Job).unwrap();
        drop(held);
        assert!(g.admit(Way::Route).is_ok());
    }

    #[tokio::test]
    async fn run_isolates_panics() {
        let g = gate(
            xcore_manifest::Manifest::builder("p", "1.0.0")
                .build()
                .unwrap(),
        );
        g.open();
        let cx = CallContext::host();
        let out: Result<(), CallError> = g.run(Way::Event, &cx, async { panic!("boom") }).await;
        let err = out.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Panicked);
        assert!(err.message().contains("boom"));
        assert_eq!(g.inside(), 0);
        assert_eq!(g.run(Way::Task, &cx, async { 7 }).await.unwrap(), 7);
    }
}
