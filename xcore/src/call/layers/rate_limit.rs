use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, OnceLock},
    task::{Context, Poll},
    time::Duration,
};

use futures_util::future::Either;
use serde_json::{Value, json};
use tokio::time::Instant;
use tower::{Layer, Service};

use super::{Admit, reject};
use crate::{CallContext, CallError, ErrorCode, call::CallRequest};

/// What a cluster-wide limiter answers for one call.
#[derive(Debug)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum Verdict {
    /// Within the limit.
    Admit,
    /// Over the limit: retry after this long.
    Limited(Duration),
    /// The limiter cannot decide (its server is down), and its fallback is the local bucket.
    Local,
    /// The limiter cannot decide, and its fallback is to refuse.
    Closed,
}

/// The future of a [`ClusterRate`] verdict.
pub(crate) type VerdictFuture = Pin<Box<dyn Future<Output = Verdict> + Send + 'static>>;

/// A cluster-wide rate limiter (the `rate_limits` service on Redis): one token per call,
/// the limit and the key taken from the plugin and the call.
pub(crate) trait ClusterRate: Send + Sync + 'static {
    /// Takes one token of `plugin`'s `limit` for the call made under `cx`.
    fn acquire(
        &self,
        plugin: &str,
        limit: xcore_manifest::RateLimit,
        cx: &CallContext,
    ) -> VerdictFuture;
}

/// Where an `Xcore`'s cluster-wide limiter is attached (once, when its service starts); every
/// gate of that `Xcore` holds it.
pub(crate) type ClusterSlot = Arc<OnceLock<Arc<dyn ClusterRate>>>;

/// Applies [`RateLimit`] with a manifest's `rate_limit` (no limit for `None`).
#[derive(Clone)]
pub struct RateLimitLayer {
    bucket: Option<Arc<Mutex<Bucket>>>,
    /// The cluster-wide limiter, when one is attached (and the plugin has a limit).
    cluster: Option<ClusterSlot>,
}

impl std::fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("bucket", &self.bucket)
            .field("cluster", &self.is_cluster_wide())
            .finish()
    }
}

impl RateLimitLayer {
    /// A limit of `limit.calls()` calls per `limit.per()`, or none.
    pub fn new(limit: Option<xcore_manifest::RateLimit>) -> Self {
        Self {
            bucket: limit.map(|l| Arc::new(Mutex::new(Bucket::new(l)))),
            cluster: None,
        }
    }

    /// The same limit, enforced cluster-wide once a limiter is attached to `slot`.
    pub(crate) fn with_cluster(mut self, slot: ClusterSlot) -> Self {
        if self.bucket.is_some() {
            self.cluster = Some(slot);
        }
        self
    }

    /// Whether a cluster-wide limiter applies this limit.
    pub(crate) fn is_cluster_wide(&self) -> bool {
        self.cluster
            .as_ref()
            .is_some_and(|slot| slot.get().is_some())
    }

    /// Takes one token for the call or request made under `cx` to `plugin`: from the
    /// cluster-wide limiter when one is attached (with its fallback), else from the local
    /// bucket.
    pub(crate) fn acquire(
        &self,
        plugin: &str,
        cx: &CallContext,
    ) -> Either<std::future::Ready<Result<(), CallError>>, AcquireFuture> {
        let Some((cluster, bucket)) = self.cluster_and_bucket() else {
            return Either::Left(std::future::ready(take(self.bucket.as_ref(), plugin)));
        };
        let limit = lock(&bucket).limit;
        let verdict = cluster.acquire(plugin, limit, cx);
        let plugin: Arc<str> = Arc::from(plugin);
        Either::Right(Box::pin(async move {
            decide(verdict.await, &bucket, &plugin, limit)
        }))
    }

    fn cluster_and_bucket(&self) -> Option<(Arc<dyn ClusterRate>, SharedBucket)> {
        let cluster = self.cluster.as_ref()?.get()?;
        Some((cluster.clone(), self.bucket.clone()?))
    }
}

