//! What the loopback web tests share: serving one `Web` through each adapter on a fresh
//! port, and a small HTTP/1.1 client.
#![allow(dead_code)] // each test binary uses part of it

use std::{net::SocketAddr, time::Duration};

use axum::{Router, routing::get};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use xcore::{config::TenancyConfig, web::Web};

/// Tenancy on, with the default header.
pub(crate) fn tenancy_on() -> TenancyConfig {
    let mut tenancy = TenancyConfig::default();
    tenancy.enabled = true;
    tenancy
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Adapter {
    Axum,
    Hyper,
    Actix,
}

pub(crate) const ADAPTERS: [Adapter; 3] = [Adapter::Axum, Adapter::Hyper, Adapter::Actix];

/// Serves `web` on a fresh loopback port through `adapter`.
pub(crate) async fn serve(adapter: Adapter, web: Web) -> SocketAddr {
    match adapter {
        Adapter::Axum => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let host = Router::new().route("/", get(|| async { "home" }));
            let app = xcore::web::axum::mount(host, &web);
            let edge = web.edge().clone();
            tokio::spawn(xcore::web::axum::serve(
                listener,
                app,
                edge,
                std::future::pending(),
            ));
            addr
        }
        Adapter::Hyper => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(xcore::web::hyper::serve(
                listener,
                web,
                std::future::pending(),
            ));
            addr
        }
        Adapter::Actix => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let edge = web.edge().clone();
                    let server = actix_web::HttpServer::new(move || {
                        actix_web::App::new().configure(xcore::web::actix::configure(web.clone()))
                    });
                    xcore::web::actix::apply_limits(server, &edge)
                        .workers(1)
                        .disable_signals()
                        .listen(listener)?
                        .run()
                        .await
                })
            });
            addr
        }
    }
}

#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// What must be identical across adapters: status, the headers that matter, the body.
    pub(crate) fn essence(&self) -> (StatusCode, Vec<(String, String)>, Bytes) {
        let wanted = [
            header::CONTENT_TYPE,
            header::CONTENT_LENGTH,
            header::ALLOW,
            header::WWW_AUTHENTICATE,
        ];
        let headers = wanted
            .iter()
            .filter_map(|h| {
                let v = self.headers.get(h)?;
                Some((h.to_string(), v.to_str().unwrap().to_owned()))
            })
            .collect();
        (self.status, headers, self.body.clone())
    }
}

pub(crate) async fn send_body<B>(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: B,
) -> Reply
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "127.0.0.1");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = sender
            .send_request(request.body(body).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("no answer within 10 s")
}

pub(crate) async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    send_body(
        addr,
        method,
        path,
        headers,
        Full::new(Bytes::from(body.to_owned())),
    )
    .await
}

pub(crate) async fn get_(addr: SocketAddr, path: &str) -> Reply {
    send(addr, Method::GET, path, &[], "").await
}

/// Serves the same `web` through every adapter.
pub(crate) async fn serve_all(web: &Web) -> Vec<(Adapter, SocketAddr)> {
    let mut addrs = Vec::new();
    for adapter in ADAPTERS {
        addrs.push((adapter, serve(adapter, web.clone()).await));
    }
    addrs
}
