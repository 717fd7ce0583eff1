//! The `user_manager` plugin of the reference page 000, in Rust: a users table with its own
//! migration, `POST /v2/register` with validation (422 on bad input, 201 on success), a
//! session cache, a daily report job, a `user.created` event, a welcome e-mail sent through
//! the worker, and a `get_count` action — every part scoped to the request's tenant.

use std::time::Duration;

use axum::{Router, extract::State, http::StatusCode, routing::get, routing::post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use xcore::{
    prelude::*,
    services::{
        cache::{Cache, Ttl},
        db::{Db, DbError, Migration, sqlx},
        scheduler::{JobContext, JobError, Scheduler, Trigger},
        worker::{TaskContext, TaskError, Worker},
    },
    web::{
        FieldErrors, Routes, Validate,
        axum::{Json, Valid},
    },
};

/// The plugin's migrations, applied in `on_load` and to every tenant on first use.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration::new(
        1,
        "create users",
        "CREATE TABLE users (
            id BIGINT PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            email TEXT NOT NULL UNIQUE
        )",
    ),
    Migration::new(
        2,
        "create welcome e-mails",
        "CREATE TABLE welcome_emails (user_id BIGINT PRIMARY KEY, email TEXT NOT NULL)",
    ),
];

/// When the daily report runs (every day at midnight, in the scheduler's time zone).
pub(crate) const DAILY_REPORT: &str = "0 0 * * *";

/// The plugin: users per tenant.
#[derive(Default)]
#[plugin(
    name = "user_manager",
    version = "2.5.0",
    description = "Users: registration over HTTP, sessions, a daily report, welcome e-mails",
    services = ["db", "cache", "scheduler", "worker"],
    permissions = [
        "db.default: read, write",
        "cache.sessions: *",
        "service:scheduler: schedule",
        "service:worker: execute",
        "events:user.*: emit",
    ],
)]
pub(crate) struct UserManager {
    state: Option<Handles>,
}

/// What the plugin obtained in `on_load`, shared with its routes.
#[derive(Clone)]
struct Handles {
    db: Db,
    sessions: Cache,
    scheduler: Scheduler,
    worker: Worker,
    ctx: PluginContext,
}

/// The body of `POST /v2/register`.
#[derive(Debug, Deserialize)]
pub(crate) struct UserCreate {
    username: String,
    email: String,
}

impl Validate for UserCreate {
    fn validate(&self) -> Result<(), FieldErrors> {
        let len = self.username.chars().count();
        FieldErrors::new()
            .check(
                (3..=50).contains(&len),
                "username",
                "must be 3 to 50 characters",
            )
            .check(
                is_email(&self.email),
                "email",
                "must be an e-mail address (name@domain.tld)",
            )
            .into_result()
    }
}

fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && text.len() <= 254
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain.split('.').count() >= 2
        && domain.split('.').all(|part| !part.is_empty())
}

/// The payload of the `send_welcome` task.
#[derive(Debug, Serialize, Deserialize)]
struct Welcome {
    user_id: i64,
    email: String,
}

impl Handles {
    async fn count(&self, cx: &CallContext) -> Result<i64, CallError> {
        let db = self.db.for_tenant(cx.tenant()).await?;
        sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(db.pool())
            .await
            .map_err(CallError::handler)
    }

    /// Makes sure the tenant has its daily report job (adding replaces).
    async fn schedule_report(&self, tenant: &TenantId) -> Result<(), CallError> {
        let db = self.db.clone();
        self.scheduler
            .for_tenant(tenant)
            .add(
                "daily_user_report",
                Trigger::cron(DAILY_REPORT).map_err(CallError::internal)?,
                move |job: JobContext| {
                    let db = db.clone();
                    async move {
                        let db = db.for_tenant(job.tenant()).await?;
                        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
                            .fetch_one(db.pool())
                            .await?;
                        tracing::info!(tenant = %job.tenant(), count, "daily user report");
                        Ok::<_, JobError>(())
                    }
                },
            )
            .await
            .map_err(CallError::from)
    }
}

