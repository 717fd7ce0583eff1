//! Jobs a plugin declares with `#[job(...)]` ([`DeclaredJob`]): checked and registered when
//! the plugin starts, under its own namespace (`<plugin>:default:<id>`), removed when it
//! stops; each firing calls the plugin's action as the host, with the payload `null`.

use std::sync::Arc;

use serde_json::Value;

use super::{
    DeclaredJob, JobOptions, SchedulerError, SchedulerService, Trigger,
    config_jobs::call_as_host,
    engine::Engine,
    entry::Spec,
    key::{Owner, check_id, job_key},
};
use crate::{PluginIdentity, TenantId, permissions::Resource, services::grant_mask};

/// The grant a plugin needs to declare jobs.
const ACTION: &str = "schedule";

/// Registers the jobs `plugin` declares. Fails, naming what to add to the manifest, if the
/// plugin did not declare the scheduler service or lacks `service:scheduler: schedule` (the
/// denial is audited), and, naming the job, if a job's id is invalid or taken twice, or its
/// trigger is invalid or never fires. Ids and triggers are all checked before any job is
/// registered; on a later failure (a job that never fires) the container stops the plugin
/// again, which removes the jobs already registered.
pub(crate) async fn register(
    engine: &Arc<Engine>,
    plugin: &PluginIdentity,
    jobs: &[DeclaredJob],
) -> Result<(), String> {
    if jobs.is_empty() {
        return Ok(());
    }
    check_access(engine, plugin, jobs)?;
    let owner = Owner::Plugin(plugin.clone(), None);
    let tenant = TenantId::default();
    let mut specs = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        if jobs[..i].iter().any(|other| other.id() == job.id()) {
            return Err(invalid(plugin, job, "another job has the same id".into()));
        }
        let trigger = trigger(job).map_err(|reason| invalid(plugin, job, reason))?;
        specs.push(Spec {
            key: job_key(&owner, &tenant, job.id()),
            id: job.id().to_owned(),
            owner: owner.clone(),
            tenant: tenant.clone(),
            target: Some(plugin.name().to_owned()),
            trigger,
            options: JobOptions::default(),
            func: call_as_host(
                Arc::downgrade(engine),
                plugin.name(),
                job.action(),
                Value::Null,
            ),
            shared: false,
        });
    }
    for spec in specs {
        let id = spec.id.clone();
        engine.add(spec).await.map_err(|e| match e {
            SchedulerError::NeverFires { trigger, .. } => format!(
                "the job `{id}` of plugin `{}` would never fire: {trigger} has no instant \
                 after now",
                plugin.name()
            ),
            other => format!(
                "the job `{id}` of plugin `{}` could not be registered: {other}",
                plugin.name()
            ),
        })?;
    }
    tracing::debug!(
        plugin = plugin.name(),
        jobs = jobs.len(),
        "registered the plugin's declared jobs"
    );
    Ok(())
}

/// Checks that the plugin declared the scheduler and holds the grant; the error says exactly
/// what its manifest lacks.
fn check_access(
    engine: &Engine,
    plugin: &PluginIdentity,
    jobs: &[DeclaredJob],
) -> Result<(), String> {
    let manifest = plugin.manifest();
    let declared = manifest
        .services()
        .iter()
        .any(|s| s == SchedulerService::NAME);
    let granted = match engine.host() {
        // Through `grant_mask`, as `ctx.handle::<Scheduler>()`, so that a refusal is audited.
        Some(shared) => grant_mask(
            plugin,
            shared.audit(),
            "service",
            SchedulerService::NAME,
            &[ACTION],
        )
        .is_ok(),
        None => {
            Resource::service(SchedulerService::NAME).allowed_by(manifest.permissions(), ACTION)
        }
    };
    if declared && granted {
        return Ok(());
    }
    let mut missing = Vec::new();
    if !declared {
        missing.push(format!("`services = [\"{}\"]`", SchedulerService::NAME));
    }
    if !granted {
        missing.push(format!(
            "`permissions = [\"service:{}: {ACTION}\"]`",
            SchedulerService::NAME
        ));
    }
    let ids = jobs
        .iter()
        .map(|j| format!("`{}`", j.id()))
        .collect::<Vec<_>>()
        .join(", ");
    Err(format!(
        "plugin `{}` declares jobs with `#[job]` ({ids}) but its manifest lacks {}; add {} to \
         its `#[plugin(...)]` (or its manifest)",
        plugin.name(),
        missing.join(" and "),
        if missing.len() == 1 { "it" } else { "them" },
    ))
}

/// The trigger of a declared job, and its id checked.
fn trigger(job: &DeclaredJob) -> Result<Trigger, String> {
    check_id(job.id()).map_err(|e| e.to_string())?;
    match (job.cron(), job.every(), job.timezone()) {
        (Some(cron), None, Some(zone)) => Trigger::cron_in(cron, zone).map_err(|e| e.to_string()),
        (Some(cron), None, None) => Trigger::cron(cron).map_err(|e| e.to_string()),
        (None, Some(every), None) => {
            let period = xcore_manifest::parse_duration(every)?;
            Trigger::every(period).map_err(|e| e.to_string())
        }
        (None, Some(_), Some(_)) => Err("`timezone` only applies to `cron`".into()),
        (None, None, _) => Err("it has no schedule; give one of `cron`, `every`".into()),
        (Some(_), Some(_), _) => {
            Err("it has two schedules; give only one of `cron`, `every`".into())
        }
    }
}

fn invalid(plugin: &PluginIdentity, job: &DeclaredJob, reason: String) -> String {
    format!(
        "the job `{}` of plugin `{}` (`#[job]` on the action `{}`): {reason}",
        job.id(),
        plugin.name(),
        job.action()
    )
}
