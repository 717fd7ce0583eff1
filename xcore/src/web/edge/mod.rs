//! [`Edge`]: the time limits at the HTTP edge, and the count of clients they closed.

mod body;
#[cfg(any(feature = "hyper", feature = "axum"))]
pub(crate) mod conn;
#[cfg(any(feature = "hyper", feature = "axum"))]
pub(crate) mod io;

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

#[cfg(feature = "axum")]
pub(crate) use self::body::time_body;
pub use self::body::{BodyTimedOut, BodyTimeout, BodyTimeoutFuture, BodyTimeoutLayer, TimeoutBody};
pub(crate) use self::body::{BodyTimeoutsInForce, TimedOutFlag};
use crate::config::WebConfig;

/// The time limits at the edge (see [`Edge`] for where each applies).
///
/// ```
/// use std::time::Duration;
/// use xcore::web::EdgeLimits;
///
/// let limits = EdgeLimits::default().header_read(Duration::from_secs(5)).max_connections(Some(1024));
/// assert_eq!(limits.header_read_timeout(), Duration::from_secs(5));
/// assert_eq!(limits.body_idle_timeout(), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeLimits {
    header_read: Duration,
    body_idle: Duration,
    body_total: Duration,
    response_write: Duration,
    max_connections: Option<usize>,
}

impl Default for EdgeLimits {
    /// 10 s for the headers, 10 s between body bytes and 60 s for the whole body, 30 s
    /// without write progress, no connection cap.
    fn default() -> Self {
        Self::from(&WebConfig::default())
    }
}

impl From<&WebConfig> for EdgeLimits {
    fn from(config: &WebConfig) -> Self {
        Self {
            header_read: config.header_read_timeout,
            body_idle: config.body_idle_timeout,
            body_total: config.body_read_timeout,
            response_write: config.response_write_timeout,
            max_connections: config.max_connections,
        }
    }
}

