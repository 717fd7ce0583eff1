//! [`Served`]: the future of a request served by a plugin's routes, guarded and traced.

use std::{
    any::Any,
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{Response, Uri};
use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::Trace;
use crate::{
    CallError, ErrorCode,
    call::layers::catch_panic_message,
    runtime::{Instance, Pass},
    web::{Body, BoxError, HttpError},
};

/// What a route request admitted by a plugin's gate runs under, and what is done when it
/// ends: the gate's pass (held until the response head is ready, so a stop drains the
/// request), the manifest's timeout (504 `timeout`), a panic answered 500 (`panicked`, with
/// an error id; the cause is logged), the gate's span (entered while the routes run), then
/// the request's [`Trace`] finished with the URI the client sent.
pub(crate) struct RouteGuard {
    pub(crate) pass: Pass,
    pub(crate) instance: Arc<Instance>,
    pub(crate) limit: Duration,
    pub(crate) span: tracing::Span,
    pub(crate) trace: Trace,
    pub(crate) uri: Uri,
}

/// How the routes' work ended.
enum Outcome {
    Answered(Response<Body>),
    Panicked(Box<dyn Any + Send>),
    TimedOut,
}

impl RouteGuard {
    /// Guards `inner`, the future of the routes' service for the request: one allocation.
    ///
    /// The service must have been called without running the plugin's code — an axum
    /// router only routes when called, and a tower service is called by the `oneshot` this
    /// future polls —: the plugin's code runs when this future is polled, in the gate's span,
    /// its panics caught.
    #[inline(always)]
    pub(crate) fn guard<F, B>(self, inner: F) -> crate::web::ResponseFuture
    where
        F: Future<Output = Result<Response<B>, std::convert::Infallible>> + Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Box::pin(Served {
            inner,
            sleep: None,
            guard: Some(self),
        })
    }

    /// The response for `outcome`, the pass released and the trace finished.
    fn end(self, outcome: Outcome) -> Response<Body> {
        let RouteGuard {
            pass,
            instance,
            limit,
            span: _,
            trace,
            uri,
        } = self;
        drop(pass);
        let response = match outcome {
            Outcome::Answered(response) => response,
            Outcome::Panicked(panic) => {
                let _entered = (!trace.span().is_disabled()).then(|| trace.span().enter());
                let why = catch_panic_message(&*panic);
                HttpError::from(CallError::new(
                    ErrorCode::Panicked,
                    format!(
                        "plugin `{}` panicked in a route: {why}",
                        instance.ctx.name()
                    ),
                ))
                .into_response()
            }
            Outcome::TimedOut => HttpError::from(CallError::new(
                ErrorCode::Timeout,
                format!(
                    "plugin `{}` did not answer within its timeout of {limit:?}",
                    instance.ctx.name()
                ),
            ))
            .public()
            .into_response(),
        };
        trace.finish(response, &uri)
    }
}

pin_project! {
    /// The routes' future under its [`RouteGuard`]: one allocation per request, the routes'
    /// future inside. A route that answers at its first poll never starts a timer.
    struct Served<F> {
        #[pin]
        inner: F,
        sleep: Option<Pin<Box<Sleep>>>,
        guard: Option<RouteGuard>,
    }
}

impl<F, B> Future for Served<F>
where
    F: Future<Output = Result<Response<B>, std::convert::Infallible>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, std::convert::Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(guard) = this.guard.as_ref() else {
            // Polled again after it answered: a bug of the caller; nothing more to answer.
            return Poll::Pending;
        };
        let polled = {
            let _entered = (!guard.span.is_disabled()).then(|| guard.span.enter());
            std::panic::catch_unwind(AssertUnwindSafe(|| this.inner.as_mut().poll(cx)))
        };
        let outcome = match polled {
            Ok(Poll::Ready(Ok(response))) => Outcome::Answered(response.map(Body::new)),
            Err(panic) => Outcome::Panicked(panic),
            Ok(Poll::Pending) => {
                let limit = guard.limit;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                Outcome::TimedOut
            }
        };
        let guard = this.guard.take().expect("checked above");
        Poll::Ready(Ok(guard.end(outcome)))
    }
}
