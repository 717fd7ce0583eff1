//! [`Metrics`]: where one `Xcore` records, and the handles its choke points keep.

use std::{
    fmt,
    sync::{Arc, OnceLock},
    time::Duration,
};

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder, SharedString};

use super::histogram::{CallSeries, Seconds};
use super::names::{self, DESCRIPTIONS, Kind};
use crate::ErrorCode;

/// What every series is registered with.
static METADATA: Metadata<'static> = Metadata::new("xcore", Level::INFO, Some("xcore"));

/// Where one [`Xcore`](crate::Xcore) records its metrics: nowhere
/// ([`disabled`](Self::disabled), the default), any [`metrics::Recorder`]
/// ([`with_recorder`](Self::with_recorder)), or a Prometheus exporter of its own
/// ([`prometheus`](Self::prometheus), feature `prometheus`).
///
/// Cheap to clone; clones record into the same place. Nothing is installed globally: see the
/// [module docs](super) for the metrics and their labels.
///
/// ```
/// use xcore::{Xcore, observability::Metrics};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Any recorder of the `metrics` ecosystem; here one that drops everything.
/// let xcore = Xcore::builder()
///     .without_registered()
///     .metrics(Metrics::with_recorder(metrics::NoopRecorder))
///     .build()?;
/// assert!(xcore.metrics().is_enabled());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    recorder: Arc<dyn Recorder + Send + Sync>,
    /// The clock durations are measured with: the TSC read directly where it is reliable
    /// (calibrated once per `Metrics`), scaled once per measurement.
    clock: quanta::Clock,
    #[cfg(feature = "prometheus")]
    prometheus: Option<super::prometheus::Exporter>,
}

impl Metrics {
    /// Records nothing (the default).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Records into `recorder`, which is told the name, unit and help text of every metric
    /// first.
    pub fn with_recorder<R>(recorder: R) -> Self
    where
        R: Recorder + Send + Sync + 'static,
    {
        Self::from_inner(Inner {
            recorder: Arc::new(recorder),
            clock: quanta::Clock::new(),
            #[cfg(feature = "prometheus")]
            prometheus: None,
        })
    }

    /// Records into a Prometheus recorder of its own, with the buckets of
    /// [`SECONDS_BUCKETS`](super::SECONDS_BUCKETS) for the duration histograms; the admin API
    /// renders it at `GET {admin}/metrics`, [`render_prometheus`](Self::render_prometheus)
    /// too.
    ///
    /// ```
    /// use xcore::observability::Metrics;
    ///
    /// let metrics = Metrics::prometheus();
    /// let text = metrics.render_prometheus().unwrap();
    /// assert!(text.contains("# HELP xcore_calls_total") || text.is_empty());
    /// ```
    #[cfg(feature = "prometheus")]
    #[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
    pub fn prometheus() -> Self {
        let exporter = super::prometheus::Exporter::new();
        Self::from_inner(Inner {
            recorder: exporter.recorder(),
            clock: quanta::Clock::new(),
            prometheus: Some(exporter),
        })
    }

    fn from_inner(inner: Inner) -> Self {
        for (name, kind, help) in DESCRIPTIONS {
            let (name, help) = ((*name).into(), SharedString::const_str(help));
            match kind {
                Kind::Counter => inner.recorder.describe_counter(name, None, help),
                Kind::Gauge => inner.recorder.describe_gauge(name, None, help),
                Kind::Histogram => {
                    inner
                        .recorder
                        .describe_histogram(name, Some(metrics::Unit::Seconds), help)
                }
            }
        }
        Self {
            inner: Some(Arc::new(inner)),
        }
    }

    /// The clock of the meters; a new one (calibrated now) when disabled, for the spans'
    /// latencies: take it once per web layer.
    pub(crate) fn clock(&self) -> quanta::Clock {
        self.inner
            .as_ref()
            .map_or_else(quanta::Clock::new, |inner| inner.clock.clone())
    }

    /// Whether anything is recorded.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The Prometheus text exposition of everything recorded, or `None` unless built with
    /// [`prometheus`](Self::prometheus).
    #[cfg(feature = "prometheus")]
    #[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
    pub fn render_prometheus(&self) -> Option<String> {
        Some(self.inner.as_ref()?.prometheus.as_ref()?.render())
    }

    /// Starts the periodic upkeep of the Prometheus exporter (draining histogram samples so
    /// that memory stays bounded between scrapes), once, on the current tokio runtime.
    pub(crate) fn start_upkeep(&self) {
        #[cfg(feature = "prometheus")]
        if let Some(exporter) = self.inner.as_ref().and_then(|i| i.prometheus.as_ref()) {
            exporter.start_upkeep();
        }
    }

