//! The request's [`CallContext`] and [`TenantId`] as axum extractors.

use ::axum::extract::FromRequestParts;
use http::{StatusCode, request::Parts};

use crate::{CallContext, TenantId, web::HttpError};

fn missing(what: &str) -> HttpError {
    HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("no {what} in the request: is this handler served through xcore's web layer?"),
    )
}

/// The call context of the request (host caller, the request's tenant and trace): pass it
/// to the calls the handler makes, so the tenant and the trace travel on.
impl<S: Send + Sync> FromRequestParts<S> for CallContext {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, HttpError> {
        parts
            .extensions
            .get::<CallContext>()
            .cloned()
            .ok_or_else(|| missing("call context"))
    }
}

/// The tenant of the request.
impl<S: Send + Sync> FromRequestParts<S> for TenantId {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, HttpError> {
        parts
            .extensions
            .get::<TenantId>()
            .cloned()
            .ok_or_else(|| missing("tenant"))
    }
}
