//! [`Routes`]: a plugin's HTTP routes, independent of any web framework.

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    marker::PhantomData,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Method, Request, Response};
use tower::{Service, ServiceExt};

use super::{Body, BoxError, openapi::Operation, pipeline::RouteGuard};
use crate::{Plugin, PluginContext};

/// The future of a response from the web layer's services.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send + 'static>>;

/// A plugin's HTTP routes: a tower [`Service`] from `http::Request<Body>` to
/// `http::Response<Body>` that never fails, plus the endpoints it serves (for listings).
///
/// Framework-neutral: build it from an axum `Router` (`Routes::from_axum`, feature `axum`)
/// or from any tower service ([`Routes::from_service`]); every adapter of
/// [`xcore::web`](crate::web) serves it unchanged. The service sees paths relative to the
/// plugin's mount point (`/plugin/<name>/hello` arrives as `/hello`). Cheap to clone.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Method, Request, Response};
/// use xcore::web::{Body, Routes, openapi::Operation};
///
/// let routes = Routes::from_service(tower::service_fn(|req: Request<Body>| async move {
///     Ok::<_, Infallible>(Response::new(Body::from(format!("you asked for {}", req.uri().path()))))
/// }))
/// .endpoint(Method::GET, "/hello")
/// .doc(Operation::new().summary("Echoes the path").status(200, "The path, as text"));
/// assert_eq!(routes.endpoints()[0].to_string(), "GET /hello");
/// assert!(routes.endpoints()[0].operation().is_some());
/// ```
#[derive(Clone)]
pub struct Routes {
    service: Arc<dyn Erased>,
    endpoints: Vec<Endpoint>,
}

impl Routes {
    /// Routes served by any tower service that never fails and answers with a body of
    /// [`Bytes`]. List its endpoints with [`endpoint`](Self::endpoint).
    pub fn from_service<S, B>(service: S) -> Self
    where
        S: Service<Request<Body>, Response = Response<B>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self {
            service: Arc::new(ErasedService(service, PhantomData)),
            endpoints: Vec::new(),
        }
    }

    /// Routes served by an axum `Router` (with its state already provided). axum cannot list
    /// a router's routes: name them with [`endpoint`](Self::endpoint) — or build the routes
    /// with [`Routes::axum`], which lists (and documents) each route where it is declared.
    ///
    /// ```
    /// use axum::routing::get;
    /// use http::Method;
    /// use xcore::web::Routes;
    ///
    /// let routes = Routes::from_axum(axum::Router::new().route("/hello", get(|| async { "hi" })))
    ///     .endpoint(Method::GET, "/hello");
    /// assert_eq!(routes.endpoints().len(), 1);
    /// ```
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn from_axum(router: ::axum::Router) -> Self {
        Self {
            // Every route turned into a service once (what `axum::serve` does per connection),
            // not per request.
            service: Arc::new(AxumService(router.with_state(()))),
            endpoints: Vec::new(),
        }
    }

    /// Routes served by an axum router built with [`RoutesBuilder`](super::axum::RoutesBuilder):
    /// each route declared once — added to the router, listed as an endpoint, documented with
    /// [`doc`](super::axum::RoutesBuilder::doc) — so that no second list is kept by hand.
    ///
    /// ```
    /// use xcore::web::{Routes, openapi::Operation};
    ///
    /// let routes = Routes::axum()
    ///     .get("/hello", || async { "hi" })
    ///     .doc(Operation::new().summary("Says hi"))
    ///     .build();
    /// assert_eq!(routes.endpoints()[0].to_string(), "GET /hello");
    /// assert!(routes.endpoints()[0].operation().is_some());
    /// ```
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn axum<S: Clone + Send + Sync + 'static>() -> super::axum::RoutesBuilder<S> {
        super::axum::RoutesBuilder::new()
    }

    /// Lists one endpoint: a method and a path relative to the mount point (`/users/{id}`).
    #[must_use]
    pub fn endpoint(mut self, method: Method, path: impl Into<String>) -> Self {
        self.endpoints.push(Endpoint::new(method, path.into()));
        self
    }

    /// Documents the endpoint listed last (see [`openapi`](super::openapi)); before any, it
    /// documents nothing.
    #[must_use]
    pub fn doc(mut self, operation: Operation) -> Self {
        if let Some(last) = self.endpoints.last_mut() {
            last.set_operation(operation);
        }
        self
    }

    /// Routes of `service` with `endpoints` (the axum builder's).
    #[cfg(feature = "axum")]
    pub(crate) fn with_endpoints(mut self, endpoints: Vec<Endpoint>) -> Self {
        self.endpoints = endpoints;
        self
    }

    /// The endpoints listed, in order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// Serves one request (through `&self`: no clone needed).
    pub fn serve(&self, request: Request<Body>) -> ResponseFuture {
        self.service.call(request)
    }

    /// Serves one request admitted by a plugin's gate, the guard's work (timeout, panic
    /// isolation, span, the pass held, the trace finished) in the same future: one allocation
    /// per request.
    pub(crate) fn serve_guarded(
        &self,
        request: Request<Body>,
        guard: RouteGuard,
    ) -> ResponseFuture {
        self.service.call_guarded(request, guard)
    }
}

