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

use std::{convert::Infallible, future::Future, time::Duration};

use http::{Request, Response};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{rt::TokioIo, server::graceful::GracefulShutdown};

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
/// A failed `accept` (too many open files, say) is logged and retried after a short pause;
/// a connection's error is logged and ends only that connection.
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    web: Web,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let service = service(web);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let connection = http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .serve_connection(TokioIo::new(stream), service.clone());
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(err) = connection.await {
                            tracing::debug!(%peer, error = %err, "connection ended with an error");
                        }
                    });
                }
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