/// The local bucket, shared by every clone of a layer.
type SharedBucket = Arc<Mutex<Bucket>>;

/// The future of a token taken from a cluster-wide limiter.
pub(crate) type AcquireFuture = Pin<Box<dyn Future<Output = Result<(), CallError>> + Send>>;

fn lock(bucket: &Mutex<Bucket>) -> std::sync::MutexGuard<'_, Bucket> {
    bucket.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a cluster verdict means for the call.
fn decide(
    verdict: Verdict,
    bucket: &Arc<Mutex<Bucket>>,
    plugin: &str,
    limit: xcore_manifest::RateLimit,
) -> Result<(), CallError> {
    match verdict {
        Verdict::Admit => Ok(()),
        Verdict::Limited(wait) => Err(limited(plugin, limit, wait)),
        Verdict::Local => take(Some(bucket), plugin),
        Verdict::Closed => Err(CallError::new(
            ErrorCode::Unavailable,
            format!(
                "plugin `{plugin}`'s cluster-wide rate limit cannot be checked now; retry later"
            ),
        )),
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            limit: self.clone(),
        }
    }
}

/// A token bucket shared by every clone: at most `calls` calls per period, refilled
/// continuously, `calls` being also the burst. A call over budget is rejected at once with
/// `rate_limited` and a `retry_after_ms` hint; rejected calls consume nothing.
///
/// With a cluster-wide limiter (the `rate_limits` service, feature `redis`), the token is taken from it instead (one round trip to Redis), with its fallback when
/// Redis is down.
#[derive(Debug, Clone)]
pub struct RateLimit<S> {
    inner: S,
    limit: RateLimitLayer,
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
    S: Service<CallRequest, Response = Value, Error = CallError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Value;
    type Error = CallError;
    type Future = Either<Admit<S::Future>, crate::call::CallFuture>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: CallRequest) -> Self::Future {
        if let Some((cluster, bucket)) = self.limit.cluster_and_bucket() {
            let limit = lock(&bucket).limit;
            let verdict = cluster.acquire(req.target().name(), limit, req.context());
            // The clone waits for the verdict; this one stays ready for the next call.
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            return Either::Right(Box::pin(async move {
                decide(verdict.await, &bucket, req.target().name(), limit)?;
                inner.call(req).await
            }));
        }
        Either::Left(
            match take(self.limit.bucket.as_ref(), req.target().name()) {
                Ok(()) => Either::Right(self.inner.call(req)),
                Err(err) => reject(err),
            },
        )
    }
}

impl RateLimitLayer {
    /// Takes one token for plugin `plugin` (a call or a route request) from the local
    /// bucket: `rate_limited` when it is empty. The pipeline and the plugin's gate share the
    /// bucket.
    pub(crate) fn try_take(&self, plugin: &str) -> Result<(), CallError> {
        take(self.bucket.as_ref(), plugin)
    }
}

fn take(bucket: Option<&Arc<Mutex<Bucket>>>, plugin: &str) -> Result<(), CallError> {
    let Some(bucket) = bucket else {
        return Ok(());
    };
    let mut bucket = lock(bucket);
    let Err(wait) = bucket.take(Instant::now()) else {
        return Ok(());
    };
    let limit = bucket.limit;
    drop(bucket);
    Err(limited(plugin, limit, wait))
}

fn limited(plugin: &str, limit: xcore_manifest::RateLimit, wait: Duration) -> CallError {
    CallError::new(
        ErrorCode::RateLimited,
        format!(
            "plugin `{plugin}` is over its rate limit of {} calls per {:?}; retry in {} ms",
            limit.calls(),
            limit.per(),
            wait.as_millis().max(1)
        ),
    )
    .with_details(json!({ "retry_after_ms": wait.as_millis().max(1) as u64 }))
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
