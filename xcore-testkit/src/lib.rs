//! Test helpers for xcore hosts and plugins.
//!
//! - [`TestApp`]: build an [`Xcore`](xcore::Xcore) with exactly the plugins a test chooses,
//!   short timeouts, boot it, call it, shut it down. No globals: tests run in parallel.
//! - [`FakeService`] and [`FakePlugin`]: nodes whose hooks succeed, fail, sleep, hang or panic
//!   on demand, and which write what happens to a shared [`HookLog`].
//! - [`TestClient`] ([`TestApp::client`]): HTTP requests to the plugins' routes and the admin
//!   API through the same layers every adapter mounts, in process — no socket.
//! - [`EventRecorder`]: every event matching a pattern, and `wait_for` one.
//! - [`PostgresServer`] and [`RedisServer`]: real, throwaway servers on loopback.
//! - [`firings`], [`wait_for_runs`], [`wait_for_next_run`]: a trigger's planned firings without
//!   waiting, and waiting for a job's runs.
//!
//! # A short guide
//!
//! 1. **Choose the plugins.** `TestApp::builder()` starts with *no* registered plugin: name
//!    the `#[plugin]`s a test needs with `.plugins([...])`, add hand-written ones with
//!    `.plugin(manifest, instance)`, fakes with `.fake_plugin(...)`, services with
//!    `.service(...)`; anything else through `.configure(|builder| ...)`.
//! 2. **Boot and look at the report.** `boot().await` gives a [`TestApp`]; its
//!    [`report`](TestApp::report) says which node started, failed or was skipped, and why.
//! 3. **Call, request, observe.** `app.call(plugin, action, payload)`,
//!    `app.client().tenant("acme").post_json(path, &body)`, an [`EventRecorder`] attached
//!    before the boot to see the kernel events too.
//! 4. **Time.** Timeouts, rate limits, TTLs of the memory cache and retries follow tokio's
//!    clock: `#[tokio::test(start_paused = true)]` makes them exact and instant. Wall-clock
//!    parts (the cron scheduler, Redis TTLs) need real time: keep those waits short.
//! 5. **Real servers.** `PostgresServer::start().await` / `RedisServer::start().await` use
//!    `XCORE_TEST_POSTGRES_URL` / `XCORE_TEST_REDIS_URL` when set (as `scripts/test.sh` does),
//!    else start a throwaway server; each Postgres test takes its own database with
//!    `server.database().await`. When a server cannot be had, `start` returns an error to turn
//!    into a skip — unless `XCORE_REQUIRE_SERVERS=1` (CI), where it panics: a test that needs a
//!    server fails rather than passes silently.
//! 6. **Shut down** with `app.shutdown().await` and check what did not stop cleanly.
//!
//! Every `Xcore` is independent: tests run in parallel in one process.
//!
//! # Writing a test
//!
//! ```
//! use std::time::Duration;
//! use xcore_testkit::{FakePlugin, FakeService, HookLog, TestApp};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let log = HookLog::new();
//! let app = TestApp::builder()
//!     .service(FakeService::new("db").log(&log))
//!     .fake_plugin(FakePlugin::new("users").services(["db"]).log(&log))
//!     .boot()
//!     .await
//!     .unwrap();
//! assert_eq!(app.call("users", "ping", json!({})).await.unwrap(), json!("pong"));
//! app.shutdown().await;
//! assert_eq!(
//!     log.entries(),
//!     [
//!         "db: init",
//!         "users: on_load",
//!         "db: start",
//!         "users: on_start",
//!         "db: users started",
//!         "db: users stopping",
//!         "users: on_stop",
//!         "db: shutdown",
//!     ],
//! );
//! # }
//! ```
#![forbid(unsafe_code)]

mod app;
mod events;
mod fake;
mod http;
mod log;
mod postgres;
mod redis;
mod schedule;
mod server;

pub use app::{TEST_ADMIN_TOKEN, TestApp, TestAppBuilder};
pub use events::EventRecorder;
pub use fake::{Behavior, FakePlugin, FakeService};
pub use http::{TestClient, TestResponse};
pub use log::HookLog;
pub use postgres::PostgresServer;
pub use redis::RedisServer;
pub use schedule::{firings, wait_for_next_run, wait_for_runs};
pub use server::{ServerUnavailable, require_servers};
