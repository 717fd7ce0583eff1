//! [`limit_body`]: caps the size of request bodies.

use http::{Request, header};
use http_body::Body as _;
use http_body_util::Limited;

use crate::web::{Body, BodyLimitInForce, HttpError};

/// Refuses a request whose `content-length` is over `limit` (413 `payload_too_large`), and
/// makes reading more than `limit` bytes from any other body an error (which extractors and
/// [`read_body`](crate::web::read_body) answer with 413 too). The limit is put in the
/// request's extensions as [`BodyLimitInForce`]; a request without a body is left as it is.
pub(crate) fn limit_body(request: &mut Request<Body>, limit: usize) -> Result<(), HttpError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(HttpError::payload_too_large(limit));
    }
    if request.body().is_end_stream() {
        // Nothing to read, nothing to limit.
        return Ok(());
    }
    request.extensions_mut().insert(BodyLimitInForce(limit));
    let body = std::mem::take(request.body_mut());
    *request.body_mut() = Body::new(Limited::new(body, limit));
    Ok(())
}
