//! [`SchedulerOptions`]: the `services.scheduler` section of the config file.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The scheduler's options: the `services.scheduler` section of the config file.
///
/// Durations are written as in manifests (`"5s"`, `"250ms"`, `"1m30s"`); unknown keys are
/// errors. Everything is checked when the service is built
/// ([`SchedulerService::new`](super::SchedulerService::new)): an unknown time zone, a bad cron
/// expression or a job with no trigger (or two) is an error naming the job.
///
/// ```yaml
/// services:
///   scheduler:
///     enabled: true
///     timezone: Europe/Paris            # for cron jobs that name no zone; default UTC
///     shutdown_timeout: 5s              # how long shutdown waits for running jobs
///     lock:                             # several instances: each firing runs on one of them
///       url: redis://127.0.0.1:6379/0
///       ttl: 60s
///     shared:                           # jobs shared through the lock's server (see the docs)
///       resync: 5s
///       max_per_owner: 100
///       max_payload: 65536
///     jobs:
///       - { id: nightly, plugin: reports, action: build, cron: "0 2 * * *" }
///       - { id: heartbeat, plugin: monitor, action: ping, every: 30s, payload: { deep: false } }
///       - { id: launch, plugin: shop, action: open, at: "2026-06-01T08:00:00Z", tenant: acme }
/// ```
///
/// ```
/// use xcore::services::scheduler::SchedulerOptions;
///
/// let options: SchedulerOptions = serde_json::from_value(serde_json::json!({
///     "timezone": "Europe/Paris",
///     "jobs": [{ "id": "nightly", "plugin": "reports", "action": "build", "cron": "0 2 * * *" }],
/// }))
/// .unwrap();
/// assert!(options.enabled);
/// assert_eq!(options.jobs[0].cron.as_deref(), Some("0 2 * * *"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerOptions {
    /// Whether jobs fire. Default `true`. When `false`, jobs can still be registered and
    /// listed, but none fires.
    pub enabled: bool,
    /// The IANA time zone of cron jobs that name none (`UTC`, `Europe/Paris`). Default `UTC`.
    pub timezone: String,
    /// A lock shared by several instances, so that each firing runs on exactly one of them.
    /// Default none: every instance runs every firing of its own jobs.
    pub lock: Option<LockOptions>,
    /// How long `shutdown` (and a stopping plugin) waits for running jobs before cancelling
    /// them. Default 5 s.
    #[serde(with = "crate::services::serde_duration")]
    pub shutdown_timeout: Duration,
    /// Jobs that call a plugin's action, as the host. Default none.
    pub jobs: Vec<ConfigJob>,
    /// Shared job definitions (stored in the lock's server, applied on every instance):
    /// their resync period and bounds. Only used with `lock`.
    pub shared: SharedJobsOptions,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            timezone: "UTC".to_owned(),
            lock: None,
            shutdown_timeout: Duration::from_secs(5),
            jobs: Vec::new(),
            shared: SharedJobsOptions::default(),
        }
    }
}

/// `services.scheduler.shared`: how shared job definitions
/// ([`Scheduler::share`](super::Scheduler::share)) are kept in step on every instance, and
/// their bounds.
///
/// | key | default | meaning |
/// |---|---|---|
/// | `resync` | `5s` | every instance reloads every definition this often (at least 100 ms), besides the change notifications: a missed notification or an instance that was down converges within it |
/// | `max_per_owner` | `100` | shared jobs one owner (a plugin, or the host) may store, all tenants together; one more is refused ([`SchedulerError::TooManySharedJobs`](super::SchedulerError)) |
/// | `max_payload` | `65536` | bytes of a job's JSON payload, serialized; more is refused ([`SchedulerError::PayloadTooLarge`](super::SchedulerError)) |
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SharedJobsOptions {
    /// How often every instance reloads every shared definition. Default 5 s.
    #[serde(with = "crate::services::serde_duration")]
    pub resync: Duration,
    /// How many shared jobs one owner may store. Default 100.
    pub max_per_owner: usize,
    /// The largest serialized payload of a shared job, in bytes. Default 64 KiB.
    pub max_payload: usize,
}

impl Default for SharedJobsOptions {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(5),
            max_per_owner: 100,
            max_payload: 64 * 1024,
        }
    }
}

