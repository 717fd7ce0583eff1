//! [`HttpError`]: every error the web layer answers, as a JSON envelope.

use std::{borrow::Cow, fmt};

use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};

use super::{Body, FieldErrors};
use crate::{CallError, tenancy::InvalidTenantId};

/// An HTTP error answered as the JSON envelope
/// `{"status":"error","code":…,"message":…,"details":…}`, with its status.
///
/// Everything the web layer rejects is one: an invalid tenant (400 `invalid_tenant`), a
/// missing or wrong admin token (401 `unauthorized`), an unknown route (404 `not_found`), a
/// body over the limit (413 `payload_too_large`), invalid JSON or a failed validation (422
/// `invalid_payload` with field errors), and every [`CallError`] (its own code and status).
/// Plugin handlers return it too: `HttpError::from(call_error)`; under axum it is a response
/// (and so is a `CallError`).
///
/// ```
/// use xcore::{CallError, web::HttpError};
///
/// let err = HttpError::from(CallError::handler("out of stock"));
/// assert_eq!(err.status(), 500);
/// assert_eq!(err.code(), "handler_error");
/// let response = err.into_response();
/// assert_eq!(response.headers()["content-type"], "application/json");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HttpError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: String,
    details: Option<Value>,
    public: bool,
}

impl HttpError {
    /// An error with a status, a stable code and a message.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            details: None,
            public: false,
        }
    }

    /// Marks a 5xx's message and details as written for clients (no internals): they are
    /// sent as they are, not replaced by a generic message and an error id. xcore's own
    /// "plugin `x` is not running" 503 is one.
    #[must_use]
    pub fn public(mut self) -> Self {
        self.public = true;
        self
    }

    /// Attaches machine-readable details.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            message,
        )
    }

    /// 413 `payload_too_large`: the body is over `limit` bytes.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
        .with_details(json!({ "limit": limit }))
    }

    /// 415 `unsupported_media_type`.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    /// 422 `invalid_payload`, with the field errors in `details.errors`.
    pub fn validation(errors: FieldErrors) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_payload",
            errors.summary(),
        )
        .with_details(json!({ "errors": errors.to_json() }))
    }

    /// 400 `invalid_tenant`.
    pub fn invalid_tenant(err: &InvalidTenantId) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_tenant", err.to_string())
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code (`not_found`, `invalid_payload`, …).
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The details, if any.
    pub fn details(&self) -> Option<&Value> {
        self.details.as_ref()
    }

    /// The JSON envelope.
    pub fn to_envelope(&self) -> Value {
        let mut env = json!({ "status": "error", "code": self.code, "message": self.message });
        if let Some(details) = &self.details {
            env["details"] = details.clone();
        }
        env
    }

    /// The response: the status, `content-type: application/json`, the envelope (and
    /// `www-authenticate: Bearer` for a 401, `retry-after` for a rate limit).
    ///
    /// A 5xx answers only its code, a generic message and an error id
    /// (`{"status":"error","code":"handler_error","message":"internal error (error id 9f…)","details":{"error_id":"9f…"}}`):
    /// its message and details — database errors, pool states — are logged at ERROR with the
    /// same id (in the request's span: method, path, plugin, route, tenant, trace id), never
    /// sent. A 4xx keeps its precise message.
    pub fn into_response(self) -> Response<Body> {
        let this = if self.status.is_server_error() && !self.public {
            self.concealed()
        } else {
            self
        };
        let mut response = json_response(this.status, &this.to_envelope());
        let this = &this;
        if this.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(ms) = this
            .details
            .as_ref()
            .and_then(|d| d.get("retry_after_ms"))
            .and_then(Value::as_u64)
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(ms.div_ceil(1000)));
        }
        response
    }

    /// The 5xx sent to the client: the code, a generic message, an error id (and a retry
    /// hint); the cause is logged at ERROR with the id.
    fn concealed(self) -> Self {
        let error_id = format!("{:016x}", fastrand::u64(..));
        tracing::error!(
            error_id = %error_id,
            status = self.status.as_u16(),
            code = %self.code,
            cause = %self.message,
            details = ?self.details,
            "request failed",
        );
        let generic = match self.status {
            StatusCode::SERVICE_UNAVAILABLE => "service unavailable",
            StatusCode::GATEWAY_TIMEOUT => "timed out",
            _ => "internal error",
        };
        let mut details = json!({ "error_id": error_id });
        if let Some(ms) = self.details.as_ref().and_then(|d| d.get("retry_after_ms")) {
            details["retry_after_ms"] = ms.clone();
        }
        Self {
            status: self.status,
            message: format!("{generic} (error id {error_id})"),
            code: self.code,
            details: Some(details),
            public: true,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for HttpError {}

impl From<CallError> for HttpError {
    fn from(err: CallError) -> Self {
        Self::from(&err)
    }
}

impl From<&CallError> for HttpError {
    fn from(err: &CallError) -> Self {
        Self {
            status: StatusCode::from_u16(err.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: Cow::Borrowed(err.code().as_str()),
            message: err.message().to_owned(),
            details: err.details().cloned(),
            public: false,
        }
    }
}

impl From<InvalidTenantId> for HttpError {
    fn from(err: InvalidTenantId) -> Self {
        Self::invalid_tenant(&err)
    }
}

impl From<FieldErrors> for HttpError {
    fn from(errors: FieldErrors) -> Self {
        Self::validation(errors)
    }
}

/// A `CallError` as an HTTP response: its status and its envelope. What a plugin handler
/// returns when a call it made failed.
pub fn call_error_response(err: &CallError) -> Response<Body> {
    HttpError::from(err).into_response()
}

/// A JSON response with this status.
pub fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    // Serializing a `Value` cannot fail (its map keys are strings).
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The success envelope `{"status":"ok","result":…}` with status 200.
pub fn ok_response(result: Value) -> Response<Body> {
    json_response(StatusCode::OK, &json!({ "status": "ok", "result": result }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn call_errors_keep_code_status_and_details() {
        let err = CallError::new(ErrorCode::RateLimited, "slow down")
            .with_details(json!({"retry_after_ms": 1500}));
        let http = HttpError::from(&err);
        assert_eq!(http.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(http.to_envelope(), err.to_envelope());
        let response = http.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let invalid = HttpError::from(crate::TenantId::new("A B").unwrap_err());
        assert_eq!(
            (invalid.status(), invalid.code()),
            (StatusCode::BAD_REQUEST, "invalid_tenant")
        );
        let unauthorized = HttpError::unauthorized("no").into_response();
        assert_eq!(unauthorized.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
