//! The event bus: priorities, once, isolation, dispatch, grants, kernel events.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};
use xcore::{
    Actions, CallContext, CallError, ErrorCode, Manifest, Plugin, PluginContext, PluginError,
    Xcore, async_trait,
    events::{Dispatch, Event, EventError, Flow, Outcome, SubscribeOptions},
};
use xcore_testkit::{FakePlugin, TestApp};

type Seen = Arc<Mutex<Vec<String>>>;

fn recorder(
    seen: &Seen,
    tag: &str,
    flow: Flow,
) -> impl Fn(Event) -> futures_ready::Ready + Send + Sync + 'static {
    let (seen, tag) = (seen.clone(), tag.to_owned());
    move |event: Event| {
        seen.lock().unwrap().push(format!("{tag}:{}", event.name()));
        futures_ready::Ready(Some(Ok(flow)))
    }
}

/// A tiny ready future, so handlers can be plain closures.
mod futures_ready {
    use std::{
        future::Future,
        pin::Pin,
        task::{Context, Poll},
    };

    pub(crate) struct Ready(pub(crate) Option<Result<xcore::events::Flow, String>>);

    impl Future for Ready {
        type Output = Result<xcore::events::Flow, String>;

        fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
            Poll::Ready(self.0.take().expect("polled after completion"))
        }
    }
}

fn bare() -> Xcore {
    Xcore::builder().without_registered().build().unwrap()
}

#[tokio::test]
async fn higher_priority_runs_first_and_stop_stops_the_rest() {
    let xcore = bare();
    let events = xcore.events();
    let seen: Seen = Arc::default();
    for (tag, priority) in [("p10", 10), ("p100", 100), ("p50", 50), ("p50b", 50)] {
        events
            .subscribe_with(
                "order.*",
                SubscribeOptions::new().priority(priority),
                recorder(&seen, tag, Flow::Continue),
            )
            .unwrap();
    }
    let report = events
        .emit(&CallContext::host(), "order.paid", json!({}))
        .await
        .unwrap();
    assert_eq!(report.handled(), 4);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "p100:order.paid",
            "p50:order.paid",
            "p50b:order.paid",
            "p10:order.paid"
        ]
    );

    seen.lock().unwrap().clear();
    events
        .subscribe_with(
            "order.paid",
            SubscribeOptions::new().priority(75),
            recorder(&seen, "stopper", Flow::Stop),
        )
        .unwrap();
    let report = events
        .emit(&CallContext::host(), "order.paid", json!({}))
        .await
        .unwrap();
    assert!(report.stopped());
    assert_eq!(
        *seen.lock().unwrap(),
        ["p100:order.paid", "stopper:order.paid"]
    );

    // Concurrent dispatch ignores Stop and runs everyone.
    seen.lock().unwrap().clear();
    let report = events
        .emit_with(
            &CallContext::host(),
            "order.paid",
            json!({}),
            Dispatch::Concurrent,
        )
        .await
        .unwrap();
    assert_eq!(report.handled(), 5);
    assert!(!report.stopped());
}

