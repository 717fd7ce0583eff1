//! Permission checks: an allowed check, a denied one, and one against 50 grants, beside a
//! baseline `HashSet` lookup of the exact (resource, action) pair in the same run.
//!
//! `typed_resource`: the check every boundary makes through `permissions::Resource`
//! (`Resource::plugin(target).allowed_by(grants, action)`, no string built), beside the check
//! of a preformatted `plugin:<target>` string it replaced in the call pipeline.
//!
//! `worst_case`: patterns full of `**` against long resources, where a backtracking matcher
//! is exponential (10 `**` against 64 segments; goal ≤ 10 µs), and the subscription check
//! (pattern against pattern) on the same shapes.

use std::{collections::HashSet, hint::black_box};

use criterion::{Criterion, criterion_group, criterion_main};
use xcore::{Grants, ResourcePattern, permissions::Resource};

fn checks(c: &mut Criterion) {
    let mut group = c.benchmark_group("permission_check");
    let two = Grants::parse(["db.*: read", "!db.secrets: *"]).unwrap();
    let exact: HashSet<(&str, &str)> = [("db.users", "read")].into_iter().collect();
    group.bench_function("baseline_hashset", |b| {
        b.iter(|| black_box(exact.contains(&black_box(("db.users", "read")))))
    });
    group.bench_function("allowed", |b| {
        b.iter(|| black_box(two.allows(black_box("db.users"), black_box("read"))))
    });
    group.bench_function("denied", |b| {
        b.iter(|| black_box(two.allows(black_box("db.secrets"), black_box("read"))))
    });
    let fifty: Vec<String> = (0..49)
        .map(|i| format!("plugin:p{i}.**: act{i}, other"))
        .chain(["events:user.*: emit".to_owned()])
        .collect();
    let fifty = Grants::parse(&fifty).unwrap();
    group.bench_function("fifty_grants_last_matches", |b| {
        b.iter(|| black_box(fifty.allows_scoped("events", black_box("user.created"), "emit")))
    });
    group.finish();
}

fn typed_resource(c: &mut Criterion) {
    let mut group = c.benchmark_group("permission_typed_resource");
    let grants =
        Grants::parse(["plugin:billing: refund, charge", "!plugin:billing: purge"]).unwrap();
    let formatted = String::from("plugin:billing");
    group.bench_function("baseline_preformatted_string", |b| {
        b.iter(|| black_box(grants.allows(black_box(&formatted), black_box("charge"))))
    });
    group.bench_function("typed_resource", |b| {
        b.iter(|| {
            black_box(
                Resource::plugin(black_box("billing")).allowed_by(&grants, black_box("charge")),
            )
        })
    });
    group.finish();
}

fn worst_case(c: &mut Criterion) {
    let mut group = c.benchmark_group("permission_worst_case");
    // `**.x.**.x…` (10 `**`) against 63 `x` then a `y`: every split of the resource is a
    // candidate for a backtracking matcher, and none matches.
    let pattern = ["**", "x"].repeat(10).join(".");
    let grants = Grants::parse([format!("{pattern}: read")]).unwrap();
    let miss = ["x"; 63].join(".") + ".y";
    let hit = ["x"; 64].join(".");
    group.bench_function("ten_double_stars_64_segments_miss", |b| {
        b.iter(|| black_box(grants.allows(black_box(&miss), "read")))
    });
    group.bench_function("ten_double_stars_64_segments_hit", |b| {
        b.iter(|| black_box(grants.allows(black_box(&hit), "read")))
    });
    // The subscription check: an allow covering and a deny intersecting, both full of `**`.
    let subscribe = Grants::parse([
        format!("events.{pattern}: subscribe"),
        format!("!events.{}.y: subscribe", ["**", "x"].repeat(10).join(".")),
    ])
    .unwrap();
    let sub = ResourcePattern::parse(&format!("{pattern}.x")).unwrap();
    group.bench_function("subscribe_pattern_ten_double_stars", |b| {
        b.iter(|| {
            black_box(subscribe.allows_pattern_scoped("events", black_box(&sub), "subscribe"))
        })
    });
    group.finish();
}

criterion_group!(benches, checks, typed_resource, worst_case);
criterion_main!(benches);
