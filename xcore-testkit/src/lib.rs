//! Test helpers for xcore hosts and plugins.
//!
//! - [`TestApp`]: build an [`Xcore`](xcore::Xcore) with exactly the plugins a test chooses,
//!   short timeouts, boot it, call it, shut it down. No globals: tests run in parallel.
//! - [`FakeService`] and [`FakePlugin`]: nodes whose hooks succeed, fail, sleep, hang or panic
//!   on demand, and which write what happens to a shared [`HookLog`].
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
mod server;

pub use app::{TEST_ADMIN_TOKEN, TestApp, TestAppBuilder};
pub use events::EventRecorder;
pub use fake::{Behavior, FakePlugin, FakeService};
pub use http::{TestClient, TestResponse};
pub use log::HookLog;
pub use postgres::PostgresServer;
pub use redis::RedisServer;
pub use server::{ServerUnavailable, require_servers};
