//! How plugins and the host obtain a [`Worker`]: [`Handle`] (`ctx.handle::<Worker>()`,
//! `cx.handle::<Worker>().await`) and [`HostHandle`] (`xcore.handle::<Worker>()`).

use std::{any::Any, sync::Arc};

use super::{Worker, WorkerError, WorkerService, name::Owner};
use crate::{
    CallContext, PluginContext, Xcore,
    plugin::handle::{Bind, Handle, HostHandle},
    services::{AccessError, grant_mask},
};

/// The plugin's handle on the task worker.
///
/// The plugin must declare the service (`services = ["worker"]`) and hold
/// `service:worker: execute`; otherwise [`AccessError::NotDeclared`] or
/// [`AccessError::PermissionDenied`] (the denial is audited). Its task handlers run through
/// the plugin instance's gate.
impl Handle for Worker {
    fn obtain(ctx: &PluginContext) -> Result<Self, AccessError> {
        let (shared, service) = ctx.declared_service(WorkerService::NAME)?;
        let any: Arc<dyn Any + Send + Sync> = service;
        let service = any
            .downcast::<WorkerService>()
            .map_err(|_| AccessError::WrongType {
                service: WorkerService::NAME.into(),
                expected: std::any::type_name::<WorkerService>(),
            })?;
        grant_mask(
            ctx.identity(),
            shared.audit(),
            "service",
            WorkerService::NAME,
            &["execute"],
        )?;
        let engine = service.engine().map_err(|e| AccessError::Unavailable {
            service: WorkerService::NAME.into(),
            reason: e.to_string(),
        })?;
        Ok(Worker::new(engine.clone(), Owner::Plugin(ctx.downgrade())))
    }
}

/// Tasks sent for the call's tenant, in its trace.
impl Bind for Worker {
    type Error = AccessError;

    async fn bind(&self, cx: &CallContext) -> Result<Self, AccessError> {
        Ok(self.for_call(cx))
    }
}

/// The host's handle on the task worker (not subject to grants), for the tenant `default`:
/// the host's own tasks (`@host.<name>`), any plugin's task by its full name, and every task's
/// status and dead letters. Available once the `worker` service has loaded.
impl HostHandle for Worker {
    type Error = WorkerError;

    fn obtain_host(xcore: &Xcore) -> Result<Self, WorkerError> {
        let service = xcore.shared.service(WorkerService::NAME).ok_or_else(|| {
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
