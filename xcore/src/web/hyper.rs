//! The hyper adapter: the [`Web`] service for hyper's server connections, without any
//! framework, and [`serve`] with graceful shutdown.
//!
//! ```no_run
//! use xcore::Xcore;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let xcore = Xcore::builder().build()?;
//! xcore.boot().await?;
//! let web = xcore.web().build()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! // Send on `stop` (from a signal handler, say) to shut the server down gracefully.
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! # drop(stop);
//! xcore::web::hyper::serve(listener, web, async {
//!     let _ = stopped.await;
//! })
//! .await?;
//! xcore.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::{convert::Infallible, future::Future};

use http::{Request, Response};
use hyper::body::Incoming;

use super::{Body, ResponseFuture, Web};

/// [`Web`] as a hyper service: give it to `hyper::server::conn::http1::Builder::serve_connection`
/// (or hyper-util's auto builder) for each accepted connection.
#[derive(Debug, Clone)]
pub struct HyperService {
    web: Web,
}

/// The hyper service of `web`.
pub fn service(web: Web) -> HyperService {
    HyperService { web }
}

impl hyper::service::Service<Request<Incoming>> for HyperService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<Incoming>) -> ResponseFuture {
        self.web.handle(request)
    }
}

/// Serves `web` over HTTP/1.1 on `listener` until `shutdown` completes, then stops accepting,
/// lets the requests in flight finish (idle keep-alive connections close at once) and
/// returns.
///
/// The limits of [`Web::edge`] apply: a client that does not send its headers within the
/// header read limit is disconnected, one whose body stalls is answered 408, one that does
/// not read its response is disconnected; each is counted in the edge's
/// [`EdgeStats`](super::EdgeStats). A failed `accept` (too many open files, say) is logged and
/// retried after a short pause; a connection's error is logged and ends only that connection.
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    web: Web,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let edge = web.edge().clone();
    super::server::serve(listener, service(web), edge, shutdown).await
}
