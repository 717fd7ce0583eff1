//! Host extensions (typed handles, grants, lifecycle) and health.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};
use xcore::{
    Actions, CallContext, CallError, Health, HealthStatus, Manifest, NodeId, Plugin, PluginContext,
    PluginError, Service, ServiceContext, ServiceError, async_trait,
    services::{
        ExtensionHandle,
        db::{DatabaseOptions, DatabaseService},
    },
};
use xcore_testkit::{FakePlugin, FakeService, HookLog, TestApp};

/// A host service: sends (records) e-mails; needs the database to be up first.
#[derive(Default)]
struct Mailer {
    sent: Mutex<Vec<String>>,
    saw_db: AtomicBool,
    log: Option<HookLog>,
}

impl Mailer {
    fn send(&self, to: &str) {
        self.sent.lock().unwrap().push(to.to_owned());
    }
}

#[async_trait]
impl Service for Mailer {
    fn name(&self) -> &str {
        "ignored: the builder names it"
    }

    fn dependencies(&self) -> Vec<String> {
        vec!["db".into()]
    }

    async fn init(&mut self, ctx: &ServiceContext) -> Result<(), ServiceError> {
        let db = ctx
            .dependency::<DatabaseService>("db")
            .ok_or_else(|| ServiceError::msg("no db"))?;
        self.saw_db
            .store(db.connection_names() == ["default"], Ordering::SeqCst);
        if let Some(log) = &self.log {
            log.push("email: init");
        }
        Ok(())
    }

    async fn health(&self) -> Health {
        Health::degraded(format!("{} queued", self.sent.lock().unwrap().len()))
    }

    async fn shutdown(&self) -> Result<(), ServiceError> {
        if let Some(log) = &self.log {
            log.push("email: shutdown");
        }
        Ok(())
    }
}

/// Sends welcome mails through the host's extension.
#[derive(Default)]
struct Welcome {
    mailer: Option<ExtensionHandle<Mailer>>,
}

#[async_trait]
impl Actions for Welcome {
    async fn handle(&self, _: &str, payload: Value, _: &CallContext) -> Result<Value, CallError> {
        let mailer = self
            .mailer
            .as_ref()
            .ok_or_else(|| CallError::internal("no mailer"))?;
        mailer.send(payload.as_str().unwrap_or_default());
        Ok(json!(mailer.sent.lock().unwrap().len()))
    }
}

#[async_trait]
impl Plugin for Welcome {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        let mailer = ctx.named::<ExtensionHandle<Mailer>>("email")?;
        assert_eq!(mailer.name(), "email");
        assert!(
            mailer.saw_db.load(Ordering::SeqCst),
            "the extension saw its dependency"
        );
        self.mailer = Some(mailer);
        Ok(())
    }
}

