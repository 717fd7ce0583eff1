//! Handles: what a plugin pays to take a handle, in a hot path.
//!
//! - `obtain_checked`: the handle made and checked against the grants from scratch
//!   (`<Cache as NamedHandle>::obtain_named`: what every request would pay without keeping);
//! - `ctx_named_kept`: `ctx.named::<Cache>("items")`, the handle kept by the instance;
//! - `cx_named_bound`: `cx.named::<Cache>("items").await` in a call for tenant `acme`: the kept
//!   handle, bound to the call's tenant;
//! - `cx_handle_worker_bound`: `cx.handle::<Worker>().await`, the same for the worker.
//!
//! ```text
//! cargo bench --bench handles
//! ```

use std::{
    hint::black_box,
    sync::{Arc, OnceLock},
    time::Duration,
};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;
use xcore::{
    Actions, CallContext, CallError, Manifest, Plugin, PluginContext, TenantId, Xcore, async_trait,
    plugin::NamedHandle,
    services::{
        cache::{Cache, CacheOptions, CacheService},
        worker::{Worker, WorkerOptions, WorkerService},
    },
};

/// Keeps its context, and the context of the call it serves.
#[derive(Default)]
struct Keeper {
    ctx: Arc<OnceLock<PluginContext>>,
    cx: Arc<OnceLock<CallContext>>,
}

#[async_trait]
impl Actions for Keeper {
    async fn handle(&self, _: &str, _: Value, cx: &CallContext) -> Result<Value, CallError> {
        let _ = self.cx.set(cx.clone());
        Ok(Value::Null)
    }
}

#[async_trait]
impl Plugin for Keeper {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), xcore::PluginError> {
        let _ = self.ctx.set(ctx.clone());
        Ok(())
    }
}

fn handles(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let keeper = Keeper::default();
    let (ctx, cx) = (keeper.ctx.clone(), keeper.cx.clone());
    let xcore = rt.block_on(async {
        let manifest = Manifest::builder("keeper", "1.0.0")
            .services(["cache", "worker"])
            .permissions(["cache.items: *", "service:worker: execute"])
            .build()
            .unwrap();
        let xcore = Xcore::builder()
            .without_registered()
            .service(CacheService::new(CacheOptions::default()))
            .service(WorkerService::new(WorkerOptions::memory()).unwrap())
            .plugin(manifest, keeper)
            .build()
            .unwrap();
        xcore.boot().await.unwrap();
        let acme = CallContext::host().with_tenant(TenantId::new("acme").unwrap());
        xcore
            .call_with(acme, "keeper", "keep", Value::Null)
            .await
            .unwrap();
        xcore
    });
    let (ctx, cx) = (ctx.get().unwrap().clone(), cx.get().unwrap().clone());

    let mut group = c.benchmark_group("handles");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("obtain_checked", |b| {
        b.iter(|| {
            black_box(<Cache as NamedHandle>::obtain_named(&ctx, black_box("items")).unwrap())
        })
    });
    group.bench_function("ctx_named_kept", |b| {
        b.iter(|| black_box(ctx.named::<Cache>(black_box("items")).unwrap()))
    });
    group.bench_function("cx_named_bound", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(cx.named::<Cache>(black_box("items")).await.unwrap()) })
    });
    group.bench_function("cx_handle_worker_bound", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(cx.handle::<Worker>().await.unwrap()) })
    });
    group.finish();
    rt.block_on(xcore.shutdown());
}

criterion_group!(benches, handles);
criterion_main!(benches);
