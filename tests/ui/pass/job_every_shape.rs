//! Every `#[job]` key and shape, with every warning denied: the expansion must not warn.
#![deny(warnings, unused, missing_docs, unreachable_pub, rust_2018_idioms)]

use xcore::prelude::*;

/// The plugin.
#[derive(Default)]
#[plugin(
    name = "reports",
    services = ["scheduler"],
    permissions = ["service:scheduler: schedule"]
)]
pub struct Reports;

#[async_trait]
impl Plugin for Reports {}

#[actions]
impl Reports {
    #[job(cron = "0 3 * * *", timezone = "Europe/Paris")]
    async fn nightly(&self) -> Result<(), CallError> {
        Ok(())
    }

    #[job(every = "30s", id = "heartbeat")]
    #[job(cron = "@hourly", id = "hourly")]
    fn beat(&self, cx: &CallContext) -> Result<String, CallError> {
        Ok(cx.tenant().to_string())
    }

    #[action(name = "weekly.report")]
    #[job(cron = "0 0 8 * * MON 2030", id = "weekly")]
    async fn weekly(&self) -> Result<u32, CallError> {
        Ok(1)
    }

    #[action]
    async fn count(&self, n: u32) -> Result<u32, CallError> {
        Ok(n)
    }
}

fn main() {
    let declarations = Reports.declarations();
    let jobs = declarations.get::<xcore::services::scheduler::DeclaredJob>();
    let ids: Vec<_> = jobs.iter().map(|j| (j.id(), j.action())).collect();
    assert_eq!(
        ids,
        [
            ("nightly", "nightly"),
            ("heartbeat", "beat"),
            ("hourly", "beat"),
            ("weekly", "weekly.report"),
        ]
    );
    assert_eq!(jobs[0].timezone(), Some("Europe/Paris"));
    assert_eq!(jobs[1].every(), Some("30s"));
    assert_eq!(jobs[3].cron(), Some("0 0 8 * * MON 2030"));
    assert_eq!(
        Reports.action_names(),
        ["nightly", "beat", "weekly.report", "count"]
    );
}
