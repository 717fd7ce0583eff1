//! [`HeaderWatch`]: the header read limit of one connection, kept without a timer per
//! request; [`Counted`], the connection's service, which tells it where the requests are.
//!
//! hyper's own header read timeout arms, then cancels, a timer for every request. Here one
//! timer per connection wakes the connection at most once per limit, and then looks: a
//! connection that has had no request in flight for the limit — since it opened, or since its
//! last response was written — is waiting for a head that does not come (a client stalled in
//! its headers, or an idle kept-alive connection), and is closed. A slow handler or a long
//! response body is in flight, and is never cut by this limit.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use http::{Request, Response};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::EdgeStats;

/// The requests of one connection: how many heads arrived, how many responses were written
/// (or dropped), and when the last one was.
#[derive(Debug)]
pub(crate) struct Exchanges {
    opened: Instant,
    started: AtomicU64,
    ended: AtomicU64,
    /// When the last response ended, in nanoseconds since `opened`.
    last_end: AtomicU64,
}

impl Exchanges {
    /// The requests of a connection opened now.
    pub(crate) fn new() -> Self {
        Self {
            opened: Instant::now(),
            started: AtomicU64::new(0),
            ended: AtomicU64::new(0),
            last_end: AtomicU64::new(0),
        }
    }

    fn start(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    fn end(&self) {
        let at = u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_end.store(at, Ordering::Relaxed);
        self.ended.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a request is between its head and the end of its response.
    fn in_flight(&self) -> bool {
        self.started.load(Ordering::Relaxed) != self.ended.load(Ordering::Relaxed)
    }

    /// Since when the connection has had no request in flight.
    fn idle_since(&self) -> Instant {
        self.opened + Duration::from_nanos(self.last_end.load(Ordering::Relaxed))
    }
}

pin_project! {
    /// A connection (hyper's future) under the header read limit: it ends — dropping the
    /// connection, which closes it, and counting it in [`EdgeStats::header_timeouts`] — once
    /// it has waited the limit for a request head.
    pub(crate) struct HeaderWatch<C> {
        #[pin]
        connection: C,
        exchanges: Arc<Exchanges>,
        limit: Duration,
        stats: EdgeStats,
        timer: Pin<Box<Sleep>>,
        registered: bool,
    }
}

impl<C> HeaderWatch<C> {
    /// Watches `connection`, whose service counts its requests in `exchanges`.
    pub(crate) fn new(
        connection: C,
        exchanges: Arc<Exchanges>,
        limit: Duration,
        stats: EdgeStats,
    ) -> Self {
        let timer = Box::pin(tokio::time::sleep_until(exchanges.opened + limit));
        Self {
            connection,
            exchanges,
            limit,
            stats,
            timer,
            registered: false,
        }
    }
}

impl<C, T> Future for HeaderWatch<C>
where
    C: Future<Output = Result<T, hyper::Error>>,
{
    /// The connection's result; `None` when it was closed for waiting too long for a head.
    type Output = Option<Result<T, hyper::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.connection.poll(cx) {
            return Poll::Ready(Some(out));
        }
        // The timer stays registered with this task once polled: only a wake-up it caused
        // needs a look (a cheap check otherwise).
        while !*this.registered || this.timer.is_elapsed() {
            if *this.registered {
                let now = Instant::now();
                let next = if this.exchanges.in_flight() {
                    now + *this.limit
                } else {
                    let deadline = this.exchanges.idle_since() + *this.limit;
                    if now >= deadline {
                        this.stats.header_timed_out();
                        return Poll::Ready(None);
                    }
                    deadline
                };
                this.timer.as_mut().reset(next);
            }
            *this.registered = true;
            ready!(this.timer.as_mut().poll(cx));
        }
        Poll::Pending
    }
}

/// A connection's service: each request counted in the connection's [`Exchanges`] from its
/// call to the end of its response body.
#[derive(Clone)]
pub(crate) struct Counted<S> {
    inner: S,
    exchanges: Arc<Exchanges>,
}

impl<S> Counted<S> {
    pub(crate) fn new(inner: S, exchanges: Arc<Exchanges>) -> Self {
        Self { inner, exchanges }
    }
}

impl<S, B> hyper::service::Service<Request<Incoming>> for Counted<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>,
{
    type Response = Response<CountedBody<B>>;
    type Error = S::Error;
    type Future = CountedFuture<S::Future>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.exchanges.start();
        CountedFuture {
            inner: self.inner.call(request),
            end: Some(EndOnDrop(self.exchanges.clone())),
        }
    }
}

/// Ends a request of its connection when dropped.
struct EndOnDrop(Arc<Exchanges>);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.0.end();
    }
}

pin_project! {
    /// The response future of [`Counted`]: the response's body carries the end of the
    /// request (or the future does, if it is dropped first).
    pub(crate) struct CountedFuture<F> {
        #[pin]
        inner: F,
        end: Option<EndOnDrop>,
    }
}

impl<F, B, E> Future for CountedFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<CountedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx));
        let end = this.end.take();
        Poll::Ready(response.map(|response| response.map(|inner| CountedBody { inner, _end: end })))
    }
}

pin_project! {
    /// A response body that ends its request when hyper drops it: once written, or when the
    /// connection ends.
    pub(crate) struct CountedBody<B> {
        #[pin]
        inner: B,
        _end: Option<EndOnDrop>,
    }
}

impl<B: http_body::Body> http_body::Body for CountedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