    /// A counter (a no-op one when disabled).
    pub(crate) fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        match &self.inner {
            Some(inner) => inner
                .recorder
                .register_counter(&Key::from_parts(name, labels), &METADATA),
            None => Counter::noop(),
        }
    }

    /// A gauge (a no-op one when disabled).
    pub(crate) fn gauge(&self, name: &'static str, labels: Vec<Label>) -> Gauge {
        match &self.inner {
            Some(inner) => inner
                .recorder
                .register_gauge(&Key::from_parts(name, labels), &METADATA),
            None => Gauge::noop(),
        }
    }

    /// Sets the gauge `name` with these labels to `value` (nothing when disabled): what a
    /// service reports from [`Service::sample_metrics`](crate::Service::sample_metrics).
    /// Keep label values bounded (names from the config, states), never tenant ids.
    pub fn set_gauge(&self, name: &'static str, labels: &[(&'static str, &str)], value: f64) {
        if self.inner.is_none() {
            return;
        }
        self.gauge(name, owned(labels)).set(value);
    }

    /// Sets the counter `name` with these labels to `value` (nothing when disabled): a total
    /// that a service keeps itself and reports from
    /// [`Service::sample_metrics`](crate::Service::sample_metrics). The value must only grow.
    /// Keep label values bounded, as for [`set_gauge`](Self::set_gauge).
    pub fn set_counter(&self, name: &'static str, labels: &[(&'static str, &str)], value: u64) {
        if self.inner.is_none() {
            return;
        }
        self.counter(name, owned(labels)).absolute(value);
    }

    /// A duration histogram: one of xcore's own with its Prometheus exporter (see
    /// [`histogram`](super::histogram)), else the recorder's (a no-op one when disabled).
    pub(crate) fn seconds(&self, name: &'static str, labels: Vec<Label>) -> Seconds {
        #[cfg(feature = "prometheus")]
        if let Some(exporter) = self.inner.as_ref().and_then(|i| i.prometheus.as_ref()) {
            return Seconds::Own(exporter.histograms.get(name, labels));
        }
        Seconds::Facade(self.histogram(name, labels))
    }

    /// The call series of `plugin`'s `action` with xcore's Prometheus exporter (see
    /// [`histogram`](super::histogram)); `None` with another recorder or none.
    fn call_series(&self, plugin: &str, action: &str) -> Option<Arc<CallSeries>> {
        #[cfg(feature = "prometheus")]
        if let Some(exporter) = self.inner.as_ref().and_then(|i| i.prometheus.as_ref()) {
            return Some(exporter.calls.get(plugin, action));
        }
        let _ = (plugin, action);
        None
    }

    /// A histogram (a no-op one when disabled).
    pub(crate) fn histogram(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        match &self.inner {
            Some(inner) => inner
                .recorder
                .register_histogram(&Key::from_parts(name, labels), &METADATA),
            None => Histogram::noop(),
        }
    }

    /// Counts a denial.
    pub(crate) fn denial(&self, plugin: &str, kind: &'static str) {
        if self.is_enabled() {
            self.counter(
                names::DENIALS_TOTAL,
                vec![
                    Label::new("plugin", plugin.to_owned()),
                    Label::from_static_parts("kind", kind),
                ],
            )
            .increment(1);
        }
    }

    /// Counts a run of a scheduled job (`succeeded`, `failed`, `skipped`).
    #[cfg_attr(not(feature = "scheduler"), allow(dead_code))]
    pub(crate) fn job_run(&self, plugin: Option<&str>, job: &str, outcome: &'static str) {
        if self.is_enabled() {
            self.counter(
                names::JOB_RUNS_TOTAL,
                vec![
                    Label::new("plugin", plugin.unwrap_or_default().to_owned()),
                    Label::new("job", job.to_owned()),
                    Label::from_static_parts("outcome", outcome),
                ],
            )
            .increment(1);
        }
    }

    /// Counts an attempt of a worker task (`succeeded`, `retried`, `dead`).
    pub(crate) fn task_attempt(&self, plugin: Option<&str>, task: &str, outcome: &'static str) {
        if self.is_enabled() {
            self.counter(
                names::TASKS_TOTAL,
                vec![
                    Label::new("plugin", plugin.unwrap_or_default().to_owned()),
                    Label::new("task", task.to_owned()),
                    Label::from_static_parts("outcome", outcome),
                ],
            )
            .increment(1);
        }
    }

    /// Counts an emitted event.
    pub(crate) fn event_emitted(&self, event: &str) {
        if self.is_enabled() {
            self.counter(
                names::EVENTS_EMITTED_TOTAL,
                vec![Label::new("event", event.to_owned())],
            )
            .increment(1);
        }
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.inner {
            None => "disabled",
            #[cfg(feature = "prometheus")]
            Some(inner) if inner.prometheus.is_some() => "prometheus",
            Some(_) => "recorder",
        };
        f.debug_tuple("Metrics").field(&kind).finish()
    }
}

