//! Several `Xcore` instances on one Redis (and one Postgres) behave as one: events bridged
//! through Redis pub/sub next to a pattern routed through Postgres, and rate limits enforced
//! cluster-wide (GCRA on Redis); both through a Redis outage of 5 s, with recovery and no
//! restart.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use xcore::{
    CallContext, CallError, ErrorCode, HealthStatus, NodeId, TenantId, Xcore,
    events::{BridgeOptions, Event, EventBridge, EventSource, Flow},
    services::rate_limits::{Fallback, LimitKey, RateLimitsOptions, RateLimitsService},
};
use xcore_testkit::{FakePlugin, PostgresServer, RedisServer, TestApp};

type Seen = Arc<Mutex<Vec<Event>>>;

/// An instance with `bridge`, recording every event it sees.
async fn bridged(bridge: EventBridge, seen: &Seen) -> Xcore {
    let xcore = Xcore::builder()
        .without_registered()
        .service(bridge)
        .build()
        .unwrap();
    xcore.boot().await.unwrap().ensure_all_started().unwrap();
    let seen = seen.clone();
    xcore
        .events()
        .subscribe("**", move |event: Event| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(event);
                Ok::<_, std::convert::Infallible>(Flow::Continue)
            }
        })
        .unwrap();
    xcore
}

fn names(seen: &Seen) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|e| e.name().to_owned())
        .collect()
}

/// Waits (at most 3 s) until `done` holds.
async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Three instances, `order.*` routed to Redis and `invoice.*` to Postgres: an event emitted
/// on one is received once on each other through its route (tenant, trace and source
/// node kept), never echoed; an event matching no route stays local; `order.*` matching the
/// first route only is published once (first match wins).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_each_other_instance_once_through_redis_and_postgres_routes() {
    let Ok(redis) = RedisServer::start_local().await else {
        eprintln!("no Redis: skipped");
        return;
    };
    let Ok(postgres) = PostgresServer::start().await else {
        eprintln!("no Postgres: skipped");
        return;
    };
    let pg_url = postgres.database().await.unwrap();
    let seen: Vec<Seen> = (0..3).map(|_| Seen::default()).collect();
    let mut apps = Vec::new();
    let mut nodes = Vec::new();
    for seen in &seen {
        // `order.**` also matches the Postgres route's `**.paid`, after the Redis route.
        let mut options = BridgeOptions::new(redis.url(), ["order.**"])
            .route(pg_url.clone(), ["invoice.*", "**.paid"]);
        options.channel = "scale_redis_events".into();
        let bridge = EventBridge::new(options).unwrap();
        nodes.push(bridge.node().to_owned());
        apps.push(bridged(bridge, seen).await);
    }
    let cx = CallContext::host().with_tenant(TenantId::new("acme").unwrap());
    let emit = |i: usize, name: &'static str| {
        let (events, cx) = (apps[i].events().clone(), cx.clone());
        async move {
            events
                .emit(&cx, name, serde_json::json!({ "name": name }))
                .await
                .unwrap();
        }
    };
    emit(0, "order.created").await;
    emit(1, "invoice.sent").await;
    emit(2, "order.paid").await;
    emit(0, "user.created").await;
    until(|| (0..3).all(|i| names(&seen[i]).len() == 4)).await;
    // A little longer: nothing more arrives (no duplicate, no echo).
    tokio::time::sleep(Duration::from_millis(300)).await;

    let expect_from = |i: usize| -> Vec<(&str, usize)> {
        let mut all = vec![("order.created", 0), ("invoice.sent", 1), ("order.paid", 2)];
        if i == 0 {
            all.push(("user.created", 0));
        }
        all
    };
    for (i, seen) in seen.iter().enumerate() {
        let events = seen.lock().unwrap().clone();
        let mut got: Vec<String> = events.iter().map(|e| e.name().to_owned()).collect();
        got.sort();
        let mut want: Vec<String> = expect_from(i).iter().map(|(n, _)| n.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "instance {i}");
        for event in &events {
            let from = expect_from(i)
                .iter()
                .find(|(n, _)| *n == event.name())
                .unwrap()
                .1;
            let source = if from == i {
                EventSource::Host
            } else {
                EventSource::Bridge(nodes[from].clone())
            };
            assert_eq!(event.source(), &source, "instance {i}: {}", event.name());
            assert_eq!(event.tenant().as_str(), "acme");
            assert_eq!(event.trace_id(), cx.trace().trace_id());
        }
    }
    for app in apps {
        let health = app.health().await;
        assert_eq!(health.status(), HealthStatus::Healthy, "{health:?}");
        app.shutdown().await;
    }
}

