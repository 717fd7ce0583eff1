use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The stable code of a [`CallError`]: what went wrong, for programs.
///
/// Codes are part of the API: they appear in JSON envelopes and map to HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// xcore has not finished booting, or has shut down.
    NotReady,
    /// No plugin of that name.
    NotFound,
    /// The plugin has no such action.
    UnknownAction,
    /// The payload does not deserialize into the action's input type.
    InvalidPayload,
    /// The caller lacks the grant for this resource and action.
    PermissionDenied,
    /// The target's `allowed_callers` does not admit the caller.
    CallerDenied,
    /// The target's rate limit is exhausted.
    RateLimited,
    /// The target already serves `max_concurrency` calls.
    Overloaded,
    /// The call ran past its timeout or deadline.
    Timeout,
    /// The plugin exists but is not running (failed, skipped or stopped).
    Unavailable,
    /// The handler returned an error.
    HandlerError,
    /// The handler panicked.
    Panicked,
    /// A bug or an unexpected condition in xcore.
    Internal,
    /// The request conflicts with the current state (a lifecycle change of a plugin in the
    /// wrong state, say).
    Conflict,
}

impl ErrorCode {
    /// The code as written in envelopes (`not_found`, `invalid_payload`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotReady => "not_ready",
            ErrorCode::NotFound => "not_found",
            ErrorCode::UnknownAction => "unknown_action",
            ErrorCode::InvalidPayload => "invalid_payload",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::CallerDenied => "caller_denied",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::HandlerError => "handler_error",
            ErrorCode::Panicked => "panicked",
            ErrorCode::Internal => "internal",
            ErrorCode::Conflict => "conflict",
        }
    }

    /// The HTTP status this code maps to.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::NotReady | ErrorCode::Overloaded | ErrorCode::Unavailable => 503,
            ErrorCode::NotFound | ErrorCode::UnknownAction => 404,
            ErrorCode::InvalidPayload => 422,
            ErrorCode::PermissionDenied | ErrorCode::CallerDenied => 403,
            ErrorCode::RateLimited => 429,
            ErrorCode::Conflict => 409,
            ErrorCode::Timeout => 504,
            ErrorCode::HandlerError | ErrorCode::Panicked | ErrorCode::Internal => 500,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of a plugin call: a stable [`ErrorCode`], a message for people, optional details.
///
/// ```
/// use xcore::{CallError, ErrorCode};
/// let err = CallError::handler("out of stock");
/// assert_eq!(err.code(), ErrorCode::HandlerError);
/// assert_eq!(
///     err.to_envelope(),
///     serde_json::json!({"status": "error", "code": "handler_error", "message": "out of stock"}),
/// );
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct CallError {
    code: ErrorCode,
    message: String,
    details: Option<Value>,
}

impl CallError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// Attaches machine-readable details (field errors, the list of actions, ...).
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// A handler failure: what plugin code returns for a business error.
    pub fn handler(message: impl fmt::Display) -> Self {
        Self::new(ErrorCode::HandlerError, message.to_string())
    }

    /// `unknown_action`, listing the actions the plugin has.
    pub fn unknown_action(action: &str, available: &[&str]) -> Self {
        Self::new(
            ErrorCode::UnknownAction,
            format!(
                "unknown action `{action}`; available actions: {}",
                if available.is_empty() {
                    "none".to_owned()
                } else {
                    available.join(", ")
                }
            ),
        )
        .with_details(json!({ "action": action, "available": available }))
    }

    /// `invalid_payload` for the field at `path` (`.` for the payload itself).
    pub fn invalid_payload(path: &str, message: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::InvalidPayload,
            format!("invalid payload at `{path}`: {message}"),
        )
        .with_details(json!({ "errors": [{ "path": path, "message": message.to_string() }] }))
    }

    /// `internal`: something xcore or the plugin did not expect.
    pub fn internal(message: impl fmt::Display) -> Self {
        Self::new(ErrorCode::Internal, message.to_string())
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The details, if any.
    pub fn details(&self) -> Option<&Value> {
        self.details.as_ref()
    }

    /// The HTTP status of [`code`](Self::code).
    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }

    /// The JSON envelope `{"status":"error","code":…,"message":…}` (plus `details` if any).
    pub fn to_envelope(&self) -> Value {
        let mut env = json!({
            "status": "error",
            "code": self.code.as_str(),
            "message": self.message,
        });
        if let Some(details) = &self.details {
            env["details"] = details.clone();
        }
        env
    }
}

/// The JSON envelope of a call's outcome: `{"status":"ok","result":…}` or the error envelope.
pub fn envelope(outcome: &Result<Value, CallError>) -> Value {
    match outcome {
        Ok(result) => json!({ "status": "ok", "result": result }),
        Err(err) => err.to_envelope(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let codes = [
            (ErrorCode::NotReady, "not_ready", 503),
            (ErrorCode::NotFound, "not_found", 404),
            (ErrorCode::UnknownAction, "unknown_action", 404),
            (ErrorCode::InvalidPayload, "invalid_payload", 422),
            (ErrorCode::PermissionDenied, "permission_denied", 403),
            (ErrorCode::CallerDenied, "caller_denied", 403),
            (ErrorCode::RateLimited, "rate_limited", 429),
            (ErrorCode::Overloaded, "overloaded", 503),
            (ErrorCode::Timeout, "timeout", 504),
            (ErrorCode::Unavailable, "unavailable", 503),
            (ErrorCode::HandlerError, "handler_error", 500),
            (ErrorCode::Panicked, "panicked", 500),
            (ErrorCode::Internal, "internal", 500),
            (ErrorCode::Conflict, "conflict", 409),
        ];
        for (code, s, status) in codes {
            assert_eq!(code.as_str(), s);
            assert_eq!(serde_json::to_value(code).unwrap(), s);
            assert_eq!(code.http_status(), status);
        }
    }

    #[test]
    fn envelopes() {
        assert_eq!(
            envelope(&Ok(json!(42))),
            json!({"status": "ok", "result": 42})
        );
        let err = CallError::unknown_action("nope", &["ping", "echo"]);
        let env = envelope(&Err(err));
        assert_eq!(env["code"], "unknown_action");
        assert_eq!(env["details"]["available"], json!(["ping", "echo"]));
        assert!(env["message"].as_str().unwrap().contains("ping, echo"));
    }
}
