//! The flow of the reference page 000, end to end on the `user_manager` example plugin: 422 on
//! bad input, 201 on good, the daily job listed, the event observed, the welcome task executed.

#[path = "../examples/user_manager/plugin.rs"]
#[allow(dead_code)]
mod plugin;

use std::time::Duration;

use serde_json::json;
use xcore::{CallContext, TenantId, config::Config, services::db::DatabaseOptions};
use xcore_testkit::{EventRecorder, TestApp};

fn config() -> Config {
    let mut config = Config::default();
    config
        .services
        .databases
        .insert("default".into(), DatabaseOptions::default());
    config.tenancy.enabled = true;
    config
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
    let jobs = xcore.scheduler().unwrap().list_all();
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
