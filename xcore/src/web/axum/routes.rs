//! [`RoutesBuilder`]: a plugin's axum routes, each declared once with its documentation.

use std::fmt;

use ::axum::{
    Router,
    handler::Handler,
    routing::{MethodFilter, on},
};
use http::Method;

use crate::web::{Endpoint, Routes, openapi::Operation};

/// Builds a plugin's [`Routes`] on an axum `Router` (from [`Routes::axum`]): every route is
/// declared once — added to the router, listed as an endpoint (for the listings, the route
/// labels of spans and metrics, the OpenAPI document), and documented with
/// [`doc`](Self::doc).
///
/// ```
/// use axum::http::StatusCode;
/// use xcore::web::{Routes, openapi::Operation};
///
/// async fn register() -> StatusCode { StatusCode::CREATED }
/// async fn count() -> &'static str { "0" }
///
/// let routes = Routes::axum()
///     .post("/v2/register", register)
///     .doc(Operation::new().summary("Registers a user").status(201, "Registered").error(409))
///     .get("/v2/users/count", count)
///     .build();
/// let listed: Vec<String> = routes.endpoints().iter().map(|e| e.to_string()).collect();
/// assert_eq!(listed, ["POST /v2/register", "GET /v2/users/count"]);
/// ```
///
/// With state: declare the handlers on `RoutesBuilder<MyState>`, then
/// [`with_state`](Self::with_state). A route declared twice for one method panics, as in
/// axum (a bug in the plugin's setup; a panic in `Plugin::routes` is logged and the plugin
/// runs without routes).
#[must_use]
pub struct RoutesBuilder<S = ()> {
    router: Router<S>,
    endpoints: Vec<Endpoint>,
}

impl<S: Clone + Send + Sync + 'static> RoutesBuilder<S> {
    pub(crate) fn new() -> Self {
        Self {
            router: Router::new(),
            endpoints: Vec::new(),
        }
    }

    /// Routes `method` requests for `path` (relative to the mount point: `/users/{id}`) to
    /// `handler`, and lists the endpoint.
    ///
    /// # Panics
    ///
    /// For a method axum cannot route by (an extension method), or a method and path
    /// already routed, as axum does.
    pub fn route<H, T>(mut self, method: Method, path: &str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let filter = match MethodFilter::try_from(method.clone()) {
            Ok(filter) => filter,
            Err(err) => panic!("cannot route `{method} {path}`: {err}"),
        };
        self.router = self.router.route(path, on(filter, handler));
        self.endpoints.push(Endpoint::new(method, path.to_owned()));
        self
    }

    /// A `GET` route (see [`route`](Self::route)).
    pub fn get<H: Handler<T, S>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.route(Method::GET, path, handler)
    }

    /// A `POST` route (see [`route`](Self::route)).
    pub fn post<H: Handler<T, S>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.route(Method::POST, path, handler)
    }

    /// A `PUT` route (see [`route`](Self::route)).
    pub fn put<H: Handler<T, S>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.route(Method::PUT, path, handler)
    }

    /// A `PATCH` route (see [`route`](Self::route)).
    pub fn patch<H: Handler<T, S>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.route(Method::PATCH, path, handler)
    }

    /// A `DELETE` route (see [`route`](Self::route)).
    pub fn delete<H: Handler<T, S>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.route(Method::DELETE, path, handler)
    }

    /// Documents the route declared last (before any, it documents nothing).
    pub fn doc(mut self, operation: Operation) -> Self {
        if let Some(last) = self.endpoints.last_mut() {
            last.set_operation(operation);
        }
        self
    }

    /// Applies `f` to the router as built so far (to add a layer, say: it wraps the routes
    /// declared before it, as in axum). The endpoints stay as declared.
    pub fn map_router(mut self, f: impl FnOnce(Router<S>) -> Router<S>) -> Self {
        self.router = f(self.router);
        self
    }

    /// The routes, with the router's state provided.
    pub fn with_state(self, state: S) -> Routes {
        Routes::from_axum(self.router.with_state(state)).with_endpoints(self.endpoints)
    }
}

impl RoutesBuilder<()> {
    /// The routes (of a router without state).
    pub fn build(self) -> Routes {
        self.with_state(())
    }
}

impl<S> fmt::Debug for RoutesBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutesBuilder")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}
