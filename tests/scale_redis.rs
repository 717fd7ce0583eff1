//! Several `Xcore` instances on one Redis (and one Postgres) behave as one: events bridged
//! through Redis pub/sub next to a pattern routed through Postgres, and rate limits enforced
//! cluster-wide (GCRA on Redis); both through a Redis outage of 5 s, with recovery and no
//! restart.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use xcore::{
    CallContext, HealthStatus, TenantId, Xcore,
    events::{BridgeOptions, Event, EventBridge, EventSource, Flow},
};
use xcore_testkit::{PostgresServer, RedisServer};

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
        let mut all = vec![
            ("order.created", 0),
            ("invoice.sent", 1),
            ("order.paid", 2),
        ];
        if i == 0 {
            all.push(("user.created", 0));
        }
        all
    };
    for i in 0..3 {
        let events = seen[i].lock().unwrap().clone();
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
