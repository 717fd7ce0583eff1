use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use serde_json::Value;
use tower::{Layer, Service};

use crate::{
    CallError, PluginIdentity,
    call::{CallFuture, CallRequest},
    observability::{CallMeter, Metrics},
};

/// Applies [`RecordMetrics`].
#[derive(Debug, Clone)]
pub struct RecordMetricsLayer {
    meter: Arc<CallMeter>,
}

impl RecordMetricsLayer {
    /// Records the calls to `target`, whose declared actions are `actions` (any other name is
    /// labelled `_unknown`), into `metrics`.
    pub fn new(
        metrics: Metrics,
        target: &PluginIdentity,
        actions: &'static [&'static str],
    ) -> Self {
        Self {
            meter: Arc::new(CallMeter::new(metrics, target.name(), actions)),
        }
    }
}

impl<S> Layer<S> for RecordMetricsLayer {
    type Service = RecordMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RecordMetrics {
            inner,
            meter: self.meter.clone(),
        }
    }
}

/// Counts every call (`xcore_calls_total{plugin,action,code}`) and records how long it took
/// (`xcore_call_duration_seconds{plugin,action}`), from the moment it enters until its
/// answer; see [`observability`](crate::observability) for the labels.
#[derive(Debug, Clone)]
pub struct RecordMetrics<S> {
    inner: S,
    meter: Arc<CallMeter>,
}

impl<S> Service<CallRequest> for RecordMetrics<S>
where
    S: Service<CallRequest, Response = Value, Error = CallError>,
    S::Future: Send + 'static,
{
    type Response = Value;
    type Error = CallError;
    type Future = CallFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: CallRequest) -> CallFuture {
        let started = Instant::now();
        let action = req.action_arc();
        let meter = self.meter.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let out = fut.await;
            let code = out.as_ref().err().map(CallError::code);
            meter.record(&action, code, started.elapsed());
            out
        })
    }
}
