//! The in-process queue: bounded, lost when the process ends.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::SystemTime,
};

use serde_json::Value;
use tokio::time::Instant;

use super::{Claim, Claimed, Counts, NewTask, Outcome, Queue, Scope, Wake};
use crate::{
    TenantId, TraceContext, async_trait,
    services::worker::{
        TaskId, TaskInfo, TaskStatus, WorkerError, name::FullName, registry::Names,
    },
};

enum State {
    Queued,
    Running,
    Succeeded(Value),
    Dead,
}

struct Entry {
    name: FullName,
    tenant: TenantId,
    payload: Value,
    attempts: u32,
    max_attempts: u32,
    key: Option<String>,
    trace: Option<TraceContext>,
    created: SystemTime,
    updated: SystemTime,
    run_at: Instant,
    last_error: Option<String>,
    state: State,
}

impl Entry {
    fn status(&self) -> TaskStatus {
        let error = || self.last_error.clone().unwrap_or_default();
        match &self.state {
            State::Queued if self.attempts > 0 && self.last_error.is_some() => TaskStatus::Failed {
                error: error(),
                attempts: self.attempts,
            },
            State::Queued => TaskStatus::Queued,
            State::Running => TaskStatus::Running {
                attempt: self.attempts,
            },
            State::Succeeded(result) => TaskStatus::Succeeded {
                result: result.clone(),
                attempts: self.attempts,
            },
            State::Dead => TaskStatus::Dead {
                error: error(),
                attempts: self.attempts,
            },
        }
    }

    fn info(&self, id: u64) -> TaskInfo {
        let now = Instant::now();
        let run_at = if self.run_at > now {
            SystemTime::now() + (self.run_at - now)
        } else {
            SystemTime::now() - (now - self.run_at)
        };
        TaskInfo {
            id: TaskId::new(id),
            name: self.name.local().to_owned(),
            plugin: self.name.plugin().map(str::to_owned),
            tenant: self.tenant.clone(),
            payload: self.payload.clone(),
            status: self.status(),
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            created_at: self.created,
            updated_at: self.updated,
            run_at,
        }
    }
}

type Key = (Arc<str>, TenantId, String);

#[derive(Default)]
struct Inner {
    next_id: u64,
    tasks: HashMap<u64, Entry>,
    /// Queued tasks by full name, by due instant.
    ready: HashMap<Arc<str>, BTreeSet<(Instant, u64)>>,
    /// Queued and running tasks: what the capacity bounds.
    live: usize,
    /// Succeeded tasks, oldest first.
    finished: VecDeque<u64>,
    /// Dead letters, oldest first.
    dead: VecDeque<u64>,
    keys: HashMap<Key, u64>,
}

impl Inner {
    fn enqueue(&mut self, id: u64) {
        if let Some(entry) = self.tasks.get_mut(&id) {
            entry.state = State::Queued;
            self.ready
                .entry(entry.name.full.clone())
                .or_default()
                .insert((entry.run_at, id));
        }
    }

    /// Forgets the oldest ids of `which` beyond `keep`.
    fn trim(&mut self, dead: bool, keep: usize) {
        loop {
            let list = if dead {
                &mut self.dead
            } else {
                &mut self.finished
            };
            if list.len() <= keep {
                return;
            }
            let Some(id) = list.pop_front() else { return };
            if let Some(entry) = self.tasks.remove(&id) {
                if dead {
                    tracing::warn!(task = %id, name = %entry.name.full, "dead letter dropped: more than `keep_finished` dead letters");
                }
                if let Some(key) = entry.key {
                    self.keys.remove(&(entry.name.full, entry.tenant, key));
                }
            }
        }
    }
}

/// The in-process queue.
pub(crate) struct MemoryQueue {
    inner: Mutex<Inner>,
    capacity: usize,
    keep: usize,
}