/// An instance with the fake plugin `limited` (`rate_limit` `limit`) and the cluster-wide
/// limiter on `redis`.
async fn limited(
    redis: &str,
    limit: &str,
    options: impl FnOnce(RateLimitsOptions) -> RateLimitsOptions,
) -> TestApp {
    let limits = RateLimitsService::new(options(RateLimitsOptions::new(redis))).unwrap();
    let limit = limit.to_owned();
    TestApp::builder()
        .fake_plugin(FakePlugin::new("limited").manifest(move |m| m.rate_limit(limit)))
        .service(limits)
        .boot()
        .await
        .unwrap()
}

/// Calls `limited.ping` under `cx`: `Ok(true)` admitted, `Ok(false)` rate limited, else
/// the error; never longer than 2 s (a dead Redis must not hold a call).
async fn ping(app: &TestApp, cx: CallContext) -> Result<bool, CallError> {
    let call = app.call_with(cx, "limited", "ping", serde_json::json!({}));
    match tokio::time::timeout(Duration::from_secs(2), call).await {
        Ok(Ok(_)) => Ok(true),
        Ok(Err(e)) if e.code() == ErrorCode::RateLimited => Ok(false),
        Ok(Err(e)) => Err(e),
        Err(_) => panic!("a call waited 2 s for the rate limiter"),
    }
}

/// Three instances calling as fast as they can (every 10 ms each, 300 calls/s in all) a
/// plugin limited to 10/s: the cluster admits 10 per second (±1), after the burst of 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_of_10_per_second_holds_across_three_instances() {
    let Ok(redis) = RedisServer::start_local().await else {
        eprintln!("no Redis: skipped");
        return;
    };
    let mut apps = Vec::new();
    for _ in 0..3 {
        apps.push(Arc::new(limited(redis.url(), "10/1s", |o| o).await));
    }
    let started = tokio::time::Instant::now();
    let run_for = Duration::from_millis(3500);
    let mut drivers = Vec::new();
    for app in &apps {
        let app = app.clone();
        drivers.push(tokio::spawn(async move {
            let mut admitted = Vec::new();
            let mut refused = 0;
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            while started.elapsed() < run_for {
                tick.tick().await;
                if ping(&app, CallContext::host()).await.unwrap() {
                    admitted.push(tokio::time::Instant::now());
                } else {
                    refused += 1;
                }
            }
            (admitted, refused)
        }));
    }
    let mut admitted = Vec::new();
    let mut refused = 0;
    let mut per_instance = Vec::new();
    for driver in drivers {
        let (a, r) = driver.await.unwrap();
        per_instance.push(a.len());
        admitted.extend(a);
        refused += r;
    }
    admitted.sort();
    let t0 = admitted[0];
    let window = |k: u32| {
        let (from, to) = (
            t0 + Duration::from_secs(k.into()),
            t0 + Duration::from_secs((k + 1).into()),
        );
        admitted.iter().filter(|t| **t >= from && **t < to).count()
    };
    let windows: Vec<usize> = (0..3).map(window).collect();
    println!("admitted per instance {per_instance:?}, per window {windows:?}, refused {refused}");
    // The first window: the burst (10) and the refill (9 or 10).
    assert!((19..=21).contains(&windows[0]), "{windows:?}");
    for k in [1, 2] {
        assert!((9..=11).contains(&windows[k]), "window {k}: {windows:?}");
    }
    // Every instance took part, and most calls were refused.
    assert!(per_instance.iter().all(|n| *n > 0), "{per_instance:?}");
    assert!(refused > 500, "{refused}");
    for app in apps {
        Arc::try_unwrap(app).unwrap().shutdown().await;
    }
}

