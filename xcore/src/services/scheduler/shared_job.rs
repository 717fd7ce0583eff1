//! [`SharedJob`]: a job whose definition is data, stored in the lock's server and applied on
//! every instance ([`Scheduler::share`](super::Scheduler::share)).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{JobOptions, SchedulerError, SharedJobsOptions, Trigger, key::Owner};

/// A shared job's definition: when it fires (exactly one of `cron`, `every`, `at`), how it
/// runs (overlap, retries, timeout), and the plugin action it calls as the host, with its
/// JSON payload, for the tenant of the handle that shares it.
///
/// Built with [`cron`](Self::cron), [`every`](Self::every) or [`at`](Self::at), then the
/// builder methods; it is also (de)serializable, as it is stored (unknown keys are errors).
///
/// ```
/// use std::time::Duration;
/// use xcore::services::scheduler::SharedJob;
///
/// let job = SharedJob::every(Duration::from_secs(30), "ping")
///     .plugin("monitor")
///     .payload(serde_json::json!({ "deep": false }))
///     .retries(2, Duration::from_millis(500))
///     .timeout(Duration::from_secs(5));
/// assert_eq!(job.every, Some(Duration::from_secs(30)));
/// assert_eq!(job.plugin.as_deref(), Some("monitor"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SharedJob {
    /// The plugin whose action is called. Required for the host's jobs; a plugin's job calls
    /// its own plugin (`None`, or the plugin's own name).
    #[serde(default)]
    pub plugin: Option<String>,
    /// The action called.
    pub action: String,
    /// The payload of the call. Default `{}`.
    #[serde(default = "empty_object")]
    pub payload: Value,
    /// A cron expression (5, 6 or 7 fields, or `@daily` and the like).
    #[serde(default)]
    pub cron: Option<String>,
    /// The IANA time zone of `cron`. Default: the scheduler's.
    #[serde(default)]
    pub timezone: Option<String>,
    /// A fixed interval (at least 1 s), aligned on the Unix epoch.
    #[serde(default, with = "crate::services::serde_duration::option")]
    pub every: Option<Duration>,
    /// One firing at this RFC 3339 instant.
    #[serde(default)]
    pub at: Option<String>,
    /// Whether a firing may start while the previous run still runs. Default `false`.
    #[serde(default)]
    pub allow_overlap: bool,
    /// Retries of a failed attempt. Default 0.
    #[serde(default)]
    pub retries: u32,
    /// The wait before the first retry (doubled before each next one). Default 1 s.
    #[serde(default, with = "crate::services::serde_duration::option")]
    pub backoff: Option<Duration>,
    /// The deadline of each attempt. Default none.
    #[serde(default, with = "crate::services::serde_duration::option")]
    pub timeout: Option<Duration>,
}

/// The longest `cron`, `timezone` or `at` of a shared job.
const MAX_FIELD_LEN: usize = 256;

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

impl SharedJob {
    fn new(action: &str) -> Self {
        Self {
            plugin: None,
            action: action.to_owned(),
            payload: empty_object(),
            cron: None,
            timezone: None,
            every: None,
            at: None,
            allow_overlap: false,
            retries: 0,
            backoff: None,
            timeout: None,
        }
    }

    /// A job calling `action` at the instants of the cron `expression`.
    pub fn cron(expression: &str, action: &str) -> Self {
        Self {
            cron: Some(expression.to_owned()),
            ..Self::new(action)
        }
    }

    /// A job calling `action` every `period`.
    pub fn every(period: Duration, action: &str) -> Self {
        Self {
            every: Some(period),
            ..Self::new(action)
        }
    }

    /// A job calling `action` once, at `instant`.
    pub fn at(instant: DateTime<Utc>, action: &str) -> Self {
        Self {
            at: Some(instant.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            ..Self::new(action)
        }
    }

    /// The plugin called (required for the host's jobs).
    #[must_use]
    pub fn plugin(mut self, plugin: &str) -> Self {
        self.plugin = Some(plugin.to_owned());
        self
    }

    /// The payload of the call.
    #[must_use]
    pub fn payload(mut self, payload: Value) -> Self {
        self.payload = payload;
        self
    }

    /// The time zone of a cron job.
    #[must_use]
    pub fn timezone(mut self, zone: &str) -> Self {
        self.timezone = Some(zone.to_owned());
        self
    }

    /// Whether runs may overlap.
    #[must_use]
    pub fn allow_overlap(mut self, allow: bool) -> Self {
        self.allow_overlap = allow;
        self
    }

    /// Retries of a failed attempt, the first after `backoff`.
    #[must_use]
    pub fn retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.retries = retries;
        self.backoff = Some(backoff);
        self
    }

    /// The deadline of each attempt.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The trigger, checked.
    pub(crate) fn trigger(&self) -> Result<Trigger, SchedulerError> {
        let trigger = match (&self.cron, self.every, &self.at) {
            (Some(cron), None, None) => match &self.timezone {
                Some(zone) => Trigger::cron_in(cron, zone)?,
                None => Trigger::cron(cron)?,
            },
            (None, Some(every), None) => Trigger::every(every)?,
            (None, None, Some(instant)) => Trigger::at_rfc3339(instant)?,
            (None, None, None) => return Err(self.invalid("it has no trigger")),
            _ => return Err(self.invalid("it has several triggers")),
        };
        if self.timezone.is_some() && self.cron.is_none() {
            return Err(self.invalid("`timezone` only applies to `cron`"));
        }
        Ok(trigger)
    }

    fn invalid(&self, what: &str) -> SchedulerError {
        SchedulerError::InvalidSharedJob {
            id: String::new(),
            reason: format!("{what}; give exactly one of `cron`, `every`, `at`"),
        }
    }

