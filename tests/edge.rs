//! The edge limits over real loopback sockets, under axum, hyper and actix: a client stalled
//! in its headers and one stalled in its body are closed within the configured limits, and
//! counted, while a normal client is served.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use std::future::Future as _;

use axum::{
    Router,
    routing::{get, post},
};
use http::Method;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use xcore::{
    Actions, CallContext, CallError, Manifest, Plugin, PluginContext, Xcore, async_trait,
    web::{EdgeLimits, Routes},
};

mod support;
use support::{ADAPTERS, Adapter, send, serve};

/// `echo`: `POST /echo` answers the body it read.
struct Echo;

#[async_trait]
impl Actions for Echo {
    async fn handle(&self, action: &str, _: Value, _: &CallContext) -> Result<Value, CallError> {
        Err(CallError::unknown_action(action, &[]))
    }
}

#[async_trait]
impl Plugin for Echo {
    fn routes(&self, _ctx: &PluginContext) -> Option<Routes> {
        let router = Router::new()
            .route("/echo", post(|body: bytes::Bytes| async move { body }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(HEADER_LIMIT * 2).await;
                    "slow"
                }),
            )
            .route(
                "/stream",
                get(|| async { axum::body::Body::new(Trickle::new(3)) }),
            );
        Some(
            Routes::from_axum(router)
                .endpoint(Method::POST, "/echo")
                .endpoint(Method::GET, "/slow")
                .endpoint(Method::GET, "/stream"),
        )
    }
}

/// A response body of `n` chunks (`"x"`), each after longer than the header limit.
struct Trickle {
    left: usize,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl Trickle {
    fn new(left: usize) -> Self {
        Self {
            left,
            sleep: Box::pin(tokio::time::sleep(HEADER_LIMIT * 3 / 2)),
        }
    }
}

impl http_body::Body for Trickle {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        std::task::ready!(self.sleep.as_mut().poll(cx));
        self.left -= 1;
        let next = tokio::time::Instant::now() + HEADER_LIMIT * 3 / 2;
        self.sleep.as_mut().reset(next);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(bytes::Bytes::from_static(
            b"x",
        )))))
    }
}

const HEADER_LIMIT: Duration = Duration::from_millis(400);
const BODY_IDLE_LIMIT: Duration = Duration::from_millis(400);
/// Closed before this, or the limit did not work.
const BOUND: Duration = Duration::from_secs(3);

async fn boot() -> Xcore {
    let xcore = Xcore::builder()
        .without_registered()
        .plugin(Manifest::builder("echo", "1.0.0").build().unwrap(), Echo)
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    xcore
}

/// Writes `bytes`, then stalls; returns what the server sent until it closed the connection
/// and how long after the write that was.
async fn stall(addr: SocketAddr, bytes: &[u8]) -> (String, Duration) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let start = Instant::now();
    let mut received = Vec::new();
    let read = tokio::time::timeout(BOUND, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the connection was still open after {BOUND:?}; received {:?}",
        String::from_utf8_lossy(&received)
    );
    (
        String::from_utf8_lossy(&received).into_owned(),
        start.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_are_closed_within_the_limits_under_every_adapter() {
    let xcore = boot().await;
    for adapter in ADAPTERS {
        let limits = EdgeLimits::default()
            .header_read(HEADER_LIMIT)
            .body_idle(BODY_IDLE_LIMIT)
            .body_total(Duration::from_secs(2));
        let web = xcore.web().edge_limits(limits).build().unwrap();
        let stats = web.edge().stats().clone();
        let addr = serve(adapter, web).await;

        let headers = stall(
            addr,
            b"GET /plugin/echo/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow",
        );
        let body = stall(
            addr,
            b"POST /plugin/echo/echo HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: 100\r\n\r\n{\"partial\":",
        );
        // While both stall, a normal client is served at once.
        let normal = async {
            let start = Instant::now();
            let reply = send(addr, Method::POST, "/plugin/echo/echo", &[], "hello").await;
            (reply, start.elapsed())
        };
        let ((head_reply, head_took), (body_reply, body_took), (normal, normal_took)) =
            tokio::join!(headers, body, normal);
        assert_eq!(normal.status, 200, "{adapter:?}");
        assert_eq!(normal.body, "hello", "{adapter:?}");
        assert!(normal_took < HEADER_LIMIT, "{adapter:?}: {normal_took:?}");

        // Not before the limit (a little slack for timer granularity), well before the bound.
        let slack = Duration::from_millis(50);
        assert!(
            head_took + slack >= HEADER_LIMIT,
            "{adapter:?}: headers closed after {head_took:?}"
        );
        assert!(
            body_took + slack >= BODY_IDLE_LIMIT,
            "{adapter:?}: body closed after {body_took:?}"
        );
        // hyper closes silently; actix answers 408 first.
        if !head_reply.is_empty() {
            assert!(
                head_reply.starts_with("HTTP/1.1 408"),
                "{adapter:?}: {head_reply}"
            );
        }
        assert!(
            body_reply.starts_with("HTTP/1.1 408"),
            "{adapter:?}: {body_reply}"
        );
        assert!(
            body_reply.contains("\"code\":\"timeout\""),
            "{adapter:?}: {body_reply}"
        );

        assert_eq!(stats.body_timeouts(), 1, "{adapter:?}");
        if adapter != Adapter::Actix {
            // actix closes slow headers itself, uncounted.
            assert_eq!(stats.header_timeouts(), 1, "{adapter:?}");
        }
        assert_eq!(stats.write_timeouts(), 0, "{adapter:?}");
    }
    xcore.shutdown().await;
}

/// The header limit counts only while a connection waits for a request head: a handler
/// slower than the limit, and a response body that trickles for longer than it, are served
/// whole on a kept-alive connection, which then serves a request sent after a pause under
/// the limit, and is closed (and counted) once idle for the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_limit_spares_slow_handlers_and_streaming_responses() {
    use http_body_util::BodyExt;

    let xcore = boot().await;
    for adapter in [Adapter::Axum, Adapter::Hyper] {
        let limits = EdgeLimits::default().header_read(HEADER_LIMIT);
        let web = xcore.web().edge_limits(limits).build().unwrap();
        let stats = web.edge().stats().clone();
        let addr = serve(adapter, web).await;
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        let connection = tokio::spawn(connection);
        let get = |path: &str| {
            http::Request::get(path)
                .header(http::header::HOST, "127.0.0.1")
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap()
        };
        let mut exchange = async |path: &str| {
            // The connection is ready for the next request once the last one is done with.
            sender.ready().await.unwrap();
            let response = sender.send_request(get(path)).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, body)
        };

        let (status, body) = exchange("/plugin/echo/slow").await;
        assert_eq!(
            (status.as_u16(), &body[..]),
            (200, &b"slow"[..]),
            "{adapter:?}"
        );
        let (status, body) = exchange("/plugin/echo/stream").await;
        assert_eq!(
            (status.as_u16(), &body[..]),
            (200, &b"xxx"[..]),
            "{adapter:?}"
        );
        tokio::time::sleep(HEADER_LIMIT / 4).await;
        let (status, _) = exchange("/plugin/echo/slow").await;
        assert_eq!(status.as_u16(), 200, "{adapter:?}");
        assert_eq!(stats.header_timeouts(), 0, "{adapter:?}");

        // Idle now: closed after the limit (counted from the end of the last response, a
        // little before the client has read it all: slack for a slow machine), well before
        // the bound.
        let idle = Instant::now();
        let closed = tokio::time::timeout(BOUND, connection).await;
        assert!(
            closed.is_ok(),
            "{adapter:?}: an idle connection stayed open"
        );
        let took = idle.elapsed();
        assert!(
            took + Duration::from_millis(150) >= HEADER_LIMIT,
            "{adapter:?}: closed after {took:?}"
        );
        assert_eq!(stats.header_timeouts(), 1, "{adapter:?}");
    }
    xcore.shutdown().await;
}

