//! Event bus: `emit` to 0, 1 and 100 subscribers, with exact and wildcard patterns, beside a
//! direct call of the same handler in the same run.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::json;
use xcore::{
    CallContext, Xcore,
    events::{Event, Flow},
};

fn handler(_: Event) -> std::future::Ready<Result<Flow, String>> {
    std::future::ready(Ok(Flow::Continue))
}

fn emit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("eventbus_emit");
    let cx = CallContext::host();

    group.bench_function("baseline_direct_handler_call", |b| {
        b.to_async(&rt).iter(|| async {
            let event = black_box(json!({"data": 1}));
            black_box(handler(xcore_event_for_baseline(event)).await)
        })
    });

    for (label, pattern) in [("exact", "test.event"), ("wildcard", "test.*")] {
        for subscribers in [0usize, 1, 100] {
            let xcore = Xcore::builder().without_registered().build().unwrap();
            let events = xcore.events();
            for _ in 0..subscribers {
                events.subscribe(pattern, handler).unwrap();
            }
            group.bench_with_input(
                BenchmarkId::new(label, subscribers),
                &subscribers,
                |b, _| {
                    b.to_async(&rt).iter(|| async {
                        black_box(
                            events
                                .emit(&cx, "test.event", json!({"data": 1}))
                                .await
                                .unwrap(),
                        )
                    })
                },
            );
        }
    }
    group.finish();
}

/// The baseline builds what an emit hands a handler: an event with its payload.
fn xcore_event_for_baseline(payload: serde_json::Value) -> Event {
    Event::new("test.event", payload)
}

criterion_group!(benches, emit);
criterion_main!(benches);
