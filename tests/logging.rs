//! The log setup of `observability` (feature `logging`): the level filter, `RUST_LOG` winning
//! over it, JSON lines carrying the `xcore.http` span (route template, status, latency) and
//! the `xcore.call` span's outcome, and a bad filter refused with its origin.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use axum::{extract::Path, routing::get};
use http::Method;
use serde_json::{Value, json};
use xcore::{
    Actions, CallContext, CallError, ErrorCode, Manifest, Plugin, PluginContext, async_trait,
    config::{Config, Format},
    observability::{LogInitError, tracing_subscriber},
    web::Routes,
};
use xcore_testkit::TestApp;

/// What the subscriber wrote.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn observability(yaml: &str) -> xcore::config::ObservabilityConfig {
    Config::from_str(yaml, Format::Yaml).unwrap().observability
}

struct Users;

#[async_trait]
impl Actions for Users {
    fn action_names(&self) -> &'static [&'static str] {
        &["get"]
    }

    async fn handle(&self, action: &str, _: Value, _: &CallContext) -> Result<Value, CallError> {
        match action {
            "get" => Err(CallError::new(ErrorCode::HandlerError, "no such user")),
            other => Err(CallError::unknown_action(other, self.action_names())),
        }
    }
}

#[async_trait]
impl Plugin for Users {
    fn routes(&self, _: &PluginContext) -> Option<Routes> {
        let router = axum::Router::new().route(
            "/users/{id}",
            get(|Path(id): Path<u32>| async move { format!("user {id}") }),
        );
        Some(Routes::from_axum(router).endpoint(Method::GET, "/users/{id}"))
    }
}

#[tokio::test]
async fn json_lines_carry_the_route_template_status_latency_and_call_outcome() {
    let capture = Capture::default();
    let config = observability("observability: { log_level: debug, log_format: json }\n");
    let sink = capture.clone();
    let (subscriber, _guard) = tracing_subscriber(&config, None, move || sink.clone()).unwrap();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = TestApp::builder()
        .plugin(Manifest::builder("users", "1.0.0").build().unwrap(), Users)
        .boot()
        .await
        .unwrap();
    assert_eq!(
        app.client().get("/plugin/users/users/42").await.status(),
        200
    );
    app.call("users", "get", json!({})).await.unwrap_err();
    app.shutdown().await;

    let lines: Vec<Value> = capture
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let served = lines
        .iter()
        .find(|l| l["fields"]["message"] == "request served")
        .unwrap_or_else(|| panic!("no `request served` line: {lines:#?}"));
    let span = &served["span"];
    assert_eq!(span["name"], "xcore.http");
    assert_eq!(span["route"], "/plugin/users/users/{id}", "{served}");
    assert_eq!(span["path"], "/plugin/users/users/42");
    assert_eq!(span["plugin"], "users");
    assert_eq!(span["status"], 200);
    assert!(span["latency_ms"].as_f64().unwrap() >= 0.0, "{served}");
    // The call span records its outcome, on the line that says the call was answered.
    let answered = lines
        .iter()
        .find(|l| l["fields"]["message"] == "call answered" && l["span"]["action"] == "get")
        .unwrap_or_else(|| panic!("no `call answered` line: {lines:#?}"));
    assert_eq!(answered["span"]["name"], "xcore.call");
    assert_eq!(answered["span"]["plugin"], "users");
    assert_eq!(answered["span"]["outcome"], "handler_error", "{answered}");
}

#[tokio::test]
async fn the_level_filters_and_rust_log_wins_over_it() {
    let config = observability("observability: { log_level: warn }\n");
    for (rust_log, expect_info) in [(None, false), (Some("  "), false), (Some("info"), true)] {
        let capture = Capture::default();
        let sink = capture.clone();
        let (subscriber, _guard) =
            tracing_subscriber(&config, rust_log, move || sink.clone()).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("an info line");
            tracing::warn!("a warn line");
        });
        let text = capture.text();
        assert!(text.contains("a warn line"), "{rust_log:?}: {text}");
        assert_eq!(
            text.contains("an info line"),
            expect_info,
            "{rust_log:?}: {text}"
        );
        // Text format: not JSON.
        assert!(!text.trim_start().starts_with('{'), "{text}");
    }
}

#[test]
fn a_bad_filter_is_refused_naming_its_origin() {
    let config = observability("observability: { log_level: \"info,xcore=loud\" }\n");
    let err = tracing_subscriber(&config, None, std::io::sink)
        .err()
        .unwrap();
    assert!(
        matches!(&err, LogInitError::InvalidFilter { origin: "observability.log_level", filter, .. } if filter == "info,xcore=loud"),
        "{err}"
    );
    let fine = observability("observability: { log_level: info }\n");
    let err = tracing_subscriber(&fine, Some("=[{"), std::io::sink)
        .err()
        .unwrap();
    assert!(
        matches!(
            &err,
            LogInitError::InvalidFilter {
                origin: "RUST_LOG",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("RUST_LOG"), "{err}");
}