fn manifest(name: &str, services: &[&str], grants: &[&str]) -> Manifest {
    Manifest::builder(name, "1.0.0")
        .services(services.iter().copied())
        .permissions(grants.iter().copied())
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_extension_is_a_typed_guarded_service_with_the_same_lifecycle() {
    let log = HookLog::new();
    let app = TestApp::builder()
        .service(DatabaseService::new([(
            "default",
            DatabaseOptions::default(),
        )]))
        .configure(|b| {
            b.extension(
                "email",
                Mailer {
                    log: Some(log.clone()),
                    ..Mailer::default()
                },
            )
        })
        .plugin(
            manifest("welcome", &["email"], &["service:email: use"]),
            Welcome::default(),
        )
        .plugin(manifest("sneaky", &["email"], &[]), Welcome::default())
        .plugin(
            manifest("undeclared", &[], &["service:email: use"]),
            Welcome::default(),
        )
        .boot()
        .await
        .unwrap();
    let report = app.report();
    assert_eq!(
        app.xcore().plan().wave_of(&NodeId::service("email")),
        Some(1),
        "after db"
    );
    assert_eq!(
        report.plugin("welcome").unwrap().state(),
        xcore::NodeState::Started,
        "{report}"
    );
    assert_eq!(
        app.call("welcome", "send", json!("ada@example.com"))
            .await
            .unwrap(),
        json!(1)
    );

    let sneaky = report.plugin("sneaky").unwrap().reason().unwrap();
    assert!(sneaky.contains("may not use `service:email`"), "{sneaky}");
    let undeclared = report.plugin("undeclared").unwrap().reason().unwrap();
    assert!(
        undeclared.contains("did not declare the service `email`"),
        "{undeclared}"
    );
    let denial = &app.xcore().audit().denials(Some("sneaky"), 1)[0];
    assert_eq!(
        (denial.resource.as_str(), denial.action.as_str()),
        ("service:email", "use")
    );

    // The extension's health is reported like any service's.
    let health = app.xcore().health().await;
    let email = health.node(&NodeId::service("email")).unwrap();
    assert_eq!(email.health().status(), HealthStatus::Degraded);
    assert_eq!(email.health().message(), Some("1 queued"));

    app.shutdown().await;
    assert_eq!(log.entries(), ["email: init", "email: shutdown"]);
}

#[tokio::test]
async fn a_wrong_type_is_a_clear_error() {
    struct Other;
    #[async_trait]
    impl Service for Other {
        fn name(&self) -> &str {
            "other"
        }
    }
    let app = TestApp::builder()
        .configure(|b| b.extension("email", Other))
        .plugin(
            manifest("welcome", &["email"], &["service:email: use"]),
            Welcome::default(),
        )
        .boot()
        .await
        .unwrap();
    let reason = app
        .report()
        .plugin("welcome")
        .unwrap()
        .reason()
        .unwrap()
        .to_owned();
    assert!(reason.contains("the service `email` is not a"), "{reason}");
    assert!(reason.contains("Mailer"), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn health_is_per_node_timed_and_bounded() {
    let app = TestApp::builder()
        .service(FakeService::new("fine"))
        .service(FakeService::new("slow").health_hangs())
        .service(FakeService::new("shaky").health(Health::degraded("replica lag")))
        .fake_plugin(FakePlugin::new("p"))
        .fake_plugin(FakePlugin::new("broken").requires(["ghost"]))
        .configure(|b| b.health_timeout(Duration::from_millis(300)))
        .boot()
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let health = app.xcore().health().await;
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(300),
        "checks run concurrently, bounded"
    );
    let of = |node: NodeId| health.node(&node).unwrap().health().clone();
    assert_eq!(of(NodeId::service("fine")).status(), HealthStatus::Healthy);
    assert_eq!(
        of(NodeId::service("shaky")).status(),
        HealthStatus::Degraded
    );
    let slow = of(NodeId::service("slow"));
    assert_eq!(slow.status(), HealthStatus::Unhealthy);
    assert!(slow.message().unwrap().contains("no answer within 300ms"));
    assert_eq!(of(NodeId::plugin("p")).status(), HealthStatus::Healthy);
    assert!(
        of(NodeId::plugin("broken"))
            .message()
            .unwrap()
            .contains("unknown dependency")
    );
    // A service is unhealthy: the whole is unhealthy.
    assert_eq!(health.status(), HealthStatus::Unhealthy);

    // Without the hanging service: a failed plugin only degrades.
    let app = TestApp::builder()
        .service(FakeService::new("fine"))
        .fake_plugin(FakePlugin::new("broken").requires(["ghost"]))
        .boot()
        .await
        .unwrap();
    assert_eq!(app.xcore().health().await.status(), HealthStatus::Degraded);
    let xcore = app.xcore().clone();
    app.shutdown().await;
    assert_eq!(
        xcore.health().await.status(),
        HealthStatus::Unhealthy,
        "stopped"
    );
}

#[tokio::test]
async fn a_panicking_health_check_is_contained() {
    struct Bad;
    #[async_trait]
    impl Service for Bad {
        fn name(&self) -> &str {
            "bad"
        }
        async fn health(&self) -> Health {
            panic!("health bug")
        }
    }
    let app = TestApp::builder().service(Bad).boot().await.unwrap();
    let health = app.xcore().health().await;
    let bad = health.node(&NodeId::service("bad")).unwrap().health();
    assert_eq!(bad.status(), HealthStatus::Unhealthy);
    assert!(bad.message().unwrap().contains("health bug"));
}
