use std::{
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::time::Instant;
use tower::{Layer, Service};

use super::{Admit, reject};
use crate::{CallError, ErrorCode, call::CallRequest};

/// Applies [`RateLimit`] with a manifest's `rate_limit` (no limit for `None`).
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    bucket: Option<Arc<Mutex<Bucket>>>,
}

impl RateLimitLayer {
    /// A limit of `limit.calls()` calls per `limit.per()`, or none.
    pub fn new(limit: Option<xcore_manifest::RateLimit>) -> Self {
        Self {
            bucket: limit.map(|l| Arc::new(Mutex::new(Bucket::new(l)))),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            bucket: self.bucket.clone(),
        }
    }
}

/// A token bucket shared by every clone: at most `calls` calls per period, refilled
/// continuously, `calls` being also the burst. A call over budget is rejected at once with
/// `rate_limited` and a `retry_after_ms` hint; rejected calls consume nothing.
#[derive(Debug, Clone)]
pub struct RateLimit<S> {
    inner: S,
    bucket: Option<Arc<Mutex<Bucket>>>,
}

#[derive(Debug)]
struct Bucket {
    capacity: f64,
    tokens: f64,
    per_token: Duration,
    last: Instant,
    limit: xcore_manifest::RateLimit,
}

impl Bucket {
    fn new(limit: xcore_manifest::RateLimit) -> Self {
        let capacity = f64::from(limit.calls().get());
        Self {
            capacity,
            tokens: capacity,
            per_token: limit.per() / limit.calls().get(),
            last: Instant::now(),
            limit,
        }
    }

    /// Takes a token, or says how long until one is available.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens =
            (self.tokens + elapsed.as_secs_f64() / self.per_token.as_secs_f64()).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.per_token.mul_f64(1.0 - self.tokens))
        }
    }
}

impl<S> Service<CallRequest> for RateLimit<S>
where
    S: Service<CallRequest, Response = Value, Error = CallError>,
{
    type Response = Value;
    type Error = CallError;
    type Future = Admit<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: CallRequest) -> Self::Future {
        match take(self.bucket.as_ref(), req.target().name()) {
            Ok(()) => futures_util::future::Either::Right(self.inner.call(req)),
            Err(err) => reject(err),
        }
    }
}

impl RateLimitLayer {
    /// Takes one token for plugin `plugin` (a call or a route request): `rate_limited` when
    /// the bucket is empty. The pipeline and the plugin's gate share the bucket.
    pub(crate) fn try_take(&self, plugin: &str) -> Result<(), CallError> {
        take(self.bucket.as_ref(), plugin)
    }
}

fn take(bucket: Option<&Arc<Mutex<Bucket>>>, plugin: &str) -> Result<(), CallError> {
    let Some(bucket) = bucket else {
        return Ok(());
    };
    let mut bucket = bucket
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let Err(wait) = bucket.take(Instant::now()) else {
        return Ok(());
    };
    let limit = bucket.limit;
    drop(bucket);
    Err(CallError::new(
        ErrorCode::RateLimited,
        format!(
            "plugin `{plugin}` is over its rate limit of {} calls per {:?}; retry in {} ms",
            limit.calls(),
            limit.per(),
            wait.as_millis().max(1)
        ),
    )
    .with_details(json!({ "retry_after_ms": wait.as_millis().max(1) as u64 })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn refills_continuously() {
        let mut b = Bucket::new("2/1s".parse().unwrap());
        let t0 = Instant::now();
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        let wait = b.take(t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(b.take(t0 + Duration::from_millis(499)).is_err());
        assert!(b.take(t0 + Duration::from_millis(1000)).is_ok());
        // A long pause refills up to the burst only.
        let later = t0 + Duration::from_secs(60);
        assert!(b.take(later).is_ok() && b.take(later).is_ok() && b.take(later).is_err());
    }
}
