//! [`DeclaredJob`]: a job a plugin declares on its methods (`#[job(...)]`), a
//! [`Declaration`] the scheduler consumes.

use crate::plugin::Declaration;

/// A job declared with `#[job(...)]` on a method of an `#[actions]` block: on a schedule, the
/// scheduler calls the plugin's action of the same name, as the host, for the tenant
/// `default`.
///
/// It travels in the plugin's [`Declarations`](crate::plugin::Declarations)
/// (`#[actions]` puts the block's jobs there): read them with
/// `plugin.declarations().get::<DeclaredJob>()`. The plugin must declare
/// `services = ["scheduler"]` (the kernel checks it before the scheduler sees the plugin) and
/// hold `service:scheduler: schedule`; its jobs are registered when it starts and removed when
/// it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeclaredJob {
    id: &'static str,
    action: &'static str,
    cron: Option<&'static str>,
    every: Option<&'static str>,
    timezone: Option<&'static str>,
}

impl DeclaredJob {
    /// A job `id` calling `action`, with exactly one of `cron` (an expression) or `every` (a
    /// duration such as `30s`), and an optional IANA time zone for `cron`.
    pub const fn new(
        id: &'static str,
        action: &'static str,
        cron: Option<&'static str>,
        every: Option<&'static str>,
        timezone: Option<&'static str>,
    ) -> Self {
        Self {
            id,
            action,
            cron,
            every,
            timezone,
        }
    }

    /// The job's id (unique per plugin).
    pub fn id(&self) -> &'static str {
        self.id
    }

    /// The action it calls.
    pub fn action(&self) -> &'static str {
        self.action
    }

    /// Its cron expression, if any.
    pub fn cron(&self) -> Option<&'static str> {
        self.cron
    }

    /// Its interval (`30s`), if any.
    pub fn every(&self) -> Option<&'static str> {
        self.every
    }

    /// The time zone of its cron expression, if given.
    pub fn timezone(&self) -> Option<&'static str> {
        self.timezone
    }
}

impl Declaration for DeclaredJob {
    const SERVICE: &'static str = "scheduler";
    const WHAT: &'static str = "jobs with `#[job]`";

    fn label(&self) -> &str {
        self.id
    }
}
