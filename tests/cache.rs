//! The cache service on memory, on a real Redis and tiered (memory over Redis): every
//! operation, TTLs, LRU eviction, grants through a booted `Xcore`, tenant isolation, `clear`
//! that touches nothing else, single flight, typed values, cross-instance invalidation, and a
//! Redis that goes away mid-run.
//!
//! The Redis tests start a throwaway `redis-server` (or use `XCORE_TEST_REDIS_URL`); without
//! one they print a note and return, unless `XCORE_REQUIRE_SERVERS=1`, where they fail.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use xcore::{
    Actions, CallContext, CallError, ErrorCode, HealthStatus, Manifest, Plugin, PluginContext,
    PluginError, Service, TenantId, async_trait,
    services::{
        AccessError,
        cache::{
            Cache, CacheBackendKind, CacheError, CacheOptions, CacheService, KeyTtl, RedisOptions,
            Ttl,
        },
    },
};
use xcore_testkit::{RedisServer, TestApp};

// ---------------------------------------------------------------------------------------------
// Helpers

/// A prefix no other test (or run, on a shared server) uses.
fn unique_prefix(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "t{}-{}-{nanos}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn memory_options() -> CacheOptions {
    CacheOptions::default()
}

fn redis_options(url: &str, backend: CacheBackendKind, name: &str) -> CacheOptions {
    CacheOptions {
        backend,
        prefix: unique_prefix(name),
        redis: RedisOptions {
            url: url.to_owned(),
            pool_size: 8,
            connect_timeout: Duration::from_millis(500),
            command_timeout: Duration::from_millis(500),
        },
        ..CacheOptions::default()
    }
}

async fn memory() -> CacheService {
    CacheService::connect(memory_options()).await.unwrap()
}

async fn raw_connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn raw_set(conn: &mut redis::aio::MultiplexedConnection, key: &str, value: &str) {
    redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query_async::<()>(conn)
        .await
        .unwrap();
}

async fn raw_exists(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<u64>(conn)
        .await
        .unwrap()
        == 1
}

/// Polls `check` every 10 ms until it is true or `limit` passes.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    tags: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Every operation, on every backend

