//! Tenant admission: `tenancy.provision: known` refuses unregistered tenants with 404 and
//! creates nothing; `auto` with `max_tenants` enforces the cap with a clear error; plugin code
//! cannot provision a refused tenant either.

#[path = "../examples/user_manager/plugin.rs"]
#[allow(dead_code)]
mod plugin;

use serde_json::json;
use xcore::services::db::Db;
use xcore::{
    TenantId,
    config::Config,
    services::db::{DatabaseOptions, DbError},
    tenancy::Provision,
};
use xcore_testkit::{TestApp, TestClient};

fn config(url: &str, provision: Provision, max_tenants: usize) -> Config {
    let mut config = plugin::embedded_config();
    config.services.databases.insert(
        "default".into(),
        DatabaseOptions {
            url: url.to_owned(),
            ..DatabaseOptions::default()
        },
    );
    config.tenancy.provision = provision;
    config.tenancy.max_tenants = max_tenants;
    config
}

/// The user_manager example booted on `config`, and a client of its web layer.
async fn start(config: &Config) -> (xcore::Xcore, TestClient) {
    let xcore = TestApp::builder()
        .plugins(["user_manager"])
        .configure(|b| b.config(config.clone()))
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    let client = TestClient::new(xcore.web().config(config).build().unwrap());
    (xcore, client)
}

const REGISTER: &str = "/plugin/user_manager/v2/register";

async fn register(client: &TestClient, tenant: &str, name: &str) -> (u16, serde_json::Value) {
    let response = client
        .clone()
        .tenant(tenant)
        .post_json(
            REGISTER,
            &json!({"username": name, "email": format!("{name}@xcore.dev")}),
        )
        .await;
    (response.status().as_u16(), response.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_tenants_only_and_nothing_created_for_others() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/app.db", dir.path().display());
    let config = config(&url, Provision::Known, 100);
    let (xcore, client) = start(&config).await;

    for i in 0..20 {
        let (status, body) = register(&client, &format!("stranger-{i}"), "alice").await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["code"], "unknown_tenant", "{body}");
    }
    let db = xcore.named::<Db>("default").unwrap();
    assert_eq!(db.open_tenants(), 0, "no tenant pool was opened");
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("tenant"))
        .collect();
    assert!(files.is_empty(), "tenant files were created: {files:?}");
    // Nor can plugin code provision a refused tenant.
    let err = db
        .for_tenant(&TenantId::new("stranger-0").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::TenantRefused(_)), "{err}");

    // Once the host registers it, the tenant is served.
    xcore.tenants().register(TenantId::new("acme").unwrap());
    let (status, body) = register(&client, "acme", "alice").await;
    assert_eq!(status, 201, "{body}");
    xcore.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_provisioning_stops_at_the_cap() {
    let config = config("sqlite::memory:", Provision::Auto, 3);
    let (xcore, client) = start(&config).await;
    for i in 0..3 {
        let (status, body) = register(&client, &format!("t{i}"), "alice").await;
        assert_eq!(status, 201, "{body}");
    }
    for i in 3..50 {
        let (status, body) = register(&client, &format!("t{i}"), "alice").await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["code"], "tenant_limit", "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("tenancy.max_tenants"),
            "{body}"
        );
    }
    // Known tenants keep being served.
    let (status, body) = register(&client, "t1", "bob").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(xcore.tenants().len(), 3);
    assert!(xcore.named::<Db>("default").unwrap().open_tenants() <= 3);
    xcore.shutdown().await;
}
