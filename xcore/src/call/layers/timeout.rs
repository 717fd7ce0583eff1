use std::{
    future::Future,
    task::{Context, Poll},
    time::Duration,
};

use serde_json::Value;
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::{
    CallError, ErrorCode,
    call::{CallFuture, CallRequest},
};

/// Applies [`Timeout`] with a manifest's `timeout`.
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    limit: Duration,
}

impl TimeoutLayer {
    /// Calls may take at most `limit`.
    pub fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout {
            inner,
            limit: self.limit,
        }
    }
}

/// Bounds a call by the plugin's timeout or the context's deadline, whichever is earlier. The
/// deadline is written into the context, so calls the plugin makes while serving this one
/// inherit it. Past it, the handler's future is dropped and the caller gets `timeout`.
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    limit: Duration,
}

impl<S> Service<CallRequest> for Timeout<S>
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

    fn call(&mut self, mut req: CallRequest) -> CallFuture {
        let deadline = Instant::now() + self.limit;
        let cx = req.context_mut();
        cx.tighten_deadline(deadline);
        let deadline = cx.deadline().unwrap_or(deadline);
        let (target, action) = (req.target().clone(), req.action_name());
        let limit = self.limit;
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut fut = std::pin::pin!(fut);
            // A handler that answers at once never needs a timer.
            if let Poll::Ready(out) =
                std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
            {
                return out;
            }
            match tokio::time::timeout_at(deadline, fut).await {
                Ok(out) => out,
                Err(_) => Err(CallError::new(
                    ErrorCode::Timeout,
                    format!(
                        "`{}.{action}` did not answer in time (plugin timeout {limit:?}, or the caller's deadline)",
                        target.name()
                    ),
                )),
            }
        })
    }
}
