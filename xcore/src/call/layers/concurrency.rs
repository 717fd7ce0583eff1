use std::{
    num::NonZeroUsize,
    sync::Arc,
    task::{Context, Poll},
};

use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

use crate::{
    CallError, ErrorCode,
    call::{CallFuture, CallRequest},
};

/// Applies [`ConcurrencyLimit`] with a manifest's `max_concurrency` (no limit for `None`).
#[derive(Debug, Clone)]
pub struct ConcurrencyLimitLayer {
    permits: Option<Arc<Semaphore>>,
}

impl ConcurrencyLimitLayer {
    /// At most `max` calls at once, or no limit.
    pub fn new(max: Option<NonZeroUsize>) -> Self {
        Self {
            permits: max.map(|m| Arc::new(Semaphore::new(m.get()))),
        }
    }
}

impl<S> Layer<S> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyLimit {
            inner,
            permits: self.permits.clone(),
        }
    }
}

/// Limits how many calls run at once. Unlike tower's limit, it never queues: a call over the
/// limit is rejected at once with `overloaded`, so a slow plugin cannot pile up callers.
#[derive(Debug, Clone)]
pub struct ConcurrencyLimit<S> {
    inner: S,
    permits: Option<Arc<Semaphore>>,
}

impl<S> Service<CallRequest> for ConcurrencyLimit<S>
where
    S: Service<CallRequest, Response = Value, Error = CallError>,
    S::Future: Send + 'static,
{
    type Response = Value;
    type Error = CallError;
    type Future = futures_util::future::Either<S::Future, CallFuture>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: CallRequest) -> Self::Future {
        use futures_util::future::Either;
        match acquire(self.permits.as_ref(), req.target().name()) {
            Ok(None) => Either::Left(self.inner.call(req)),
            Ok(Some(permit)) => {
                let fut = self.inner.call(req);
                Either::Right(Box::pin(async move {
                    let out = fut.await;
                    drop(permit);
                    out
                }))
            }
            Err(err) => Either::Right(Box::pin(std::future::ready(Err(err)))),
        }
    }
}

impl ConcurrencyLimitLayer {
    /// A permit for one call or route request of plugin `plugin` (`None` when unlimited), or
    /// `overloaded`. The pipeline and the plugin's gate share the permits.
    pub(crate) fn try_acquire(
        &self,
        plugin: &str,
    ) -> Result<Option<OwnedSemaphorePermit>, CallError> {
        acquire(self.permits.as_ref(), plugin)
    }
}

fn acquire(
    permits: Option<&Arc<Semaphore>>,
    plugin: &str,
) -> Result<Option<OwnedSemaphorePermit>, CallError> {
    let Some(permits) = permits else {
        return Ok(None);
    };
    permits.clone().try_acquire_owned().map(Some).map_err(|_| {
        CallError::new(
            ErrorCode::Overloaded,
            format!(
                "plugin `{plugin}` is already serving its maximum of concurrent calls; retry later"
            ),
        )
    })
}
