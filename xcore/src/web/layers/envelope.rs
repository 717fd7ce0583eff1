//! [`ErrorEnvelope`]: no bare error response leaves the web layer.

use std::task::{Context, Poll};

use http::{Method, Request, Response, StatusCode, Uri, header};
use http_body::Body as _;
use tower::{Layer, Service};

use super::WebService;
use crate::web::{Body, HttpError, ResponseFuture};

/// Wraps a service in [`ErrorEnvelope`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ErrorEnvelopeLayer;

impl<S> Layer<S> for ErrorEnvelopeLayer {
    type Service = ErrorEnvelope<S>;

    fn layer(&self, inner: S) -> ErrorEnvelope<S> {
        ErrorEnvelope { inner }
    }
}

/// Gives an error response (4xx, 5xx) with an empty body and no content type — a router's
/// bare 404 or 405, say — the JSON envelope of its status (`not_found`,
/// `method_not_allowed`, …). Responses with a body are left as they are.
#[derive(Debug, Clone)]
pub(crate) struct ErrorEnvelope<S> {
    inner: S,
}

impl<S: WebService> Service<Request<Body>> for ErrorEnvelope<S> {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> ResponseFuture {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let call = self.inner.call(request);
        Box::pin(async move {
            let Ok(response) = call.await;
            let bare = (response.status().is_client_error() || response.status().is_server_error())
                && !response.headers().contains_key(header::CONTENT_TYPE)
                && response.body().is_end_stream();
            if !bare {
                return Ok(response);
            }
            let (mut parts, _) = response.into_parts();
            let enveloped = envelope_for(parts.status, &method, &uri).into_response();
            let (env_parts, body) = enveloped.into_parts();
            parts.headers.extend(env_parts.headers);
            parts.headers.remove(header::CONTENT_LENGTH);
            Ok(Response::from_parts(parts, body))
        })
    }
}

/// The envelope of a bare error status.
fn envelope_for(status: StatusCode, method: &Method, uri: &Uri) -> HttpError {
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => "timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_payload",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "http_error",
    };
    let reason = status.canonical_reason().unwrap_or("error");
    HttpError::new(status, code, format!("{reason}: {method} {}", uri.path()))
}
