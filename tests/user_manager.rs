//! The flow of the reference page 000, end to end on the `user_manager` example plugin: 422 on
//! bad input, 201 on good, the daily job listed, the event observed, the welcome task executed.

#[path = "../examples/user_manager/plugin.rs"]
#[allow(dead_code)]
mod plugin;

use std::time::Duration;

use serde_json::json;
use xcore::services::scheduler::Scheduler;
use xcore::{
    CallContext, TenantId,
    config::{Config, ConfigLoader, Format},
};
use xcore_testkit::{EventRecorder, TestApp};

fn config() -> Config {
    plugin::embedded_config()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_000_flow() {
    let xcore_builder = TestApp::builder()
        .plugins(["user_manager"])
        .configure(|b| b.config(config()));
    let xcore = xcore_builder.build().unwrap();
    let recorder = EventRecorder::attach(&xcore, "user.*").unwrap();
    xcore.boot().await.unwrap();
    let app = xcore_testkit::TestClient::new(
        xcore
            .web()
            .config(&config())
            .admin_token("a-test-admin-token")
            .build()
            .unwrap(),
    )
    .tenant("test_tenant");
    let path = "/plugin/user_manager/v2/register";

    // 1. Validation.
    let bad = app.post_json(path, &json!({"email": "not-an-email"})).await;
    assert_eq!(bad.status(), 422, "{}", bad.text());
    let bad = app
        .post_json(path, &json!({"username": "al", "email": "not-an-email"}))
        .await;
    assert_eq!(bad.status(), 422);
    let fields: Vec<String> = bad.json()["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["username", "email"]);

    // 2. Success.
    let good = app
        .post_json(
            path,
            &json!({"username": "alice", "email": "alice@xcore.dev"}),
        )
        .await;
    assert_eq!(good.status(), 201, "{}", good.text());
    assert_eq!(good.json()["user_id"], 1);
    let again = app
        .post_json(
            path,
            &json!({"username": "alice", "email": "alice@xcore.dev"}),
        )
        .await;
    assert_eq!(again.status(), 409);

    // 3. The daily report job of the tenant is listed.
    let jobs = xcore.handle::<Scheduler>().unwrap().list_all();
    let daily = jobs
        .iter()
        .find(|j| j.id == "daily_user_report" && j.tenant == "test_tenant")
        .unwrap_or_else(|| panic!("no daily job for the tenant: {jobs:?}"));
    assert_eq!(daily.plugin.as_deref(), Some("user_manager"));
    assert!(daily.next_run.is_some());

    // 4. The event was observed, for the tenant.
    let created = recorder
        .wait_for("user.created", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(created.tenant().as_str(), "test_tenant");
    assert_eq!(created.payload()["username"], "alice");

    // 5. The welcome e-mail task ran (in the worker, for the tenant).
    let tenant = CallContext::host().with_tenant(TenantId::new("test_tenant").unwrap());
    let mut sent = json!([]);
    for _ in 0..100 {
        sent = xcore
            .call_with(tenant.clone(), "user_manager", "sent_emails", json!(null))
            .await
            .unwrap();
        if sent != json!([]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sent, json!(["alice@xcore.dev"]));

    // The count action, per tenant.
    let count = xcore
        .call_with(tenant, "user_manager", "get_count", json!(null))
        .await
        .unwrap();
    assert_eq!(count, json!({"count": 1}));
    let other = app
        .clone()
        .tenant("globex")
        .get("/plugin/user_manager/v2/users/count")
        .await;
    assert_eq!(other.json(), json!({"count": 0}));

    xcore.shutdown().await;
}

/// 50 concurrent registrations of distinct names and 50 of one name, for a fresh tenant:
/// never a 500, every distinct name registered once with its own id, exactly one 201 for the
/// shared name (the rest 409), and one daily job for the tenant.
async fn concurrent_registrations(config: Config, tenant: &str) {
    let xcore = TestApp::builder()
        .plugins(["user_manager"])
        .configure(|b| b.config(config.clone()))
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    let app =
        xcore_testkit::TestClient::new(xcore.web().config(&config).build().unwrap()).tenant(tenant);
    let path = "/plugin/user_manager/v2/register";
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..50 {
        for (shared, username) in [(false, format!("user{i}")), (true, "shared".to_owned())] {
            let app = app.clone();
            let body = json!({"username": username, "email": format!("{username}.{i}@xcore.dev")});
            requests.spawn(async move {
                let reply = app.post_json(path, &body).await;
                (shared, reply.status().as_u16(), reply.text())
            });
        }
    }
    let (mut created, mut shared_created, mut shared_conflicts) = (0, 0, 0);
    while let Some(done) = requests.join_next().await {
        let (shared, status, text) = done.unwrap();
        assert_ne!(status, 500, "{text}");
        match (shared, status) {
            (false, 201) => created += 1,
            (true, 201) => shared_created += 1,
            (true, 409) => shared_conflicts += 1,
            other => panic!("unexpected {other:?}: {text}"),
        }
    }
    assert_eq!((created, shared_created, shared_conflicts), (50, 1, 49));
    let cx = CallContext::host().with_tenant(TenantId::new(tenant).unwrap());
    let count = xcore
        .call_with(cx, "user_manager", "get_count", json!(null))
        .await
        .unwrap();
    assert_eq!(count, json!({"count": 51}));
    let daily = xcore
        .handle::<Scheduler>()
        .unwrap()
        .list_all()
        .into_iter()
        .filter(|j| j.id == "daily_user_report" && j.tenant == tenant)
        .count();
    assert_eq!(daily, 1);
    xcore.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_on_embedded_defaults() {
    concurrent_registrations(config(), "load").await;
}

/// The same on the production config (Postgres and Redis), when the servers are given by
/// `XCORE_TEST_POSTGRES_URL` and `XCORE_TEST_REDIS_URL`; a fresh tenant each run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_on_postgres_and_redis() {
    let (Ok(postgres), Ok(redis)) = (
        std::env::var("XCORE_TEST_POSTGRES_URL"),
        std::env::var("XCORE_TEST_REDIS_URL"),
    ) else {
        eprintln!("skipped: XCORE_TEST_POSTGRES_URL and XCORE_TEST_REDIS_URL are not both set");
        return;
    };
    let config = ConfigLoader::new()
        .env([
            ("DATABASE_URL", postgres.as_str()),
            ("REDIS_URL", redis.as_str()),
        ])
        .load_str(
            include_str!("../examples/user_manager/production.yaml"),
            Format::Yaml,
        );
    let config = config.unwrap();
    let tenant = format!(
        "load_{:08x}",
        std::process::id()
            ^ (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos())
    );
    concurrent_registrations(config, &tenant).await;
}