/// A zero duration would close every connection at once: it is taken as one millisecond.
fn at_least_1ms(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

impl EdgeLimits {
    /// How long a client may take to send a request's headers.
    pub fn header_read(mut self, limit: Duration) -> Self {
        self.header_read = at_least_1ms(limit);
        self
    }

    /// How long a request body may go without sending a byte.
    pub fn body_idle(mut self, limit: Duration) -> Self {
        self.body_idle = at_least_1ms(limit);
        self
    }

    /// How long the whole request body may take.
    pub fn body_total(mut self, limit: Duration) -> Self {
        self.body_total = at_least_1ms(limit);
        self
    }

    /// How long writing a response may make no progress (a client that does not read).
    pub fn response_write(mut self, limit: Duration) -> Self {
        self.response_write = at_least_1ms(limit);
        self
    }

    /// The most connections served at once (`None`: no cap).
    pub fn max_connections(mut self, cap: Option<usize>) -> Self {
        self.max_connections = cap.map(|n| n.max(1));
        self
    }

    /// The header read limit.
    pub fn header_read_timeout(&self) -> Duration {
        self.header_read
    }

    /// The body idle limit.
    pub fn body_idle_timeout(&self) -> Duration {
        self.body_idle
    }

    /// The whole-body limit.
    pub fn body_read_timeout(&self) -> Duration {
        self.body_total
    }

    /// The response write limit.
    pub fn response_write_timeout(&self) -> Duration {
        self.response_write
    }

    /// The connection cap.
    pub fn connection_cap(&self) -> Option<usize> {
        self.max_connections
    }
}

/// How many clients the edge limits closed, since the [`Edge`] was made. Cheap to clone;
/// every clone reads the same counters.
#[derive(Clone, Default)]
pub struct EdgeStats(Arc<Counters>);

#[derive(Default)]
struct Counters {
    header: AtomicU64,
    body: AtomicU64,
    write: AtomicU64,
}

impl EdgeStats {
    /// Connections closed because the request's headers did not arrive in time.
    pub fn header_timeouts(&self) -> u64 {
        self.0.header.load(Ordering::Relaxed)
    }

    /// Requests answered 408 because their body did not arrive in time.
    pub fn body_timeouts(&self) -> u64 {
        self.0.body.load(Ordering::Relaxed)
    }

    /// Connections closed because a response could not be written in time.
    pub fn write_timeouts(&self) -> u64 {
        self.0.write.load(Ordering::Relaxed)
    }

    #[cfg_attr(not(any(feature = "hyper", feature = "axum")), allow(dead_code))]
    pub(crate) fn header_timed_out(&self) {
        self.0.header.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn body_timed_out(&self) {
        self.0.body.fetch_add(1, Ordering::Relaxed);
    }

    #[cfg_attr(not(any(feature = "hyper", feature = "axum")), allow(dead_code))]
    pub(crate) fn write_timed_out(&self) {
        self.0.write.fetch_add(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for EdgeStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EdgeStats")
            .field("header_timeouts", &self.header_timeouts())
            .field("body_timeouts", &self.body_timeouts())
            .field("write_timeouts", &self.write_timeouts())
            .finish()
    }
}

/// The limits of one edge and the counters of what they closed: from
/// [`Web::edge`](super::Web::edge), or [`Edge::new`] for a host's own server.
///
/// A client that opens a connection and then stalls holds a socket, a task and memory until
/// something closes it. Every adapter applies the same limits:
///
/// | limit | default | config key (`web.…`) | when crossed | counted in |
/// |---|---|---|---|---|
/// | header read | 10 s | `header_read_timeout` | the connection is closed (actix: 408, then closed) | [`EdgeStats::header_timeouts`] (hyper, axum) |
/// | body idle: no body bytes for this long | 10 s | `body_idle_timeout` | 408 `timeout`, `connection: close` | [`EdgeStats::body_timeouts`] |
/// | body total: the whole body read within | 60 s | `body_read_timeout` | 408 `timeout`, `connection: close` | [`EdgeStats::body_timeouts`] |
/// | response write: no write progress for this long | 30 s | `response_write_timeout` | the connection is closed | [`EdgeStats::write_timeouts`] (hyper, axum) |
/// | connections open at once | none | `max_connections` | the next connection waits in the kernel's backlog | — |
///
/// Where each limit is applied:
///
/// | adapter | header read, response write, connections | body idle and total |
/// |---|---|---|
/// | `xcore::web::hyper::serve` | the server | the [`Web`](crate::web::Web) service (every plugin and admin route) |
/// | `xcore::web::axum::serve` | the server | the server, for the host's routes too |
/// | `axum::serve` with `xcore::web::axum::mount` | — (axum has no header timeout: use `xcore::web::axum::serve`) | the [`Web`](crate::web::Web) service; [`BodyTimeoutLayer`] on the host's router |
/// | `xcore::web::actix` | `xcore::web::actix::apply_limits(server, edge)` (actix's `client_request_timeout`, `max_connections`) | the adapter |
///
/// Under `xcore::web::hyper::serve` and `xcore::web::axum::serve`, the header read limit runs
/// while a connection waits for a request head — from its opening, or from the end of its
/// last response: a client stalled in its headers and a kept-alive connection left idle are
/// both closed after it. It never runs while a request is handled or its response written (a
/// slow handler, a long streamed body). It is kept with one timer per connection, not one per
/// request.
///
/// A body that times out ends with a [`BodyTimedOut`] error; whatever the extractor reading it
/// makes of it, the answer is 408 `timeout` and the connection is closed.
#[derive(Debug, Clone, Default)]
pub struct Edge {
    limits: EdgeLimits,
    stats: EdgeStats,
}

impl Edge {
    /// An edge with these limits and fresh counters.
    pub fn new(limits: EdgeLimits) -> Self {
        Self {
            limits,
            stats: EdgeStats::default(),
        }
    }

    /// The limits.
    pub fn limits(&self) -> &EdgeLimits {
        &self.limits
    }

    /// The counters.
    pub fn stats(&self) -> &EdgeStats {
        &self.stats
    }
}

/// The 408 answered when a body timed out.
pub(crate) fn body_timeout_response() -> http::Response<super::Body> {
    let mut response = super::HttpError::new(
        http::StatusCode::REQUEST_TIMEOUT,
        "timeout",
        "the request body did not arrive in time",
    )
    .into_response();
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}
