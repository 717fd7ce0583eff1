//! The testkit's own helpers: schedule waits, the in-process HTTP client, the event recorder.

use std::time::Duration;

use serde_json::json;
use xcore::services::scheduler::Scheduler;
use xcore::{
    CallContext,
    services::scheduler::{JobContext, JobError, SchedulerOptions, SchedulerService, Trigger},
};
use xcore_testkit::{EventRecorder, FakePlugin, TestApp, wait_for_next_run, wait_for_runs};

#[tokio::test]
async fn waiting_for_a_jobs_runs() {
    let app = TestApp::builder()
        .service(SchedulerService::new(SchedulerOptions::default()).unwrap())
        .boot()
        .await
        .unwrap();
    let scheduler = app.xcore().handle::<Scheduler>().unwrap();
    scheduler
        .add(
            "tick",
            Trigger::every(Duration::from_secs(1)).unwrap(),
            |_: JobContext| async { Ok::<_, JobError>(()) },
        )
        .await
        .unwrap();
    let first = wait_for_next_run(&scheduler, "tick", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(first.runs >= 1);
    let later = wait_for_runs(&scheduler, "tick", first.runs + 1, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(later.runs > first.runs);
    assert!(
        wait_for_runs(&scheduler, "missing", 1, Duration::from_millis(10))
            .await
            .is_none()
    );
    app.shutdown().await;
}

#[tokio::test]
async fn the_client_and_the_recorder() {
    let xcore = TestApp::builder()
        .fake_plugin(FakePlugin::new("p"))
        .build()
        .unwrap();
    let recorder = EventRecorder::attach(&xcore, "**").unwrap();
    xcore.boot().await.unwrap();
    assert_eq!(
        recorder.names()[..3],
        ["plugin.p.loaded", "plugin.p.started", "xcore.booted"]
    );
    xcore
        .events()
        .emit_background(&CallContext::host(), "late.news", json!(1))
        .unwrap();
    assert!(
        recorder
            .wait_for("late.news", Duration::from_secs(5))
            .await
            .is_some()
    );
    assert!(
        recorder
            .wait_for("never", Duration::from_millis(20))
            .await
            .is_none()
    );
    xcore.shutdown().await;
}