/// `services.scheduler.lock`: where instances agree on who runs a firing.
///
/// On Redis (`redis://` or `rediss://`, feature `redis`) or Postgres (`postgres://`,
/// feature `postgres`). The same server stores the shared job definitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockOptions {
    /// The server: Redis (`redis://127.0.0.1:6379/0`, feature `redis`) or Postgres
    /// (`postgres://user@host/db`, feature `postgres`: two tables, see the scheduler docs).
    pub url: String,
    /// How long the claim of one firing lives (so that an instance that arrives late does
    /// not run it again), and the crash safety of the "running" mark of a job that does not
    /// allow overlap: keep it longer than the longest run. Default 60 s.
    #[serde(default = "default_ttl", with = "crate::services::serde_duration")]
    pub ttl: Duration,
    /// The prefix of the lock keys. Default `xcore:scheduler`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// How long one command (connect included) may take. Default 2 s.
    #[serde(
        default = "default_command_timeout",
        with = "crate::services::serde_duration"
    )]
    pub command_timeout: Duration,
}

impl LockOptions {
    /// A lock on the server at `url`, with the default TTL, prefix and timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ttl: default_ttl(),
            prefix: default_prefix(),
            command_timeout: default_command_timeout(),
        }
    }
}

fn default_ttl() -> Duration {
    Duration::from_secs(60)
}

fn default_prefix() -> String {
    "xcore:scheduler".to_owned()
}

fn default_command_timeout() -> Duration {
    Duration::from_secs(2)
}

/// One entry of `services.scheduler.jobs`: when it fires, the host calls
/// `plugin.action(payload)` for `tenant`.
///
/// Exactly one of `cron`, `every` and `at` must be given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigJob {
    /// The job's id: 1 to 128 letters, digits, `_`, `-` and `.`.
    pub id: String,
    /// The plugin called.
    pub plugin: String,
    /// The action called.
    pub action: String,
    /// The payload of the call. Default `{}`.
    #[serde(default = "empty_object")]
    pub payload: Value,
    /// A cron expression: 5 fields (`m h dom mon dow`), 6 (seconds first) or 7 (seconds first,
    /// year last).
    #[serde(default)]
    pub cron: Option<String>,
    /// A fixed interval (at least 1 s), aligned on the Unix epoch.
    #[serde(default, with = "crate::services::serde_duration::option")]
    pub every: Option<Duration>,
    /// One firing at this RFC 3339 instant (`2026-06-01T08:00:00Z`).
    #[serde(default)]
    pub at: Option<String>,
    /// The IANA time zone of `cron`. Default: the scheduler's `timezone`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// The tenant the call runs for. Default `default`.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The deadline of each call. Default: none (the plugin's own timeout still applies).
    #[serde(default, with = "crate::services::serde_duration::option")]
    pub timeout: Option<Duration>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_durations() {
        let options: SchedulerOptions = serde_json::from_value(json!({
            "shutdown_timeout": "250ms",
            "lock": { "url": "redis://127.0.0.1/0", "ttl": "30s" },
            "jobs": [{ "id": "a", "plugin": "p", "action": "x", "every": "5s" }],
        }))
        .unwrap();
        assert_eq!(options.timezone, "UTC");
        assert_eq!(options.shutdown_timeout, Duration::from_millis(250));
        let lock = options.lock.unwrap();
        assert_eq!(lock.ttl, Duration::from_secs(30));
        assert_eq!(lock.prefix, "xcore:scheduler");
        assert_eq!(options.jobs[0].every, Some(Duration::from_secs(5)));
        assert_eq!(options.jobs[0].payload, json!({}));
        assert_eq!(options.shared, SharedJobsOptions::default());
        let options: SchedulerOptions = serde_json::from_value(json!({
            "shared": { "resync": "1s", "max_per_owner": 3 },
        }))
        .unwrap();
        assert_eq!(options.shared.resync, Duration::from_secs(1));
        assert_eq!(options.shared.max_per_owner, 3);
        assert_eq!(options.shared.max_payload, 64 * 1024);
        assert!(
            serde_json::from_value::<SchedulerOptions>(json!({ "shared": { "resynk": "1s" } }))
                .is_err()
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err =
            serde_json::from_value::<SchedulerOptions>(json!({ "timezon": "UTC" })).unwrap_err();
        assert!(err.to_string().contains("timezon"), "{err}");
        let err = serde_json::from_value::<SchedulerOptions>(json!({
            "jobs": [{ "id": "a", "plugin": "p", "action": "x", "crom": "* * * * *" }],
        }))
        .unwrap_err();
        assert!(err.to_string().contains("crom"), "{err}");
    }
}
