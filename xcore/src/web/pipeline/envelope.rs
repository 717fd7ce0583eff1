//! [`envelope_bare`]: no bare error response leaves the web layer.

use http::{Method, Response, StatusCode, Uri, header};
use http_body::Body as _;

use crate::web::{Body, HttpError};

/// Gives an error response (4xx, 5xx) with an empty body and no content type — a router's
/// bare 404 or 405, say — the JSON envelope of its status (`not_found`,
/// `method_not_allowed`, …), in place. Responses with a body are left as they are. Applied by
/// [`Trace::finish`](super::Trace::finish) to every response.
pub(crate) fn envelope_bare(response: &mut Response<Body>, method: &Method, uri: &Uri) {
    let bare = (response.status().is_client_error() || response.status().is_server_error())
        && !response.headers().contains_key(header::CONTENT_TYPE)
        && response.body().is_end_stream();
    if !bare {
        return;
    }
    let (env_parts, body) = envelope_for(response.status(), method, uri)
        .into_response()
        .into_parts();
    let headers = response.headers_mut();
    headers.extend(env_parts.headers);
    headers.remove(header::CONTENT_LENGTH);
    *response.body_mut() = body;
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
