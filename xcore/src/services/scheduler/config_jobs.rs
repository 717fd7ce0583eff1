//! Jobs from the config (`services.scheduler.jobs`): checked when the service is built,
//! registered when it starts; each firing calls `plugin.action(payload)` as the host.

use std::sync::{Arc, Weak};

use serde_json::Value;

use super::{
    ConfigJob, JobError, JobOptions, SchedulerError, Trigger,
    engine::Engine,
    entry::Spec,
    job::{JobContext, JobFn, job_fn},
    key::{Owner, check_id, job_key},
};
use crate::{CallContext, TenantId};

/// A config job, checked.
#[derive(Debug, Clone)]
pub(crate) struct CheckedJob {
    id: String,
    plugin: String,
    action: String,
    payload: Value,
    tenant: TenantId,
    trigger: Trigger,
    options: JobOptions,
}

/// Checks `services.scheduler.jobs[index]`; errors name the job and the key.
pub(crate) fn check(index: usize, job: &ConfigJob) -> Result<CheckedJob, SchedulerError> {
    let at = format!("`services.scheduler.jobs[{index}]` (`{}`)", job.id);
    let invalid = |what: String| SchedulerError::InvalidOptions {
        message: format!("{at}: {what}"),
    };
    check_id(&job.id).map_err(|e| invalid(e.to_string()))?;
    xcore_manifest::validate_name(&job.plugin).map_err(|e| invalid(format!("`plugin`: {e}")))?;
    if job.action.is_empty() {
        return Err(invalid("`action` is empty".into()));
    }
    let tenant = match &job.tenant {
        Some(t) => TenantId::new(t).map_err(|e| invalid(format!("`tenant`: {e}")))?,
        None => TenantId::default(),
    };
    let trigger = match (&job.cron, job.every, &job.at) {
        (Some(cron), None, None) => match &job.timezone {
            Some(zone) => Trigger::cron_in(cron, zone),
            None => Trigger::cron(cron),
        },
        (None, Some(every), None) => Trigger::every(every),
        (None, None, Some(instant)) => Trigger::at_rfc3339(instant),
        (None, None, None) => {
            return Err(invalid(
                "it has no trigger; give one of `cron`, `every`, `at`".into(),
            ));
        }
        _ => {
            return Err(invalid(
                "it has several triggers; give only one of `cron`, `every`, `at`".into(),
            ));
        }
    }
    .map_err(|e| invalid(e.to_string()))?;
    if job.timezone.is_some() && job.cron.is_none() {
        return Err(invalid("`timezone` only applies to `cron`".into()));
    }
    let options = match job.timeout {
        Some(limit) => JobOptions::new().timeout(limit),
        None => JobOptions::new(),
    };
    Ok(CheckedJob {
        id: job.id.clone(),
        plugin: job.plugin.clone(),
        action: job.action.clone(),
        payload: job.payload.clone(),
        tenant,
        trigger,
        options,
    })
}

/// Registers the config jobs. One whose trigger has no instant left (an `at` in the past) is
/// logged and left out.
pub(crate) async fn register(
    engine: &Arc<Engine>,
    jobs: &[CheckedJob],
) -> Result<(), SchedulerError> {
    for job in jobs {
        let spec = Spec {
            key: job_key(&Owner::Host, &job.tenant, &job.id),
            id: job.id.clone(),
            owner: Owner::Host,
            tenant: job.tenant.clone(),
            target: Some(job.plugin.clone()),
            trigger: job.trigger.clone(),
            options: job.options.clone(),
            func: call(Arc::downgrade(engine), job),
            shared: false,
        };
        match engine.add(spec).await {
            Ok(()) => {}
            Err(SchedulerError::NeverFires { id, trigger }) => {
                tracing::warn!(job = %id, %trigger, "config job left out: it has no firing left");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The job's code: calls `plugin.action(payload)` as the host, for the job's tenant.
fn call(engine: Weak<Engine>, job: &CheckedJob) -> JobFn {
    call_as_host(engine, &job.plugin, &job.action, job.payload.clone())
}

/// A job's code that calls `plugin.action(payload)` through the `Xcore`'s call path, as the
/// host, for the job's tenant, in the firing's trace and under its attempt's deadline. Used by
/// config jobs and by the jobs plugins declare with `#[job]`.
pub(crate) fn call_as_host(
    engine: Weak<Engine>,
    plugin: &str,
    action: &str,
    payload: Value,
) -> JobFn {
    let target: Arc<(String, String, Value)> =
        Arc::new((plugin.to_owned(), action.to_owned(), payload));
    job_fn(move |cx: JobContext| {
        let engine = engine.clone();
        let target = target.clone();
        async move {
            let engine = engine
                .upgrade()
                .ok_or_else(|| JobError::msg("the scheduler has shut down"))?;
            let shared = engine.host().ok_or_else(|| {
                JobError::msg(
                    "the scheduler does not know its Xcore yet: obtain a handle once \
                     (`xcore.handle::<Scheduler>()`) after boot",
                )
            })?;
            let (plugin, action, payload) = &*target;
            let job = cx.call_context();
            let call = CallContext::host()
                .with_tenant(job.tenant().clone())
                .with_trace(*job.trace());
            let call = match job.deadline() {
                Some(deadline) => call.with_deadline(deadline),
                None => call,
            };
            shared
                .dispatch(plugin, action, payload.clone(), call)
                .await
                .map(drop)
                .map_err(JobError::from)
        }
    })
}