async fn register(
    State(h): State<Handles>,
    cx: CallContext,
    Valid(user): Valid<UserCreate>,
) -> Result<(StatusCode, Json<Value>), CallError> {
    let db = h.db.for_tenant(cx.tenant()).await?;
    let user_id = db
        .transaction(|tx| {
            let (username, email) = (user.username.clone(), user.email.clone());
            Box::pin(async move {
                let taken: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM users WHERE username = $1 OR email = $2",
                )
                .bind(&username)
                .bind(&email)
                .fetch_one(&mut **tx)
                .await?;
                if taken > 0 {
                    return Ok(None);
                }
                let id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM users")
                    .fetch_one(&mut **tx)
                    .await?;
                sqlx::query("INSERT INTO users (id, username, email) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(&username)
                    .bind(&email)
                    .execute(&mut **tx)
                    .await?;
                Ok::<_, DbError>(Some(id))
            })
        })
        .await?;
    let Some(user_id) = user_id else {
        let conflict = json!({
            "status": "error",
            "code": "conflict",
            "message": "this username or e-mail is already registered",
        });
        return Ok((StatusCode::CONFLICT, Json(conflict)));
    };

    // A session for the new user, in the tenant's `sessions` namespace.
    let session = format!("{:032x}", fastrand_u128(user_id));
    h.sessions
        .for_call(&cx)
        .set(&session, &user_id, Ttl::After(Duration::from_secs(3600)))
        .await?;
    h.ctx
        .events()?
        .emit(
            &cx,
            "user.created",
            json!({ "id": user_id, "username": user.username }),
        )
        .await?;
    h.worker
        .for_call(&cx)
        .send(
            "send_welcome",
            &Welcome {
                user_id,
                email: user.email,
            },
        )
        .await?;
    h.schedule_report(cx.tenant()).await?;
    let body = json!({ "status": "ok", "user_id": user_id, "session": session });
    Ok((StatusCode::CREATED, Json(body)))
}

async fn count(State(h): State<Handles>, cx: CallContext) -> Result<Json<Value>, CallError> {
    Ok(Json(json!({ "count": h.count(&cx).await? })))
}

#[async_trait]
impl Plugin for UserManager {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        let db = ctx.db("default")?;
        db.migrate(MIGRATIONS).await?;
        let worker = ctx.worker()?;
        let mails = db.clone();
        // The welcome e-mail: "sent" by recording it, once per user (the task is idempotent:
        // a redelivered task finds the row and does nothing).
        worker.register("send_welcome", move |task: TaskContext, mail: Welcome| {
            let db = mails.clone();
            async move {
                let db = db.for_tenant(task.tenant()).await?;
                sqlx::query(
                    "INSERT INTO welcome_emails (user_id, email) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(mail.user_id)
                .bind(&mail.email)
                .execute(db.pool())
                .await?;
                tracing::info!(to = %mail.email, tenant = %task.tenant(), "welcome e-mail sent");
                Ok::<_, TaskError>(())
            }
        })?;
        self.state = Some(Handles {
            db,
            sessions: ctx.cache("sessions")?,
            scheduler: ctx.scheduler()?,
            worker,
            ctx: ctx.clone(),
        });
        Ok(())
    }

    async fn on_start(&self, _ctx: &PluginContext) -> Result<(), PluginError> {
        let handles = self
            .state
            .as_ref()
            .ok_or_else(|| PluginError::msg("not loaded"))?;
        handles
            .schedule_report(&TenantId::default())
            .await
            .map_err(PluginError::msg)?;
        Ok(())
    }

    fn routes(&self, _ctx: &PluginContext) -> Option<Routes> {
        let handles = self.state.clone()?;
        let router = Router::new()
            .route("/v2/register", post(register))
            .route("/v2/users/count", get(count))
            .with_state(handles);
        Some(
            Routes::from_axum(router)
                .endpoint(axum::http::Method::POST, "/v2/register")
                .endpoint(axum::http::Method::GET, "/v2/users/count"),
        )
    }
}

#[actions]
impl UserManager {
    fn handles(&self) -> Result<&Handles, CallError> {
        self.state
            .as_ref()
            .ok_or_else(|| CallError::internal("user_manager is not loaded"))
    }

    /// How many users the tenant of the call has.
    #[action]
    async fn get_count(&self, cx: &CallContext) -> Result<Value, CallError> {
        Ok(json!({ "count": self.handles()?.count(cx).await? }))
    }

    /// The welcome e-mails sent to the tenant's users (what the worker did).
    #[action]
    async fn sent_emails(&self, cx: &CallContext) -> Result<Vec<String>, CallError> {
        let db = self.handles()?.db.for_tenant(cx.tenant()).await?;
        sqlx::query_scalar("SELECT email FROM welcome_emails ORDER BY user_id")
            .fetch_all(db.pool())
            .await
            .map_err(CallError::handler)
    }
}

/// A session token: random bits from the standard library's OS-seeded hasher.
fn fastrand_u128(salt: i64) -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let state = std::collections::hash_map::RandomState::new();
    let mut a = state.build_hasher();
    a.write_i64(salt);
    let mut b = state.build_hasher();
    b.write_i64(!salt);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}
