//! Shared jobs on every instance: the store's definitions applied to this engine, at each
//! change notification and every `services.scheduler.shared.resync`.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, Weak},
};

use tokio::sync::Notify;

use super::{
    SchedulerError, SharedJob, SharedJobsOptions,
    config_jobs::call_as_host,
    engine::Engine,
    entry::{JobEntry, Spec},
    key::{Owner, job_key},
    lock::Put,
    shared_job::Stored,
};
use crate::TenantId;

/// This instance's side of the shared jobs.
pub(crate) struct SharedState {
    pub(crate) options: SharedJobsOptions,
    /// What this instance applied: job key → (revision, the entry it registered). Also
    /// serializes syncs.
    applied: tokio::sync::Mutex<HashMap<String, Applied>>,
    /// The last sync's error, while the store cannot be read.
    error: Mutex<Option<String>>,
    /// Woken by change notifications.
    pub(crate) wake: Arc<Notify>,
}

struct Applied {
    revision: u64,
    entry: Arc<JobEntry>,
}

impl SharedState {
    pub(crate) fn new(options: SharedJobsOptions) -> Self {
        Self {
            options,
            applied: tokio::sync::Mutex::new(HashMap::new()),
            error: Mutex::new(None),
            wake: Arc::new(Notify::new()),
        }
    }

    /// The last sync's error, if it failed.
    pub(crate) fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_error(&self, error: Option<String>) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        match (&*slot, &error) {
            (Some(_), None) => tracing::info!("the shared job store is available again"),
            (None, Some(e)) => tracing::error!(
                error = %e,
                "the shared job store is unavailable; shared jobs applied here keep firing as they were"
            ),
            _ => {}
        }
        *slot = error;
    }
}

fn store_error(message: String) -> SchedulerError {
    SchedulerError::Store { message }
}

impl Engine {
    fn store(&self) -> Result<&super::lock::FiringLock, SchedulerError> {
        self.lock
            .as_ref()
            .ok_or_else(|| SchedulerError::Unavailable {
                reason: "shared jobs are stored in the lock's server: configure \
                     `services.scheduler.lock`"
                    .into(),
            })
    }

    /// Stores shared job `id` of `owner` for `tenant` (checked first: nothing is stored if
    /// it is invalid), then applies the store here.
    pub(crate) async fn share(
        self: &Arc<Self>,
        owner: &Owner,
        tenant: &TenantId,
        id: &str,
        job: SharedJob,
    ) -> Result<(), SchedulerError> {
        let store = self.store()?;
        if self.stopping.is_cancelled() {
            return Err(SchedulerError::Stopped);
        }
        job.check(id, owner, &self.shared.options)?;
        let stored = Stored {
            owner: owner.key().to_owned(),
            tenant: tenant.to_string(),
            id: id.to_owned(),
            job,
            revision: fastrand::u64(..),
        };
        let record =
            serde_json::to_string(&stored).map_err(|e| SchedulerError::InvalidSharedJob {
                id: id.to_owned(),
                reason: e.to_string(),
            })?;
        let key = job_key(owner, tenant, id);
        let limit = self.shared.options.max_per_owner;
        match store
            .put_job(owner.key(), &key, &record, limit)
            .await
            .map_err(store_error)?
        {
            Put::Stored => {}
            Put::TooMany => {
                return Err(SchedulerError::TooManySharedJobs {
                    owner: owner.to_string(),
                    limit,
                });
            }
        }
        self.sync_shared().await;
        Ok(())
    }

    /// Pauses or resumes shared job `key` everywhere; `false` if there is none.
    pub(crate) async fn pause_shared(
        self: &Arc<Self>,
        key: &str,
        paused: bool,
    ) -> Result<bool, SchedulerError> {
        let found = self
            .store()?
            .pause_job(key, paused)
            .await
            .map_err(store_error)?;
        self.sync_shared().await;
        Ok(found)
    }

    /// Removes shared job `key` of `owner` everywhere; `false` if there is none.
    pub(crate) async fn unshare(
        self: &Arc<Self>,
        owner: &Owner,
        key: &str,
    ) -> Result<bool, SchedulerError> {
        let found = self
            .store()?
            .delete_job(owner.key(), key)
            .await
            .map_err(store_error)?;
        self.sync_shared().await;
        Ok(found)
    }

