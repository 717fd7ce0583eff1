//! The actix-web adapter: mount the [`Web`] service (admin API and plugins) into an actix-web
//! `App`.
//!
//! actix-web is not built on tower, and uses its own `http` types: each request under the
//! admin or plugin prefix is converted to an `http::Request` (its body read up to the body
//! limit), served by [`Web`] — the same pipeline, the same plugin routes as under every other
//! adapter — and the response converted back (its body streamed).
//!
//! ```no_run
//! use actix_web::{App, HttpServer};
//! use xcore::Xcore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! actix_web::rt::System::new().block_on(async {
//!     let xcore = Xcore::builder().build()?;
//!     xcore.boot().await?;
//!     let web = xcore.web().build()?;
//!     let edge = web.edge().clone();
//!     let server =
//!         HttpServer::new(move || App::new().configure(xcore::web::actix::configure(web.clone())));
//!     // The header read limit and the connection cap of the edge.
//!     xcore::web::actix::apply_limits(server, &edge)
//!         .bind(("127.0.0.1", 8080))?
//!         .run()
//!         .await?;
//!     xcore.shutdown().await;
//!     Ok(())
//! })
//! # }
//! ```

use std::{
    fmt,
    pin::Pin,
    task::{Context, Poll},
};

use actix_web::{
    HttpRequest, HttpResponse, HttpServer,
    body::{BodySize, MessageBody},
    dev::{AppConfig, Service, ServiceFactory},
    http::ConnectionType,
    web::{Payload, ServiceConfig, scope, to},
};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http_body::Body as _;

use super::{Body, BoxError, Edge, HttpError, Web, edge::body_timeout_response};

/// Registers the admin API's prefix, then the plugin prefix, as actix scopes served by
/// `web`: `App::new().configure(xcore::web::actix::configure(web.clone()))`. The host's other
/// routes and services are untouched.
pub fn configure(web: Web) -> impl FnOnce(&mut ServiceConfig) {
    move |config| {
        for prefix in [
            web.admin_prefix().to_owned(),
            web.plugin_prefix().to_owned(),
        ] {
            let web = web.clone();
            config.service(scope(&prefix).default_service(to(
                move |request: HttpRequest, payload: Payload| handle(web.clone(), request, payload),
            )));
        }
    }
}

/// Applies the limits of `edge` that actix's server enforces: the header read limit
/// (`client_request_timeout`: 408, then closed) and the connection cap (`max_connections`,
/// per worker). The body limits are applied by the adapter; actix has no response write
/// limit.
pub fn apply_limits<F, I, S, B>(
    server: HttpServer<F, I, S, B>,
    edge: &Edge,
) -> HttpServer<F, I, S, B>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: actix_service::IntoServiceFactory<S, actix_http::Request>,
    S: ServiceFactory<actix_http::Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<actix_http::Response<B>> + 'static,
    <S::Service as Service<actix_http::Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let server = server.client_request_timeout(edge.limits().header_read_timeout());
    match edge.limits().connection_cap() {
        Some(cap) => server.max_connections(cap),
        None => server,
    }
}

/// Serves one actix request through `web`.
async fn handle(web: Web, request: HttpRequest, payload: Payload) -> HttpResponse {
    let request = match to_http(&request, payload, &web).await {
        Ok(request) => request,
        Err(Unread::Invalid(err)) => return to_actix(err.into_response()),
        Err(Unread::TimedOut) => return to_actix(body_timeout_response()),
    };
    let Ok(response) = web.handle(request).await;
    to_actix(response)
}

/// Why a request could not be converted.
enum Unread {
    Invalid(HttpError),
    TimedOut,
}

impl From<HttpError> for Unread {
    fn from(err: HttpError) -> Self {
        Self::Invalid(err)
    }
}

/// The actix request as an `http::Request`, its body read (at most `limit + 1` bytes: the
/// body limit layer answers 413 to anything longer) within the edge's body limits.
async fn to_http(
    request: &HttpRequest,
    mut payload: Payload,
    web: &Web,
) -> Result<http::Request<Body>, Unread> {
    let limit = web.body_limit();
    let edge = web.edge();
    let method = http::Method::from_bytes(request.method().as_str().as_bytes())
        .map_err(|_| HttpError::bad_request("invalid method"))?;
    let uri = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let version = match request.version() {
        actix_web::http::Version::HTTP_09 => http::Version::HTTP_09,
        actix_web::http::Version::HTTP_10 => http::Version::HTTP_10,
        actix_web::http::Version::HTTP_2 => http::Version::HTTP_2,
        actix_web::http::Version::HTTP_3 => http::Version::HTTP_3,
        _ => http::Version::HTTP_11,
    };
    let mut builder = http::Request::builder()
        .method(method)
        .uri(uri)
        .version(version);
    if let Some(headers) = builder.headers_mut() {
        headers.reserve(request.headers().len());
        for (name, value) in request.headers() {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_str().as_bytes()),
                http::HeaderValue::from_bytes(value.as_bytes()),
            ) {
                headers.append(name, value);
            }
        }
    }
    let mut body = BytesMut::new();
    let deadline = tokio::time::Instant::now() + edge.limits().body_read_timeout();
    loop {
        let wait = (tokio::time::Instant::now() + edge.limits().body_idle_timeout()).min(deadline);
        let Ok(next) = tokio::time::timeout_at(wait, payload.next()).await else {
            edge.stats().body_timed_out();
            tracing::debug!("request body timed out");
            return Err(Unread::TimedOut);
        };
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| {
            HttpError::bad_request(format!("the request body could not be read: {e}"))
        })?;
        body.extend_from_slice(&chunk);
        if body.len() > limit {
            break;
        }
    }
    builder
        .body(Body::from(body.freeze()))
        .map_err(|e| HttpError::bad_request(format!("invalid request: {e}")).into())
}

/// An `http::Response` as an actix response; the body is streamed.
fn to_actix(response: http::Response<Body>) -> HttpResponse {
    let (parts, body) = response.into_parts();
    let status = actix_web::http::StatusCode::from_u16(parts.status.as_u16())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::with_body(status, ActixBody(body));
    if parts
        .headers
        .get(http::header::CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
    {
        out.head_mut().set_connection_type(ConnectionType::Close);
    }
    let headers = out.headers_mut();
    for (name, value) in &parts.headers {
        if let (Ok(name), Ok(value)) = (
            actix_web::http::header::HeaderName::from_bytes(name.as_str().as_bytes()),
            actix_web::http::header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    out.map_into_boxed_body()
}

/// A [`Body`] as an actix message body.
struct ActixBody(Body);

impl MessageBody for ActixBody {
    type Error = ActixBodyError;

    fn size(&self) -> BodySize {
        match self.0.size_hint().exact() {
            Some(n) => BodySize::Sized(n),
            None => BodySize::Stream,
        }
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, ActixBodyError>>> {
        let body = &mut self.get_mut().0;
        loop {
            return match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => Poll::Ready(Some(Ok(data))),
                    // Trailers: actix has no use for them.
                    Err(_) => continue,
                },
                Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(ActixBodyError(err)))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
        }
    }
}

/// A response body's error, for actix.
#[derive(Debug)]
struct ActixBodyError(BoxError);

impl std::fmt::Display for ActixBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ActixBodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}
