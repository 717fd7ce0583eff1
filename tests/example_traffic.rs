//! The user_manager example on embedded defaults under hostile traffic, over real loopback
//! sockets: clients that disconnect mid-request lose no data; concurrent registrations never
//! answer 500.

#[path = "../examples/user_manager/plugin.rs"]
#[allow(dead_code)]
mod plugin;
mod support;

use std::{net::SocketAddr, time::Duration};

use http::Method;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use xcore::{Xcore, config::Config, services::db::DatabaseOptions};
use xcore_testkit::{PostgresServer, TestApp};

use support::{Adapter, send};

fn embedded() -> Config {
    plugin::embedded_config()
}

async fn start(config: Config) -> (Xcore, SocketAddr) {
    let xcore = TestApp::builder()
        .plugins(["user_manager"])
        .configure(|b| b.config(config.clone()))
        .build()
        .unwrap();
    xcore.boot().await.unwrap();
    let web = xcore.web().config(&config).build().unwrap();
    let addr = support::serve(Adapter::Axum, web).await;
    (xcore, addr)
}

async fn register(addr: SocketAddr, tenant: &str, name: &str) -> u16 {
    let body = json!({"username": name, "email": format!("{name}@xcore.dev")}).to_string();
    send(
        addr,
        Method::POST,
        "/plugin/user_manager/v2/register",
        &[
            ("x-tenant-id", tenant),
            ("content-type", "application/json"),
        ],
        &body,
    )
    .await
    .status
    .as_u16()
}

async fn count(addr: SocketAddr, tenant: &str) -> i64 {
    let reply = send(
        addr,
        Method::GET,
        "/plugin/user_manager/v2/users/count",
        &[("x-tenant-id", tenant)],
        "",
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    reply.json()["count"].as_i64().unwrap()
}

/// Sends a registration and hangs up: after the whole request (the server may or may not have
/// finished it), or in the middle of the body.
async fn aborted(addr: SocketAddr, tenant: &'static str, name: String, whole: bool) {
    let body = json!({"username": name, "email": format!("{name}@xcore.dev")}).to_string();
    let request = format!(
        "POST /plugin/user_manager/v2/register HTTP/1.1\r\nhost: x\r\nx-tenant-id: {tenant}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let cut = if whole {
        request.len()
    } else {
        request.len() - 5
    };
    stream.write_all(&request.as_bytes()[..cut]).await.unwrap();
    if whole {
        // Let the handler start, then disconnect while it runs.
        tokio::time::sleep(Duration::from_millis(u64::from(name.len() as u8 % 3))).await;
    }
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_requests_lose_no_data() {
    let (xcore, addr) = start(embedded()).await;
    for i in 0..20 {
        assert_eq!(register(addr, "acme", &format!("user{i:02}")).await, 201);
    }
    let mut tasks = Vec::new();
    for i in 0..100 {
        tasks.push(tokio::spawn(aborted(
            addr,
            "acme",
            format!("gone{i:03}"),
            i % 2 == 0,
        )));
    }
    for task in tasks {
        task.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Every user registered before is still there: registering them again is a conflict.
    for i in 0..20 {
        assert_eq!(
            register(addr, "acme", &format!("user{i:02}")).await,
            409,
            "user{i:02} was lost"
        );
    }
    let after = count(addr, "acme").await;
    assert!((20..=120).contains(&after), "{after}");
    assert_eq!(register(addr, "acme", "newcomer").await, 201);
    assert_eq!(count(addr, "acme").await, after + 1);
    xcore.shutdown().await;
}

async fn concurrent_registrations(config: Config) {
    let (xcore, addr) = start(config).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        tasks.push(tokio::spawn(register(
            addr,
            "acme",
            format!("crowd{i:02}").leak(),
        )));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    assert_eq!(count(addr, "acme").await, 50);
    xcore.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_on_embedded_defaults() {
    concurrent_registrations(embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_on_postgres() {
    let Ok(server) = PostgresServer::start().await else {
        return;
    };
    let mut config = embedded();
    config.services.databases.insert(
        "default".into(),
        DatabaseOptions {
            url: server.database().await.unwrap(),
            ..DatabaseOptions::default()
        },
    );
    concurrent_registrations(config).await;
}
