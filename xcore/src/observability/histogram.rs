//! [`Seconds`]: a duration histogram handle; with xcore's Prometheus exporter, one of its own
//! ([`Buckets`]: fixed buckets of atomics, two relaxed adds per sample) rendered beside the
//! exporter's text, instead of the recorder's histogram (which appends every sample to a
//! queue folded at upkeep or scrape: 3–4× the cost on the call path).

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use metrics::{Histogram, Label};

use super::{
    metrics::CODES,
    names::{self, DESCRIPTIONS},
};

/// The upper bounds of the buckets of every duration histogram, in seconds: 0.5 ms to 10 s.
pub const SECONDS_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Where a duration is recorded.
pub(crate) enum Seconds {
    /// The recorder's histogram (any recorder; a no-op one when metrics are disabled).
    Facade(Histogram),
    /// A histogram of xcore's Prometheus exporter.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    Own(Arc<Buckets>),
}

impl Seconds {
    /// Records one duration.
    #[inline]
    pub(crate) fn record(&self, took: Duration) {
        match self {
            Self::Facade(histogram) => histogram.record(took.as_secs_f64()),
            Self::Own(buckets) => buckets.record(took),
        }
    }
}

#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
/// [`SECONDS_BUCKETS`] in nanoseconds.
const BOUNDS_NANOS: [u64; SECONDS_BUCKETS.len()] = {
    let mut bounds = [0; SECONDS_BUCKETS.len()];
    let mut i = 0;
    while i < bounds.len() {
        // Exact for these bounds (0.5 ms to 10 s); the cast cannot overflow.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        {
            bounds[i] = (SECONDS_BUCKETS[i] * 1e9) as u64;
        }
        i += 1;
    }
    bounds
};

