//! Calls through the pipeline: errors, isolation, limits, grants, hops, host layers.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};
use xcore::{
    Actions, CallContext, CallError, ErrorCode, Manifest, Plugin, TenantId, Xcore, async_trait,
    call::{BoxCallService, CallRequest},
};
use xcore_testkit::{FakePlugin, TestApp};

#[tokio::test]
async fn a_panicking_handler_returns_panicked_and_the_plugin_goes_on() {
    let app = TestApp::builder()
        .fake_plugin(FakePlugin::new("p"))
        .boot()
        .await
        .unwrap();
    let err = app.call("p", "panic", json!({})).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Panicked);
    assert!(
        err.message().contains("fake plugin asked to panic"),
        "{}",
        err.message()
    );
    assert_eq!(
        app.call("p", "ping", json!({})).await.unwrap(),
        json!("pong")
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_past_the_timeout_returns_timeout_and_the_next_is_unaffected() {
    let app = TestApp::builder()
        .fake_plugin(FakePlugin::new("slow").manifest(|m| m.timeout("1s")))
        .boot()
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let err = app
        .call("slow", "sleep", json!({"ms": 2000}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout);
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(
        app.call("slow", "sleep", json!({"ms": 500})).await.unwrap(),
        json!("slept")
    );
}

#[tokio::test(start_paused = true)]
async fn the_callers_deadline_travels_and_wins_when_earlier() {
    let app = TestApp::builder()
        .fake_plugin(FakePlugin::new("front").manifest(|m| m.permissions(["plugin:back: sleep"])))
        .fake_plugin(FakePlugin::new("back"))
        .boot()
        .await
        .unwrap();
    let cx = CallContext::host().with_timeout(Duration::from_millis(300));
    let started = tokio::time::Instant::now();
    let err = app
        .call_with(
            cx,
            "front",
            "call",
            json!({"target": "back", "action": "sleep", "payload": {"ms": 5000}}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout);
    assert_eq!(started.elapsed(), Duration::from_millis(300));
}

#[tokio::test]
async fn error_codes_for_absent_plugins_and_actions() {
    let xcore = TestApp::builder()
        .fake_plugin(FakePlugin::new("ok"))
        .fake_plugin(FakePlugin::new("broken").requires(["ghost"]))
        .build()
        .unwrap();
    let before = xcore.call("ok", "ping", json!({})).await.unwrap_err();
    assert_eq!(before.code(), ErrorCode::NotReady);
    xcore.boot().await.unwrap();

    let err = xcore.call("nope", "ping", json!({})).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert!(
        err.message().contains("plugins: broken, ok"),
        "{}",
        err.message()
    );
    let err = xcore.call("broken", "ping", json!({})).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unavailable);
    assert!(
        err.message().contains("unknown dependency `ghost`"),
        "{}",
        err.message()
    );
    let err = xcore.call("ok", "nope", json!({})).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownAction);
    assert!(err.message().contains("ping, echo"), "{}", err.message());
    let err = xcore
        .call("ok", "fail", json!({"message": "no stock"}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::HandlerError);
    assert_eq!(
        err.to_envelope(),
        json!({"status": "error", "code": "handler_error", "message": "no stock"})
    );
    assert_eq!(
        xcore::envelope(&xcore.call("ok", "echo", json!([1, 2])).await),
        json!({"status": "ok", "result": [1, 2]})
    );

    xcore.shutdown().await;
    let after = xcore.call("ok", "ping", json!({})).await.unwrap_err();
    assert_eq!(after.code(), ErrorCode::NotReady);
}

#[tokio::test]
async fn plugin_calls_need_a_grant_and_an_admitting_target() {
    let app = TestApp::builder()
        .fake_plugin(
            FakePlugin::new("a").manifest(|m| m.permissions(["plugin:b: ping", "plugin:c: *"])),
        )
        .fake_plugin(FakePlugin::new("b"))
        .fake_plugin(FakePlugin::new("c").manifest(|m| m.allowed_callers(["b"])))
        .fake_plugin(FakePlugin::new("b2").manifest(|m| m.permissions(["plugin:c: ping"])))
        .boot()
        .await
        .unwrap();
    let via_a =
        |target: &str, action: &str| json!({"target": target, "action": action, "payload": {}});
    assert_eq!(
        app.call("a", "call", via_a("b", "ping")).await.unwrap(),
        json!("pong")
    );

    let err = app.call("a", "call", via_a("b", "echo")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::PermissionDenied);
    assert!(
        err.message().contains("plugin `a` may not call `b.echo`"),
        "{}",
        err.message()
    );
    assert_eq!(err.details().unwrap()["resource"], "plugin:b");

    // a holds a grant for c, but c admits only b.
    let err = app.call("a", "call", via_a("c", "ping")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::CallerDenied);
    assert!(
        err.message()
            .contains("does not accept calls from plugin `a`"),
        "{}",
        err.message()
    );
    // b2 is admitted by nobody's list but holds a grant: c still refuses it.
    let err = app
        .call("b2", "call", via_a("c", "ping"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::CallerDenied);

    // The host is exempt from grants and allowed_callers.
    assert_eq!(
        app.call("c", "ping", json!({})).await.unwrap(),
        json!("pong")
    );

    // Every denial is in the audit, by plugin.
    let audit = app.xcore().audit();
    assert_eq!(audit.total(), 3);
    let of_a = audit.denials(Some("a"), 10);
    assert_eq!(of_a.len(), 2);
    assert_eq!(
        (of_a[0].resource.as_str(), of_a[0].action.as_str()),
        ("plugin:b", "echo")
    );
    assert_eq!(of_a[0].kind, xcore::permissions::DenialKind::Permission);
    assert_eq!(of_a[1].kind, xcore::permissions::DenialKind::Caller);
    assert_eq!(audit.denials(Some("b2"), 10).len(), 1);
}

#[tokio::test]
async fn the_audit_stays_bounded() {
    let app = TestApp::builder()
        .fake_plugin(FakePlugin::new("nosy"))
        .fake_plugin(FakePlugin::new("target"))
        .configure(|b| b.audit_capacity(5))
        .boot()
        .await
        .unwrap();
    for i in 0..20 {
        let payload = json!({"target": "target", "action": format!("a{i}"), "payload": {}});
        let err = app.call("nosy", "call", payload).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied);
    }
    let audit = app.xcore().audit();
    assert_eq!(audit.total(), 20);
    let kept: Vec<String> = audit
        .denials(None, 100)
        .into_iter()
        .map(|d| d.action)
        .collect();
    assert_eq!(kept, ["a15", "a16", "a17", "a18", "a19"]);
    assert_eq!(audit.denials(Some("nosy"), 2).len(), 2);
}

#[tokio::test]
async fn the_tenant_travels_two_hops() {
    let app = TestApp::builder()
        .fake_plugin(FakePlugin::new("first").manifest(|m| m.permissions(["plugin:second: call"])))
        .fake_plugin(
            FakePlugin::new("second").manifest(|m| m.permissions(["plugin:third: tenant"])),
        )
        .fake_plugin(FakePlugin::new("third"))
        .boot()
        .await
        .unwrap();
    let cx = CallContext::host().with_tenant(TenantId::new("acme").unwrap());
    let two_hops = json!({
        "target": "second",
        "action": "call",
        "payload": {"target": "third", "action": "tenant", "payload": {}},
    });
    assert_eq!(
        app.call_with(cx, "first", "call", two_hops).await.unwrap(),
        json!("acme")
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limit_and_concurrency_limit_reject_at_once() {
    let app = TestApp::builder()
        .fake_plugin(FakePlugin::new("limited").manifest(|m| m.rate_limit("2/1m")))
        .fake_plugin(FakePlugin::new("single").manifest(|m| m.max_concurrency(1)))
        .boot()
        .await
        .unwrap();
    assert!(app.call("limited", "ping", json!({})).await.is_ok());
    assert!(app.call("limited", "ping", json!({})).await.is_ok());
    let err = app.call("limited", "ping", json!({})).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimited);
    assert_eq!(err.details().unwrap()["retry_after_ms"], 30_000);
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(app.call("limited", "ping", json!({})).await.is_ok());

    let xcore = app.xcore().clone();
    let busy =
        tokio::spawn(async move { xcore.call("single", "sleep", json!({"ms": 1000})).await });
    tokio::task::yield_now().await;
    let err = app.call("single", "ping", json!({})).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Overloaded);
    assert_eq!(busy.await.unwrap().unwrap(), json!("slept"));
    assert!(app.call("single", "ping", json!({})).await.is_ok());
}

/// A host layer that refuses one action and counts the rest.
#[derive(Clone)]
struct Gate {
    inner: BoxCallService,
    seen: Arc<AtomicU64>,
}

impl tower::Service<CallRequest> for Gate {
    type Response = Value;
    type Error = CallError;
    type Future = xcore::call::CallFuture;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), CallError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: CallRequest) -> Self::Future {
        self.seen.fetch_add(1, Ordering::Relaxed);
        if req.action() == "echo" {
            return Box::pin(async {
                Err(CallError::new(ErrorCode::PermissionDenied, "gate: no echo"))
            });
        }
        Box::pin(self.inner.call(req))
    }
}

