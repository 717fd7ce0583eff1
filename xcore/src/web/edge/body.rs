//! [`TimeoutBody`] and [`BodyTimeoutLayer`]: request bodies that must keep arriving.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

use super::{Edge, EdgeStats, body_timeout_response};
use crate::web::{Body, BoxError};

/// The error of a request body that did not arrive in time: no byte for the idle limit, or
/// not all of it within the total limit. The request is answered 408 `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTimedOut {
    idle: bool,
    limit: Duration,
}

impl fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.idle {
            write!(f, "no request body bytes for {:?}", self.limit)
        } else {
            write!(f, "the request body took longer than {:?}", self.limit)
        }
    }
}

impl std::error::Error for BodyTimedOut {}

/// Set when a request's body timed out: the answer is then 408, whatever the handler said.
#[derive(Debug, Clone, Default)]
pub(crate) struct TimedOutFlag(Arc<AtomicBool>);

impl TimedOutFlag {
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// In a request's extensions when its body is already timed (by a layer or server outside):
/// the [`Web`](crate::web::Web) service does not time it again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyTimeoutsInForce;

pin_project! {
    /// A request body that fails with [`BodyTimedOut`] when no frame arrives within the idle
    /// limit, or the body is not over within the total limit (counted from when it was
    /// wrapped). The idle wait starts when the reader asks for the next frame, so a slow
    /// handler does not count against the client.
    pub struct TimeoutBody<B> {
        #[pin]
        body: B,
        timing: Option<Timing>,
    }
}

struct Timing {
    idle: Duration,
    total: Duration,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
    stats: EdgeStats,
    flag: TimedOutFlag,
    timed_out: bool,
}

impl<B: http_body::Body> TimeoutBody<B> {
    /// Times `body` with the limits of `edge` (a body already over is not timed).
    pub fn new(body: B, edge: &Edge) -> Self {
        Self::flagged(body, edge, TimedOutFlag::default())
    }

    pub(crate) fn flagged(body: B, edge: &Edge, flag: TimedOutFlag) -> Self {
        let timing = (!body.is_end_stream()).then(|| Timing {
            idle: edge.limits.body_idle,
            total: edge.limits.body_total,
            deadline: Instant::now() + edge.limits.body_total,
            sleep: None,
            armed: false,
            stats: edge.stats.clone(),
            flag,
            timed_out: false,
        });
        Self { body, timing }
    }
}

impl<B> fmt::Debug for TimeoutBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutBody")
            .field("timed", &self.timing.is_some())
            .finish_non_exhaustive()
    }
}

impl<B> http_body::Body for TimeoutBody<B>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        let this = self.project();
        let Some(t) = this.timing else {
            return this.body.poll_frame(cx).map_err(Into::into);
        };
        if t.timed_out {
            return Poll::Ready(None);
        }
        match this.body.poll_frame(cx) {
            Poll::Ready(frame) => {
                t.armed = false;
                return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
            }
            Poll::Pending => {}
        }
        if !t.armed {
            let at = (Instant::now() + t.idle).min(t.deadline);
            match &mut t.sleep {
                Some(sleep) => sleep.as_mut().reset(at),
                None => t.sleep = Some(Box::pin(tokio::time::sleep_until(at))),
            }
            t.armed = true;
        }
        if let Some(sleep) = &mut t.sleep {
            ready!(sleep.as_mut().poll(cx));
        }
        t.timed_out = true;
        t.flag.0.store(true, Ordering::Relaxed);
        t.stats.body_timed_out();
        let total = Instant::now() >= t.deadline;
        let err = BodyTimedOut {
            idle: !total,
            limit: if total { t.total } else { t.idle },
        };
        tracing::debug!(error = %err, "request body timed out");
        Poll::Ready(Some(Err(Box::new(err))))
    }

    fn is_end_stream(&self) -> bool {
        self.timing.as_ref().is_some_and(|t| t.timed_out) || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Wraps a service in [`BodyTimeout`]: the layer a host adds to its own router (axum:
/// `router.layer(BodyTimeoutLayer::new(web.edge().clone()))`).
#[derive(Debug, Clone)]
pub struct BodyTimeoutLayer {
    edge: Edge,
}

impl BodyTimeoutLayer {
    /// Bodies timed with the limits of `edge`, counted in its stats.
    pub fn new(edge: Edge) -> Self {
        Self { edge }
    }
}

impl<S> Layer<S> for BodyTimeoutLayer {
    type Service = BodyTimeout<S>;

    fn layer(&self, inner: S) -> BodyTimeout<S> {
        BodyTimeout {
            inner,
            edge: self.edge.clone(),
        }
    }
}

/// Times each request's body ([`TimeoutBody`]) and answers 408 `timeout` with
/// `connection: close` when it timed out, whatever the inner service answered.
#[derive(Debug, Clone)]
pub struct BodyTimeout<S> {
    inner: S,
    edge: Edge,
}

impl<S, B, RB> Service<Request<B>> for BodyTimeout<S>
where
    S: Service<Request<TimeoutBody<B>>, Response = Response<RB>>,
    B: http_body::Body,
    RB: http_body::Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BodyTimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (request, flag) = time_body(request, &self.edge);
        BodyTimeoutFuture::new(self.inner.call(request), flag)
    }
}

