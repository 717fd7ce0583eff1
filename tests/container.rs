//! The container: plan, waves, failure isolation, policy, rollback, order, shutdown.

use std::time::Duration;

use xcore::{
    NodeId, NodeState, OnFailure,
    container::{Phase, StopOutcome},
};
use xcore_testkit::{Behavior, FakePlugin, FakeService, HookLog, TestApp};

fn names(wave: &[&NodeId]) -> Vec<String> {
    wave.iter().map(|n| n.to_string()).collect()
}

#[tokio::test]
async fn scenario_waves_failures_and_skips() {
    let log = HookLog::new();
    let builder = TestApp::builder()
        .service(FakeService::new("db").log(&log))
        .service(FakeService::new("cache").depends_on(["db"]).log(&log))
        .fake_plugin(FakePlugin::new("a").services(["cache"]).log(&log))
        .fake_plugin(FakePlugin::new("b").requires(["a@^1"]).log(&log))
        .fake_plugin(FakePlugin::new("c").log(&log))
        .fake_plugin(FakePlugin::new("d").requires(["ghost"]).log(&log))
        .fake_plugin(FakePlugin::new("e").requires(["f"]).log(&log))
        .fake_plugin(FakePlugin::new("f").requires(["e"]).log(&log))
        .fake_plugin(
            FakePlugin::new("g")
                .on_load(Behavior::Fail("disk full".into()))
                .log(&log),
        )
        .fake_plugin(FakePlugin::new("h").requires(["g"]).log(&log));
    let xcore = builder.build().unwrap();

    let plan = xcore.plan();
    let waves: Vec<Vec<String>> = plan.waves().map(|w| names(&w)).collect();
    assert_eq!(
        waves,
        [
            vec!["service `db`", "plugin `c`", "plugin `g`"],
            vec!["service `cache`", "plugin `h`"],
            vec!["plugin `a`"],
            vec!["plugin `b`"],
        ]
    );
    let printed = plan.to_string();
    assert!(
        printed.contains("wave 0: service `db`, plugin `c`, plugin `g`"),
        "{printed}"
    );
    assert!(
        printed.contains("plugin `d`: unknown dependency `ghost`"),
        "{printed}"
    );
    assert!(
        printed.contains("plugin `e`: dependency cycle: e -> f -> e"),
        "{printed}"
    );

    let report = xcore.boot().await.unwrap();
    let state = |name: &str| report.plugin(name).unwrap().state();
    let reason = |name: &str| {
        report
            .plugin(name)
            .unwrap()
            .reason()
            .unwrap_or_default()
            .to_owned()
    };
    for started in ["a", "b", "c"] {
        assert_eq!(state(started), NodeState::Started, "{started}: {report}");
    }
    assert_eq!(state("d"), NodeState::Failed);
    assert!(
        reason("d").contains("unknown dependency `ghost`"),
        "{}",
        reason("d")
    );
    for cyclic in ["e", "f"] {
        assert_eq!(state(cyclic), NodeState::Failed);
        assert_eq!(reason(cyclic), "dependency cycle: e -> f -> e");
        assert_eq!(report.plugin(cyclic).unwrap().phase(), Some(Phase::Plan));
    }
    assert_eq!(state("g"), NodeState::Failed);
    assert_eq!(reason("g"), "disk full");
    assert_eq!(report.plugin("g").unwrap().phase(), Some(Phase::Load));
    assert_eq!(state("h"), NodeState::Skipped);
    assert_eq!(reason("h"), "dependency `g` failed");
    assert_eq!(report.service("cache").unwrap().state(), NodeState::Started);

    // Nodes that failed in the graph were never loaded; the skipped one neither.
    for never in ["d: on_load", "e: on_load", "f: on_load", "h: on_load"] {
        assert!(
            log.position(never).is_none(),
            "{never} ran: {:?}",
            log.entries()
        );
    }
    assert_eq!(xcore.running_plugins(), ["a", "b", "c"]);

    let stopped = xcore.shutdown().await;
    assert!(stopped.is_clean());
    // b stops before a, a before cache, cache before db.
    let pos = |e: &str| {
        log.position(e)
            .unwrap_or_else(|| panic!("no {e}: {:?}", log.entries()))
    };
    assert!(pos("b: on_stop") < pos("a: on_stop"));
    // Services withdraw what a plugin holds before its on_stop.
    assert!(pos("db: a stopping") < pos("a: on_stop"));
    assert!(pos("cache: b stopping") < pos("b: on_stop"));
    assert!(pos("a: on_stop") < pos("cache: shutdown"));
    assert!(pos("cache: shutdown") < pos("db: shutdown"));
    assert!(
        log.position("g: on_stop").is_none(),
        "a failed plugin is not stopped"
    );
}

