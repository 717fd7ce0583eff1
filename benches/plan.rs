//! Plan benches: `XcoreBuilder::build()` — duplicate checks, graph resolution, Kahn's waves
//! and the instance table — for 10,000 hand-written plugins, layered (100 waves of 100, each
//! plugin requiring `p<l-1>_<j>@^1` of the previous wave) and flat (no dependencies).
//!
//! The manifests, the plugin instances and the builder are made in `iter_batched`'s setup,
//! outside the timed region; only `build()` is timed (the built `Xcore` is dropped outside
//! it too).

use std::{hint::black_box, time::Duration};

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::Value;
use xcore::{Actions, CallContext, CallError, Manifest, Plugin, Xcore, XcoreBuilder, async_trait};

/// A plugin that is never booted here.
struct Nop;

#[async_trait]
impl Actions for Nop {
    async fn handle(
        &self,
        action: &str,
        _payload: Value,
        _cx: &CallContext,
    ) -> Result<Value, CallError> {
        Err(CallError::unknown_action(action, self.action_names()))
    }
}

#[async_trait]
impl Plugin for Nop {}

const NODES: usize = 10_000;

/// `waves` layers of `NODES / waves` plugins; plugin `j` of layer `l > 0` requires plugin `j`
/// of layer `l - 1` (with a version constraint, so it is checked too).
fn manifests(waves: usize) -> Vec<Manifest> {
    let per_wave = NODES / waves;
    (0..NODES)
        .map(|i| {
            let (layer, j) = (i / per_wave, i % per_wave);
            let builder = Manifest::builder(format!("p{layer}_{j}"), "1.0.0");
            let builder = if layer == 0 {
                builder
            } else {
                builder.requires([format!("p{}_{j}@^1", layer - 1)])
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

fn plan(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for (shape, waves) in [("layered_100x100", 100usize), ("flat", 1)] {
        let ms = manifests(waves);
        let xcore = builder(&ms).build().expect("build");
        assert_eq!(xcore.plan().wave_count(), waves);
        assert_eq!(xcore.plan().nodes().len(), NODES);
        assert_eq!(xcore.plan().rejected().count(), 0);
        drop(xcore);

        group.bench_function(BenchmarkId::new(shape, NODES), |b| {
            b.iter_batched(
                || builder(&ms),
                |unbuilt| black_box(unbuilt.build().expect("build")),
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, plan);
criterion_main!(benches);
