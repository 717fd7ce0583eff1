//! OpenTelemetry: spans exported over OTLP/HTTP by `observability::tracing_subscriber` (from
//! `observability.otlp_endpoint`) to an OTLP collector in this process, over loopback; the
//! `xcore.http` span continues the `traceparent` a request carries, the `xcore.call` span is
//! its child, and a request without one is exported under the trace id the handler saw.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::routing::{get, post};
use bytes::Bytes;
use http::{Method, StatusCode, header};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::{Value, json};
use xcore::{
    Actions, CallContext, CallError, Manifest, Plugin, PluginContext, async_trait,
    config::ObservabilityConfig, observability::tracing_subscriber, web::Routes,
};
use xcore_testkit::{TEST_ADMIN_TOKEN, TestApp};

mod support;
use support::send;

/// A span as the collector received it.
#[derive(Debug, Clone)]
struct Exported {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: HashMap<String, String>,
    service: String,
}

type Received = Arc<Mutex<Vec<Exported>>>;

/// An OTLP/HTTP collector on loopback, on a thread and runtime of its own (the exporter's
/// flush blocks the test's thread).
fn collector() -> (SocketAddr, Received) {
    let received = Received::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let kept = received.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/v1/traces",
                post(move |body: Bytes| {
                    let kept = kept.clone();
                    async move {
                        let request = ExportTraceServiceRequest::decode(body).unwrap();
                        let mut kept = kept.lock().unwrap();
                        for resource in request.resource_spans {
                            let service = resource
                                .resource
                                .iter()
                                .flat_map(|r| &r.attributes)
                                .find(|a| a.key == "service.name")
                                .map(|a| format!("{:?}", a.value))
                                .unwrap_or_default();
                            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                                kept.push(Exported {
                                    name: span.name,
                                    trace_id: hex(&span.trace_id),
                                    span_id: hex(&span.span_id),
                                    parent_span_id: hex(&span.parent_span_id),
                                    attributes: span
                                        .attributes
                                        .into_iter()
                                        .map(|a| (a.key, format!("{:?}", a.value)))
                                        .collect(),
                                    service: service.clone(),
                                });
                            }
                        }
                        (
                            [(header::CONTENT_TYPE, "application/x-protobuf")],
                            Vec::<u8>::new(),
                        )
                    }
                }),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (addr, received)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A plugin whose route answers the trace id of its call context.
struct Probe;

#[async_trait]
impl Actions for Probe {
    fn action_names(&self) -> &'static [&'static str] {
        &["ping"]
    }

    async fn handle(&self, _: &str, _: Value, _: &CallContext) -> Result<Value, CallError> {
        Ok(json!("pong"))
    }
}

#[async_trait]
impl Plugin for Probe {
    fn routes(&self, _: &PluginContext) -> Option<Routes> {
        let router = axum::Router::new().route(
            "/trace",
            get(|cx: CallContext| async move { format!("{:032x}", cx.trace().trace_id()) }),
        );
        Some(Routes::from_axum(router).endpoint(Method::GET, "/trace"))
    }
}

#[tokio::test(flavor = "current_thread")]
async fn exported_spans_continue_the_incoming_traceparent() {
    let (collector_addr, received) = collector();
    let mut config = ObservabilityConfig::default();
    // Logs at WARN only: the exporter has its own filter (INFO, and xcore's spans at DEBUG).
    config.log_level = "warn".into();
    config.otlp_endpoint = Some(format!("http://{collector_addr}/"));
    config.service_name = "otel-test".into();
    let (subscriber, guard) = tracing_subscriber(&config, None, std::io::sink).unwrap();
    // This test's thread only: the server below runs on it (current-thread runtime).
    let _default = tracing::subscriber::set_default(subscriber);

    let app = TestApp::builder()
        .plugin(Manifest::builder("probe", "1.0.0").build().unwrap(), Probe)
        .boot()
        .await
        .unwrap();
    let web = app
        .xcore()
        .web()
        .admin_token(TEST_ADMIN_TOKEN)
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(xcore::web::hyper::serve(listener, web, async {
        let _ = stopped.await;
    }));

    // 1. A route request that carries a traceparent.
    let reply = send(
        addr,
        Method::GET,
        "/plugin/probe/trace",
        &[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "4bf92f3577b34da6a3ce929d0e0e4736");
    // 2. A call through the admin IPC endpoint that carries another one.
    let bearer = format!("Bearer {TEST_ADMIN_TOKEN}");
    let reply = send(
        addr,
        Method::POST,
        "/xcore/ipc/probe/ping",
        &[
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
            ("authorization", &bearer),
        ],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    // 3. A request without one.
    let reply = send(addr, Method::GET, "/plugin/probe/trace", &[], "").await;
    assert_eq!(reply.status, StatusCode::OK);
    let fresh = String::from_utf8_lossy(&reply.body).into_owned();

    guard.flush();
    let wanted = |spans: &[Exported]| {
        spans.iter().filter(|s| s.name == "xcore.http").count() >= 3
            && spans.iter().any(|s| s.name == "xcore.call")
    };
    let started = Instant::now();
    while !wanted(&received.lock().unwrap()) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not exported: {:#?}",
            received.lock().unwrap()
        );
        guard.flush();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let spans = received.lock().unwrap().clone();
    let http_in = |trace: &str| {
        spans
            .iter()
            .find(|s| s.name == "xcore.http" && s.trace_id == trace)
            .unwrap_or_else(|| panic!("no xcore.http span in trace {trace}: {spans:#?}"))
    };

    let first = http_in("4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(first.parent_span_id, "00f067aa0ba902b7");
    assert!(first.service.contains("otel-test"), "{first:?}");
    assert!(
        first.attributes["route"].contains("/plugin/probe/trace"),
        "{first:?}"
    );
    assert!(first.attributes["status"].contains("200"), "{first:?}");
    assert!(first.attributes.contains_key("latency_ms"), "{first:?}");

    let second = http_in("0af7651916cd43dd8448eb211c80319c");
    assert_eq!(second.parent_span_id, "b7ad6b7169203331");
    let call = spans
        .iter()
        .find(|s| s.name == "xcore.call" && s.trace_id == second.trace_id)
        .unwrap_or_else(|| panic!("no xcore.call span in the IPC trace: {spans:#?}"));
    assert_eq!(call.parent_span_id, second.span_id);
    assert!(call.attributes["outcome"].contains("ok"), "{call:?}");

    // Without a traceparent: a new trace, the one the handler's context carries.
    let third = http_in(&fresh);
    assert!(third.parent_span_id.is_empty(), "{third:?}");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    app.shutdown().await;
    drop(guard);
}

#[test]
fn an_endpoint_that_is_not_an_http_url_is_refused() {
    let mut config = ObservabilityConfig::default();
    config.otlp_endpoint = Some("collector:4318".into());
    let err = tracing_subscriber(&config, None, std::io::sink)
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("collector:4318") && err.to_string().contains("http://"),
        "{err}"
    );
}
