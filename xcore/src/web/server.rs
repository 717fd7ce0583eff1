//! The HTTP/1.1 server of `xcore::web::hyper::serve` and `xcore::web::axum::serve`: hyper's
//! connections with the [`Edge`] limits, graceful shutdown.

use std::{future::Future, sync::Arc, time::Duration};

use http::{Request, Response};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{rt::TokioIo, server::graceful::GracefulShutdown};
use tokio::sync::Semaphore;

use super::{
    BoxError, Edge,
    edge::{
        conn::{Counted, Exchanges, HeaderWatch},
        io::WriteTimeoutIo,
    },
};

/// Serves `service` over HTTP/1.1 on `listener` until `shutdown` completes, then stops
/// accepting, lets the requests in flight finish (idle keep-alive connections close at once)
/// and returns.
///
/// Each connection has the header read limit ([`HeaderWatch`]) and the response write limit
/// ([`WriteTimeoutIo`]) of `edge`; at most `edge`'s connection cap are served at once (the
/// next ones wait in the kernel's backlog). A failed `accept` (too many open files, say) is
/// logged and retried after a short pause; a connection's error is logged and ends only that
/// connection.
pub(crate) async fn serve<S, B, F>(
    listener: tokio::net::TcpListener,
    service: S,
    edge: Edge,
    shutdown: F,
) -> std::io::Result<()>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    F: Future<Output = ()> + Send,
{
    let graceful = GracefulShutdown::new();
    let cap = edge
        .limits()
        .connection_cap()
        .map(|n| Arc::new(Semaphore::new(n)));
    let mut shutdown = std::pin::pin!(shutdown);
    // No timer for hyper: the header read limit is `HeaderWatch`'s.
    let mut http = http1::Builder::new();
    http.header_read_timeout(None);
    loop {
        let permit = match &cap {
            Some(cap) => tokio::select! {
                permit = cap.clone().acquire_owned() => permit.ok(),
                () = &mut shutdown => break,
            },
            None => None,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let exchanges = Arc::new(Exchanges::new());
                    let io = WriteTimeoutIo::new(
                        stream,
                        edge.limits().response_write_timeout(),
                        edge.stats().clone(),
                    );
                    let service = Counted::new(service.clone(), exchanges.clone());
                    let connection = http.serve_connection(TokioIo::new(io), service);
                    let connection = HeaderWatch::new(
                        graceful.watch(connection),
                        exchanges,
                        edge.limits().header_read_timeout(),
                        edge.stats().clone(),
                    );
                    tokio::spawn(async move {
                        match connection.await {
                            Some(Ok(())) => {}
                            Some(Err(err)) => {
                                tracing::debug!(%peer, error = %err, "connection ended with an error");
                            }
                            None => {
                                tracing::debug!(%peer, "connection closed: no request head within the header read limit");
                            }
                        }
                        drop(permit);
                    });
                }
                Err(err) => {
                    drop(permit);
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