/// Times the body of `request` with the limits of `edge` (a body without bytes, or one timed
/// already, is left untimed); the flag is set if it times out.
pub(crate) fn time_body<B: http_body::Body>(
    request: Request<B>,
    edge: &Edge,
) -> (Request<TimeoutBody<B>>, Option<TimedOutFlag>) {
    let (mut parts, body) = request.into_parts();
    let flag = (!body.is_end_stream() && parts.extensions.get::<BodyTimeoutsInForce>().is_none())
        .then(TimedOutFlag::default);
    let body = match &flag {
        Some(flag) => {
            parts.extensions.insert(BodyTimeoutsInForce);
            TimeoutBody::flagged(body, edge, flag.clone())
        }
        None => TimeoutBody { body, timing: None },
    };
    (Request::from_parts(parts, body), flag)
}

pin_project! {
    /// The response future of [`BodyTimeout`].
    pub struct BodyTimeoutFuture<F> {
        #[pin]
        inner: F,
        flag: Option<TimedOutFlag>,
    }
}

impl<F> BodyTimeoutFuture<F> {
    /// The future of `inner`, answered 408 if `flag` is set when it is ready.
    pub(crate) fn new(inner: F, flag: Option<TimedOutFlag>) -> Self {
        Self { inner, flag }
    }
}

impl<F> fmt::Debug for BodyTimeoutFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyTimeoutFuture").finish_non_exhaustive()
    }
}

impl<F, RB, E> Future for BodyTimeoutFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
    RB: http_body::Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        if this.flag.as_ref().is_some_and(TimedOutFlag::is_set) {
            return Poll::Ready(Ok(body_timeout_response()));
        }
        Poll::Ready(Ok(response.map(Body::new)))
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;
    use crate::web::EdgeLimits;

    #[tokio::test(start_paused = true)]
    async fn idle_and_total_limits() {
        let edge = Edge::new(
            EdgeLimits::default()
                .body_idle(Duration::from_millis(300))
                .body_total(Duration::from_secs(1)),
        );
        // A body that sends one frame every 200 ms forever: never idle, over the total.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        tokio::spawn(async move {
            loop {
                if tx
                    .send(Ok(Frame::data(Bytes::from_static(b"x"))))
                    .await
                    .is_err()
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let slow = TimeoutBody::new(
            http_body_util::StreamBody::new(tokio_stream_like(rx)),
            &edge,
        );
        let start = Instant::now();
        let err = slow.collect().await.unwrap_err();
        let err = err.downcast::<BodyTimedOut>().unwrap();
        assert!(!err.idle, "{err}");
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        // A body that stalls: idle.
        let (_tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        let stalled = TimeoutBody::new(
            http_body_util::StreamBody::new(tokio_stream_like(rx)),
            &edge,
        );
        let start = Instant::now();
        let err = stalled
            .collect()
            .await
            .unwrap_err()
            .downcast::<BodyTimedOut>()
            .unwrap();
        assert!(err.idle);
        assert_eq!(start.elapsed(), Duration::from_millis(300));
        assert_eq!(edge.stats().body_timeouts(), 2);
        // A full body is not timed.
        let full = TimeoutBody::new(Body::from("abc"), &edge);
        assert_eq!(full.collect().await.unwrap().to_bytes(), "abc");
    }

    /// A receiver as a stream.
    fn tokio_stream_like<T>(
        rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures_util::Stream<Item = T> {
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
    }
}
