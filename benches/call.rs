//! Call benches: a trivial handler called directly versus through the full call pipeline
//! (`call_ping`), and a plugin-to-plugin hop versus a single pipeline call (`call_hop`).
//!
//! Plugins are written by hand (no `#[plugin]` macro) and added with
//! `Xcore::builder().without_registered().plugin(manifest, instance)`.
//!
//! The runtime is a current-thread tokio runtime by default; set `XCORE_BENCH_RT=multi` to
//! run the same benches on a multi-thread runtime (2 workers) instead.

use std::{hint::black_box, sync::Arc, time::Duration};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use xcore::{
    Actions, CallContext, CallError, Manifest, Plugin, PluginContext, PluginError, Xcore,
    async_trait,
};

/// Answers `ping` with `"pong"` and `echo` with its payload.
struct PingPlugin;

#[async_trait]
impl Actions for PingPlugin {
    fn action_names(&self) -> &'static [&'static str] {
        &["ping", "echo"]
    }

    async fn handle(
        &self,
        action: &str,
        payload: Value,
        _cx: &CallContext,
    ) -> Result<Value, CallError> {
        match action {
            "ping" => Ok(json!("pong")),
            "echo" => Ok(payload),
            other => Err(CallError::unknown_action(other, self.action_names())),
        }
    }
}

#[async_trait]
impl Plugin for PingPlugin {}

/// Plugin `a`: `proxy_ping` calls `b.ping` through the context kept from `on_load`.
#[derive(Default)]
struct ProxyPlugin {
    ctx: Option<PluginContext>,
}

#[async_trait]
impl Actions for ProxyPlugin {
    fn action_names(&self) -> &'static [&'static str] {
        &["proxy_ping"]
    }

    async fn handle(
        &self,
        action: &str,
        _payload: Value,
        cx: &CallContext,
    ) -> Result<Value, CallError> {
        match action {
            "proxy_ping" => {
                let ctx = self
                    .ctx
                    .as_ref()
                    .ok_or_else(|| CallError::internal("proxy_ping before on_load"))?;
                ctx.plugin("b").call(cx, "ping", json!({})).await
            }
            other => Err(CallError::unknown_action(other, self.action_names())),
        }
    }
}

#[async_trait]
impl Plugin for ProxyPlugin {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        self.ctx = Some(ctx.clone());
        Ok(())
    }
}

fn runtime() -> Runtime {
    match std::env::var("XCORE_BENCH_RT").as_deref() {
        Ok("multi") => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a multi-thread tokio runtime"),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread tokio runtime"),
    }
}

fn manifest(name: &str) -> Manifest {
    Manifest::builder(name, "1.0.0")
        .build()
        .expect("a valid manifest")
}

/// The payload of the `echo_payload` variants, built anew for every call (as a caller would).
fn echo_payload() -> Value {
    json!({"key": "value", "data": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "nested": {"a": 1}})
}

fn call_ping(c: &mut Criterion) {
    let rt = runtime();
    let direct = Arc::new(PingPlugin);
    let xcore = Xcore::builder()
        .without_registered()
        .plugin(manifest("ping_plugin"), PingPlugin)
        .build()
        .expect("build");
    rt.block_on(xcore.boot()).expect("boot");
    assert_eq!(
        rt.block_on(xcore.call("ping_plugin", "ping", json!({})))
            .expect("ping"),
        json!("pong")
    );
    assert_eq!(
        rt.block_on(xcore.call("ping_plugin", "echo", echo_payload()))
            .expect("echo"),
        echo_payload()
    );

    let mut group = c.benchmark_group("call_ping");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));

    group.bench_function(BenchmarkId::new("direct", "ping"), |b| {
        b.to_async(&rt).iter(|| {
            let plugin = direct.clone();
            async move { black_box(plugin.handle("ping", json!({}), &CallContext::host()).await) }
        });
    });
    group.bench_function(BenchmarkId::new("pipeline", "ping"), |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(xcore.call("ping_plugin", "ping", json!({})).await) });
    });
    group.bench_function(BenchmarkId::new("direct", "echo_payload"), |b| {
        b.to_async(&rt).iter(|| {
            let plugin = direct.clone();
            async move {
                black_box(
                    plugin
                        .handle("echo", echo_payload(), &CallContext::host())
                        .await,
                )
            }
        });
    });
    group.bench_function(BenchmarkId::new("pipeline", "echo_payload"), |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(xcore.call("ping_plugin", "echo", echo_payload()).await) });
    });
    group.finish();
    rt.block_on(xcore.shutdown());
}

fn call_hop(c: &mut Criterion) {
    let rt = runtime();
    let a = Manifest::builder("a", "1.0.0")
        .requires(["b"])
        .permissions(["plugin:b: ping"])
        .build()
        .expect("manifest of a");
    let xcore = Xcore::builder()
        .without_registered()
        .plugin(manifest("b"), PingPlugin)
        .plugin(a, ProxyPlugin::default())
        .build()
        .expect("build");
    rt.block_on(xcore.boot()).expect("boot");
    assert_eq!(
        rt.block_on(xcore.call("a", "proxy_ping", json!({})))
            .expect("proxy_ping"),
        json!("pong")
    );

    let mut group = c.benchmark_group("call_hop");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("single", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(xcore.call("b", "ping", json!({})).await) });
    });
    group.bench_function("hop", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(xcore.call("a", "proxy_ping", json!({})).await) });
    });
    group.finish();
    rt.block_on(xcore.shutdown());
}

criterion_group!(benches, call_ping, call_hop);
criterion_main!(benches);
