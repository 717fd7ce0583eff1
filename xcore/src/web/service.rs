//! [`Web`]: the one service every adapter mounts.

use std::{
    convert::Infallible,
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response};
use tower::Service;

use super::{
    Body, BoxError, Edge, ResponseFuture, TimeoutBody, WebBuilder,
    dispatch::Dispatch,
    edge::{BodyTimeoutsInForce, TimedOutFlag, body_timeout_response},
    pipeline::{Trace, Tracing, call_context, limit_body},
    prefix::Prefix,
    tenant::TenantResolution,
};
use crate::Xcore;

/// The web layer of one [`Xcore`]: the admin API under its prefix (`/xcore`) and every
/// running plugin's [`Routes`](super::Routes) under `/plugin/<name>/…`, behind the shared
/// steps — tracing, body limit, tenant resolution, JSON error envelopes.
///
/// A tower [`Service`] over `http` types (any body of [`Bytes`]) that never fails; cheap to
/// clone. Adapters mount it into a framework (`xcore::web::axum`, `xcore::web::hyper`,
/// `xcore::web::actix`); tests can call it directly.
///
/// ```
/// use http::{Request, StatusCode};
/// use tower::ServiceExt;
/// use xcore::{Xcore, web::Body};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let xcore = Xcore::builder().without_registered().build()?;
/// xcore.boot().await?;
/// let web = xcore.web().admin_token("a-long-random-admin-token").build()?;
///
/// let live = Request::get("/xcore/health/live").body(Body::empty())?;
/// assert_eq!(web.clone().oneshot(live).await?.status(), StatusCode::OK);
/// let plugins = Request::get("/xcore/plugins").body(Body::empty())?;
/// assert_eq!(web.clone().oneshot(plugins).await?.status(), StatusCode::UNAUTHORIZED);
/// let nowhere = Request::get("/plugin/nobody/hello").body(Body::empty())?;
/// assert_eq!(web.oneshot(nowhere).await?.status(), StatusCode::NOT_FOUND);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Web {
    inner: Arc<Inner>,
}

/// What [`Web`] runs each request through (see the `pipeline` module for the steps).
struct Inner {
    tracing: Tracing,
    body_limit: usize,
    tenancy: TenantResolution,
    dispatch: Dispatch,
    plugin_prefix: Prefix,
    admin_prefix: Prefix,
    edge: Edge,
}

impl Web {
    /// Starts a builder; the same as [`Xcore::web`].
    pub fn builder(xcore: Xcore) -> WebBuilder {
        WebBuilder::new(xcore)
    }

    pub(crate) fn new(
        dispatch: Dispatch,
        tracing: Tracing,
        plugin_prefix: Prefix,
        admin_prefix: Prefix,
        body_limit: usize,
        tenancy: TenantResolution,
        edge: Edge,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                tracing,
                body_limit,
                tenancy,
                dispatch,
                plugin_prefix,
                admin_prefix,
                edge,
            }),
        }
    }

    /// Where plugins are mounted (`/plugin`).
    pub fn plugin_prefix(&self) -> &str {
        self.inner.plugin_prefix.as_str()
    }

    /// Where the admin API is mounted (`/xcore`).
    pub fn admin_prefix(&self) -> &str {
        self.inner.admin_prefix.as_str()
    }

    /// The largest request body accepted, in bytes.
    pub fn body_limit(&self) -> usize {
        self.inner.body_limit
    }

    /// The edge: its time limits and the count of clients they closed.
    pub fn edge(&self) -> &Edge {
        &self.inner.edge
    }

    /// Serves one request (through `&self`). A body not already timed by a layer outside
    /// ([`BodyTimeoutLayer`](super::BodyTimeoutLayer), `xcore::web::axum::serve`) is timed with
    /// the [`edge`](Self::edge)'s limits.
    pub fn handle<B>(&self, request: Request<B>) -> ResponseFuture
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        // A request without a body (a GET, say) is given the empty body: nothing boxed.
        let request = request.map(|body| {
            if http_body::Body::is_end_stream(&body) {
                Body::empty()
            } else {
                Body::new(body)
            }
        });
        if http_body::Body::is_end_stream(request.body())
            || request.extensions().get::<BodyTimeoutsInForce>().is_some()
        {
            return self.inner.serve(request);
        }
        let flag = TimedOutFlag::default();
        let timed = flag.clone();
        let request =
            request.map(|body| Body::new(TimeoutBody::flagged(body, &self.inner.edge, timed)));
        let call = self.inner.serve(request);
        Box::pin(async move {
            let Ok(response) = call.await;
            Ok(if flag.is_set() {
                body_timeout_response()
            } else {
                response
            })
        })
    }
}

impl Inner {
    /// The steps of the pipeline, in order: the trace begun, the body limit, the tenant and
    /// call context, the dispatch (which finishes the trace on every way out).
    fn serve(&self, mut request: Request<Body>) -> ResponseFuture {
        let trace = Trace::begin(&self.tracing, &request);
        if let Err(err) = limit_body(&mut request, self.body_limit) {
            return trace.reject(err, request.uri());
        }
        if let Err(err) = call_context(&self.tenancy, &mut request, trace.span()) {
            return trace.reject(err, request.uri());
        }
        self.dispatch.call(request, trace)
    }
}

impl fmt::Debug for Web {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Web")
            .field("plugin_prefix", &self.inner.plugin_prefix.as_str())
            .field("admin_prefix", &self.inner.admin_prefix.as_str())
            .field("body_limit", &self.inner.body_limit)
            .field("tenancy", &self.inner.tenancy)
            .field("edge", &self.inner.edge)
            .finish_non_exhaustive()
    }
}

impl<B> Service<Request<B>> for Web
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        self.handle(request)
    }
}
