//! [`BodyLimit`]: caps the size of request bodies.

use std::task::{Context, Poll};

use http::{Request, Response, header};
use http_body::Body as _;
use http_body_util::Limited;
use tower::{Layer, Service};

use super::{WebService, ready};
use crate::web::{Body, BodyLimitInForce, HttpError, ResponseFuture};

/// Wraps a service in [`BodyLimit`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimitLayer {
    limit: usize,
}

impl BodyLimitLayer {
    /// At most `limit` bytes per request body.
    pub(crate) fn new(limit: usize) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;

    fn layer(&self, inner: S) -> BodyLimit<S> {
        BodyLimit {
            inner,
            limit: self.limit,
        }
    }
}

/// Answers 413 `payload_too_large` to a request whose `content-length` is over the limit,
/// and makes reading more than the limit from any other body an error (which extractors and
/// [`read_body`](crate::web::read_body) answer with 413 too). The limit is in the request's
/// extensions as [`BodyLimitInForce`].
#[derive(Debug, Clone)]
pub(crate) struct BodyLimit<S> {
    inner: S,
    limit: usize,
}

impl<S: WebService> Service<Request<Body>> for BodyLimit<S> {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> ResponseFuture {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.limit as u64) {
            return ready(HttpError::payload_too_large(self.limit).into_response());
        }
        if request.body().is_end_stream() {
            // Nothing to read, nothing to limit.
            return self.inner.call(request);
        }
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(BodyLimitInForce(self.limit));
        let body = Body::new(Limited::new(body, self.limit));
        self.inner.call(Request::from_parts(parts, body))
    }
}
