//! What several benches share: the paired comparison of a raw operation and xcore's handle.

use std::time::Instant;

use tokio::runtime::Runtime;

/// Rounds of the paired comparison.
pub(crate) const ROUNDS: usize = 15;

/// Runs `raw` and `handle` alternately, `n` calls each per round, and prints the median time
/// per call of each and the median of the per-round ratios handle / raw. Alternating makes the
/// ratio robust to load that drifts during the run (criterion measures one function after the
/// other).
pub(crate) fn paired(
    rt: &Runtime,
    label: &str,
    n: u32,
    mut raw: impl AsyncFnMut(),
    mut handle: impl AsyncFnMut(),
) {
    let (mut raws, mut handles, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    rt.block_on(async {
        for _ in 0..ROUNDS {
            let started = Instant::now();
            for _ in 0..n {
                raw().await;
            }
            let r = started.elapsed() / n;
            let started = Instant::now();
            for _ in 0..n {
                handle().await;
            }
            let h = started.elapsed() / n;
            raws.push(r);
            handles.push(h);
            ratios.push(h.as_secs_f64() / r.as_secs_f64());
        }
    });
    raws.sort();
    handles.sort();
    ratios.sort_by(f64::total_cmp);
    println!(
        "{label}: raw {:?}, handle {:?} per call (medians of {ROUNDS} alternating rounds of {n}); \
         handle / raw = {:.3}",
        raws[ROUNDS / 2],
        handles[ROUNDS / 2],
        ratios[ROUNDS / 2],
    );
}