impl MemoryQueue {
    pub(crate) fn new(capacity: usize, keep: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                next_id: 1,
                ..Inner::default()
            }),
            capacity,
            keep,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn full(&self) -> WorkerError {
        WorkerError::QueueFull {
            capacity: self.capacity,
        }
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn push(&self, task: NewTask) -> Result<TaskId, WorkerError> {
        let mut inner = self.lock();
        if let Some(key) = &task.key
            && let Some(&id) =
                inner
                    .keys
                    .get(&(task.name.full.clone(), task.tenant.clone(), key.clone()))
        {
            return Ok(TaskId::new(id));
        }
        if inner.live >= self.capacity {
            return Err(self.full());
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let now = SystemTime::now();
        if let Some(key) = &task.key {
            inner.keys.insert(
                (task.name.full.clone(), task.tenant.clone(), key.clone()),
                id,
            );
        }
        inner.tasks.insert(
            id,
            Entry {
                name: task.name,
                tenant: task.tenant,
                payload: task.payload,
                attempts: 0,
                max_attempts: task.max_attempts,
                key: task.key,
                trace: task.trace,
                created: now,
                updated: now,
                run_at: Instant::now() + task.delay,
                last_error: None,
                state: State::Queued,
            },
        );
        inner.live += 1;
        inner.enqueue(id);
        Ok(TaskId::new(id))
    }

    async fn claim(&self, names: &Names, max: usize) -> Result<Vec<Claimed>, WorkerError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let mut claimed = Vec::new();
        while claimed.len() < max {
            // The earliest due task among the names with a handler.
            let next = names
                .list
                .iter()
                .filter_map(|n| Some((n, *inner.ready.get(n)?.first()?)))
                .filter(|(_, (at, _))| *at <= now)
                .min_by_key(|(_, due)| *due);
            let Some((name, due)) = next else { break };
            let name = name.clone();
            if let Some(set) = inner.ready.get_mut(&name) {
                set.remove(&due);
                if set.is_empty() {
                    inner.ready.remove(&name);
                }
            }
            let Some(entry) = inner.tasks.get_mut(&due.1) else {
                continue;
            };
            entry.state = State::Running;
            entry.attempts += 1;
            entry.updated = SystemTime::now();
            claimed.push(Claimed {
                id: TaskId::new(due.1),
                name,
                tenant: entry.tenant.clone(),
                payload: Ok(entry.payload.clone()),
                attempt: entry.attempts,
                max_attempts: entry.max_attempts,
                trace: entry.trace.map(|t| (t.trace_id(), t.span_id())),
            });
        }
        Ok(claimed)
    }

    async fn finish(&self, claim: Claim, outcome: Outcome) -> Result<bool, WorkerError> {
        let mut inner = self.lock();
        let id = claim.id.get();
        let Some(entry) = inner.tasks.get_mut(&id) else {
            return Ok(false);
        };
        if !matches!(entry.state, State::Running) || entry.attempts != claim.attempt {
            return Ok(false);
        }
        entry.updated = SystemTime::now();
        match outcome {
            Outcome::Succeeded(result) => {
                entry.state = State::Succeeded(result);
                entry.last_error = None;
                inner.live -= 1;
                inner.finished.push_back(id);
                inner.trim(false, self.keep);
            }
            Outcome::Retry { error, after } => {
                entry.last_error = Some(error);
                entry.run_at = Instant::now() + after;
                inner.enqueue(id);
            }
            Outcome::Dead(error) => {
                entry.state = State::Dead;
                entry.last_error = Some(error);
                inner.live -= 1;
                inner.dead.push_back(id);
                inner.trim(true, self.keep);
            }
        }
        Ok(true)
    }

    async fn release(&self, claim: Claim) -> Result<(), WorkerError> {
        let mut inner = self.lock();
        let id = claim.id.get();
        if let Some(entry) = inner.tasks.get_mut(&id)
            && matches!(entry.state, State::Running)
            && entry.attempts == claim.attempt
        {
            entry.attempts -= 1;
            entry.run_at = Instant::now();
            entry.updated = SystemTime::now();
            inner.enqueue(id);
        }
        Ok(())
    }

    async fn info(&self, id: TaskId, scope: Scope<'_>) -> Result<Option<TaskInfo>, WorkerError> {
        let inner = self.lock();
        Ok(inner
            .tasks
            .get(&id.get())
            .filter(|e| scope.sees(&e.name, &e.tenant))
            .map(|e| e.info(id.get())))
    }

    async fn dead(&self, scope: Scope<'_>, limit: usize) -> Result<Vec<TaskInfo>, WorkerError> {
        let inner = self.lock();
        Ok(inner
            .dead
            .iter()
            .filter_map(|id| Some((*id, inner.tasks.get(id)?)))
            .filter(|(_, e)| scope.sees(&e.name, &e.tenant))
            .take(limit)
            .map(|(id, e)| e.info(id))
            .collect())
    }

    async fn redrive(&self, id: TaskId, scope: Scope<'_>) -> Result<(), WorkerError> {
        let mut inner = self.lock();
        let live = inner.live;
        let entry = inner
            .tasks
            .get_mut(&id.get())
            .filter(|e| scope.sees(&e.name, &e.tenant))
            .ok_or(WorkerError::UnknownTask { id })?;
        if !matches!(entry.state, State::Dead) {
            return Err(WorkerError::NotDead {
                id,
                status: entry.status().label(),
            });
        }
        if live >= self.capacity {
            return Err(self.full());
        }
        entry.attempts = 0;
        entry.last_error = None;
        entry.run_at = Instant::now();
        entry.updated = SystemTime::now();
        inner.live += 1;
        inner.dead.retain(|d| *d != id.get());
        inner.enqueue(id.get());
        Ok(())
    }

    async fn counts(&self) -> Result<Counts, WorkerError> {
        let inner = self.lock();
        let now = Instant::now();
        let mut counts = Counts {
            dead: inner.dead.len() as u64,
            ..Counts::default()
        };
        for set in inner.ready.values() {
            let due = set.range(..(now, u64::MAX)).count() as u64;
            counts.ready += due;
            counts.delayed += set.len() as u64 - due;
        }
        counts.running = (inner.live as u64).saturating_sub(counts.ready + counts.delayed);
        Ok(counts)
    }

    fn wake(&self, names: &Names) -> Wake {
        let inner = self.lock();
        names
            .list
            .iter()
            .filter_map(|n| inner.ready.get(n)?.first().map(|(at, _)| *at))
            .min()
            .map_or(Wake::Woken, Wake::At)
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn task(name: &str, key: Option<&str>) -> NewTask {
        NewTask {
            name: FullName::new("p", name).unwrap(),
            tenant: TenantId::default(),
            payload: Value::Null,
            max_attempts: 2,
            delay: Duration::ZERO,
            key: key.map(str::to_owned),
            trace: None,
        }
    }

    fn names(list: &[&str]) -> Names {
        Names {
            list: list.iter().map(|n| Arc::from(format!("p.{n}"))).collect(),
            joined: String::new(),
        }
    }

    #[tokio::test]
    async fn bounded_deduplicated_and_scoped() {
        let q = MemoryQueue::new(2, 1);
        let a = q.push(task("a", Some("k"))).await.unwrap();
        assert_eq!(q.push(task("a", Some("k"))).await.unwrap(), a);
        q.push(task("b", None)).await.unwrap();
        assert!(matches!(
            q.push(task("a", None)).await,
            Err(WorkerError::QueueFull { capacity: 2 })
        ));
        // Only names with a handler are claimed.
        let claimed = q.claim(&names(&["a"]), 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].id, a);
        let counts = q.counts().await.unwrap();
        assert_eq!((counts.ready, counts.running), (1, 1));
        // A stale attempt cannot finish the task.
        let stale = Claim { id: a, attempt: 7 };
        assert!(!q.finish(stale, Outcome::Dead("x".into())).await.unwrap());
        assert!(
            q.finish(claimed[0].claim(), Outcome::Succeeded(Value::Bool(true)))
                .await
                .unwrap()
        );
        let all = Scope {
            namespace: None,
            tenant: None,
        };
        let other = Scope {
            namespace: Some("q"),
            tenant: None,
        };
        assert!(q.info(a, other).await.unwrap().is_none());
        let info = q.info(a, all).await.unwrap().unwrap();
        assert_eq!(info.status.label(), "succeeded");
    }
}
