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
//! // Serve with the edge limits (header, body and write timeouts): axum's own `serve` has no
//! // header read timeout.
//! // xcore::web::axum::serve(listener, app, web.edge().clone(), shutdown_signal).await?;
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

mod extract;
mod json;
mod routes;

use std::{
    convert::Infallible,
    future::Future,
    task::{Context, Poll},
};

use ::axum::{
    Router,
    extract::Request,
    response::{IntoResponse, Response},
};
use futures_util::{FutureExt, future::Map};
use tower::Service;

pub use self::extract::Bound;
pub use self::json::{Json, Valid};
pub use self::routes::RoutesBuilder;
use super::{Body, Edge, HttpError, ResponseFuture, Web};
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

/// Serves `router` over HTTP/1.1 on `listener` with the limits of `edge` (usually
/// `web.edge().clone()`) until `shutdown` completes, then stops accepting, lets the requests
/// in flight finish and returns.
///
/// What `axum::serve` does, plus the edge limits for every route, the host's too: a client
/// that does not send its headers in time is disconnected, one whose body stalls is answered
/// 408, one that does not read its response is disconnected, each counted in the edge's
/// [`EdgeStats`](super::EdgeStats); at most the connection cap are served at once.
///
/// ```no_run
/// # async fn run(web: xcore::web::Web) -> std::io::Result<()> {
/// let app = xcore::web::axum::router(&web);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// xcore::web::axum::serve(listener, app, web.edge().clone(), async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await
/// # }
/// ```
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    router: Router,
    edge: Edge,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let service = HyperRouter {
        // The host's handlers turned into services once, not per request (as `axum::serve`).
        router: router.with_state(()),
        edge: edge.clone(),
    };
    super::server::serve(listener, service, edge, shutdown).await
}

/// A router, its bodies timed (what [`BodyTimeout`](super::BodyTimeout) does), as a hyper service.
#[derive(Clone)]
struct HyperRouter {
    router: Router,
    edge: Edge,
}

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for HyperRouter {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = super::BodyTimeoutFuture<::axum::routing::future::RouteFuture<Infallible>>;

    fn call(&self, request: http::Request<hyper::body::Incoming>) -> Self::Future {
        // A router is always ready.
        let mut router = self.router.clone();
        if http_body::Body::is_end_stream(request.body()) {
            // Nothing to time, nothing to box.
            let request = request.map(|_| ::axum::body::Body::empty());
            return super::BodyTimeoutFuture::new(router.call(request), None);
        }
        let (request, flag) = super::edge::time_body(request, &self.edge);
        super::BodyTimeoutFuture::new(router.call(request), flag)
    }
}

/// A router serving only the web layer, to serve as it is (or nest). Every request goes to
/// the web layer as the router's fallback, with no route matching in axum first: the web
/// layer matches the admin and plugin prefixes itself and answers 404 for the rest. To add
/// the web layer to a router of the host's, use [`mount`].
pub fn router(web: &Web) -> Router {
    Router::new().fallback_service(AxumWeb(web.clone()))
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