    /// Applies the store's definitions here: new or changed ones (re)registered, paused or
    /// resumed ones paused or resumed, removed ones removed. A job whose plugin this
    /// instance does not know yet is left for a later sync. If the store cannot be read,
    /// nothing changes here (the jobs applied keep firing) and the error is kept for
    /// `health`.
    pub(crate) async fn sync_shared(self: &Arc<Self>) {
        let Some(store) = &self.lock else {
            return;
        };
        let mut applied = self.shared.applied.lock().await;
        if self.stopping.is_cancelled() {
            return;
        }
        let rows = match store.load_jobs().await {
            Ok(rows) => {
                self.shared.set_error(None);
                rows
            }
            Err(e) => {
                self.shared.set_error(Some(e));
                return;
            }
        };
        let mut seen = HashSet::with_capacity(rows.len());
        for row in rows {
            seen.insert(row.key.clone());
            let stored: Stored = match serde_json::from_str(&row.record) {
                Ok(stored) => stored,
                Err(e) => {
                    tracing::warn!(job = %row.key, error = %e, "ignoring a malformed shared job");
                    continue;
                }
            };
            let current = self.get(&row.key);
            let same = match (applied.get(&row.key), &current) {
                (Some(a), Some(entry)) => {
                    a.revision == stored.revision && Arc::ptr_eq(&a.entry, entry)
                }
                _ => false,
            };
            if same {
                let paused = current.as_ref().is_some_and(|e| e.state().paused);
                if row.paused && !paused {
                    self.pause(&row.key);
                } else if !row.paused
                    && paused
                    && let Err(e) = self.resume(&row.key).await
                {
                    tracing::debug!(job = %row.key, error = %e, "shared job not resumed");
                }
                continue;
            }
            match self.apply_shared(&row.key, &stored).await {
                Ok(Some(entry)) => {
                    if row.paused {
                        self.pause(&row.key);
                    }
                    applied.insert(
                        row.key,
                        Applied {
                            revision: stored.revision,
                            entry,
                        },
                    );
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(job = %row.key, error = %e, "shared job not applied here");
                }
            }
        }
        let gone: Vec<String> = applied
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(a) = applied.remove(&key)
                && self.get(&key).is_some_and(|e| Arc::ptr_eq(&e, &a.entry))
            {
                self.remove(&key);
            }
        }
    }

    /// Registers one stored shared job here; `None` if it cannot be yet (its plugin is not
    /// known here, or this instance does not know its `Xcore` yet).
    async fn apply_shared(
        self: &Arc<Self>,
        key: &str,
        stored: &Stored,
    ) -> Result<Option<Arc<JobEntry>>, SchedulerError> {
        let Some(host) = self.host() else {
            return Ok(None);
        };
        let owner = if stored.owner == Owner::Host.key() {
            Owner::Host
        } else {
            let Some(identity) = host
                .identities()
                .iter()
                .find(|p| p.name() == stored.owner)
                .cloned()
            else {
                return Ok(None);
            };
            Owner::Plugin(identity, None)
        };
        let tenant =
            TenantId::new(&stored.tenant).map_err(|e| SchedulerError::InvalidSharedJob {
                id: stored.id.clone(),
                reason: e.to_string(),
            })?;
        if job_key(&owner, &tenant, &stored.id) != key {
            return Err(SchedulerError::InvalidSharedJob {
                id: stored.id.clone(),
                reason: format!("its record does not match its key `{key}`"),
            });
        }
        let trigger = stored.job.trigger()?;
        let target = match (&stored.job.plugin, owner.plugin()) {
            (Some(plugin), _) => plugin.clone(),
            (None, Some(own)) => own.to_owned(),
            (None, None) => {
                return Err(SchedulerError::InvalidSharedJob {
                    id: stored.id.clone(),
                    reason: "it names no plugin".into(),
                });
            }
        };
        // Applied where the plugin runs: elsewhere its firings could only fail.
        if host.runtime().running(&target).is_none() {
            return Ok(None);
        }
        let func = call_as_host(
            Arc::downgrade(self),
            &target,
            &stored.job.action,
            stored.job.payload.clone(),
        );
        let spec = Spec {
            key: key.to_owned(),
            id: stored.id.clone(),
            owner,
            tenant,
            target: Some(target),
            trigger,
            options: stored.job.options(),
            func,
            shared: true,
        };
        match self.add(spec).await {
            Ok(()) => Ok(self.get(key)),
            // A one-shot that has fired: nothing to plan.
            Err(SchedulerError::NeverFires { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Applies the store at each change notification and every `resync`, until shutdown.
    pub(crate) fn spawn_shared_sync(self: &Arc<Self>) {
        let Some(store) = &self.lock else {
            return;
        };
        store.watch_jobs(self.shared.wake.clone(), self.stopping.clone());
        let engine: Weak<Engine> = Arc::downgrade(self);
        let (wake, stopping) = (self.shared.wake.clone(), self.stopping.clone());
        let every = self.shared.options.resync;
        tokio::spawn(async move {
            loop {
                if let Some(engine) = engine.upgrade() {
                    engine.sync_shared().await;
                } else {
                    return;
                }
                tokio::select! {
                    () = stopping.cancelled() => return,
                    () = wake.notified() => {}
                    () = tokio::time::sleep(every) => {}
                }
            }
        });
    }
}