/// Keyed limits: per tenant, each tenant has its own budget, shared by every instance; the
/// refusal says when to retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_per_tenant_is_kept_per_tenant_across_instances() {
    let Ok(redis) = RedisServer::start_local().await else {
        eprintln!("no Redis: skipped");
        return;
    };
    let one = limited(redis.url(), "2/1m", |o| o.per("limited", LimitKey::Tenant)).await;
    let two = limited(redis.url(), "2/1m", |o| o.per("limited", LimitKey::Tenant)).await;
    let tenant = |t: &str| CallContext::host().with_tenant(TenantId::new(t).unwrap());
    assert!(ping(&one, tenant("acme")).await.unwrap());
    assert!(ping(&two, tenant("acme")).await.unwrap());
    let err = two
        .call_with(tenant("acme"), "limited", "ping", serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimited);
    let retry = err.details().unwrap()["retry_after_ms"].as_u64().unwrap();
    assert!((29_000..=30_000).contains(&retry), "{retry}");
    assert!(!ping(&one, tenant("acme")).await.unwrap());
    // Another tenant: its own budget.
    assert!(ping(&one, tenant("globex")).await.unwrap());
    assert!(ping(&two, tenant("globex")).await.unwrap());
    assert!(!ping(&one, tenant("globex")).await.unwrap());
    one.shutdown().await;
    two.shutdown().await;
}

/// `hello`: `GET /hello` answers `hi`.
struct Hello;

#[xcore::async_trait]
impl xcore::Actions for Hello {
    async fn handle(
        &self,
        action: &str,
        _: serde_json::Value,
        _: &CallContext,
    ) -> Result<serde_json::Value, CallError> {
        Err(CallError::unknown_action(action, &[]))
    }
}

#[xcore::async_trait]
impl xcore::Plugin for Hello {
    fn routes(&self, _: &xcore::PluginContext) -> Option<xcore::web::Routes> {
        let router = axum::Router::new().route("/hello", axum::routing::get(|| async { "hi" }));
        Some(xcore::web::Routes::from_axum(router).endpoint(http::Method::GET, "/hello"))
    }
}

/// Route requests share the plugin's limit with calls, cluster-wide: two instances, a
/// limit of 3 per minute per tenant, requests and calls alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_requests_take_their_tokens_from_the_cluster_limit() {
    let Ok(redis) = RedisServer::start_local().await else {
        eprintln!("no Redis: skipped");
        return;
    };
    let mut apps = Vec::new();
    for _ in 0..2 {
        let options = RateLimitsOptions::new(redis.url()).per("hello", LimitKey::Tenant);
        let manifest = xcore::Manifest::builder("hello", "1.0.0")
            .rate_limit("3/1m")
            .build()
            .unwrap();
        apps.push(
            TestApp::builder()
                .plugin(manifest, Hello)
                .service(RateLimitsService::new(options).unwrap())
                .boot()
                .await
                .unwrap(),
        );
    }
    let get = |i: usize| {
        let client = apps[i].client();
        async move { client.get("/plugin/hello/hello").await.status().as_u16() }
    };
    let statuses = [get(0).await, get(1).await, get(0).await, get(1).await];
    assert_eq!(statuses, [200, 200, 200, 429]);
    let call = apps[0]
        .call("hello", "none", serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(call.code(), ErrorCode::RateLimited);
    for app in apps {
        app.shutdown().await;
    }
}