/// Labels given by a service, owned.
fn owned(labels: &[(&'static str, &str)]) -> Vec<Label> {
    labels
        .iter()
        .map(|(k, v)| Label::new(*k, (*v).to_owned()))
        .collect()
}

/// The action label of undeclared action names.
pub(crate) const UNKNOWN_ACTION: &str = "_unknown";

/// Every error code, in the order of [`code_index`].
pub(super) const CODES: [ErrorCode; 14] = [
    ErrorCode::NotReady,
    ErrorCode::NotFound,
    ErrorCode::UnknownAction,
    ErrorCode::InvalidPayload,
    ErrorCode::PermissionDenied,
    ErrorCode::CallerDenied,
    ErrorCode::RateLimited,
    ErrorCode::Overloaded,
    ErrorCode::Timeout,
    ErrorCode::Unavailable,
    ErrorCode::HandlerError,
    ErrorCode::Panicked,
    ErrorCode::Internal,
    ErrorCode::Conflict,
];

pub(super) fn code_index(code: ErrorCode) -> usize {
    match code {
        ErrorCode::NotReady => 0,
        ErrorCode::NotFound => 1,
        ErrorCode::UnknownAction => 2,
        ErrorCode::InvalidPayload => 3,
        ErrorCode::PermissionDenied => 4,
        ErrorCode::CallerDenied => 5,
        ErrorCode::RateLimited => 6,
        ErrorCode::Overloaded => 7,
        ErrorCode::Timeout => 8,
        ErrorCode::Unavailable => 9,
        ErrorCode::HandlerError => 10,
        ErrorCode::Panicked => 11,
        ErrorCode::Internal => 12,
        ErrorCode::Conflict => 13,
    }
}

/// The metrics of one plugin's calls, with the handles of its declared actions registered
/// once (so that a call costs two atomic updates, not a registry lookup).
pub(crate) struct CallMeter {
    metrics: Metrics,
    clock: quanta::Clock,
    plugin: Arc<str>,
    declared: &'static [&'static str],
    /// One per declared action, then one for `_unknown`.
    actions: Box<[ActionMeter]>,
}

enum ActionMeter {
    /// With xcore's Prometheus exporter: counted by xcore.
    Own(Arc<CallSeries>),
    /// With another recorder: the recorder's handles.
    Facade {
        duration: Histogram,
        ok: Counter,
        errors: Box<[OnceLock<Counter>; CODES.len()]>,
    },
}

impl CallMeter {
    pub(crate) fn new(metrics: Metrics, plugin: &str, declared: &'static [&'static str]) -> Self {
        let actions = declared
            .iter()
            .copied()
            .chain([UNKNOWN_ACTION])
            .map(|action| match metrics.call_series(plugin, action) {
                Some(series) => ActionMeter::Own(series),
                None => ActionMeter::Facade {
                    duration: metrics.histogram(
                        names::CALL_DURATION_SECONDS,
                        vec![
                            Label::new("plugin", plugin.to_owned()),
                            Label::from_static_parts("action", action),
                        ],
                    ),
                    ok: metrics.counter(
                        names::CALLS_TOTAL,
                        vec![
                            Label::new("plugin", plugin.to_owned()),
                            Label::from_static_parts("action", action),
                            Label::from_static_parts("code", "ok"),
                        ],
                    ),
                    errors: Default::default(),
                },
            })
            .collect();
        Self {
            clock: metrics.clock(),
            metrics,
            plugin: Arc::from(plugin),
            declared,
            actions,
        }
    }

    /// Where a call to `request`'s action is recorded: resolved before the call.
    pub(crate) fn slot(&self, request: &crate::call::CallRequest) -> CallSlot {
        // The request's index in the declared names holds when they are the same names (the
        // same static strings): no search then.
        let known = request.declared_action().and_then(|(name, i)| {
            let same = self
                .declared
                .get(i)
                .is_some_and(|a| std::ptr::eq(a.as_ptr(), name.as_ptr()) && a.len() == name.len());
            same.then_some(i)
        });
        let action = request.action();
        let declared = known.or_else(|| self.declared.iter().position(|a| *a == action));
        match declared {
            Some(i) => CallSlot::Declared(i),
            None if self.declared.is_empty() => CallSlot::Undeclared(request.action_name()),
            None => CallSlot::Declared(self.declared.len()),
        }
    }

    /// The clock reading a measured call starts at.
    #[inline]
    pub(crate) fn start(&self) -> u64 {
        self.clock.raw()
    }

    /// Records one call started at `start` ([`start`](Self::start)), answered `Ok` or with
    /// `code`.
    pub(crate) fn record(&self, slot: CallSlot, outcome: Option<ErrorCode>, start: u64) {
        let took = self.clock.delta(start, self.clock.raw());
        let i = match slot {
            CallSlot::Declared(i) => i,
            // A plugin that declares no names: the action as called (unless unknown),
            // registered per call.
            CallSlot::Undeclared(action) if outcome != Some(ErrorCode::UnknownAction) => {
                return self.record_undeclared(&action, outcome, took);
            }
            CallSlot::Undeclared(_) => self.declared.len(),
        };
        match &self.actions[i] {
            ActionMeter::Own(series) => series.record(outcome.map(code_index), took),
            ActionMeter::Facade {
                duration,
                ok,
                errors,
            } => {
                duration.record(took.as_secs_f64());
                match outcome {
                    None => ok.increment(1),
                    Some(code) => errors[code_index(code)]
                        .get_or_init(|| {
                            let label = self.declared.get(i).copied().unwrap_or(UNKNOWN_ACTION);
                            self.metrics.counter(
                                names::CALLS_TOTAL,
                                vec![
                                    Label::new("plugin", self.plugin.clone()),
                                    Label::from_static_parts("action", label),
                                    Label::from_static_parts("code", code.as_str()),
                                ],
                            )
                        })
                        .increment(1),
                }
            }
        }
    }

    fn record_undeclared(&self, action: &str, outcome: Option<ErrorCode>, took: Duration) {
        if let Some(series) = self.metrics.call_series(&self.plugin, action) {
            return series.record(outcome.map(code_index), took);
        }
        let plugin = Label::new("plugin", self.plugin.clone());
        let action = Label::new("action", action.to_owned());
        self.metrics
            .histogram(
                names::CALL_DURATION_SECONDS,
                vec![plugin.clone(), action.clone()],
            )
            .record(took.as_secs_f64());
        let code = outcome.map_or("ok", ErrorCode::as_str);
        self.metrics
            .counter(
                names::CALLS_TOTAL,
                vec![plugin, action, Label::from_static_parts("code", code)],
            )
            .increment(1);
    }
}