#[tokio::test]
async fn version_mismatch_affects_only_the_dependent() {
    let app = TestApp::builder()
        .fake_plugin(FakePlugin::versioned("audit", "2.0.0"))
        .fake_plugin(FakePlugin::new("users").requires(["audit@^1.2"]))
        .fake_plugin(FakePlugin::new("billing").requires(["audit@>=2"]))
        .boot()
        .await
        .unwrap();
    let users = app.report().plugin("users").unwrap();
    assert_eq!(users.state(), NodeState::Failed);
    assert_eq!(
        users.reason(),
        Some("requires `audit@^1.2`, but `audit` is version 2.0.0")
    );
    assert_eq!(
        app.report().plugin("billing").unwrap().state(),
        NodeState::Started
    );
    assert_eq!(
        app.report().plugin("audit").unwrap().state(),
        NodeState::Started
    );
}

#[tokio::test]
async fn a_failing_service_aborts_the_boot_and_rolls_back() {
    let log = HookLog::new();
    let xcore = TestApp::builder()
        .service(FakeService::new("db").log(&log))
        .service(
            FakeService::new("broker")
                .on_start(Behavior::Fail("connection refused".into()))
                .log(&log),
        )
        .fake_plugin(FakePlugin::new("early").log(&log))
        .fake_plugin(FakePlugin::new("late").services(["db"]).log(&log))
        .build()
        .unwrap();
    let err = xcore.boot().await.unwrap_err();
    let xcore::BootError::Aborted(abort) = &err else {
        panic!("expected an aborted boot, got {err}");
    };
    assert_eq!(abort.node(), &NodeId::service("broker"));
    assert!(err.to_string().contains("connection refused"), "{err}");
    // Wave 0 (broker, db, early) started before broker failed its start; all rolled back.
    let report = abort.report();
    assert_eq!(
        report.plugin("early").unwrap().state(),
        NodeState::RolledBack
    );
    assert_eq!(report.service("db").unwrap().state(), NodeState::RolledBack);
    assert_eq!(report.service("broker").unwrap().state(), NodeState::Failed);
    assert_eq!(report.plugin("late").unwrap().state(), NodeState::Skipped);
    assert!(
        log.position("early: on_stop").is_some(),
        "{:?}",
        log.entries()
    );
    assert!(log.position("db: shutdown").is_some());
    // broker's init succeeded: it releases its resources too.
    assert!(log.position("broker: shutdown").is_some());
    assert!(log.position("late: on_start").is_none());
    let stop = abort.rollback();
    assert_eq!(
        stop.outcome(&NodeId::plugin("early")),
        Some(&StopOutcome::Stopped)
    );
    // Calls are refused, and the Xcore cannot boot again.
    let call = xcore
        .call("early", "ping", serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(call.code(), xcore::ErrorCode::NotReady);
    assert!(matches!(
        xcore.boot().await,
        Err(xcore::BootError::NotBootable(_))
    ));
}

#[tokio::test]
async fn the_failure_policy_is_configurable() {
    // A failed service under `Continue`: its dependents are skipped, the rest runs.
    let app = TestApp::builder()
        .service(FakeService::new("db").on_init(Behavior::Fail("down".into())))
        .fake_plugin(FakePlugin::new("users").services(["db"]))
        .fake_plugin(FakePlugin::new("other"))
        .configure(|b| b.on_service_failure(OnFailure::Continue))
        .boot()
        .await
        .unwrap();
    assert_eq!(
        app.report().plugin("users").unwrap().reason(),
        Some("dependency `db` failed")
    );
    assert_eq!(
        app.report().plugin("other").unwrap().state(),
        NodeState::Started
    );

    // A failed plugin under `Abort`.
    let err = TestApp::builder()
        .fake_plugin(FakePlugin::new("bad").on_start(Behavior::Panic("boom".into())))
        .configure(|b| b.on_plugin_failure(OnFailure::Abort))
        .boot()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("panicked: boom"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_wave_loads_concurrently() {
    let mut builder = TestApp::builder();
    for i in 0..10 {
        builder = builder.fake_plugin(
            FakePlugin::new(&format!("p{i}")).on_load(Behavior::Sleep(Duration::from_millis(200))),
        );
    }
    let app = builder.boot().await.unwrap();
    assert_eq!(app.report().waves().len(), 1);
    // Ten 200 ms loads one after the other would take 2 s of (paused, exact) tokio time.
    let load = app.report().load_phase();
    assert!(
        load >= Duration::from_millis(200) && load < Duration::from_millis(400),
        "{load:?}"
    );
}

#[tokio::test]
async fn every_load_runs_before_any_start_and_stops_reverse_the_waves() {
    let log = HookLog::new();
    let app = TestApp::builder()
        .fake_plugin(FakePlugin::new("base").log(&log))
        .fake_plugin(FakePlugin::new("mid").requires(["base"]).log(&log))
        .fake_plugin(FakePlugin::new("top").requires(["mid"]).log(&log))
        .fake_plugin(FakePlugin::new("solo").log(&log))
        .boot()
        .await
        .unwrap();
    let entries = log.entries();
    let last_load = entries
        .iter()
        .rposition(|e| e.ends_with("on_load"))
        .unwrap();
    let first_start = entries
        .iter()
        .position(|e| e.ends_with("on_start"))
        .unwrap();
    assert!(last_load < first_start, "{entries:?}");
    assert_eq!(
        log.ending_with("on_start")[..3],
        ["base: on_start", "solo: on_start", "mid: on_start"]
    );
    app.shutdown().await;
    let stops = log.ending_with("on_stop");
    assert_eq!(stops[0], "top: on_stop");
    assert_eq!(stops[1], "mid: on_stop");
    assert!(
        stops[2..].contains(&"base: on_stop".to_owned())
            && stops[2..].contains(&"solo: on_stop".to_owned())
    );
}

#[tokio::test(start_paused = true)]
async fn a_hanging_hook_is_reported_and_shutdown_completes() {
    let log = HookLog::new();
    let app = TestApp::builder()
        .service(FakeService::new("db").on_shutdown(Behavior::Hang).log(&log))
        .fake_plugin(
            FakePlugin::new("stuck")
                .services(["db"])
                .on_stop(Behavior::Hang)
                .log(&log),
        )
        .fake_plugin(FakePlugin::new("fine").log(&log))
        .fake_plugin(FakePlugin::new("slow_load").on_load(Behavior::Hang))
        .configure(|b| {
            b.stop_timeout(Duration::from_secs(1))
                .load_timeout(Duration::from_secs(3))
        })
        .boot()
        .await
        .unwrap();
    let slow = app.report().plugin("slow_load").unwrap();
    assert_eq!(slow.state(), NodeState::Failed);
    assert_eq!(slow.reason(), Some("timed out after 3s"));
    let report = app.shutdown().await;
    assert!(!report.is_clean());
    assert_eq!(
        report.outcome(&NodeId::plugin("stuck")),
        Some(&StopOutcome::TimedOut)
    );
    assert_eq!(
        report.outcome(&NodeId::service("db")),
        Some(&StopOutcome::TimedOut)
    );
    assert_eq!(
        report.outcome(&NodeId::plugin("fine")),
        Some(&StopOutcome::Stopped)
    );
    // The service still got its turn after the hanging plugin.
    assert!(log.position("db: shutdown").unwrap() > log.position("stuck: on_stop").unwrap());
}

#[tokio::test]
async fn shutdown_twice_and_before_boot() {
    let app = TestApp::builder()
        .fake_plugin(FakePlugin::new("a"))
        .boot()
        .await
        .unwrap();
    let xcore = app.xcore().clone();
    assert_eq!(xcore.shutdown().await.nodes().count(), 1);
    assert_eq!(xcore.shutdown().await.nodes().count(), 0);

    let never = TestApp::builder()
        .fake_plugin(FakePlugin::new("a"))
        .build()
        .unwrap();
    assert!(never.shutdown().await.is_clean());
    assert!(matches!(
        never.boot().await,
        Err(xcore::BootError::NotBootable(_))
    ));
}

#[test]
fn duplicate_names_are_build_errors_naming_both() {
    let err = TestApp::builder()
        .fake_plugin(FakePlugin::new("twin"))
        .fake_plugin(FakePlugin::new("twin"))
        .build()
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("two plugins are named `twin`"), "{msg}");
    assert!(msg.matches("FakePlugin").count() == 2, "{msg}");

    let err = TestApp::builder()
        .service(FakeService::new("db"))
        .service(FakeService::new("db"))
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("two services are named `db`"),
        "{err}"
    );

    let err = TestApp::builder()
        .service(FakeService::new("Bad Name"))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("invalid name `Bad Name`"), "{err}");

    let err = TestApp::builder().plugins(["nope"]).build().unwrap_err();
    assert!(
        err.to_string().contains("`only_registered` names `nope`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_service_can_refuse_a_started_plugin() {
    let log = HookLog::new();
    let app = TestApp::builder()
        .service(
            FakeService::new("sched")
                .refuse_plugins(["greedy"])
                .log(&log),
        )
        .fake_plugin(FakePlugin::new("greedy").services(["sched"]).log(&log))
        .fake_plugin(FakePlugin::new("modest").services(["sched"]).log(&log))
        .boot()
        .await
        .unwrap();
    let greedy = app.report().plugin("greedy").unwrap();
    assert_eq!(greedy.state(), NodeState::Failed);
    assert_eq!(greedy.phase(), Some(Phase::Start));
    assert_eq!(
        greedy.reason(),
        Some("service `sched`: refuses plugin `greedy`")
    );
    // It was stopped again: the services withdrew it, then its own on_stop ran.
    let pos = |e: &str| {
        log.position(e)
            .unwrap_or_else(|| panic!("no {e}: {:?}", log.entries()))
    };
    assert!(pos("greedy: on_start") < pos("sched: greedy started"));
    assert!(pos("sched: greedy stopping") < pos("greedy: on_stop"));
    assert_eq!(app.xcore().running_plugins(), ["modest"]);
    let err = app
        .call("greedy", "ping", serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), xcore::ErrorCode::Unavailable);
    app.shutdown().await;
    assert_eq!(
        log.ending_with("greedy: on_stop").len(),
        1,
        "stopped once, not twice"
    );
}
