//! [`OpCounts`]: the operations a cache service sent to its backend, by operation and result,
//! reported as `xcore_cache_operations_total{backend,op,result}`.
//!
//! One relaxed atomic add per operation (per key read for `mget`); the figures reach the
//! metrics recorder when the service is sampled ([`Xcore::sample_metrics`](crate::Xcore::sample_metrics),
//! before each scrape of `GET {admin}/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};

use super::{CacheError, lru::Blob};
use crate::observability::{Metrics, names};

/// An operation that reaches the backend.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Get,
    Set,
    Delete,
    Exists,
    Incr,
    Ttl,
    Mget,
    Mset,
    Keys,
    DeletePattern,
}

impl Op {
    const ALL: [Op; 10] = [
        Op::Get,
        Op::Set,
        Op::Delete,
        Op::Exists,
        Op::Incr,
        Op::Ttl,
        Op::Mget,
        Op::Mset,
        Op::Keys,
        Op::DeletePattern,
    ];

    fn label(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Set => "set",
            Op::Delete => "delete",
            Op::Exists => "exists",
            Op::Incr => "incr",
            Op::Ttl => "ttl",
            Op::Mget => "mget",
            Op::Mset => "mset",
            Op::Keys => "keys",
            Op::DeletePattern => "delete_pattern",
        }
    }
}

/// `hit`, `miss` (reads), `ok` (the other operations), `error` (the backend failed).
const RESULTS: [&str; 4] = ["hit", "miss", "ok", "error"];
const HIT: usize = 0;
const MISS: usize = 1;
const OK: usize = 2;
const ERROR: usize = 3;

/// The counts of one cache service.
#[derive(Debug, Default)]
pub(crate) struct OpCounts {
    counts: [[AtomicU64; RESULTS.len()]; Op::ALL.len()],
}

impl OpCounts {
    fn add(&self, op: Op, result: usize, n: u64) {
        if n > 0 {
            self.counts[op as usize][result].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counts an operation by its outcome (`ok` or `error`) and gives the outcome back.
    #[inline]
    pub(crate) fn done<T>(&self, op: Op, outcome: Result<T, CacheError>) -> Result<T, CacheError> {
        self.add(op, if outcome.is_ok() { OK } else { ERROR }, 1);
        outcome
    }

    /// Counts a read of one key (`get`): `hit`, `miss` or `error`.
    #[inline]
    pub(crate) fn read(
        &self,
        outcome: Result<Option<Blob>, CacheError>,
    ) -> Result<Option<Blob>, CacheError> {
        let result = match &outcome {
            Ok(Some(_)) => HIT,
            Ok(None) => MISS,
            Err(_) => ERROR,
        };
        self.add(Op::Get, result, 1);
        outcome
    }

    /// Counts a read of several keys (`mget`): a `hit` or `miss` per key, or one `error`.
    pub(crate) fn read_many(
        &self,
        outcome: Result<Vec<Option<Blob>>, CacheError>,
    ) -> Result<Vec<Option<Blob>>, CacheError> {
        match &outcome {
            Ok(blobs) => {
                let hits = blobs.iter().filter(|b| b.is_some()).count() as u64;
                self.add(Op::Mget, HIT, hits);
                self.add(Op::Mget, MISS, blobs.len() as u64 - hits);
            }
            Err(_) => self.add(Op::Mget, ERROR, 1),
        }
        outcome
    }

    /// Reports the counts so far as `xcore_cache_operations_total{backend,op,result}`
    /// (series that never counted anything are left out).
    pub(crate) fn report(&self, metrics: &Metrics, backend: &str) {
        for op in Op::ALL {
            for (i, result) in RESULTS.iter().enumerate() {
                let n = self.counts[op as usize][i].load(Ordering::Relaxed);
                if n > 0 {
                    metrics.set_counter(
                        names::CACHE_OPERATIONS_TOTAL,
                        &[("backend", backend), ("op", op.label()), ("result", result)],
                        n,
                    );
                }
            }
        }
    }
}