impl fmt::Debug for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routes")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl Service<Request<Body>> for Routes {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> ResponseFuture {
        self.serve(request)
    }
}

/// An axum router (its state provided) taking the web layer's requests, their bodies passed
/// as they are. A router is always ready: it is called at once, without `oneshot`.
#[cfg(feature = "axum")]
struct AxumService(::axum::Router);

#[cfg(feature = "axum")]
impl Erased for AxumService {
    fn call(&self, request: Request<Body>) -> ResponseFuture {
        let call = self.0.clone().call(request.map(Body::into_axum));
        Box::pin(async move {
            let Ok(response) = call.await;
            Ok(response.map(Body::new))
        })
    }

    fn call_guarded(&self, request: Request<Body>, guard: RouteGuard) -> ResponseFuture {
        // Routing only: the handlers (and the router's layers) run when the future is polled.
        guard.guard(self.0.clone().call(request.map(Body::into_axum)))
    }
}

/// One endpoint of [`Routes`]: a method and a path relative to the plugin's mount point, and
/// its documentation if it has one. Equal endpoints have the same method and path.
#[derive(Debug, Clone)]
pub struct Endpoint {
    method: Method,
    path: String,
    operation: Option<Arc<Operation>>,
}

impl PartialEq for Endpoint {
    fn eq(&self, other: &Self) -> bool {
        self.method == other.method && self.path == other.path
    }
}

impl Eq for Endpoint {}

impl std::hash::Hash for Endpoint {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.method.hash(state);
        self.path.hash(state);
    }
}

impl Endpoint {
    pub(crate) fn new(method: Method, path: String) -> Self {
        Self {
            method,
            path,
            operation: None,
        }
    }

    pub(crate) fn set_operation(&mut self, operation: Operation) {
        self.operation = Some(Arc::new(operation));
    }

    /// Its documentation, if it has one.
    pub fn operation(&self) -> Option<&Operation> {
        self.operation.as_deref()
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path, relative to the mount point.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// A service behind a trait object, called through `&self`.
trait Erased: Send + Sync + 'static {
    fn call(&self, request: Request<Body>) -> ResponseFuture;

    fn call_guarded(&self, request: Request<Body>, guard: RouteGuard) -> ResponseFuture;
}

struct ErasedService<S, B>(S, PhantomData<fn() -> B>);

impl<S, B> Erased for ErasedService<S, B>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    fn call(&self, request: Request<Body>) -> ResponseFuture {
        let call = self.0.clone().oneshot(request);
        Box::pin(async move {
            let Ok(response) = call.await;
            Ok(response.map(Body::new))
        })
    }

    fn call_guarded(&self, request: Request<Body>, guard: RouteGuard) -> ResponseFuture {
        // Readiness first, then the call, when the guarded future is polled.
        guard.guard(self.0.clone().oneshot(request))
    }
}

/// Asks a started plugin for its routes, once; a panic is logged and means no routes.
pub(crate) fn collect_routes(plugin: &dyn Plugin, ctx: &PluginContext) -> Option<Routes> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| plugin.routes(ctx))) {
        Ok(routes) => routes,
        Err(panic) => {
            let why = crate::call::layers::catch_panic_message(&*panic);
            tracing::error!(plugin = ctx.name(), panic = %why, "`routes` panicked; the plugin runs without routes");
            None
        }
    }
}