/// Waits (at most 10 s) until `app`'s health is `status`.
async fn health_becomes(app: &Xcore, status: HealthStatus) -> xcore::HealthReport {
    let mut last = app.health().await;
    for _ in 0..100 {
        if last.status() == status {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = app.health().await;
    }
    panic!("health not {status:?} within 10 s: {last:?}");
}

/// Redis stopped for 5 s under the limiter: calls never wait on it; with `fallback: local`
/// each instance applies its local bucket, with `fallback: open` every call is admitted,
/// with `fallback: closed` limited calls are refused (`unavailable`); health is degraded; once Redis is back the limit is
/// cluster-wide again, without a restart (its buckets restarted full: Redis kept them in
/// memory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_under_the_limiter_applies_the_fallback_and_recovers() {
    let Ok(redis) = RedisServer::start_local().await else {
        eprintln!("no Redis: skipped");
        return;
    };
    let local_a = limited(redis.url(), "5/1m", |o| o).await;
    let local_b = limited(redis.url(), "5/1m", |o| o).await;
    let closed = limited(redis.url(), "5/1m", |o| {
        o.fallback(Fallback::Closed)
            .per("limited", LimitKey::Tenant)
    })
    .await;
    // Its own keys (another prefix): the budget of `limited` is the two others'.
    let open = limited(redis.url(), "5/1m", |mut o| {
        o.prefix = "open".into();
        o.fallback(Fallback::Open)
    })
    .await;
    let host = CallContext::host;
    // Cluster-wide: 5 in all over the two instances.
    let mut admitted = 0;
    for i in 0..10 {
        let app = if i % 2 == 0 { &local_a } else { &local_b };
        admitted += usize::from(ping(app, host()).await.unwrap());
    }
    assert_eq!(admitted, 5);
    assert!(ping(&closed, host()).await.unwrap());

    redis.stop().unwrap();
    let down = tokio::time::Instant::now();
    // `local`: each instance's own bucket (full: the cluster took the tokens so far).
    for app in [&local_a, &local_b] {
        let mut n = 0;
        for _ in 0..7 {
            n += usize::from(ping(app, host()).await.unwrap());
        }
        assert_eq!(n, 5, "the local bucket applies");
    }
    // `open`: everything admitted.
    for _ in 0..20 {
        assert!(ping(&open, host()).await.unwrap(), "fail open admits");
    }
    // `closed`: refused, with no internals in the message.
    let err = ping(&closed, host()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unavailable);
    assert!(!err.message().contains("127.0.0.1"), "{}", err.message());
    for app in [&local_a, &local_b, &closed, &open] {
        let report = health_becomes(app.xcore(), HealthStatus::Degraded).await;
        let limits = report.node(&NodeId::service("rate_limits")).unwrap();
        assert!(
            limits
                .health()
                .message()
                .unwrap_or_default()
                .contains("not cluster-wide"),
            "{limits:?}"
        );
    }
    // Calls keep their bounded answers for the whole outage.
    while down.elapsed() < Duration::from_secs(5) {
        assert!(!ping(&local_a, host()).await.unwrap());
        assert_eq!(
            ping(&closed, host()).await.unwrap_err().code(),
            ErrorCode::Unavailable
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    redis.restart().await.unwrap();
    for app in [&local_a, &local_b, &closed, &open] {
        health_becomes(app.xcore(), HealthStatus::Healthy).await;
    }
    // Cluster-wide again (Redis restarted empty: a full burst of 5 for the two instances).
    let mut admitted = 0;
    for i in 0..10 {
        let app = if i % 2 == 0 { &local_a } else { &local_b };
        admitted += usize::from(ping(app, host()).await.unwrap());
    }
    assert_eq!(admitted, 5);
    assert!(ping(&closed, host()).await.unwrap());
    // `open` is limited again (Redis restarted empty: a full burst of 5).
    let mut n = 0;
    for _ in 0..10 {
        n += usize::from(ping(&open, host()).await.unwrap());
    }
    assert_eq!(n, 5, "cluster-wide again");
    for app in [local_a, local_b, closed, open] {
        app.shutdown().await;
    }
}

/// Redis stopped for 5 s under the bridge: local emits never wait and are delivered
/// locally; the events emitted meanwhile are lost for the other instance (at most once);
/// health is degraded; once Redis is back both instances resubscribe by themselves and
/// events flow both ways again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_under_the_bridge_degrades_and_recovers() {
    let Ok(redis) = RedisServer::start_local().await else {
        eprintln!("no Redis: skipped");
        return;
    };
    let seen: Vec<Seen> = (0..2).map(|_| Seen::default()).collect();
    let mut apps = Vec::new();
    for seen in &seen {
        let mut options = BridgeOptions::new(redis.url(), ["order.*"]);
        options.timeout = Duration::from_millis(200);
        apps.push(bridged(EventBridge::new(options).unwrap(), seen).await);
    }
    let cx = CallContext::host();
    let emit = |i: usize, name: &'static str| {
        let (events, cx) = (apps[i].events().clone(), cx.clone());
        async move {
            let emit = events.emit(&cx, name, serde_json::json!({}));
            tokio::time::timeout(Duration::from_secs(1), emit)
                .await
                .expect("a local emit waited for the bridge")
                .unwrap();
        }
    };
    emit(0, "order.before").await;
    until(|| names(&seen[1]) == ["order.before"]).await;
    assert_eq!(names(&seen[1]), ["order.before"]);

    redis.stop().unwrap();
    let down = tokio::time::Instant::now();
    emit(0, "order.lost").await;
    emit(1, "order.lost_too").await;
    for app in &apps {
        let report = health_becomes(app, HealthStatus::Degraded).await;
        let bridge = report.node(&NodeId::service("event_bridge")).unwrap();
        assert!(
            bridge
                .health()
                .message()
                .unwrap_or_default()
                .contains("not bridged"),
            "{bridge:?}"
        );
    }
    while down.elapsed() < Duration::from_secs(5) {
        emit(0, "order.lost").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    redis.restart().await.unwrap();
    for app in &apps {
        health_becomes(app, HealthStatus::Healthy).await;
    }
    emit(0, "order.after").await;
    emit(1, "order.after_too").await;
    until(|| {
        names(&seen[1]).contains(&"order.after".to_owned())
            && names(&seen[0]).contains(&"order.after_too".to_owned())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // What was emitted during the outage was delivered locally only.
    let remote = |i: usize| -> Vec<String> {
        seen[i]
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e.source(), EventSource::Bridge(_)))
            .map(|e| e.name().to_owned())
            .collect()
    };
    assert_eq!(remote(1), ["order.before", "order.after"]);
    assert_eq!(remote(0), ["order.after_too"]);
    assert!(
        names(&seen[0])
            .iter()
            .filter(|n| *n == "order.lost")
            .count()
            >= 2
    );
    for app in apps {
        app.shutdown().await;
    }
}

/// An at-least-once route (a Redis stream), Redis stopped for 5 s: the events emitted
/// meanwhile wait in the publisher's queue and reach the other instance once Redis is back
/// (pub/sub would have lost them); nothing is duplicated; health degraded, then healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_at_least_once_route_delivers_what_was_emitted_during_a_redis_outage() {
    let Ok(redis) = RedisServer::start_local().await else {
        eprintln!("no Redis: skipped");
        return;
    };
    let seen: Vec<Seen> = (0..2).map(|_| Seen::default()).collect();
    let mut apps = Vec::new();
    for seen in &seen {
        let mut options = BridgeOptions::new(redis.url(), ["cache.*"])
            .route_at_least_once(redis.url(), ["payment.*"]);
        options.timeout = Duration::from_millis(200);
        options.channel = "scale_streams".into();
        apps.push(bridged(EventBridge::new(options).unwrap(), seen).await);
    }
    let cx = CallContext::host();
    let emit = |i: usize, name: &'static str| {
        let (events, cx) = (apps[i].events().clone(), cx.clone());
        async move {
            let emit = events.emit(&cx, name, serde_json::json!({}));
            tokio::time::timeout(Duration::from_secs(1), emit)
                .await
                .expect("a local emit waited for the bridge")
                .unwrap();
        }
    };
    let remote = |i: usize| -> Vec<String> {
        seen[i]
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e.source(), EventSource::Bridge(_)))
            .map(|e| e.name().to_owned())
            .collect()
    };
    emit(0, "payment.before").await;
    until(|| remote(1) == ["payment.before"]).await;
    assert_eq!(remote(1), ["payment.before"]);

    redis.stop().unwrap();
    let down = tokio::time::Instant::now();
    emit(0, "payment.during").await;
    emit(0, "cache.during").await;
    for app in &apps {
        health_becomes(app, HealthStatus::Degraded).await;
    }
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(down.elapsed())).await;
    redis.restart().await.unwrap();
    for app in &apps {
        health_becomes(app, HealthStatus::Healthy).await;
    }
    emit(0, "payment.after").await;
    until(|| remote(1).len() >= 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The stream's event emitted during the outage arrived, in order, once; the pub/sub
    // one was lost.
    assert_eq!(
        remote(1),
        ["payment.before", "payment.during", "payment.after"]
    );
    for app in apps {
        app.shutdown().await;
    }
}