#[tokio::test]
async fn patterns_use_the_grant_grammar() {
    let xcore = bare();
    let events = xcore.events();
    let seen: Seen = Arc::default();
    events
        .subscribe("user.*", recorder(&seen, "one", Flow::Continue))
        .unwrap();
    events
        .subscribe("user.**", recorder(&seen, "deep", Flow::Continue))
        .unwrap();
    events
        .subscribe("*.created", recorder(&seen, "created", Flow::Continue))
        .unwrap();
    for name in ["user.created", "user.created.v2", "product.created", "user"] {
        events
            .emit(&CallContext::host(), name, json!({}))
            .await
            .unwrap();
    }
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "one:user.created",
            "deep:user.created",
            "created:user.created",
            "deep:user.created.v2",
            "created:product.created",
            "deep:user",
        ]
    );
    assert!(matches!(
        events.emit(&CallContext::host(), "user.*", json!({})).await,
        Err(EventError::InvalidName { .. })
    ));
    assert!(matches!(
        events.subscribe("user..x", recorder(&seen, "x", Flow::Continue)),
        Err(EventError::InvalidPattern { .. })
    ));
    // Names and patterns are bounded like grants: 32 segments and 256 bytes at most.
    let at = vec!["a"; xcore::MAX_PATTERN_SEGMENTS].join(".");
    let over = format!("{at}.a");
    let cx = CallContext::host();
    assert!(events.emit(&cx, &at, json!({})).await.is_ok());
    let err = events.emit(&cx, &over, json!({})).await.unwrap_err();
    assert!(err.to_string().contains("33 segments"), "{err}");
    let err = events
        .subscribe(
            &vec!["**"; 40].join("."),
            recorder(&seen, "x", Flow::Continue),
        )
        .unwrap_err();
    assert!(
        matches!(&err, EventError::InvalidPattern { reason, .. } if reason.contains("40 segments")),
        "{err}"
    );
    let long = "a".repeat(xcore::MAX_PATTERN_LEN + 1);
    let err = events.emit(&cx, &long, json!({})).await.unwrap_err();
    assert!(err.to_string().contains("more than the 256"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_fires_exactly_once_under_100_concurrent_emits() {
    let xcore = bare();
    let events = xcore.events();
    let fired = Arc::new(AtomicUsize::new(0));
    let count = fired.clone();
    events
        .subscribe_with("tick", SubscribeOptions::new().once(), move |_: Event| {
            count.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, String>(Flow::Continue) }
        })
        .unwrap();
    let mut emits = Vec::new();
    for _ in 0..100 {
        let events = events.clone();
        emits.push(tokio::spawn(async move {
            events
                .emit(&CallContext::host(), "tick", json!({}))
                .await
                .unwrap()
                .handled()
        }));
    }
    let mut handled = 0;
    for e in emits {
        handled += e.await.unwrap();
    }
    assert_eq!(fired.load(Ordering::SeqCst), 1);
    assert_eq!(handled, 1);
    assert_eq!(events.subscription_count(), 0);
}

#[tokio::test]
async fn a_failing_or_panicking_handler_does_not_stop_the_others() {
    let xcore = bare();
    let events = xcore.events();
    let seen: Seen = Arc::default();
    events
        .subscribe_with(
            "job.done",
            SubscribeOptions::new().priority(3),
            |_: Event| async { Err::<Flow, _>("db down") },
        )
        .unwrap();
    events
        .subscribe_with(
            "job.done",
            SubscribeOptions::new().priority(2),
            |_: Event| -> futures_ready::Ready { panic!("handler bug") },
        )
        .unwrap();
    events
        .subscribe_with(
            "job.done",
            SubscribeOptions::new().priority(1),
            recorder(&seen, "last", Flow::Continue),
        )
        .unwrap();
    for dispatch in [Dispatch::Sequential, Dispatch::Concurrent] {
        let report = events
            .emit_with(&CallContext::host(), "job.done", json!({}), dispatch)
            .await
            .unwrap();
        let outcomes: Vec<&Outcome> = report.outcomes().iter().map(|o| &o.outcome).collect();
        assert_eq!(
            outcomes,
            [
                &Outcome::Failed("db down".into()),
                &Outcome::Panicked("handler bug".into()),
                &Outcome::Handled(Flow::Continue),
            ]
        );
        assert_eq!(report.failures().count(), 2);
    }
    assert_eq!(seen.lock().unwrap().len(), 2);
}

/// A plugin that subscribes in `on_start` and emits on request.
#[derive(Default)]
struct Chatty {
    ctx: Option<PluginContext>,
    heard: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl Actions for Chatty {
    async fn handle(
        &self,
        action: &str,
        payload: Value,
        cx: &CallContext,
    ) -> Result<Value, CallError> {
        let events = self.ctx.as_ref().unwrap().events()?;
        match action {
            "emit" => {
                let name = payload["name"].as_str().unwrap_or_default();
                let report = events.emit(cx, name, payload["payload"].clone()).await?;
                Ok(json!(report.handled()))
            }
            "heard" => Ok(json!(*self.heard.lock().unwrap())),
            other => Err(CallError::unknown_action(other, &["emit", "heard"])),
        }
    }
}

#[async_trait]
impl Plugin for Chatty {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        self.ctx = Some(ctx.clone());
        Ok(())
    }

    async fn on_start(&self, ctx: &PluginContext) -> Result<(), PluginError> {
        let heard = self.heard.clone();
        ctx.events()?.subscribe("user.*", move |event: Event| {
            heard.lock().unwrap().push(format!(
                "{} from {} for {}",
                event.name(),
                event.source(),
                event.tenant()
            ));
            async { Ok::<_, String>(Flow::Continue) }
        })?;
        Ok(())
    }
}

fn chatty(name: &str, grants: &[&str]) -> (Manifest, Chatty) {
    let manifest = Manifest::builder(name, "1.0.0")
        .permissions(grants.iter().copied())
        .build()
        .unwrap();
    (manifest, Chatty::default())
}

#[tokio::test]
async fn plugin_grants_guard_emit_and_subscribe_and_stop_withdraws() {
    let (m1, listener) = chatty("listener", &["events:user.*: subscribe"]);
    let (m2, mute) = chatty("mute", &["events:user.created: subscribe"]);
    let speaker = Manifest::builder("speaker", "1.0.0")
        .permissions(["events:user.created: emit"])
        .build()
        .unwrap();
    let app = TestApp::builder()
        .plugin(m1, listener)
        .plugin(m2, mute)
        .plugin(speaker, Speaker::default())
        .boot()
        .await
        .unwrap();
    // `mute` may subscribe to `user.created`, not to the wider `user.*`: its on_start failed.
    let mute = app.report().plugin("mute").unwrap();
    assert_eq!(mute.state(), xcore::NodeState::Failed);
    assert!(
        mute.reason()
            .unwrap()
            .contains("may not subscribe `user.*`"),
        "{:?}",
        mute.reason()
    );

    let cx = CallContext::host().with_tenant(xcore::TenantId::new("acme").unwrap());
    let handled = app
        .call_with(
            cx,
            "speaker",
            "emit",
            json!({"name": "user.created", "payload": {}}),
        )
        .await
        .unwrap();
    assert_eq!(handled, json!(1));
    let heard = app.call("listener", "heard", json!({})).await.unwrap();
    assert_eq!(
        heard,
        json!(["user.created from plugin `speaker` for acme"])
    );

    let err = app
        .call(
            "speaker",
            "emit",
            json!({"name": "user.deleted", "payload": {}}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PermissionDenied);
    assert!(
        err.message().contains("may not emit `user.deleted`"),
        "{}",
        err.message()
    );
    let denial = &app.xcore().audit().denials(Some("speaker"), 1)[0];
    assert_eq!(
        (denial.resource.as_str(), denial.action.as_str()),
        ("events:user.deleted", "emit")
    );

    // Subscriptions go when their plugin stops.
    let host_events = app.xcore().events();
    assert_eq!(host_events.subscription_count(), 1);
    app.shutdown().await;
    assert_eq!(host_events.subscription_count(), 0);
}

/// Emits only: no subscription in on_start.
#[derive(Default)]
struct Speaker(Option<PluginContext>);

#[async_trait]
impl Actions for Speaker {
    async fn handle(&self, _: &str, payload: Value, cx: &CallContext) -> Result<Value, CallError> {
        let events = self.0.as_ref().unwrap().events()?;
        let report = events
            .emit(
                cx,
                payload["name"].as_str().unwrap_or_default(),
                payload["payload"].clone(),
            )
            .await?;
        Ok(json!(report.handled()))
    }
}

#[async_trait]
impl Plugin for Speaker {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        self.0 = Some(ctx.clone());
        Ok(())
    }
}

#[tokio::test]
async fn kernel_events_arrive_in_order_during_boot_and_shutdown() {
    let xcore = TestApp::builder()
        .fake_plugin(FakePlugin::new("base"))
        .fake_plugin(FakePlugin::new("top").requires(["base"]))
        .fake_plugin(
            FakePlugin::new("broken").on_load(xcore_testkit::Behavior::Fail("nope".into())),
        )
        .fake_plugin(FakePlugin::new("orphan").requires(["broken"]))
        .fake_plugin(FakePlugin::new("lost").requires(["ghost"]))
        .build()
        .unwrap();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    xcore
        .events()
        .subscribe("**", move |event: Event| {
            assert_eq!(*event.source(), xcore::events::EventSource::Kernel);
            let reason = event.payload()["reason"]
                .as_str()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            log.lock()
                .unwrap()
                .push(format!("{}{reason}", event.name()));
            async { Ok::<_, String>(Flow::Continue) }
        })
        .unwrap();
    xcore.boot().await.unwrap();
    xcore.shutdown().await;
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "plugin.lost.failed (unknown dependency `ghost` (no plugin of that name))",
            "plugin.base.loaded",
            "plugin.broken.failed (nope)",
            "plugin.orphan.failed (dependency `broken` failed)",
            "plugin.top.loaded",
            "plugin.base.started",
            "plugin.top.started",
            "xcore.booted",
            "xcore.shutdown",
            "plugin.top.stopped",
            "plugin.base.stopped",
        ]
    );
}

