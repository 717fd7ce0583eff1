//! Boot benches: build + boot, and shutdown, of N trivial hand-written plugins (N = 10, 100,
//! 1000), either in one wave (no dependencies) or in ten waves (each plugin requires one plugin
//! of the previous wave).
//!
//! The manifests and plugin instances are made and added to the builder outside the timed
//! region; `build()` (which computes the plan) and `boot()` are timed together, and
//! `shutdown()` is timed on its own.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use xcore::{
    Actions, CallContext, CallError, Manifest, NodeState, Plugin, Xcore, XcoreBuilder, async_trait,
};

/// A plugin with no work in its hooks.
struct Nop;

#[async_trait]
impl Actions for Nop {
    fn action_names(&self) -> &'static [&'static str] {
        &["ping"]
    }

    async fn handle(
        &self,
        action: &str,
        _payload: Value,
        _cx: &CallContext,
    ) -> Result<Value, CallError> {
        match action {
            "ping" => Ok(json!("pong")),
            other => Err(CallError::unknown_action(other, self.action_names())),
        }
    }
}

#[async_trait]
impl Plugin for Nop {}

/// `n` plugins in `waves` layers of `n / waves`; plugin `j` of layer `l > 0` requires plugin `j`
/// of layer `l - 1`.
fn manifests(n: usize, waves: usize) -> Vec<Manifest> {
    let per_wave = n / waves;
    (0..n)
        .map(|i| {
            let (layer, j) = (i / per_wave, i % per_wave);
            let builder = Manifest::builder(format!("p{layer}_{j}"), "1.0.0");
            let builder = if layer == 0 {
                builder
            } else {
                builder.requires([format!("p{}_{j}", layer - 1)])
            };
            builder.build().expect("a valid manifest")
        })
        .collect()
}

fn builder(manifests: &[Manifest]) -> XcoreBuilder {
    manifests
        .iter()
        .fold(Xcore::builder().without_registered(), |b, m| {
            b.plugin(m.clone(), Nop)
        })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime")
}

fn boot(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("boot");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for n in [10usize, 100, 1000] {
        if n == 1000 {
            group.sample_size(20);
        }
        for waves in [1usize, 10] {
            let ms = manifests(n, waves);
            // Check once that the shape is what we mean.
            let xcore = builder(&ms).build().expect("build");
            assert_eq!(xcore.plan().wave_count(), waves);
            let report = rt.block_on(xcore.boot()).expect("boot");
            assert_eq!(report.in_state(NodeState::Started).count(), n);
            assert!(rt.block_on(xcore.shutdown()).is_clean());

            let shape = format!("{waves}_wave{}", if waves == 1 { "" } else { "s" });
            group.bench_function(BenchmarkId::new(format!("build_boot/{shape}"), n), |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let ms = &ms;
                    async move {
                        let mut took = Duration::ZERO;
                        for _ in 0..iters {
                            let unbuilt = builder(ms);
                            let started = Instant::now();
                            let xcore = unbuilt.build().expect("build");
                            let report = xcore.boot().await.expect("boot");
                            took += started.elapsed();
                            black_box(report);
                            xcore.shutdown().await;
                        }
                        took
                    }
                });
            });
            group.bench_function(BenchmarkId::new(format!("shutdown/{shape}"), n), |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let ms = &ms;
                    async move {
                        let mut took = Duration::ZERO;
                        for _ in 0..iters {
                            let xcore = builder(ms).build().expect("build");
                            xcore.boot().await.expect("boot");
                            let started = Instant::now();
                            let report = xcore.shutdown().await;
                            took += started.elapsed();
                            black_box(report);
                        }
                        took
                    }
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, boot);
criterion_main!(benches);