/// The host's own routes get the body limits through `BodyTimeoutLayer` (here under plain
/// `axum::serve`, which has no header limit of its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_timeout_layer_guards_a_hosts_own_routes() {
    let edge = xcore::web::Edge::new(EdgeLimits::default().body_idle(BODY_IDLE_LIMIT));
    let app = Router::new()
        .route("/upload", post(|body: String| async move { body }))
        .layer(xcore::web::BodyTimeoutLayer::new(edge.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (reply, took) = stall(
        addr,
        b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: 10\r\n\r\nabc",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(
        took + Duration::from_millis(50) >= BODY_IDLE_LIMIT,
        "{took:?}"
    );
    assert_eq!(edge.stats().body_timeouts(), 1);
    let ok = send(addr, Method::POST, "/upload", &[], "complete").await;
    assert_eq!((ok.status.as_u16(), &ok.body[..]), (200, &b"complete"[..]));
}

/// The `web` section of the config sets the limits.
#[test]
fn the_web_section_sets_the_limits() {
    let config = xcore::config::Config::from_str(
        "web:\n  header_read_timeout: 2s\n  body_idle_timeout: 500ms\n  max_connections: 64\n",
        xcore::config::Format::Yaml,
    )
    .unwrap();
    let limits = EdgeLimits::from(&config.web);
    assert_eq!(limits.header_read_timeout(), Duration::from_secs(2));
    assert_eq!(limits.body_idle_timeout(), Duration::from_millis(500));
    assert_eq!(limits.body_read_timeout(), Duration::from_secs(60));
    assert_eq!(limits.connection_cap(), Some(64));
    let err = xcore::config::Config::from_str(
        "web:\n  header_timeout: 2s\n",
        xcore::config::Format::Yaml,
    )
    .unwrap_err();
    assert!(err.to_string().contains("header_read_timeout"), "{err}");
}

/// Two tenant headers are a 400 `invalid_tenant` under every adapter, never the first one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_tenant_header_is_400_under_every_adapter() {
    let xcore = boot().await;
    for adapter in ADAPTERS {
        let web = xcore.web().tenancy(&support::tenancy_on()).build().unwrap();
        let addr = serve(adapter, web).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                b"POST /plugin/echo/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Tenant-ID: acme\r\n\
                  X-Tenant-ID: globex\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi",
            )
            .await
            .unwrap();
        let mut reply = String::new();
        tokio::time::timeout(BOUND, stream.read_to_string(&mut reply))
            .await
            .unwrap()
            .unwrap();
        assert!(reply.starts_with("HTTP/1.1 400"), "{adapter:?}: {reply}");
        assert!(
            reply.contains("\"code\":\"invalid_tenant\""),
            "{adapter:?}: {reply}"
        );
        // One header is served.
        let one = send(
            addr,
            Method::POST,
            "/plugin/echo/echo",
            &[("x-tenant-id", "acme")],
            "hi",
        )
        .await;
        assert_eq!(one.status, 200, "{adapter:?}");
    }
    xcore.shutdown().await;
}