#[tokio::test]
async fn background_emits_are_joined_on_shutdown() {
    let xcore = TestApp::builder()
        .fake_plugin(FakePlugin::new("p"))
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let count = done.clone();
    xcore
        .events()
        .subscribe("slow", move |_: Event| {
            let count = count.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                count.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(Flow::Continue)
            }
        })
        .unwrap();
    for _ in 0..5 {
        xcore
            .events()
            .emit_background(&CallContext::host(), "slow", json!({}))
            .unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), 0);
    xcore.shutdown().await;
    assert_eq!(done.load(Ordering::SeqCst), 5);
}

/// Tries to subscribe to each of its patterns in `on_load` and records which were allowed;
/// the accepted subscriptions record what they hear.
#[derive(Default)]
struct Prober {
    patterns: Vec<&'static str>,
    allowed: Arc<Mutex<Vec<(&'static str, bool)>>>,
    heard: Seen,
}

#[async_trait]
impl Actions for Prober {
    async fn handle(&self, _: &str, _: Value, _: &CallContext) -> Result<Value, CallError> {
        Ok(json!(*self.heard.lock().unwrap()))
    }
}

#[async_trait]
impl Plugin for Prober {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        let events = ctx.events()?;
        for pattern in &self.patterns {
            let result = events.subscribe(pattern, recorder(&self.heard, pattern, Flow::Continue));
            if let Err(err) = &result {
                assert!(
                    matches!(err, EventError::PermissionDenied { .. }),
                    "{pattern}: {err}"
                );
            }
            self.allowed.lock().unwrap().push((pattern, result.is_ok()));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_subscribe_grant_admits_only_the_patterns_it_covers() {
    /// (pattern, allowed)
    type Cases = &'static [(&'static str, bool)];
    // (grants, cases)
    let table: &[(&[&str], Cases)] = &[
        (
            &["events:user.*: subscribe"],
            &[
                ("user.created", true),
                ("user.*", true),
                ("user.**", false),
                ("*.created", false),
                ("user.*.*", false),
            ],
        ),
        (
            &["events:*.x: subscribe"],
            &[("*.x", true), ("**.x", false)],
        ),
        (
            &[
                "events:user.**: subscribe",
                "!events:user.*.secret: subscribe",
            ],
            &[
                ("user.**", false),
                ("user.a*", true),
                ("user.*.secret", false),
                ("user.*.public", true),
            ],
        ),
    ];
    let mut builder = TestApp::builder();
    let mut probes = Vec::new();
    for (i, (grants, cases)) in table.iter().enumerate() {
        let manifest = Manifest::builder(format!("prober{i}"), "1.0.0")
            .permissions(grants.iter().copied())
            .build()
            .unwrap();
        let prober = Prober {
            patterns: cases.iter().map(|(p, _)| *p).collect(),
            ..Prober::default()
        };
        probes.push((i, prober.allowed.clone(), *cases));
        builder = builder.plugin(manifest, prober);
    }
    let speaker = Manifest::builder("speaker", "1.0.0")
        .permissions(["events:**: emit"])
        .build()
        .unwrap();
    let app = builder
        .plugin(speaker, Speaker::default())
        .boot()
        .await
        .unwrap();
    for (i, allowed, cases) in &probes {
        assert_eq!(&*allowed.lock().unwrap(), cases, "prober{i}");
    }
    // What the refused `user.**` would have received reaches nobody in prober0.
    for name in ["user.created.v2", "user.created", "user.a.secret"] {
        app.call("speaker", "emit", json!({"name": name, "payload": {}}))
            .await
            .unwrap();
    }
    let heard = |i: usize| {
        let app = &app;
        async move {
            app.call(&format!("prober{i}"), "heard", json!({}))
                .await
                .unwrap()
        }
    };
    assert_eq!(
        heard(0).await,
        json!(["user.created:user.created", "user.*:user.created"])
    );
    assert_eq!(heard(1).await, json!([]));
    assert_eq!(heard(2).await, json!([]));
}
