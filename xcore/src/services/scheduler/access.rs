//! How plugins and the host obtain a [`Scheduler`]: [`Handle`] (`ctx.handle::<Scheduler>()`,
//! `cx.handle::<Scheduler>().await`) and [`HostHandle`] (`xcore.handle::<Scheduler>()`).

use std::{any::Any, sync::Arc};

use super::{Scheduler, SchedulerError, SchedulerService, key::Owner};
use crate::{
    CallContext, PluginContext, Xcore,
    plugin::handle::{Bind, Handle, HostHandle},
    services::{AccessError, grant_mask},
};

/// The plugin's handle on the scheduler.
///
/// The plugin must declare the service (`services = ["scheduler"]`) and hold
/// `service:scheduler: schedule`; otherwise [`AccessError::NotDeclared`] or
/// [`AccessError::PermissionDenied`] (the denial is audited). Its jobs run through the plugin
/// instance's gate.
impl Handle for Scheduler {
    fn obtain(ctx: &PluginContext) -> Result<Self, AccessError> {
        let (shared, service) = ctx.declared_service(SchedulerService::NAME)?;
        let any: Arc<dyn Any + Send + Sync> = service;
        let service = any
            .downcast::<SchedulerService>()
            .map_err(|_| AccessError::WrongType {
                service: SchedulerService::NAME.into(),
                expected: std::any::type_name::<SchedulerService>(),
            })?;
        grant_mask(
            ctx.identity(),
            shared.audit(),
            "service",
            SchedulerService::NAME,
            &["schedule"],
        )?;
        let engine = service.engine().map_err(|e| AccessError::Unavailable {
            service: SchedulerService::NAME.into(),
            reason: e.to_string(),
        })?;
        engine.attach(&shared);
        Ok(Scheduler::new(
            engine.clone(),
            Owner::Plugin(ctx.identity().clone(), Some(ctx.downgrade())),
        ))
    }
}

/// Jobs of the call's tenant.
impl Bind for Scheduler {
    type Error = AccessError;

    async fn bind(&self, cx: &CallContext) -> Result<Self, AccessError> {
        Ok(self.for_tenant(cx.tenant()))
    }
}

/// The host's handle on the scheduler (not subject to grants), for the tenant `default`: the
/// host's own jobs, and every job through [`Scheduler::list_all`]. Available once the
/// `scheduler` service has loaded.
impl HostHandle for Scheduler {
    type Error = SchedulerError;

    fn obtain_host(xcore: &Xcore) -> Result<Self, SchedulerError> {
        let service = xcore
            .shared
            .service(SchedulerService::NAME)
            .ok_or_else(|| SchedulerError::Unavailable {
                reason: "no `scheduler` service is loaded (register a SchedulerService and boot)"
                    .into(),
            })?;
        let any: Arc<dyn Any + Send + Sync> = service;
        let service =
            any.downcast::<SchedulerService>()
                .map_err(|_| SchedulerError::Unavailable {
                    reason: "the `scheduler` service is not xcore's SchedulerService".into(),
                })?;
        service.attach(&xcore.shared);
        Ok(Scheduler::new(service.engine()?.clone(), Owner::Host))
    }
}