    /// The run options.
    pub(crate) fn options(&self) -> JobOptions {
        let mut options = JobOptions::new().allow_overlap(self.allow_overlap);
        if self.retries > 0 {
            options = options.retries(self.retries, self.backoff.unwrap_or(Duration::from_secs(1)));
        }
        if let Some(limit) = self.timeout {
            options = options.timeout(limit);
        }
        options
    }

    /// Checks the definition for job `id` of `owner` against `limits`: its trigger (and that
    /// it has an instant left), the plugin called, the action, the payload's size. Returns
    /// the trigger, the plugin called, and the stored form.
    pub(crate) fn check(
        &self,
        id: &str,
        owner: &Owner,
        limits: &SharedJobsOptions,
    ) -> Result<(Trigger, String), SchedulerError> {
        let named = |e: SchedulerError| match e {
            SchedulerError::InvalidSharedJob { reason, .. } => SchedulerError::InvalidSharedJob {
                id: id.to_owned(),
                reason,
            },
            e => e,
        };
        let invalid = |reason: String| SchedulerError::InvalidSharedJob {
            id: id.to_owned(),
            reason,
        };
        // Bounded before parsing: the stored record stays small.
        let long =
            |field: &Option<String>, max: usize| field.as_ref().is_some_and(|v| v.len() > max);
        if long(&self.cron, MAX_FIELD_LEN)
            || long(&self.timezone, MAX_FIELD_LEN)
            || long(&self.at, MAX_FIELD_LEN)
        {
            return Err(invalid(format!(
                "`cron`, `timezone` and `at` are at most {MAX_FIELD_LEN} characters"
            )));
        }
        let trigger = self.trigger().map_err(named)?;
        if trigger.next_after(Utc::now()).is_none() {
            return Err(SchedulerError::NeverFires {
                id: id.to_owned(),
                trigger: trigger.to_string(),
            });
        }
        let target = match (owner.plugin(), &self.plugin) {
            (None, None) => {
                return Err(invalid(
                    "a job the host shares names the plugin it calls (`plugin`)".into(),
                ));
            }
            (None, Some(plugin)) => plugin.clone(),
            (Some(own), None) => own.to_owned(),
            (Some(own), Some(plugin)) if own == plugin => own.to_owned(),
            (Some(own), Some(plugin)) => {
                return Err(invalid(format!(
                    "plugin `{own}` can only share jobs calling its own actions, not `{plugin}`'s"
                )));
            }
        };
        xcore_manifest::validate_name(&target).map_err(|e| invalid(format!("`plugin`: {e}")))?;
        if self.action.is_empty() || self.action.len() > 128 {
            return Err(invalid("`action` must be 1 to 128 characters".into()));
        }
        let size = serde_json::to_vec(&self.payload).map_or(usize::MAX, |b| b.len());
        if size > limits.max_payload {
            return Err(SchedulerError::PayloadTooLarge {
                id: id.to_owned(),
                size,
                limit: limits.max_payload,
            });
        }
        Ok((trigger, target))
    }
}

/// A shared job as stored: who shared it, for which tenant, under which id, its definition
/// and a revision that changes with every write (so instances see a changed definition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub(crate) owner: String,
    pub(crate) tenant: String,
    pub(crate) id: String,
    pub(crate) job: SharedJob,
    pub(crate) revision: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::scheduler::TriggerError;

    #[test]
    fn definitions_are_checked() {
        let limits = SharedJobsOptions {
            max_payload: 16,
            ..SharedJobsOptions::default()
        };
        let host = Owner::Host;
        let ok = SharedJob::every(Duration::from_secs(1), "tick").plugin("target");
        assert_eq!(ok.check("a", &host, &limits).unwrap().1, "target");
        // A bad cron expression: the trigger's typed error.
        let bad = SharedJob::cron("61 * * * *", "tick").plugin("target");
        assert!(matches!(
            bad.check("a", &host, &limits),
            Err(SchedulerError::Trigger(TriggerError::InvalidCron { .. }))
        ));
        // The host names the plugin.
        let err = SharedJob::every(Duration::from_secs(1), "tick")
            .check("a", &host, &limits)
            .unwrap_err();
        assert!(matches!(err, SchedulerError::InvalidSharedJob { ref id, .. } if id == "a"));
        // Payload at the bound, and one byte over.
        let at_bound = ok.clone().payload(serde_json::json!("x".repeat(14)));
        assert!(at_bound.check("a", &host, &limits).is_ok());
        let over = ok.clone().payload(serde_json::json!("x".repeat(15)));
        assert!(matches!(
            over.check("a", &host, &limits),
            Err(SchedulerError::PayloadTooLarge {
                size: 17,
                limit: 16,
                ..
            })
        ));
        // A one-shot in the past never fires.
        let past = SharedJob::at(Utc::now() - chrono::TimeDelta::seconds(5), "tick").plugin("t");
        assert!(matches!(
            past.check("a", &host, &limits),
            Err(SchedulerError::NeverFires { .. })
        ));
        // Fields are bounded.
        let long = SharedJob::cron(&"* ".repeat(200), "tick").plugin("t");
        assert!(matches!(
            long.check("a", &host, &limits),
            Err(SchedulerError::InvalidSharedJob { .. })
        ));
        // Two triggers.
        let mut two = ok.clone();
        two.cron = Some("* * * * *".into());
        assert!(matches!(
            two.check("a", &host, &limits),
            Err(SchedulerError::InvalidSharedJob { .. })
        ));
        // Stored form round-trips; unknown keys are refused.
        let text = serde_json::to_string(&ok).unwrap();
        assert_eq!(serde_json::from_str::<SharedJob>(&text).unwrap(), ok);
        assert!(serde_json::from_str::<SharedJob>(r#"{"action":"x","crom":"*"}"#).is_err());
    }
}
