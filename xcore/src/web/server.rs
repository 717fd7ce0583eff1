//! The HTTP/1.1 server of `xcore::web::hyper::serve` and `xcore::web::axum::serve`: hyper's
//! connections with the [`Edge`] limits, graceful shutdown.

use std::{future::Future, sync::Arc, time::Duration};

use http::{Request, Response};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::sync::Semaphore;

use super::{BoxError, Edge, edge::io::WriteTimeoutIo};

/// Serves `service` over HTTP/1.1 on `listener` until `shutdown` completes, then stops
/// accepting, lets the requests in flight finish (idle keep-alive connections close at once)
/// and returns.
///
/// Each connection has the header read limit (hyper's, counted when it closes one) and the
/// response write limit of `edge`; at most `edge`'s connection cap are served at once (the
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
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(edge.limits().header_read_timeout());
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
                    let io = WriteTimeoutIo::new(
                        stream,
                        edge.limits().response_write_timeout(),
                        edge.stats().clone(),
                    );
                    let connection = http.serve_connection(TokioIo::new(io), service.clone());
                    let connection = graceful.watch(connection);
                    let stats = edge.stats().clone();
                    tokio::spawn(async move {
                        if let Err(err) = connection.await {
                            if err.is_timeout() {
                                stats.header_timed_out();
                                tracing::debug!(%peer, "connection closed: headers not sent in time");
                            } else {
                                tracing::debug!(%peer, error = %err, "connection ended with an error");
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
