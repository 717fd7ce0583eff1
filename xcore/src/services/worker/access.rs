//! How plugins and the host obtain a [`Worker`]: [`PluginContext::worker`] and
//! [`Xcore::worker`].

use std::{any::Any, sync::Arc};

use super::{Worker, WorkerError, WorkerService, name::Owner};
use crate::{
    PluginContext, Xcore,
    services::{AccessError, grant_mask},
};

impl PluginContext {
    /// The plugin's handle on the task worker, for the tenant `default` (use
    /// [`Worker::for_call`] or [`Worker::for_tenant`] for another).
    ///
    /// The plugin must declare the service (`services = ["worker"]`) and hold
    /// `service:worker: execute`; otherwise [`AccessError::NotDeclared`] or
    /// [`AccessError::PermissionDenied`] (the denial is audited).
    pub fn worker(&self) -> Result<Worker, AccessError> {
        let (shared, service) = self.declared_service(WorkerService::NAME)?;
        let any: Arc<dyn Any + Send + Sync> = service;
        let service = any
            .downcast::<WorkerService>()
            .map_err(|_| AccessError::WrongType {
                service: WorkerService::NAME.into(),
                expected: std::any::type_name::<WorkerService>(),
            })?;
        grant_mask(
            self.identity(),
            &shared.audit,
            "service",
            WorkerService::NAME,
            &["execute"],
        )?;
        let engine = service.engine().map_err(|e| AccessError::Unavailable {
            service: WorkerService::NAME.into(),
            reason: e.to_string(),
        })?;
        Ok(Worker::new(
            engine.clone(),
            Owner::Plugin(self.identity().clone()),
        ))
    }
}

impl Xcore {
    /// The host's handle on the task worker (not subject to grants), for the tenant
    /// `default`: the host's own tasks (`@host.<name>`), any plugin's task by its full name,
    /// and every task's status and dead letters. Available once the `worker` service has
    /// loaded.
    pub fn worker(&self) -> Result<Worker, WorkerError> {
        let service = self.shared.service(WorkerService::NAME).ok_or_else(|| {
            WorkerError::unavailable(
                "no `worker` service is loaded (register a WorkerService and boot)",
            )
        })?;
        let any: Arc<dyn Any + Send + Sync> = service;
        let service = any.downcast::<WorkerService>().map_err(|_| {
            WorkerError::unavailable("the `worker` service is not xcore's WorkerService")
        })?;
        service.handle()
    }
}
