//! The Prometheus exporter of [`Metrics::prometheus`](super::Metrics::prometheus): a recorder
//! of metrics-exporter-prometheus, without its listener, rendered by the admin API.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use super::SECONDS_BUCKETS;

/// How often recorded samples are folded into the histograms between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

pub(super) struct Exporter {
    recorder: Arc<PrometheusRecorder>,
    /// The duration histograms, kept by xcore (see [`histogram`](super::histogram)).
    pub(super) histograms: super::histogram::OwnHistograms,
    /// The calls' counts and durations, kept by xcore.
    pub(super) calls: super::histogram::OwnCalls,
    handle: PrometheusHandle,
    upkeep: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Exporter {
    pub(super) fn new() -> Self {
        // `set_buckets` fails only on an empty list.
        let builder = PrometheusBuilder::new()
            .set_buckets(&SECONDS_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        Self {
            recorder: Arc::new(recorder),
            histograms: Default::default(),
            calls: Default::default(),
            handle,
            upkeep: Mutex::new(None),
        }
    }

    pub(super) fn recorder(&self) -> Arc<dyn metrics::Recorder + Send + Sync> {
        self.recorder.clone()
    }

    pub(super) fn render(&self) -> String {
        let mut text = self.handle.render();
        self.calls.render(&mut text);
        self.histograms.render(&mut text);
        text
    }

    /// Runs the exporter's upkeep every few seconds on the current runtime, until this
    /// exporter is dropped. Does nothing outside a runtime or when already running.
    pub(super) fn start_upkeep(&self) {
        let mut upkeep = self.upkeep.lock().unwrap_or_else(|p| p.into_inner());
        if upkeep.is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let handle = self.handle.clone();
        let task = runtime.spawn(async move {
            let mut every = tokio::time::interval(UPKEEP_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                handle.run_upkeep();
            }
        });
        *upkeep = Some(task.abort_handle());
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(task) = self
            .upkeep
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
    }
}