#[tokio::test]
async fn the_host_can_add_a_layer() {
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    let app = TestApp::builder()
        .fake_plugin(FakePlugin::new("p"))
        .configure(move |b| {
            b.call_layer(tower::layer::layer_fn(move |inner| Gate {
                inner,
                seen: counter.clone(),
            }))
        })
        .boot()
        .await
        .unwrap();
    assert!(app.call("p", "ping", json!({})).await.is_ok());
    let err = app.call("p", "echo", json!({})).await.unwrap_err();
    assert_eq!(err.message(), "gate: no echo");
    assert_eq!(seen.load(Ordering::Relaxed), 2);
}

/// A stateful plugin written without macros.
#[derive(Default)]
struct Counter(AtomicU64);

#[async_trait]
impl Actions for Counter {
    fn action_names(&self) -> &'static [&'static str] {
        &["incr"]
    }

    async fn handle(&self, action: &str, _: Value, _: &CallContext) -> Result<Value, CallError> {
        match action {
            "incr" => Ok(json!(self.0.fetch_add(1, Ordering::SeqCst) + 1)),
            other => Err(CallError::unknown_action(other, self.action_names())),
        }
    }
}

#[async_trait]
impl Plugin for Counter {}

async fn counter_app() -> Xcore {
    let manifest = Manifest::builder("counter", "1.0.0").build().unwrap();
    let xcore = Xcore::builder()
        .without_registered()
        .plugin(manifest, Counter::default())
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    xcore
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_xcores_in_one_process_share_nothing() {
    let (one, two) = tokio::join!(counter_app(), counter_app());
    let bump = |x: Xcore, n: usize| {
        tokio::spawn(async move {
            let mut last = json!(0);
            for _ in 0..n {
                last = x.call("counter", "incr", json!({})).await.unwrap();
            }
            last
        })
    };
    let (a, b) = tokio::join!(bump(one.clone(), 500), bump(two.clone(), 300));
    assert_eq!(a.unwrap(), json!(500));
    assert_eq!(b.unwrap(), json!(300));
    one.shutdown().await;
    // Shutting one down leaves the other running.
    assert_eq!(
        two.call("counter", "incr", json!({})).await.unwrap(),
        json!(301)
    );
    assert_eq!(
        one.call("counter", "incr", json!({}))
            .await
            .unwrap_err()
            .code(),
        ErrorCode::NotReady
    );
}