/// Exercises every operation of a fresh namespace.
async fn every_operation(cache: &Cache) {
    // get / set / typed values
    assert_eq!(cache.get::<String>("missing").await.unwrap(), None);
    cache.set("s", "123", Ttl::Default).await.unwrap();
    assert_eq!(
        cache.get::<String>("s").await.unwrap().as_deref(),
        Some("123")
    );
    assert!(matches!(
        cache.get::<i64>("s").await,
        Err(CacheError::Serialization { ref key, .. }) if key == "s"
    ));
    cache.set("n", &123, Ttl::Default).await.unwrap();
    assert_eq!(cache.get::<i64>("n").await.unwrap(), Some(123));
    assert!(
        cache.get::<String>("n").await.is_err(),
        "123 was written as a number"
    );
    let ada = User {
        id: 1,
        name: "Ada".into(),
        tags: vec!["admin".into()],
    };
    cache.set("user:1", &ada, Ttl::Never).await.unwrap();
    assert_eq!(
        cache.get::<User>("user:1").await.unwrap(),
        Some(ada.clone())
    );
    cache
        .set("json", &json!({"a": [1, 2]}), Ttl::Default)
        .await
        .unwrap();
    assert_eq!(
        cache.get::<Value>("json").await.unwrap(),
        Some(json!({"a": [1, 2]}))
    );

    // exists / delete
    assert!(cache.exists("s").await.unwrap());
    assert!(!cache.exists("missing").await.unwrap());
    assert!(cache.delete("s").await.unwrap());
    assert!(!cache.delete("s").await.unwrap());
    assert!(!cache.exists("s").await.unwrap());

    // incr
    assert_eq!(cache.incr("counter", 5).await.unwrap(), 5);
    assert_eq!(cache.incr("counter", -7).await.unwrap(), -2);
    assert_eq!(cache.get::<i64>("counter").await.unwrap(), Some(-2));
    assert_eq!(cache.ttl("counter").await.unwrap(), KeyTtl::Persistent);
    cache.set("text", "12", Ttl::Default).await.unwrap();
    assert!(matches!(
        cache.incr("text", 1).await,
        Err(CacheError::NotAnInteger { ref key }) if key == "text"
    ));
    cache.set("big", &i64::MAX, Ttl::Default).await.unwrap();
    assert!(matches!(
        cache.incr("big", 1).await,
        Err(CacheError::Overflow { .. })
    ));
    // An existing key keeps its TTL through incr.
    cache
        .set("hits", &1, Ttl::After(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(cache.incr("hits", 1).await.unwrap(), 2);
    assert!(
        matches!(cache.ttl("hits").await.unwrap(), KeyTtl::Expires(d) if d <= Duration::from_secs(60))
    );

    // ttl
    assert_eq!(cache.ttl("missing").await.unwrap(), KeyTtl::Missing);
    assert_eq!(cache.ttl("user:1").await.unwrap(), KeyTtl::Persistent);
    match cache.ttl("n").await.unwrap() {
        KeyTtl::Expires(d) => assert!(
            d > Duration::from_secs(290) && d <= Duration::from_secs(300),
            "{d:?}"
        ),
        other => panic!("expected the default TTL, got {other:?}"),
    }

    // mget / mset
    cache
        .mset(
            &[("m1", 1), ("m2", 2), ("m3", 3)],
            Ttl::After(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    assert_eq!(
        cache.mget::<i32, _>(&["m1", "nope", "m3"]).await.unwrap(),
        [Some(1), None, Some(3)]
    );
    assert!(
        matches!(cache.ttl("m2").await.unwrap(), KeyTtl::Expires(d) if d <= Duration::from_secs(30))
    );
    assert_eq!(cache.mget::<i32, &str>(&[]).await.unwrap(), []);
    cache.mset::<i32, &str>(&[], Ttl::Default).await.unwrap();
    let owned = vec!["m1".to_owned(), "m2".to_owned()];
    assert_eq!(
        cache.mget::<i32, _>(&owned).await.unwrap(),
        [Some(1), Some(2)]
    );

    // keys / delete_pattern / clear
    cache.set("a*b", &0, Ttl::Default).await.unwrap();
    cache.set("axb", &0, Ttl::Default).await.unwrap();
    assert_eq!(cache.keys("m*").await.unwrap(), ["m1", "m2", "m3"]);
    assert_eq!(cache.keys("m[12]").await.unwrap(), ["m1", "m2"]);
    assert_eq!(cache.keys(r"a\*b").await.unwrap(), ["a*b"]);
    assert_eq!(cache.keys("a?b").await.unwrap(), ["a*b", "axb"]);
    assert_eq!(cache.keys("user:*").await.unwrap(), ["user:1"]);
    assert_eq!(cache.delete_pattern("m*").await.unwrap(), 3);
    assert_eq!(cache.keys("m*").await.unwrap(), Vec::<String>::new());
    assert_eq!(cache.delete_pattern("nothing*").await.unwrap(), 0);
    let left = cache.keys("*").await.unwrap();
    assert_eq!(
        left,
        [
            "a*b", "axb", "big", "counter", "hits", "json", "n", "text", "user:1"
        ]
    );
    assert_eq!(cache.clear().await.unwrap(), left.len() as u64);
    assert!(cache.keys("*").await.unwrap().is_empty());

    // get_or_set, a cached None, a failing factory
    let calls = AtomicUsize::new(0);
    let factory = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<_, std::io::Error>(7u32)
    };
    assert_eq!(
        cache.get_or_set("g", Ttl::Default, factory).await.unwrap(),
        7
    );
    assert_eq!(
        cache.get_or_set("g", Ttl::Default, factory).await.unwrap(),
        7
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let none = cache
        .get_or_set("none", Ttl::Default, || async {
            Ok::<Option<u32>, String>(None)
        })
        .await
        .unwrap();
    assert_eq!(none, None);
    assert!(cache.exists("none").await.unwrap(), "a None is cached");
    let again = cache
        .get_or_set("none", Ttl::Default, || async {
            Ok::<_, String>(Some(1u32))
        })
        .await
        .unwrap();
    assert_eq!(
        again, None,
        "a cached None is a hit: the factory did not run"
    );
    assert_eq!(cache.get::<Option<u32>>("none").await.unwrap(), Some(None));
    let failed = cache
        .get_or_set("boom", Ttl::Default, || async { Err::<u32, _>("db down") })
        .await;
    assert!(
        matches!(failed, Err(CacheError::Factory { ref message, .. }) if message.contains("db down"))
    );
    assert!(
        !cache.exists("boom").await.unwrap(),
        "nothing cached after a failed factory"
    );

    // bad input: typed errors, never a panic
    for ttl in [Ttl::After(Duration::ZERO), Ttl::After(Duration::MAX)] {
        assert!(matches!(
            cache.set("k", &1, ttl).await,
            Err(CacheError::InvalidTtl { .. })
        ));
        assert!(matches!(
            cache.mset(&[("k", 1)], ttl).await,
            Err(CacheError::InvalidTtl { .. })
        ));
        assert!(matches!(
            cache
                .get_or_set("k", ttl, || async { Ok::<_, String>(1) })
                .await,
            Err(CacheError::InvalidTtl { .. })
        ));
    }
    assert!(
        !cache.exists("k").await.unwrap(),
        "a rejected TTL writes nothing"
    );
    let long = "k".repeat(513);
    for bad in ["", "a\nb", "tab\there", long.as_str()] {
        assert!(
            matches!(
                cache.get::<u8>(bad).await,
                Err(CacheError::InvalidKey { .. })
            ),
            "{bad:?}"
        );
        assert!(matches!(
            cache.set(bad, &1, Ttl::Default).await,
            Err(CacheError::InvalidKey { .. })
        ));
        assert!(matches!(
            cache.mget::<u8, _>(&["ok", bad]).await,
            Err(CacheError::InvalidKey { .. })
        ));
        assert!(matches!(
            cache.keys(bad).await,
            Err(CacheError::InvalidPattern { .. })
        ));
        assert!(matches!(
            cache.delete_pattern(bad).await,
            Err(CacheError::InvalidPattern { .. })
        ));
    }
    cache.clear().await.unwrap();
}

#[tokio::test]
async fn memory_every_operation() {
    let service = memory().await;
    every_operation(&service.handle("ops").unwrap()).await;
    let stats = service.stats();
    assert!(stats.hits > 0 && stats.misses > 0, "{stats}");
    let health = service.health().await;
    assert_eq!(health.status(), HealthStatus::Healthy);
    assert!(health.message().unwrap().contains("hits"), "{health}");
}

#[tokio::test]
async fn redis_every_operation() {
    let Ok(server) = RedisServer::start().await else {
        return;
    };
    let service =
        CacheService::connect(redis_options(server.url(), CacheBackendKind::Redis, "ops"))
            .await
            .unwrap();
    every_operation(&service.handle("ops").unwrap()).await;
    let stats = service.stats();
    assert!(stats.hits > 0 && stats.misses > 0, "{stats}");
    let health = service.health().await;
    assert_eq!(health.status(), HealthStatus::Healthy, "{health}");
    assert!(health.message().unwrap().contains("PING"), "{health}");
}

#[tokio::test]
async fn tiered_every_operation() {
    let Ok(server) = RedisServer::start().await else {
        return;
    };
    let service =
        CacheService::connect(redis_options(server.url(), CacheBackendKind::Tiered, "ops"))
            .await
            .unwrap();
    every_operation(&service.handle("ops").unwrap()).await;
    assert_eq!(service.health().await.status(), HealthStatus::Healthy);
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn invalid_namespaces_and_options_are_typed_errors() {
    let service = memory().await;
    for bad in ["", "a.b", "a:b", "users*", "sp ace"] {
        assert!(
            matches!(
                service.handle(bad),
                Err(CacheError::InvalidNamespace { .. })
            ),
            "{bad}"
        );
    }
    let zero_ttl = CacheOptions {
        ttl: 0,
        ..CacheOptions::default()
    };
    let err = CacheService::connect(zero_ttl).await.unwrap_err();
    assert!(err.to_string().contains("services.cache.ttl"), "{err}");
    let not_open = CacheService::new(CacheOptions {
        backend: CacheBackendKind::Redis,
        ..CacheOptions::default()
    });
    assert!(!not_open.is_ready());
    assert!(matches!(
        not_open.handle("x"),
        Err(CacheError::Unavailable { .. })
    ));
    assert_eq!(not_open.health().await.status(), HealthStatus::Unhealthy);
    let err = CallError::from(CacheError::Timeout {
        operation: "GET".into(),
        after: Duration::from_secs(1),
    });
    assert_eq!(err.code(), ErrorCode::Timeout);
}

// ---------------------------------------------------------------------------------------------
// TTLs and eviction

#[tokio::test(start_paused = true)]
async fn memory_ttl_expiry_with_paused_time() {
    let cache = memory().await.handle("ttl").unwrap();
    cache
        .set("short", &1, Ttl::After(Duration::from_millis(100)))
        .await
        .unwrap();
    cache
        .mset(&[("m", 1)], Ttl::After(Duration::from_millis(100)))
        .await
        .unwrap();
    cache.set("forever", &2, Ttl::Never).await.unwrap();
    cache.set("default", &3, Ttl::Default).await.unwrap();
    tokio::time::advance(Duration::from_millis(99)).await;
    assert_eq!(cache.get::<i32>("short").await.unwrap(), Some(1));
    assert!(
        matches!(cache.ttl("short").await.unwrap(), KeyTtl::Expires(d) if d == Duration::from_millis(1))
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(cache.get::<i32>("short").await.unwrap(), None);
    assert!(!cache.exists("m").await.unwrap());
    assert_eq!(cache.ttl("short").await.unwrap(), KeyTtl::Missing);
    assert_eq!(
        cache
            .mget::<i32, _>(&["short", "m", "forever"])
            .await
            .unwrap(),
        [None, None, Some(2)]
    );
    assert_eq!(
        cache.keys("*").await.unwrap(),
        ["default", "forever"],
        "keys never lists expired entries"
    );
    tokio::time::advance(Duration::from_secs(300)).await;
    assert_eq!(cache.keys("*").await.unwrap(), ["forever"]);
    assert_eq!(cache.ttl("forever").await.unwrap(), KeyTtl::Persistent);
    // An expired key counts as missing for incr, get_or_set and delete.
    cache
        .set("c", &5, Ttl::After(Duration::from_millis(10)))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_millis(10)).await;
    assert_eq!(cache.incr("c", 1).await.unwrap(), 1);
    cache
        .set("d", &5, Ttl::After(Duration::from_millis(10)))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_millis(10)).await;
    assert!(!cache.delete("d").await.unwrap());
}

#[tokio::test]
async fn redis_ttl_expiry() {
    let Ok(server) = RedisServer::start().await else {
        return;
    };
    for backend in [CacheBackendKind::Redis, CacheBackendKind::Tiered] {
        let service = CacheService::connect(redis_options(server.url(), backend, "ttl"))
            .await
            .unwrap();
        let cache = service.handle("ttl").unwrap();
        let written = Instant::now();
        cache
            .set("short", &1, Ttl::After(Duration::from_millis(200)))
            .await
            .unwrap();
        cache
            .mset(
                &[("m1", 1), ("m2", 2)],
                Ttl::After(Duration::from_millis(200)),
            )
            .await
            .unwrap();
        cache.set("long", &2, Ttl::Never).await.unwrap();
        let ttl = cache.ttl("short").await.unwrap();
        let value = cache.get::<i32>("short").await.unwrap();
        // (Only checked if this machine was quick enough to read before the expiry.)
        if written.elapsed() < Duration::from_millis(150) {
            assert!(
                matches!(ttl, KeyTtl::Expires(d) if d <= Duration::from_millis(200) && d > Duration::ZERO),
                "{ttl:?}"
            );
            assert_eq!(value, Some(1));
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            cache.get::<i32>("short").await.unwrap(),
            None,
            "{backend:?}"
        );
        assert_eq!(
            cache.mget::<i32, _>(&["m1", "m2", "long"]).await.unwrap(),
            [None, None, Some(2)]
        );
        assert_eq!(cache.ttl("short").await.unwrap(), KeyTtl::Missing);
        assert_eq!(cache.keys("*").await.unwrap(), ["long"]);
        service.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn memory_lru_eviction() {
    let service = CacheService::connect(CacheOptions {
        max_size: 3,
        ..CacheOptions::default()
    })
    .await
    .unwrap();
    let cache = service.handle("lru").unwrap();
    for key in ["a", "b", "c"] {
        cache.set(key, &key, Ttl::Default).await.unwrap();
    }
    // A read refreshes recency: `b` is now the least recently used.
    assert_eq!(
        cache.get::<String>("a").await.unwrap().as_deref(),
        Some("a")
    );
    cache.set("d", "d", Ttl::Default).await.unwrap();
    assert_eq!(cache.keys("*").await.unwrap(), ["a", "c", "d"]);
    assert_eq!(service.stats().evictions, 1);
    assert_eq!(service.stats().entries, 3);
    // Overwriting does not evict.
    cache.set("a", "A", Ttl::Default).await.unwrap();
    assert_eq!(service.stats().evictions, 1);
    cache
        .mset(&[("e", "e"), ("f", "f")], Ttl::Default)
        .await
        .unwrap();
    assert_eq!(cache.keys("*").await.unwrap(), ["a", "e", "f"]);
    assert_eq!(service.stats().evictions, 3);
}

// ---------------------------------------------------------------------------------------------
// Grants, through a booted Xcore

/// Keeps its context so that the test can ask for handles; `put` writes to `readonly`.
struct Keeper {
    slot: Arc<Mutex<Option<PluginContext>>>,
}

#[async_trait]
impl Actions for Keeper {
    fn action_names(&self) -> &'static [&'static str] {
        &["put"]
    }

    async fn handle(
        &self,
        action: &str,
        payload: Value,
        cx: &CallContext,
    ) -> Result<Value, CallError> {
        let ctx = self
            .slot
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| CallError::internal("not loaded"))?;
        match action {
            "put" => {
                let ns = payload["namespace"].as_str().unwrap_or("readonly");
                let cache = ctx.named::<Cache>(ns)?.for_call(cx);
                cache.set("k", &payload["value"], Ttl::Default).await?;
                Ok(json!(cache.tenant().as_str()))
            }
            other => Err(CallError::unknown_action(other, self.action_names())),
        }
    }
}

#[async_trait]
impl Plugin for Keeper {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        *self.slot.lock().unwrap() = Some(ctx.clone());
        Ok(())
    }
}

fn keeper(
    name: &str,
    services: &[&str],
    grants: &[&str],
) -> (Manifest, Keeper, Arc<Mutex<Option<PluginContext>>>) {
    let slot = Arc::new(Mutex::new(None));
    let manifest = Manifest::builder(name, "1.0.0")
        .services(services.iter().copied())
        .permissions(grants.iter().copied())
        .build()
        .unwrap();
    (manifest, Keeper { slot: slot.clone() }, slot)
}

#[tokio::test]
async fn grants_isolate_namespaces_and_actions() {
    let service = CacheService::new(memory_options());
    let (manifest, plugin, slot) = keeper(
        "sessions_app",
        &["cache"],
        &[
            "cache.sessions: *",
            "cache.readonly: read",
            "cache.shared: read, write",
        ],
    );
    let app = TestApp::builder()
        .service(service.clone())
        .plugin(manifest, plugin)
        .boot()
        .await
        .unwrap();
    let ctx = slot.lock().unwrap().clone().unwrap();

    // Host writes to `users`; the plugin may not even open it.
    let host_users = service.handle("users").unwrap();
    host_users
        .set("secret", "s3cr3t", Ttl::Default)
        .await
        .unwrap();
    let denials_before = app.xcore().audit().total();
    match ctx.named::<Cache>("users") {
        Err(AccessError::PermissionDenied {
            plugin,
            resource,
            action,
        }) => {
            assert_eq!(
                (plugin.as_str(), resource.as_str(), action.as_str()),
                ("sessions_app", "cache.users", "read")
            );
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert_eq!(app.xcore().audit().total(), denials_before + 1);

    // `sessions`: everything, and only its own keys.
    let sessions = ctx.named::<Cache>("sessions").unwrap();
    assert_eq!(sessions.plugin(), Some("sessions_app"));
    assert_eq!(sessions.get::<String>("secret").await.unwrap(), None);
    sessions.set("secret", "mine", Ttl::Default).await.unwrap();
    assert_eq!(
        host_users.get::<String>("secret").await.unwrap().as_deref(),
        Some("s3cr3t")
    );
    assert_eq!(sessions.clear().await.unwrap(), 1);
    assert_eq!(
        host_users.get::<String>("secret").await.unwrap().as_deref(),
        Some("s3cr3t")
    );

    // `readonly`: read only; every write and delete is refused and audited.
    service
        .handle("readonly")
        .unwrap()
        .set("k", &1, Ttl::Default)
        .await
        .unwrap();
    let ro = ctx.named::<Cache>("readonly").unwrap();
    assert_eq!(ro.get::<i32>("k").await.unwrap(), Some(1));
    assert!(ro.exists("k").await.unwrap());
    assert_eq!(ro.keys("*").await.unwrap(), ["k"]);
    let before = app.xcore().audit().total();
    let refused = [
        ro.set("k", &2, Ttl::Default).await.unwrap_err(),
        ro.incr("n", 1).await.unwrap_err(),
        ro.mset(&[("a", 1)], Ttl::Default).await.unwrap_err(),
        ro.delete("k").await.unwrap_err(),
        ro.delete_pattern("*").await.unwrap_err(),
        ro.clear().await.unwrap_err(),
        ro.get_or_set("g", Ttl::Default, || async { Ok::<_, String>(1) })
            .await
            .unwrap_err(),
    ];
    let actions: Vec<String> = refused
        .iter()
        .map(|e| match e {
            CacheError::PermissionDenied {
                plugin,
                resource,
                action,
            } => {
                assert_eq!(
                    (plugin.as_str(), resource.as_str()),
                    ("sessions_app", "cache.readonly")
                );
                action.clone()
            }
            other => panic!("expected a denial, got {other:?}"),
        })
        .collect();
    assert_eq!(
        actions,
        [
            "write", "write", "write", "delete", "delete", "delete", "write"
        ]
    );
    assert_eq!(app.xcore().audit().total(), before + 7);
    let last = app.xcore().audit().denials(Some("sessions_app"), 1);
    assert_eq!(
        (last[0].resource.as_str(), last[0].action.as_str()),
        ("cache.readonly", "write")
    );
    assert_eq!(
        ro.get::<i32>("k").await.unwrap(),
        Some(1),
        "nothing was written"
    );

    // `shared`: read and write, no delete.
    let shared = ctx.named::<Cache>("shared").unwrap();
    shared.set("k", &1, Ttl::Default).await.unwrap();
    assert!(matches!(
        shared.delete("k").await,
        Err(CacheError::PermissionDenied { .. })
    ));

    // A refusal inside an action is a `permission_denied` call error; a grant works there too,
    // with the call's tenant.
    let err = app
        .call("sessions_app", "put", json!({"value": 1}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PermissionDenied);
    let acme = CallContext::host().with_tenant(TenantId::new("acme").unwrap());
    let tenant = app
        .call_with(
            acme,
            "sessions_app",
            "put",
            json!({"namespace": "sessions", "value": 2}),
        )
        .await
        .unwrap();
    assert_eq!(tenant, json!("acme"));
    let host_sessions = service.handle("sessions").unwrap();
    assert_eq!(host_sessions.get::<i32>("k").await.unwrap(), None);
    let acme_sessions = host_sessions.for_tenant(&TenantId::new("acme").unwrap());
    assert_eq!(acme_sessions.get::<i32>("k").await.unwrap(), Some(2));

    // A bad namespace is refused before any grant is looked at.
    assert!(matches!(
        ctx.named::<Cache>("sessions.x"),
        Err(AccessError::InvalidArgument { .. })
    ));
    app.shutdown().await;
}

#[tokio::test]
async fn the_service_must_be_declared() {
    let (manifest, plugin, slot) = keeper("undeclared", &[], &["cache.*: *"]);
    let app = TestApp::builder()
        .service(CacheService::new(memory_options()))
        .plugin(manifest, plugin)
        .boot()
        .await
        .unwrap();
    let ctx = slot.lock().unwrap().clone().unwrap();
    assert!(matches!(
        ctx.named::<Cache>("x"),
        Err(AccessError::NotDeclared { .. })
    ));
    app.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Tenants

/// acme and globex share a namespace handle but never each other's keys, in every method.
async fn tenants_are_isolated(cache: &Cache) {
    let acme = cache.for_tenant(&TenantId::new("acme").unwrap());
    let globex = cache.for_tenant(&TenantId::new("globex").unwrap());
    assert_eq!(acme.tenant().as_str(), "acme");

    acme.set("k", "acme", Ttl::Default).await.unwrap();
    assert_eq!(globex.get::<String>("k").await.unwrap(), None);
    assert_eq!(
        cache.get::<String>("k").await.unwrap(),
        None,
        "nor the default tenant"
    );
    assert!(!globex.exists("k").await.unwrap());
    assert_eq!(globex.ttl("k").await.unwrap(), KeyTtl::Missing);
    assert_eq!(acme.incr("n", 1).await.unwrap(), 1);
    assert_eq!(globex.incr("n", 10).await.unwrap(), 10);
    assert_eq!(acme.incr("n", 1).await.unwrap(), 2);
    acme.mset(&[("m1", 1), ("m2", 2)], Ttl::Default)
        .await
        .unwrap();
    assert_eq!(
        globex.mget::<i32, _>(&["m1", "m2", "k"]).await.unwrap(),
        [None, None, None]
    );
    assert_eq!(
        acme.mget::<i32, _>(&["m1", "m2"]).await.unwrap(),
        [Some(1), Some(2)]
    );
    globex.mset(&[("m1", 100)], Ttl::Default).await.unwrap();
    assert_eq!(acme.get::<i32>("m1").await.unwrap(), Some(1));
    assert_eq!(acme.keys("*").await.unwrap(), ["k", "m1", "m2", "n"]);
    assert_eq!(globex.keys("*").await.unwrap(), ["m1", "n"]);
    let from_acme: String = acme
        .get_or_set("g", Ttl::Default, || async {
            Ok::<_, String>("acme".to_owned())
        })
        .await
        .unwrap();
    let from_globex: String = globex
        .get_or_set("g", Ttl::Default, || async {
            Ok::<_, String>("globex".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(
        (from_acme.as_str(), from_globex.as_str()),
        ("acme", "globex")
    );
    assert!(!globex.delete("k").await.unwrap());
    assert!(acme.exists("k").await.unwrap());
    assert_eq!(globex.delete_pattern("m*").await.unwrap(), 1);
    assert_eq!(acme.keys("m*").await.unwrap(), ["m1", "m2"]);
    assert_eq!(globex.clear().await.unwrap(), 2);
    assert_eq!(acme.keys("*").await.unwrap(), ["g", "k", "m1", "m2", "n"]);
    assert_eq!(acme.clear().await.unwrap(), 5);
}

#[tokio::test]
async fn memory_tenant_isolation() {
    tenants_are_isolated(&memory().await.handle("tenants").unwrap()).await;
}

#[tokio::test]
async fn redis_tenant_isolation_and_key_layout() {
    let Ok(server) = RedisServer::start().await else {
        return;
    };
    for backend in [CacheBackendKind::Redis, CacheBackendKind::Tiered] {
        let options = redis_options(server.url(), backend, "tenants");
        let prefix = options.prefix.clone();
        let service = CacheService::connect(options).await.unwrap();
        let cache = service.handle("tenants").unwrap();
        tenants_are_isolated(&cache).await;
        // The stored key is `<prefix>:<tenant>:<namespace>:<key>`.
        cache
            .for_tenant(&TenantId::new("acme").unwrap())
            .set("user:1", &1, Ttl::Default)
            .await
            .unwrap();
        let mut raw = raw_connection(server.url()).await;
        assert!(raw_exists(&mut raw, &format!("{prefix}:acme:tenants:user:1")).await);
        let stored: String = redis::cmd("GET")
            .arg(format!("{prefix}:acme:tenants:user:1"))
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(stored, "1");
        service.shutdown().await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// `clear` touches one namespace of one tenant, nothing else

#[tokio::test]
async fn redis_clear_leaves_everything_else() {
    let Ok(server) = RedisServer::start().await else {
        return;
    };
    // A prefix with glob characters: unescaped, `p*` would match other applications' keys.
    let mut options = redis_options(server.url(), CacheBackendKind::Redis, "clear");
    let base = options.prefix.clone();
    options.prefix = format!("{base}*[x]?");
    let prefix = options.prefix.clone();
    let service = CacheService::connect(options).await.unwrap();
    let mine = service.handle("mine").unwrap();
    let other = service.handle("other").unwrap();
    for key in ["a", "b", "c"] {
        mine.set(key, &1, Ttl::Default).await.unwrap();
    }
    other.set("a", &1, Ttl::Default).await.unwrap();
    mine.for_tenant(&TenantId::new("acme").unwrap())
        .set("a", &1, Ttl::Default)
        .await
        .unwrap();
    let mut raw = raw_connection(server.url()).await;
    let foreign = [
        format!("{base}-foreign"),
        format!("{base}Z[x]?:default:mine:a"),
        format!("{base}*[x]x:default:mine:a"),
        format!("{base}*[x]?:default:mine"),
        format!("{base}*[x]?:default:minex:a"),
    ];
    for key in &foreign {
        raw_set(&mut raw, key, "not xcore's").await;
    }
    assert_eq!(mine.clear().await.unwrap(), 3);
    assert!(mine.keys("*").await.unwrap().is_empty());
    assert_eq!(other.keys("*").await.unwrap(), ["a"]);
    assert!(raw_exists(&mut raw, &format!("{prefix}:acme:mine:a")).await);
    for key in &foreign {
        assert!(raw_exists(&mut raw, key).await, "{key} was deleted");
    }
    assert_eq!(mine.delete_pattern("*").await.unwrap(), 0);
    for key in &foreign {
        assert!(raw_exists(&mut raw, key).await, "{key} was deleted");
    }
}

#[tokio::test]
async fn memory_clear_leaves_other_namespaces_and_tenants() {
    let service = memory().await;
    let mine = service.handle("mine").unwrap();
    mine.set("a", &1, Ttl::Default).await.unwrap();
    service
        .handle("other")
        .unwrap()
        .set("a", &1, Ttl::Default)
        .await
        .unwrap();
    service
        .handle("minex")
        .unwrap()
        .set("a", &1, Ttl::Default)
        .await
        .unwrap();
    let acme = mine.for_tenant(&TenantId::new("acme").unwrap());
    acme.set("a", &1, Ttl::Default).await.unwrap();
    assert_eq!(mine.clear().await.unwrap(), 1);
    assert!(service.handle("other").unwrap().exists("a").await.unwrap());
    assert!(service.handle("minex").unwrap().exists("a").await.unwrap());
    assert!(acme.exists("a").await.unwrap());
}

// ---------------------------------------------------------------------------------------------
// Single flight

async fn single_flight(cache: Cache) {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let cache = cache.clone();
        let calls = calls.clone();
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_set("hot", Ttl::Default, || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<_, String>(User {
                        id: 7,
                        name: "loaded".into(),
                        tags: vec![],
                    })
                })
                .await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().name, "loaded");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "100 concurrent misses ran the factory once"
    );

    // A failing leader: the waiters get its error, nothing is cached, the next call retries.
    let failures = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let cache = cache.clone();
        let failures = failures.clone();
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_set("fails", Ttl::Default, || async move {
                    failures.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err::<u32, _>("no")
                })
                .await
        }));
    }
    for task in tasks {
        assert!(matches!(
            task.await.unwrap(),
            Err(CacheError::Factory { .. })
        ));
    }
    assert_eq!(failures.load(Ordering::SeqCst), 1);

    // A cancelled leader does not strand its waiters.
    let slow = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_set("cancelled", Ttl::Default, || async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok::<_, String>(0u32)
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_set("cancelled", Ttl::Default, || async {
                    Ok::<_, String>(1u32)
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    slow.abort();
    let got = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.unwrap(), 1, "the waiter took over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_single_flight() {
    single_flight(memory().await.handle("flight").unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_single_flight() {
    let Ok(server) = RedisServer::start().await else {
        return;
    };
    let service = CacheService::connect(redis_options(
        server.url(),
        CacheBackendKind::Redis,
        "flight",
    ))
    .await
    .unwrap();
    single_flight(service.handle("flight").unwrap()).await;
}

// ---------------------------------------------------------------------------------------------
// Tiered

#[tokio::test]
async fn tiered_l2_hit_fills_l1_with_the_remaining_ttl() {
    let Ok(server) = RedisServer::start().await else {
        return;
    };
    let options = redis_options(server.url(), CacheBackendKind::Tiered, "fill");
    let prefix = options.prefix.clone();
    let service = CacheService::connect(options).await.unwrap();
    let cache = service.handle("fill").unwrap();
    let key = format!("{prefix}:default:fill:k");
    let mut raw = raw_connection(server.url()).await;

    // Written by someone else, 2 s to live; read after 1 s: L1 gets what is left (about 1 s),
    // not the default TTL (300 s).
    redis::cmd("SET")
        .arg(&key)
        .arg("\"old\"")
        .arg("PX")
        .arg(2_000)
        .query_async::<()>(&mut raw)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("old")
    );
    let filled = Instant::now();
    assert_eq!(service.stats().l1_hits, 0);
    // Change L2 behind the cache's back (no invalidation message), without expiry.
    raw_set(&mut raw, &key, "\"new\"").await;
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("old"),
        "served by L1"
    );
    assert_eq!(service.stats().l1_hits, 1);
    // The L1 entry ends when the L2 entry it was read from would have: within the second that
    // was left, long before the default TTL.
    assert!(
        eventually(Duration::from_millis(1_500), || async {
            cache.get::<String>("k").await.unwrap().as_deref() == Some("new")
        })
        .await,
        "the L1 entry outlived its L2 TTL"
    );
    assert!(filled.elapsed() <= Duration::from_millis(1_500));

    // Own writes are kept in L1 (own invalidation messages are ignored).
    cache.set("mine", &1, Ttl::Default).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = service.stats().l1_hits;
    assert_eq!(cache.get::<i32>("mine").await.unwrap(), Some(1));
    assert_eq!(service.stats().l1_hits, before + 1);
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn tiered_writes_invalidate_other_instances() {
    let Ok(server) = RedisServer::start().await else {
        return;
    };
    let options = redis_options(server.url(), CacheBackendKind::Tiered, "two");
    let (one, two) = (
        CacheService::new(options.clone()),
        CacheService::new(options),
    );
    let app_one = TestApp::builder()
        .service(one.clone())
        .boot()
        .await
        .unwrap();
    let app_two = TestApp::builder()
        .service(two.clone())
        .boot()
        .await
        .unwrap();
    let (a, b) = (one.handle("shared").unwrap(), two.handle("shared").unwrap());

    a.set("k", &1, Ttl::Default).await.unwrap();
    assert_eq!(b.get::<i32>("k").await.unwrap(), Some(1));
    let hits = two.stats().l1_hits;
    assert_eq!(b.get::<i32>("k").await.unwrap(), Some(1));
    assert_eq!(
        two.stats().l1_hits,
        hits + 1,
        "the second read is served by two's L1"
    );

    // A write through one drops the entry from two's L1.
    a.set("k", &2, Ttl::Default).await.unwrap();
    assert!(
        eventually(Duration::from_secs(2), || async {
            b.get::<i32>("k").await.unwrap() == Some(2)
        })
        .await
    );
    // So do incr, mset, delete, delete_pattern and clear.
    assert_eq!(a.incr("k", 1).await.unwrap(), 3);
    assert!(
        eventually(Duration::from_secs(2), || async {
            b.get::<i32>("k").await.unwrap() == Some(3)
        })
        .await
    );
    a.mset(&[("k", 4)], Ttl::Default).await.unwrap();
    assert!(
        eventually(Duration::from_secs(2), || async {
            b.get::<i32>("k").await.unwrap() == Some(4)
        })
        .await
    );
    assert!(a.delete("k").await.unwrap());
    assert!(
        eventually(Duration::from_secs(2), || async {
            b.get::<i32>("k").await.unwrap().is_none()
        })
        .await
    );
    a.set("p1", &1, Ttl::Default).await.unwrap();
    assert_eq!(b.get::<i32>("p1").await.unwrap(), Some(1));
    assert_eq!(a.delete_pattern("p*").await.unwrap(), 1);
    assert!(
        eventually(Duration::from_secs(2), || async {
            b.get::<i32>("p1").await.unwrap().is_none()
        })
        .await
    );
    a.set("c1", &1, Ttl::Default).await.unwrap();
    assert_eq!(b.get::<i32>("c1").await.unwrap(), Some(1));
    assert_eq!(a.clear().await.unwrap(), 1);
    assert!(
        eventually(Duration::from_secs(2), || async {
            b.get::<i32>("c1").await.unwrap().is_none()
        })
        .await
    );

    // Shutdown stops the subscriber: the L1 is bypassed and health says so.
    app_two.shutdown().await;
    assert_eq!(two.health().await.status(), HealthStatus::Degraded);
    a.set("after", &1, Ttl::Default).await.unwrap();
    assert_eq!(b.get::<i32>("after").await.unwrap(), Some(1));
    a.set("after", &2, Ttl::Default).await.unwrap();
    assert_eq!(
        b.get::<i32>("after").await.unwrap(),
        Some(2),
        "no L1 after shutdown"
    );
    app_one.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Redis going away

#[tokio::test]
async fn a_redis_that_is_down_fails_the_boot_clearly() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let started = Instant::now();
    let err = TestApp::builder()
        .service(CacheService::new(redis_options(
            &url,
            CacheBackendKind::Redis,
            "down",
        )))
        .boot()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("cache") && message.contains(&url),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

async fn survives_a_restart(server: &RedisServer, backend: CacheBackendKind) {
    let service = CacheService::connect(redis_options(server.url(), backend, "restart"))
        .await
        .unwrap();
    let cache = service.handle("restart").unwrap();
    cache.set("k", &1, Ttl::Default).await.unwrap();
    assert_eq!(cache.get::<i32>("k").await.unwrap(), Some(1));

    server.stop().unwrap();
    let stopped = Instant::now();
    if backend == CacheBackendKind::Tiered {
        // The subscriber notices the lost connection and stops serving from L1 (which could
        // miss invalidations from now on).
        assert!(
            eventually(Duration::from_secs(2), || async {
                service.health().await.status() != HealthStatus::Healthy
            })
            .await
        );
    }
    // Every call fails, within its timeouts (500 ms to connect, 500 ms per command, one retry
    // of an idempotent command on a fresh connection), and nothing hangs or panics.
    let limit = Duration::from_millis(2_500);
    macro_rules! fails_in_time {
        ($call:expr) => {{
            let started = Instant::now();
            let outcome = $call.await;
            assert!(
                started.elapsed() < limit,
                "{} took {:?}",
                stringify!($call),
                started.elapsed()
            );
            outcome.expect_err(stringify!($call))
        }};
    }
    fails_in_time!(cache.get::<i32>("k"));
    fails_in_time!(cache.set("k", &2, Ttl::Default));
    fails_in_time!(cache.incr("n", 1));
    fails_in_time!(cache.mget::<i32, _>(&["k"]));
    fails_in_time!(cache.keys("*"));
    fails_in_time!(cache.clear());
    let err = fails_in_time!(cache.get_or_set("g", Ttl::Default, || async { Ok::<_, String>(1) }));
    assert!(
        matches!(
            err,
            CacheError::Unavailable { .. } | CacheError::Timeout { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("Redis"), "{err}");
    let code = CallError::from(err).code();
    assert!(
        matches!(code, ErrorCode::Unavailable | ErrorCode::Timeout),
        "{code:?}"
    );
    assert_eq!(service.health().await.status(), HealthStatus::Unhealthy);
    // An outage of 5 s at least (issue 14), then the server comes back.
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(stopped.elapsed())).await;
    assert_eq!(service.health().await.status(), HealthStatus::Unhealthy);

    server.restart().await.unwrap();
    // Working again once the server is back (the restarted server is empty).
    assert!(
        eventually(Duration::from_secs(5), || async {
            cache.set("k", &3, Ttl::Default).await.is_ok()
        })
        .await,
        "the cache did not come back"
    );
    assert_eq!(cache.get::<i32>("k").await.unwrap(), Some(3));
    assert_eq!(cache.incr("n", 1).await.unwrap(), 1);
    assert!(
        eventually(Duration::from_secs(5), || async {
            service.health().await.status() == HealthStatus::Healthy
        })
        .await
    );
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn redis_down_mid_run_then_back() {
    // Needs a server of its own, to stop and restart.
    let Ok(server) = RedisServer::start_local().await else {
        return;
    };
    survives_a_restart(&server, CacheBackendKind::Redis).await;
    survives_a_restart(&server, CacheBackendKind::Tiered).await;
}
