//! A tour of the xcore kernel: two plugins registered with `#[plugin]`, a database, the plan,
//! the boot report, host and plugin-to-plugin calls, events, health and shutdown.
//!
//! ```text
//! cargo run --example hello
//! ```

use serde::{Deserialize, Serialize};
use serde_json::json;
use xcore::{
    events::{Event, Flow},
    prelude::*,
    services::db::{DatabaseOptions, DatabaseService, Db, Migration, sqlx},
};

const MIGRATIONS: &[Migration] = &[Migration::new(
    1,
    "create greetings",
    "CREATE TABLE greetings (id BIGINT PRIMARY KEY, name TEXT NOT NULL)",
)];

/// Counts greetings in the database; other plugins may ask for the count.
#[derive(Default)]
#[plugin(
    name = "ledger",
    version = "1.2.0",
    description = "Keeps a ledger of greetings",
    services = ["db"],
    permissions = ["db.default: read, write"],
    allowed_callers = ["greeter"],
)]
struct Ledger;

#[async_trait]
impl Plugin for Ledger {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        ctx.handle::<Db>()?.migrate(MIGRATIONS).await?;
        Ok(())
    }
}

#[derive(Deserialize)]
struct Record {
    name: String,
}

#[actions]
impl Ledger {
    #[action]
    async fn record(&self, cx: &CallContext, input: Record) -> Result<i64, CallError> {
        // The database of the call's tenant, as the ledger's grants allow.
        let db = cx.handle::<Db>().await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM greetings")
            .fetch_one(db.pool())
            .await
            .map_err(CallError::handler)?;
        sqlx::query("INSERT INTO greetings (id, name) VALUES ($1, $2)")
            .bind(count + 1)
            .bind(input.name)
            .execute(db.pool())
            .await
            .map_err(CallError::handler)?;
        Ok(count + 1)
    }
}

/// Greets people, records each greeting in the ledger, and announces it.
#[derive(Default)]
#[plugin(
    name = "greeter",
    version = "1.0.0",
    requires = ["ledger@^1.2"],
    permissions = ["plugin:ledger: record", "events:greeting.*: emit"],
    timeout = "2s",
)]
struct Greeter {
    ctx: Option<PluginContext>,
}

#[async_trait]
impl Plugin for Greeter {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        self.ctx = Some(ctx.clone());
        Ok(())
    }
}

#[derive(Deserialize)]
struct Greet {
    name: String,
}

#[derive(Serialize)]
struct Greeting {
    message: String,
    number: i64,
}

#[actions]
impl Greeter {
    #[action]
    async fn greet(&self, cx: &CallContext, input: Greet) -> Result<Greeting, CallError> {
        if input.name.trim().is_empty() {
            return Err(CallError::invalid_payload("name", "must not be empty"));
        }
        let ctx = self
            .ctx
            .as_ref()
            .ok_or_else(|| CallError::internal("not loaded"))?;
        let number = ctx
            .plugin("ledger")
            .call(cx, "record", json!({ "name": input.name }))
            .await?;
        let number = number.as_i64().unwrap_or_default();
        ctx.events()?
            .emit(
                cx,
                "greeting.sent",
                json!({ "name": input.name, "number": number }),
            )
            .await?;
        Ok(Greeting {
            message: format!("Hello, {}!", input.name),
            number,
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _tracing = xcore::observability::init_tracing(&Default::default())?;
    let database = DatabaseService::new([("default", DatabaseOptions::default())]);
    let xcore = Xcore::builder()
        .only_registered(["ledger", "greeter"])
        .service(database)
        .build()?;

    println!("plan:\n{}", xcore.plan());

    xcore
        .events()
        .subscribe("greeting.*", |event: Event| async move {
            println!(
                "event {} from {}: {}",
                event.name(),
                event.source(),
                event.payload()
            );
            Ok::<_, std::convert::Infallible>(Flow::Continue)
        })?;

    let report = xcore.boot().await?;
    println!("{report}");

    for name in ["Ada", "Grace"] {
        let answer = xcore
            .call("greeter", "greet", json!({ "name": name }))
            .await?;
        println!("greeter.greet({name}) -> {answer}");
    }
    let refused = xcore
        .call("greeter", "greet", json!({ "name": 42 }))
        .await
        .unwrap_err();
    println!("greeter.greet(42) -> {}", xcore::envelope(&Err(refused)));

    let health = xcore.health().await;
    println!("health: {:?}", health.status());

    let stopped = xcore.shutdown().await;
    println!("shutdown clean: {}", stopped.is_clean());
    Ok(())
}
