//! [`Web`]: the one service every adapter mounts.

use std::{
    convert::Infallible,
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response};
use tower::{Layer, Service};

use super::{
    Body, BoxError, Edge, ResponseFuture, TimeoutBody, WebBuilder,
    dispatch::Dispatch,
    edge::{BodyTimeoutsInForce, TimedOutFlag, body_timeout_response},
    layers::{
        BodyLimit, BodyLimitLayer, RequestTrace, RequestTraceLayer, ResolveTenant,
        ResolveTenantLayer,
    },
    prefix::Prefix,
    tenant::TenantResolution,
};
use crate::Xcore;

type Stack = RequestTrace<BodyLimit<ResolveTenant<Dispatch>>>;

/// The web layer of one [`Xcore`]: the admin API under its prefix (`/xcore`) and every
/// running plugin's [`Routes`](super::Routes) under `/plugin/<name>/…`, behind the shared
/// layers — tracing, body limit, tenant resolution, JSON error envelopes.
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
    stack: Stack,
    info: Arc<Info>,
}

struct Info {
    plugin_prefix: Prefix,
    admin_prefix: Prefix,
    body_limit: usize,
    tenancy: TenantResolution,
    edge: Edge,
}

impl Web {
    /// Starts a builder; the same as [`Xcore::web`].
    pub fn builder(xcore: Xcore) -> WebBuilder {
        WebBuilder::new(xcore)
    }

    pub(crate) fn new(
        dispatch: Dispatch,
        trace: RequestTraceLayer,
        plugin_prefix: Prefix,
        admin_prefix: Prefix,
        body_limit: usize,
        tenancy: TenantResolution,
        edge: Edge,
    ) -> Self {
        let stack = trace.layer(
            BodyLimitLayer::new(body_limit)
                .layer(ResolveTenantLayer::new(tenancy.clone()).layer(dispatch)),
        );
        Self {
            stack,
            info: Arc::new(Info {
                plugin_prefix,
                admin_prefix,
                body_limit,
                tenancy,
                edge,
            }),
        }
    }

    /// Where plugins are mounted (`/plugin`).
    pub fn plugin_prefix(&self) -> &str {
        self.info.plugin_prefix.as_str()
    }

    /// Where the admin API is mounted (`/xcore`).
    pub fn admin_prefix(&self) -> &str {
        self.info.admin_prefix.as_str()
    }

    /// The largest request body accepted, in bytes.
    pub fn body_limit(&self) -> usize {
        self.info.body_limit
    }

    /// The edge: its time limits and the count of clients they closed.
    pub fn edge(&self) -> &Edge {
        &self.info.edge
    }

    /// Serves one request (through `&self`). A body not already timed by a layer outside
    /// ([`BodyTimeoutLayer`](super::BodyTimeoutLayer), `xcore::web::axum::serve`) is timed with
    /// the [`edge`](Self::edge)'s limits.
    pub fn handle<B>(&self, request: Request<B>) -> ResponseFuture
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let request = request.map(Body::new);
        // Every service of the stack is always ready.
        if http_body::Body::is_end_stream(request.body())
            || request.extensions().get::<BodyTimeoutsInForce>().is_some()
        {
            return self.stack.clone().call(request);
        }
        let flag = TimedOutFlag::default();
        let timed = flag.clone();
        let request =
            request.map(|body| Body::new(TimeoutBody::flagged(body, &self.info.edge, timed)));
        let call = self.stack.clone().call(request);
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

impl fmt::Debug for Web {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Web")
            .field("plugin_prefix", &self.info.plugin_prefix.as_str())
            .field("admin_prefix", &self.info.admin_prefix.as_str())
            .field("body_limit", &self.info.body_limit)
            .field("tenancy", &self.info.tenancy)
            .field("edge", &self.info.edge)
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