/// Where a call is recorded in a [`CallMeter`].
#[derive(Debug)]
pub(crate) enum CallSlot {
    /// A declared action, or (past the declared ones) `_unknown`.
    Declared(usize),
    /// A plugin that declares no action names: the name as called.
    Undeclared(crate::call::ActionName),
}

impl fmt::Debug for CallMeter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallMeter")
            .field("plugin", &self.plugin)
            .field("declared", &self.declared)
            .finish_non_exhaustive()
    }
}

/// The labels and metric handles of one route template: what a request is labelled with
/// (see [`observability`](super)), registered once per template and status.
pub(crate) struct RouteMeter {
    pub(crate) plugin: Arc<str>,
    pub(crate) route: Arc<str>,
    metrics: Metrics,
    duration: Seconds,
    /// Status 200, the common case, without a lock.
    ok: OnceLock<Counter>,
    /// The other statuses seen.
    statuses: std::sync::RwLock<Vec<(u16, Counter)>>,
}

impl RouteMeter {
    pub(crate) fn new(metrics: &Metrics, plugin: Arc<str>, route: Arc<str>) -> Self {
        Self {
            duration: metrics.seconds(
                names::HTTP_REQUEST_DURATION_SECONDS,
                vec![
                    Label::new("plugin", plugin.clone()),
                    Label::new("route", route.clone()),
                ],
            ),
            ok: OnceLock::new(),
            statuses: Default::default(),
            metrics: metrics.clone(),
            plugin,
            route,
        }
    }

    /// Records one request answered `status` after `took`.
    pub(crate) fn record(&self, status: u16, took: Duration) {
        if !self.metrics.is_enabled() {
            return;
        }
        self.duration.record(took);
        if status == 200 {
            return self.ok.get_or_init(|| self.counter(status)).increment(1);
        }
        {
            let statuses = self.statuses.read().unwrap_or_else(|p| p.into_inner());
            if let Some((_, counter)) = statuses.iter().find(|(s, _)| *s == status) {
                return counter.increment(1);
            }
        }
        let counter = self.counter(status);
        counter.increment(1);
        let mut statuses = self.statuses.write().unwrap_or_else(|p| p.into_inner());
        if !statuses.iter().any(|(s, _)| *s == status) {
            statuses.push((status, counter));
        }
    }

    fn counter(&self, status: u16) -> Counter {
        self.metrics.counter(
            names::HTTP_REQUESTS_TOTAL,
            vec![
                Label::new("plugin", self.plugin.clone()),
                Label::new("route", self.route.clone()),
                Label::new("status", status.to_string()),
            ],
        )
    }
}

impl fmt::Debug for RouteMeter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteMeter")
            .field("plugin", &self.plugin)
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}
