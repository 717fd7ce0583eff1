//! The request's [`CallContext`], [`TenantId`], serving [`PluginContext`] and call-bound
//! handles ([`Bound`]) as axum extractors.

use ::axum::extract::FromRequestParts;
use http::{StatusCode, request::Parts};

use crate::{CallContext, CallError, PluginContext, TenantId, plugin::Handle, web::HttpError};

fn missing(what: &str) -> HttpError {
    HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("no {what} in the request: is this handler served through xcore's web layer?"),
    )
}

/// The call context of the request (host caller, the request's tenant and trace, served by
/// the plugin whose route it is): pass it to the calls the handler makes, so the tenant and
/// the trace travel on, and take handles from it (`cx.named::<Cache>("sessions").await`),
/// bound to the request's tenant.
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

/// The tenant of the request (its [`CallContext`]'s).
impl<S: Send + Sync> FromRequestParts<S> for TenantId {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, HttpError> {
        parts
            .extensions
            .get::<CallContext>()
            .map(|cx| cx.tenant().clone())
            .ok_or_else(|| missing("tenant"))
    }
}

/// The plugin instance serving the request (a route of its): for plugin-to-plugin calls
/// (`ctx.plugin("audit").call(&cx, ..)`) and its config.
impl<S: Send + Sync> FromRequestParts<S> for PluginContext {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, HttpError> {
        parts
            .extensions
            .get::<CallContext>()
            .and_then(|cx| cx.plugin_context().cloned())
            .ok_or_else(|| missing("plugin serving the route"))
    }
}

/// The serving plugin's handle `H`, bound to the request: its grants, the request's tenant
/// (`cx.handle::<H>().await` as an extractor). For named handles (a cache namespace), ask the
/// [`CallContext`]: `cx.named::<Cache>("sessions").await`.
///
/// ```
/// use xcore::services::db::{Db, sqlx};
/// use xcore::web::axum::Bound;
/// use xcore::CallError;
///
/// async fn count(Bound(db): Bound<Db>) -> Result<String, CallError> {
///     let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
///         .fetch_one(db.pool())
///         .await
///         .map_err(CallError::handler)?;
///     Ok(n.to_string())
/// }
/// let _ = axum::Router::<()>::new().route("/count", axum::routing::get(count));
/// ```
///
/// A refusal (a grant the plugin lacks, a tenant whose database cannot be provisioned) is
/// answered as its [`CallError`] would be.
#[derive(Debug, Clone)]
pub struct Bound<H>(pub H);

impl<S: Send + Sync, H: Handle> FromRequestParts<S> for Bound<H> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, HttpError> {
        let cx = parts
            .extensions
            .get::<CallContext>()
            .ok_or_else(|| missing("call context"))?;
        cx.handle::<H>()
            .await
            .map(Bound)
            .map_err(|e| HttpError::from(Into::<CallError>::into(e)))
    }
}
