//! [`Engine`]: the running part of a worker service: the consumer loop that claims tasks
//! within the concurrency limit, the tasks in flight, draining, health.

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{Notify, OwnedSemaphorePermit, Semaphore},
    task::{AbortHandle, JoinHandle},
    time::Instant,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    TaskId, WorkerError, WorkerOptions,
    queue::{Claim, Claimed, NewTask, Queue, Wake},
    registry::Registry,
};
use crate::Health;

/// An attempt in flight in this process.
struct Running {
    /// The namespace of the task (its plugin's name, or `@host`).
    namespace: Arc<str>,
    claim: Claim,
    abort: AbortHandle,
}

/// What this process did, for health.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) succeeded: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead: AtomicU64,
    pub(crate) panicked: AtomicU64,
    pub(crate) interrupted: AtomicU64,
}

impl Stats {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The running part of a worker service, created by its `init`.
pub(crate) struct Engine {
    pub(crate) options: WorkerOptions,
    pub(crate) queue: Arc<dyn Queue>,
    pub(crate) registry: Registry,
    pub(crate) stats: Stats,
    permits: Arc<Semaphore>,
    inflight: Mutex<HashMap<TaskId, Running>>,
    /// Notified when an attempt in flight ends.
    done: Notify,
    /// Notified when there may be something new to claim (a send, a registration).
    wake: Notify,
    /// The attempts.
    tracker: TaskTracker,
    /// Stops claiming.
    stopping: CancellationToken,
    /// Stops lease renewal, after draining.
    maintenance: CancellationToken,
    consumer: Mutex<Option<JoinHandle<()>>>,
    maintainer: Mutex<Option<JoinHandle<()>>>,
    started: AtomicBool,
    backend_error: Mutex<Option<String>>,
    /// Where attempts are counted (`xcore_tasks_total`).
    pub(crate) metrics: crate::observability::Metrics,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The namespace of a full task name.
fn namespace(full: &str) -> Arc<str> {
    Arc::from(full.split_once('.').map_or(full, |(ns, _)| ns))
}

impl Engine {
    pub(crate) fn new(
        options: WorkerOptions,
        queue: Arc<dyn Queue>,
        metrics: crate::observability::Metrics,
    ) -> Arc<Self> {
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(options.concurrency)),
            options,
            queue,
            registry: Registry::default(),
            stats: Stats::default(),
            inflight: Mutex::new(HashMap::new()),
            done: Notify::new(),
            wake: Notify::new(),
            tracker: TaskTracker::new(),
            stopping: CancellationToken::new(),
            maintenance: CancellationToken::new(),
            consumer: Mutex::new(None),
            maintainer: Mutex::new(None),
            started: AtomicBool::new(false),
            backend_error: Mutex::new(None),
            metrics,
        })
    }

    /// Starts the consumer loop and, for a durable queue, lease renewal.
    pub(crate) fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::SeqCst) || self.stopping.is_cancelled() {
            return;
        }
        *lock(&self.consumer) = Some(tokio::spawn(self.clone().consume()));
        if let Some(every) = self.queue.maintenance_interval() {
            *lock(&self.maintainer) = Some(tokio::spawn(self.clone().maintain(every)));
        }
    }

    /// Whether sends are still taken.
    pub(crate) fn check_open(&self) -> Result<(), WorkerError> {
        if self.stopping.is_cancelled() {
            Err(WorkerError::unavailable("the worker has shut down"))
        } else {
            Ok(())
        }
    }

    /// Queues a task and wakes the consumer; on a shared queue, a task due now with a
    /// handler here and a free slot is queued claimed by this instance and its first attempt
    /// starts at once (no claim round trip, no wake-up of other instances).
    pub(crate) async fn push(self: &Arc<Self>, task: NewTask) -> Result<TaskId, WorkerError> {
        self.check_open()?;
        if let Some(permit) = self.free_slot(&task) {
            // In a task of its own, not cancelled with the send: a task inserted claimed must
            // get its attempt (dropped half-way, it would wait for its lease to expire).
            let engine = self.clone();
            return tokio::spawn(async move { engine.push_claimed(task, permit).await })
                .await
                .unwrap_or_else(|_| Err(WorkerError::unavailable("the send was interrupted")));
        }
        let id = self.queue.push(task).await?;
        self.notify();
        Ok(id)
    }

    /// Queues `task` claimed by this instance and starts its attempt on `permit`.
    async fn push_claimed(
        self: Arc<Self>,
        task: NewTask,
        permit: OwnedSemaphorePermit,
    ) -> Result<TaskId, WorkerError> {
        let (id, claimed) = self.queue.push_claimed(task).await?;
        match claimed {
            Some(claimed) if !self.stopping.is_cancelled() => self.spawn(claimed, permit),
            Some(claimed) => {
                drop(permit);
                if let Err(error) = self.queue.release(claimed.claim()).await {
                    tracing::warn!(task = %id, %error, "could not put back a task sent during shutdown; it is delivered again when its lease expires");
                }
            }
            None => drop(permit),
        }
        Ok(id)
    }

    /// A slot for `task`'s first attempt, if it can start at the send: a queue that claims on
    /// push, the consumer running, the task due now, its handler here, a permit free.
    fn free_slot(&self, task: &NewTask) -> Option<OwnedSemaphorePermit> {
        if !self.queue.claims_on_push()
            || !task.delay.is_zero()
            || !self.started.load(Ordering::SeqCst)
            || self.registry.get(&task.name.full).is_none()
        {
            return None;
        }
        self.permits.clone().try_acquire_owned().ok()
    }

    /// Something may be claimable now.
    pub(crate) fn notify(&self) {
        self.wake.notify_one();
    }

    /// The names with a handler changed: a claim waiting on the server looks again.
    pub(crate) fn registered(&self) {
        self.queue.unblock();
        self.wake.notify_one();
    }

    pub(crate) fn backend_failed(&self, error: &WorkerError) {
        tracing::warn!(%error, "the worker's queue failed");
        *lock(&self.backend_error) = Some(error.to_string());
    }

    fn backend_ok(&self) {
        let mut last = lock(&self.backend_error);
        if last.take().is_some() {
            tracing::info!("the worker's queue answers again");
        }
    }

    /// Claims due tasks as permits free up, and runs them; returns when stopping.
    async fn consume(self: Arc<Self>) {
        let queue_woken = self.queue.woken();
        loop {
            let first = tokio::select! {
                biased;
                () = self.stopping.cancelled() => return,
                permit = self.permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
            };
            let mut permits = vec![first];
            while let Ok(permit) = self.permits.clone().try_acquire_owned() {
                permits.push(permit);
            }
            let names = self.registry.names();
            let asked = permits.len();
            let claimed = if names.list.is_empty() {
                Ok(Vec::new())
            } else {
                self.queue.claim(&names, asked).await
            };
            let wait = match claimed {
                Ok(claimed) => {
                    self.backend_ok();
                    let full = claimed.len() == asked;
                    for (task, permit) in claimed.into_iter().zip(permits.drain(..)) {
                        self.spawn(task, permit);
                    }
                    drop(permits);
                    if full {
                        continue;
                    }
                    if names.list.is_empty() {
                        Wake::Woken
                    } else {
                        self.queue.wake(&names)
                    }
                }
                Err(error) => {
                    self.backend_failed(&error);
                    drop(permits);
                    Wake::Poll
                }
            };
            let sleep = async {
                match wait {
                    Wake::At(at) => tokio::time::sleep_until(at).await,
                    Wake::Woken => std::future::pending().await,
                    Wake::Poll => tokio::time::sleep(self.options.poll_interval).await,
                }
            };
            let woken = async {
                match &queue_woken {
                    Some(notify) => notify.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.stopping.cancelled() => return,
                () = self.wake.notified() => {}
                () = woken => {}
                () = sleep => {}
            }
        }
    }

    /// Renews the leases of the attempts in flight here (and only those), and the like,
    /// every `every`, until drained.
    async fn maintain(self: Arc<Self>, every: Duration) {
        loop {
            tokio::select! {
                () = self.maintenance.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            let inflight: Vec<Claim> = lock(&self.inflight).values().map(|r| r.claim).collect();
            match self.queue.maintain(&inflight).await {
                Ok(()) => self.backend_ok(),
                Err(error) => self.backend_failed(&error),
            }
        }
    }

    /// Runs one claimed attempt in the background, holding its permit.
    fn spawn(self: &Arc<Self>, task: Claimed, permit: OwnedSemaphorePermit) {
        let claim = task.claim();
        let namespace = namespace(&task.name);
        // Held while spawning, so that the attempt cannot end (and remove itself) before it
        // is recorded.
        let mut inflight = lock(&self.inflight);
        let engine = self.clone();
        let handle = self.tracker.spawn(async move {
            engine.attempt(task).await;
            drop(permit);
            engine.ended(claim.id);
        });
        inflight.insert(
            claim.id,
            Running {
                namespace,
                claim,
                abort: handle.abort_handle(),
            },
        );
    }

    fn ended(&self, id: TaskId) {
        lock(&self.inflight).remove(&id);
        self.done.notify_waiters();
    }

    fn any_inflight(&self, namespace: Option<&str>) -> bool {
        lock(&self.inflight)
            .values()
            .any(|r| namespace.is_none_or(|ns| *r.namespace == *ns))
    }

    /// Waits until no attempt (of `namespace`, or at all) is in flight; `false` if some still
    /// are after `limit`.
    async fn drained(&self, namespace: Option<&str>, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let ended = self.done.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if !self.any_inflight(namespace) {
                return true;
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                return !self.any_inflight(namespace);
            }
        }
    }

    /// Aborts the attempts in flight (of `namespace`, or all) and puts their tasks back in
    /// the queue, their attempt not counted.
    async fn interrupt(&self, namespace: Option<&str>) {
        let stopped: Vec<Running> = {
            let mut inflight = lock(&self.inflight);
            let ids: Vec<TaskId> = inflight
                .iter()
                .filter(|(_, r)| namespace.is_none_or(|ns| *r.namespace == *ns))
                .map(|(id, _)| *id)
                .collect();
            ids.iter().filter_map(|id| inflight.remove(id)).collect()
        };
        for running in &stopped {
            running.abort.abort();
        }
        for running in stopped {
            Stats::bump(&self.stats.interrupted);
            if let Err(error) = self.queue.release(running.claim).await {
                tracing::warn!(task = %running.claim.id, %error, "could not put an interrupted task back; it is delivered again when its lease expires");
            }
        }
        self.done.notify_waiters();
    }

    /// A plugin stops: its handlers go (its queued tasks stay queued), its attempts in flight
    /// get the shutdown timeout to end, then are interrupted and put back.
    pub(crate) async fn stop_plugin(&self, plugin: &str) {
        let removed = self.registry.remove_plugin(plugin);
        if removed > 0 {
            tracing::debug!(
                plugin,
                handlers = removed,
                "unregistered the task handlers of a stopping plugin"
            );
        }
        if !self
            .drained(Some(plugin), self.options.shutdown_timeout)
            .await
        {
            tracing::warn!(plugin, timeout = ?self.options.shutdown_timeout, "tasks of a stopping plugin still running; interrupting them (they go back to the queue)");
            self.interrupt(Some(plugin)).await;
        }
    }

    /// Stops claiming, waits for the attempts in flight (at most the shutdown timeout),
    /// interrupts the rest (back to the queue), stops lease renewal, closes the queue.
    pub(crate) async fn shutdown(&self) {
        self.stopping.cancel();
        self.queue.unblock();
        let mut guard = AbortOnDrop(Some(self));
        let consumer = lock(&self.consumer).take();
        if let Some(consumer) = consumer {
            let _ = consumer.await;
        }
        self.tracker.close();
        if !self.drained(None, self.options.shutdown_timeout).await {
            tracing::warn!(timeout = ?self.options.shutdown_timeout, "tasks still running at shutdown; interrupting them (they go back to the queue)");
            self.interrupt(None).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.tracker.wait()).await;
        self.maintenance.cancel();
        let maintainer = lock(&self.maintainer).take();
        if let Some(maintainer) = maintainer {
            let _ = maintainer.await;
        }
        self.queue.close().await;
        guard.0 = None;
    }

    /// Queue depth, attempts in flight, dead letters.
    pub(crate) async fn health(&self) -> Health {
        if self.stopping.is_cancelled() {
            return Health::unhealthy("the worker has shut down");
        }
        let here = lock(&self.inflight).len();
        let counts = match with_timeout(self.queue.counts()).await {
            Ok(counts) => counts,
            Err(error) => return Health::degraded(format!("cannot count tasks: {error}")),
        };
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let message = format!(
            "{} queue: {} ready, {} delayed, {} running ({here}/{} here), {} dead letters; \
             here: {} succeeded, {} retried, {} dead, {} panicked, {} interrupted",
            self.queue.kind(),
            counts.ready,
            counts.delayed,
            counts.running,
            self.options.concurrency,
            counts.dead,
            n(&self.stats.succeeded),
            n(&self.stats.retried),
            n(&self.stats.dead),
            n(&self.stats.panicked),
            n(&self.stats.interrupted),
        );
        match lock(&self.backend_error).clone() {
            Some(error) => Health::degraded(format!("{message}; last queue error: {error}")),
            None => Health::healthy_with(message),
        }
    }
}

async fn with_timeout<T>(
    f: impl Future<Output = Result<T, WorkerError>>,
) -> Result<T, WorkerError> {
    tokio::time::timeout(Duration::from_secs(2), f)
        .await
        .unwrap_or_else(|_| Err(WorkerError::unavailable("no answer within 2s")))
}

/// If `shutdown` is dropped half-way (its caller timed out), the attempts still in flight
/// are aborted rather than left running detached. Their tasks stay `running`: a durable
/// queue delivers them again when their lease expires.
struct AbortOnDrop<'a>(Option<&'a Engine>);

impl Drop for AbortOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(engine) = self.0 {
            engine.maintenance.cancel();
            for running in lock(&engine.inflight).values() {
                running.abort.abort();
            }
        }
    }
}
