//! Permission checks: an allowed check, a denied one, and one against 50 grants, beside a
//! baseline `HashSet` lookup of the exact (resource, action) pair in the same run.

use std::{collections::HashSet, hint::black_box};

use criterion::{Criterion, criterion_group, criterion_main};
use xcore::Grants;

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

criterion_group!(benches, checks);
criterion_main!(benches);
