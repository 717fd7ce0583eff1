//! A config drives an `Xcore`: the services it configures, plugins' and extensions' own
//! sections, the production guard.

use serde::Deserialize;
use serde_json::{Value, json};
use xcore::services::db::Db;
use xcore::{
    Actions, CallContext, CallError, Manifest, NodeState, Plugin, PluginContext, PluginError,
    Service, ServiceContext, ServiceError, Xcore, async_trait,
    config::{Config, ConfigLoader, Format},
};

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Limits {
    max_users: u32,
    #[serde(default)]
    banner: String,
}

/// Reads its section in `on_load`, and the `default` database.
#[derive(Default)]
struct Users {
    limits: Limits,
}

#[async_trait]
impl Actions for Users {
    async fn handle(&self, _: &str, _: Value, _: &CallContext) -> Result<Value, CallError> {
        Ok(json!({ "max_users": self.limits.max_users, "banner": self.limits.banner }))
    }
}

#[async_trait]
impl Plugin for Users {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        self.limits = ctx.config()?;
        if ctx.manifest().services().iter().any(|s| s == "db") {
            ctx.handle::<Db>()?.ping().await?;
        }
        Ok(())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmtpConfig {
    host: String,
    port: u16,
}

#[derive(Default)]
struct Mailer {
    seen: std::sync::Arc<std::sync::Mutex<Option<(String, u16)>>>,
}

#[async_trait]
impl Service for Mailer {
    fn name(&self) -> &str {
        "mailer"
    }

    async fn init(&mut self, ctx: &ServiceContext) -> Result<(), ServiceError> {
        let config: SmtpConfig = ctx.config()?;
        *self.seen.lock().unwrap() = Some((config.host, config.port));
        Ok(())
    }
}

fn load(yaml: &str, env: &[(&str, &str)]) -> Config {
    ConfigLoader::new()
        .env(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .load_str(yaml, Format::Yaml)
        .unwrap()
}

fn users(name: &str, services: &[&str]) -> (Manifest, Users) {
    let manifest = Manifest::builder(name, "1.0.0")
        .services(services.iter().copied())
        .permissions(["db.default: read"])
        .build()
        .unwrap();
    (manifest, Users::default())
}

#[tokio::test]
async fn plugins_and_extensions_read_their_sections_and_bad_values_fail_only_them() {
    let config = load(
        r#"
plugins:
  users:
    max_users: ${MAX_USERS:-10}
    banner: "welcome"
  broken:
    max_users: "many"
services:
  databases:
    default: { url: "sqlite::memory:" }
  extensions:
    email: { host: smtp.example.com, port: 2525 }
"#,
        &[("MAX_USERS", "25")],
    );
    let (m1, p1) = users("users", &["db"]);
    let (m2, p2) = users("broken", &[]);
    let (m3, p3) = users("unconfigured", &[]);
    let mailer = Mailer::default();
    let seen = mailer.seen.clone();
    let xcore = Xcore::builder()
        .without_registered()
        .config(config)
        .extension("email", mailer)
        .plugin(m1, p1)
        .plugin(m2, p2)
        .plugin(m3, p3)
        .build()
        .unwrap();
    let report = xcore.boot().await.unwrap();
    assert_eq!(
        report.service("db").unwrap().state(),
        NodeState::Started,
        "{report}"
    );
    assert_eq!(
        report.service("email").unwrap().state(),
        NodeState::Started,
        "{report}"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        Some(("smtp.example.com".to_owned(), 2525))
    );
    assert_eq!(
        xcore.call("users", "get", json!({})).await.unwrap(),
        json!({"max_users": 25, "banner": "welcome"}),
        "the env var reached the typed section"
    );
    assert_eq!(
        xcore.call("unconfigured", "get", json!({})).await.unwrap()["max_users"],
        0
    );
    let broken = report.plugin("broken").unwrap();
    assert_eq!(broken.state(), NodeState::Failed);
    let reason = broken.reason().unwrap();
    assert!(reason.contains("plugins.broken.max_users"), "{reason}");
    assert!(reason.contains("line 7"), "{reason}");
    xcore.shutdown().await;
}

#[tokio::test]
async fn a_bad_extension_section_fails_that_extension() {
    let config = load(
        "services:\n  extensions:\n    email: { host: 1, port: 25 }\n",
        &[],
    );
    let err = Xcore::builder()
        .without_registered()
        .config(config)
        .extension("email", Mailer::default())
        .build()
        .unwrap()
        .boot()
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("services.extensions.email.host"), "{msg}");
}

#[test]
fn an_insecure_production_config_does_not_build() {
    let mut config = Config::default();
    config.app.env = xcore::config::Environment::Production;
    config.app.secret_key = "change-me".into();
    let err = Xcore::builder()
        .without_registered()
        .config(config)
        .build()
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("app.secret_key"), "{msg}");

    // The loader refuses it already.
    let err = ConfigLoader::new()
        .env(Vec::<(String, String)>::new())
        .load_str(
            "app:\n  env: production\n  secret_key: \"\"\n",
            Format::Yaml,
        )
        .unwrap_err();
    assert!(err.to_string().contains("secret_key"), "{err}");
}

#[tokio::test]
async fn the_default_config_runs_with_no_server() {
    let xcore = Xcore::builder()
        .without_registered()
        .config(Config::default())
        .build()
        .unwrap();
    let report = xcore.boot().await.unwrap();
    assert!(
        report.service("db").is_none(),
        "no database unless configured"
    );
    xcore.shutdown().await;
}
