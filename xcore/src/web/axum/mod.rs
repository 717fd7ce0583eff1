//! The axum adapter: mount the [`Web`] service (admin API and plugins) into an axum
//! [`Router`], and extractors for plugin handlers written with axum.
//!
//! ```
//! use axum::{Router, routing::get};
//! use xcore::Xcore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let xcore = Xcore::builder().without_registered().build()?;
//! xcore.boot().await?;
//! let web = xcore.web().admin_token("a-long-random-admin-token").build()?;
//! // The host's own routes, then xcore's: `/xcore/…` and `/plugin/…`.
//! let app: Router = xcore::web::axum::mount(Router::new().route("/", get(|| async { "home" })), &web);
//! // axum::serve(listener, app).await?;
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

mod extract;
mod json;

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use ::axum::{
    Router,
    extract::Request,
    response::{IntoResponse, Response},
};
use futures_util::{FutureExt, future::Map};
use tower::Service;

pub use self::json::{Json, Valid};
use super::{Body, HttpError, ResponseFuture, Web};
use crate::CallError;

/// Adds the web layer to a host's router: every path under the admin prefix and under the
/// plugin prefix goes to `web` (which matches the admin API first). The host's other routes
/// are untouched.
///
/// # Panics
///
/// Like any `Router::route_service`, if the router already has a route at one of the
/// prefixes (`/xcore`, `/xcore/{*rest}`, `/plugin`, …): a bug in the host's setup.
pub fn mount<S>(router: Router<S>, web: &Web) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let service = AxumWeb(web.clone());
    let mut router = router;
    for prefix in [web.admin_prefix(), web.plugin_prefix()] {
        router = router
            .route_service(prefix, service.clone())
            .route_service(&format!("{prefix}/"), service.clone())
            .route_service(&format!("{prefix}/{{*rest}}"), service.clone());
    }
    router
}

/// [`Web`] answering with axum bodies (an axum body that went through is not boxed again).
#[derive(Clone)]
struct AxumWeb(Web);

impl Service<Request> for AxumWeb {
    type Response = Response;
    type Error = Infallible;
    type Future = Map<
        ResponseFuture,
        fn(Result<http::Response<Body>, Infallible>) -> Result<Response, Infallible>,
    >;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.0
            .handle(request)
            .map(|r| r.map(|response| response.map(Body::into_axum)))
    }
}

/// A router serving only the web layer (merge it, or serve it as it is).
pub fn router(web: &Web) -> Router {
    mount(Router::new(), web)
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        HttpError::into_response(self).map(::axum::body::Body::new)
    }
}

/// A failed call answers with its status and envelope: handlers can return
/// `Result<_, CallError>` and use `?` on calls.
impl IntoResponse for CallError {
    fn into_response(self) -> Response {
        IntoResponse::into_response(HttpError::from(self))
    }
}