#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
/// One histogram series: a count per bucket (the last one past every bound) and the sum.
#[derive(Debug, Default)]
pub(crate) struct Buckets {
    counts: [AtomicU64; SECONDS_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Buckets {
    #[inline]
    fn record(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let at = BOUNDS_NANOS.partition_point(|&bound| bound < nanos);
        self.counts[at].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
/// A series: its name and labels.
type SeriesKey = (&'static str, Vec<(String, String)>);

/// The histograms of one exporter, by name and labels.
#[derive(Debug, Default)]
pub(crate) struct OwnHistograms {
    series: Mutex<HashMap<SeriesKey, Arc<Buckets>>>,
}

#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
impl OwnHistograms {
    /// The series `name` with `labels`, registered on first use.
    pub(crate) fn get(&self, name: &'static str, labels: Vec<Label>) -> Arc<Buckets> {
        let labels = labels
            .iter()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        self.series
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((name, labels))
            .or_default()
            .clone()
    }

    /// Appends the Prometheus text of every series to `out`, by name then labels.
    pub(crate) fn render(&self, out: &mut String) {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let mut sorted: Vec<_> = series.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let mut current = None;
        for ((name, labels), buckets) in sorted {
            if current != Some(*name) {
                current = Some(*name);
                let help = DESCRIPTIONS
                    .iter()
                    .find(|(n, ..)| n == name)
                    .map_or("", |(.., help)| *help);
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} histogram");
            }
            let mut pairs = String::new();
            for (key, value) in labels {
                let _ = write!(pairs, "{key}=\"{}\",", escape(value));
            }
            let mut cumulative = 0;
            for (i, count) in buckets.counts.iter().enumerate() {
                cumulative += count.load(Ordering::Relaxed);
                match SECONDS_BUCKETS.get(i) {
                    Some(bound) => {
                        let _ =
                            writeln!(out, "{name}_bucket{{{pairs}le=\"{bound}\"}} {cumulative}");
                    }
                    None => {
                        let _ = writeln!(out, "{name}_bucket{{{pairs}le=\"+Inf\"}} {cumulative}");
                    }
                }
            }
            let pairs = pairs.trim_end_matches(',');
            #[allow(clippy::cast_precision_loss)]
            let sum = buckets.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "{name}_sum{{{pairs}}} {sum}");
            let _ = writeln!(out, "{name}_count{{{pairs}}} {cumulative}");
        }
    }
}

/// The calls of one plugin's action with xcore's Prometheus exporter: the durations of the
/// calls answered `Ok` and of the others apart, and a count per error code. A call answered
/// `Ok` costs two relaxed adds (its bucket, the sum): `xcore_calls_total{code="ok"}` is the
/// count of the `Ok` buckets, and `xcore_call_duration_seconds` both bucket sets merged.
#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
#[derive(Debug, Default)]
pub(crate) struct CallSeries {
    ok: Buckets,
    failed: Buckets,
    codes: [AtomicU64; CODES.len()],
}

#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
impl CallSeries {
    /// Records a call that took `took`: `Ok`, or the index of its error code in [`CODES`].
    #[inline]
    pub(crate) fn record(&self, failed: Option<usize>, took: Duration) {
        match failed {
            None => self.ok.record(took),
            Some(code) => {
                self.codes[code].fetch_add(1, Ordering::Relaxed);
                self.failed.record(took);
            }
        }
    }
}

/// The call series of one exporter, by plugin and action.
#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
#[derive(Debug, Default)]
pub(crate) struct OwnCalls {
    series: Mutex<HashMap<(String, String), Arc<CallSeries>>>,
}

#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
impl OwnCalls {
    /// The series of `plugin`'s `action`, registered on first use.
    pub(crate) fn get(&self, plugin: &str, action: &str) -> Arc<CallSeries> {
        self.series
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((plugin.to_owned(), action.to_owned()))
            .or_default()
            .clone()
    }

    /// Appends `xcore_calls_total` and `xcore_call_duration_seconds` to `out`.
    pub(crate) fn render(&self, out: &mut String) {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        if series.is_empty() {
            return;
        }
        let mut sorted: Vec<_> = series.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let help = |name: &str| {
            DESCRIPTIONS
                .iter()
                .find(|(n, ..)| *n == name)
                .map_or("", |(.., help)| *help)
        };
        let (calls, seconds) = (names::CALLS_TOTAL, names::CALL_DURATION_SECONDS);
        let _ = writeln!(out, "# HELP {calls} {}", help(calls));
        let _ = writeln!(out, "# TYPE {calls} counter");
        for ((plugin, action), series) in &sorted {
            let pairs = call_labels(plugin, action);
            let ok: u64 = series
                .ok
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .sum();
            let _ = writeln!(out, "{calls}{{{pairs},code=\"ok\"}} {ok}");
            for (code, count) in CODES.iter().zip(&series.codes) {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let _ = writeln!(out, "{calls}{{{pairs},code=\"{}\"}} {count}", code.as_str());
                }
            }
        }
        let _ = writeln!(out, "# HELP {seconds} {}", help(seconds));
        let _ = writeln!(out, "# TYPE {seconds} histogram");
        for ((plugin, action), series) in &sorted {
            let pairs = call_labels(plugin, action);
            let mut cumulative = 0;
            for (i, (ok, failed)) in series
                .ok
                .counts
                .iter()
                .zip(&series.failed.counts)
                .enumerate()
            {
                cumulative += ok.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed);
                let le = SECONDS_BUCKETS
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), f64::to_string);
                let _ = writeln!(out, "{seconds}_bucket{{{pairs},le=\"{le}\"}} {cumulative}");
            }
            let nanos = series.ok.sum_nanos.load(Ordering::Relaxed)
                + series.failed.sum_nanos.load(Ordering::Relaxed);
            #[allow(clippy::cast_precision_loss)]
            let sum = nanos as f64 / 1e9;
            let _ = writeln!(out, "{seconds}_sum{{{pairs}}} {sum}");
            let _ = writeln!(out, "{seconds}_count{{{pairs}}} {cumulative}");
        }
    }
}

/// `plugin="…",action="…"`, escaped.
#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
fn call_labels(plugin: &str, action: &str) -> String {
    format!(
        "plugin=\"{}\",action=\"{}\"",
        escape(plugin),
        escape(action)
    )
}

/// A label value in the text format: `\`, `"` and new lines escaped.
#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains(['\\', '"', '\n']) {
        value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
            .into()
    } else {
        value.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_their_bucket_and_render_cumulatively() {
        let own = OwnHistograms::default();
        let series = own.get("xcore_test_seconds", vec![Label::new("route", "/a\"b")]);
        let at = |ms: u64| Seconds::Own(series.clone()).record(Duration::from_micros(ms));
        at(100); // ≤ 0.5 ms
        at(500); // exactly 0.5 ms: still the first bucket
        at(700); // ≤ 1 ms
        at(20_000_000); // 20 s: past every bound
        let mut text = String::new();
        own.render(&mut text);
        assert!(
            text.contains("# TYPE xcore_test_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains(r#"xcore_test_seconds_bucket{route="/a\"b",le="0.0005"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"xcore_test_seconds_bucket{route="/a\"b",le="0.001"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"xcore_test_seconds_bucket{route="/a\"b",le="10"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"xcore_test_seconds_bucket{route="/a\"b",le="+Inf"} 4"#),
            "{text}"
        );
        assert!(
            text.contains(r#"xcore_test_seconds_count{route="/a\"b"} 4"#),
            "{text}"
        );
        assert!(
            text.contains(r#"xcore_test_seconds_sum{route="/a\"b"} 20.0013"#),
            "{text}"
        );
    }
}
