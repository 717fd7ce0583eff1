//! The built-in services a config adds to an `Xcore`, each built from its own typed section
//! of `services` (the table is in the [`services`](super) docs).

use crate::{
    Service,
    config::{Config, ConfigError},
};

/// Adds the services `config` configures, except those already added by hand (same name).
pub(crate) fn builtin(
    config: &Config,
    services: &mut Vec<(Box<dyn Service>, &'static str)>,
) -> Result<(), ConfigError> {
    let has = |services: &[(Box<dyn Service>, &'static str)], name: &str| {
        services.iter().any(|(s, _)| s.name() == name)
    };
    if !config.services.databases.is_empty() && !has(services, "db") {
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        {
            let databases = config
                .services
                .databases
                .iter()
                .map(|(name, options)| (name.clone(), options.clone()));
            services.push((
                Box::new(crate::services::db::DatabaseService::new(databases)),
                "xcore::services::db::DatabaseService",
            ));
        }
        #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
        return Err(ConfigError::Invalid {
            origin: config.origin().clone(),
            line: None,
            key: "services.databases".into(),
            message: "databases are configured, but this build has neither the `sqlite` nor the \
                      `postgres` feature of xcore"
                .into(),
            hint: "enable one of them, or remove the section",
        });
    }
    #[cfg(feature = "scheduler")]
    if !has(services, "scheduler") {
        let scheduler =
            crate::services::scheduler::SchedulerService::new(config.services.scheduler.clone())
                .map_err(|e| ConfigError::Invalid {
                    origin: config.origin().clone(),
                    line: None,
                    key: "services.scheduler".into(),
                    message: e.to_string(),
                    hint: "fix the scheduler section",
                })?;
        services.push((
            Box::new(scheduler),
            "xcore::services::scheduler::SchedulerService",
        ));
    }
    if !has(services, "cache") {
        services.push((
            Box::new(crate::services::cache::CacheService::new(
                config.services.cache.clone(),
            )),
            "xcore::services::cache::CacheService",
        ));
    }
    // The task worker: in process by default, so that plugins declaring `worker` run with
    // no server; `backend: postgres` makes it durable.
    if !has(services, crate::services::worker::WorkerService::NAME) {
        let worker = crate::services::worker::WorkerService::from_config(&config.services.worker)
            .map_err(|e| ConfigError::Invalid {
            origin: config.origin().clone(),
            line: None,
            key: "services.worker".into(),
            message: e.to_string(),
            hint: "see `services.worker` in xcore.example.yaml",
        })?;
        services.push((Box::new(worker), "xcore::services::worker::WorkerService"));
    }
    if let Some(options) = &config.services.rate_limits
        && !has(services, "rate_limits")
    {
        let invalid = |message: String| ConfigError::Invalid {
            origin: config.origin().clone(),
            line: None,
            key: "services.rate_limits".into(),
            message,
            hint: "see `services.rate_limits` in xcore.example.yaml",
        };
        #[cfg(feature = "redis")]
        {
            let limits = crate::services::rate_limits::RateLimitsService::new(options.clone())
                .map_err(|e| invalid(e.to_string()))?;
            services.push((
                Box::new(limits),
                "xcore::services::rate_limits::RateLimitsService",
            ));
        }
        #[cfg(not(feature = "redis"))]
        {
            let _ = options;
            return Err(invalid(
                "cluster-wide rate limits are configured, but this build has not the `redis` \
                 feature of xcore"
                    .into(),
            ));
        }
    }
    Ok(())
}
