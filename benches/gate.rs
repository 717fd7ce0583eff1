//! Gate bench: what the gate of a plugin instance costs each way into its code, beside an
//! `Arc` clone and drop (the cheapest shared-state operation) measured in the same run.
//!
//! | bench | what one iteration is |
//! |---|---|
//! | `gate/baseline_arc_clone` | `Arc::clone` + drop |
//! | `gate/enter` | `gate.enter(Way::Call)` + drop of the pass (state check, in-flight count) |
//! | `gate/admit_route` | `gate.admit(Way::Route)` + drop (the same, plus the manifest's rate and concurrency limits, none set) |
//! | `gate/admit_route_limited` | the same with `max_concurrency = 1000` and `rate_limit = 1000000000/1s` |
//! | `gate/run_event` | `gate.run(Way::Event, &cx, ready)` (pass, span, panic isolation) |
//!
//! ```sh
//! cargo bench --bench gate
//! ```

use std::{
    hint::black_box,
    sync::{Arc, OnceLock},
};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;
use xcore::{
    Actions, CallContext, CallError, Manifest, Plugin, PluginContext, PluginError, Xcore,
    async_trait, runtime::Way,
};

/// Keeps its context from `on_load`.
struct Keeper(Arc<OnceLock<PluginContext>>);

#[async_trait]
impl Actions for Keeper {
    async fn handle(&self, action: &str, _: Value, _: &CallContext) -> Result<Value, CallError> {
        Err(CallError::unknown_action(action, &[]))
    }
}

#[async_trait]
impl Plugin for Keeper {
    async fn on_load(&mut self, ctx: &PluginContext) -> Result<(), PluginError> {
        let _ = self.0.set(ctx.clone());
        Ok(())
    }
}

fn gate(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (plain, limited) = (Arc::new(OnceLock::new()), Arc::new(OnceLock::new()));
    let xcore = Xcore::builder()
        .without_registered()
        .plugin(
            Manifest::builder("plain", "1.0.0").build().unwrap(),
            Keeper(plain.clone()),
        )
        .plugin(
            Manifest::builder("limited", "1.0.0")
                .max_concurrency(1000)
                .rate_limit("1000000000/1s")
                .build()
                .unwrap(),
            Keeper(limited.clone()),
        )
        .build()
        .unwrap();
    rt.block_on(async { xcore.boot().await.unwrap().ensure_all_started().unwrap() });
    let (plain, limited) = (plain.get().unwrap().clone(), limited.get().unwrap().clone());
    let mut group = c.benchmark_group("gate");
    let shared = Arc::new(0u64);
    group.bench_function("baseline_arc_clone", |b| {
        b.iter(|| drop(black_box(shared.clone())))
    });
    group.bench_function("enter", |b| {
        b.iter(|| drop(black_box(plain.gate().enter(Way::Call).unwrap())))
    });
    group.bench_function("admit_route", |b| {
        b.iter(|| drop(black_box(plain.gate().admit(Way::Route).unwrap())))
    });
    group.bench_function("admit_route_limited", |b| {
        b.iter(|| drop(black_box(limited.gate().admit(Way::Route).unwrap())))
    });
    let cx = CallContext::host();
    group.bench_function("run_event", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                plain
                    .gate()
                    .run(Way::Event, &cx, async { 1 })
                    .await
                    .unwrap(),
            )
        })
    });
    group.finish();
    rt.block_on(xcore.shutdown());
}

criterion_group!(benches, gate);
criterion_main!(benches);
