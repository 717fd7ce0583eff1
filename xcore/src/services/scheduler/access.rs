//! How plugins and the host obtain a [`Scheduler`]: [`PluginContext::scheduler`] and
//! [`Xcore::scheduler`].

use std::{any::Any, sync::Arc};

use super::{Scheduler, SchedulerError, SchedulerService, key::Owner};
use crate::{
    PluginContext, Xcore,
    services::{AccessError, grant_mask},
};

impl PluginContext {
    /// The plugin's handle on the scheduler, for the tenant `default` (use
    /// [`Scheduler::for_tenant`] or [`Scheduler::for_call`] for another).
    ///
    /// The plugin must declare the service (`services = ["scheduler"]`) and hold
    /// `service:scheduler: schedule`; otherwise [`AccessError::NotDeclared`] or
    /// [`AccessError::PermissionDenied`] (the denial is audited).
    pub fn scheduler(&self) -> Result<Scheduler, AccessError> {
        let (shared, service) = self.declared_service(SchedulerService::NAME)?;
        let any: Arc<dyn Any + Send + Sync> = service;
        let service = any
            .downcast::<SchedulerService>()
            .map_err(|_| AccessError::WrongType {
                service: SchedulerService::NAME.into(),
                expected: std::any::type_name::<SchedulerService>(),
            })?;
        grant_mask(
            self.identity(),
            &shared.audit,
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
            Owner::Plugin(self.identity().clone()),
        ))
    }
}

impl Xcore {
    /// The host's handle on the scheduler (not subject to grants), for the tenant `default`:
    /// the host's own jobs, and every job through [`Scheduler::list_all`]. Available once the
    /// `scheduler` service has loaded.
    pub fn scheduler(&self) -> Result<Scheduler, SchedulerError> {
        let service = self.shared.service(SchedulerService::NAME).ok_or_else(|| {
            SchedulerError::Unavailable {
                reason: "no `scheduler` service is loaded (register a SchedulerService and boot)"
                    .into(),
            }
        })?;
        let any: Arc<dyn Any + Send + Sync> = service;
        let service =
            any.downcast::<SchedulerService>()
                .map_err(|_| SchedulerError::Unavailable {
                    reason: "the `scheduler` service is not xcore's SchedulerService".into(),
                })?;
        service.attach(&self.shared);
        Ok(Scheduler::new(service.engine()?.clone(), Owner::Host))
    }
}
