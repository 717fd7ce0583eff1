//! [`EventBridge`]: events published across instances through Postgres `LISTEN`/`NOTIFY`,
//! Redis pub/sub or Redis Streams, the backend chosen per event pattern.
//!
//! Add it as a service to every instance of the cluster, with the same routes (it has no
//! config section: the routes name servers and patterns the host knows):
//!
//! ```no_run
//! use xcore::{Xcore, events::{BridgeOptions, EventBridge}};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // `order.*` through Postgres, `cache.*` and `user.**` through Redis pub/sub, `payment.*`
//! // through a Redis stream (at least once).
//! let options = BridgeOptions::new("postgres://app@db/app", ["order.*"])
//!     .route("redis://cache:6379/0", ["cache.*", "user.**"])
//!     .route_at_least_once("redis://cache:6379/0", ["payment.*"]);
//! let bridge = EventBridge::new(options)?;
//! let xcore = Xcore::builder().service(bridge).build()?;
//! # Ok(())
//! # }
//! ```
//!
//! # Routes
//!
//! A bridge has one or more **routes**, each a URL, the event patterns (the grant grammar:
//! `order.*`, `user.**`) it carries, and a [`Delivery`]. The URL's scheme chooses the
//! backend: `postgres://` or `postgresql://` (feature `postgres`), `redis://` or `rediss://`
//! (feature `redis`: pub/sub, or a stream with [`Delivery::AtLeastOnce`] —
//! [`BridgeOptions::route_at_least_once`]). An event goes through the **first route, in
//! order, with a pattern that matches its name**, and through that one only: an event
//! matching patterns of two routes is published once, by the first. Every instance must
//! declare the same routes (the same channel and URLs), or some events do not reach some
//! instances.
//!
//! # Semantics per backend
//!
//! | | Postgres (`LISTEN`/`NOTIFY`) | Redis pub/sub | Redis Streams ([`Delivery::AtLeastOnce`]) |
//! |---|---|---|---|
//! | the message | one `NOTIFY <channel>` per event | one `PUBLISH <channel>` per event | one `XADD <channel> MAXLEN ~ <stream_max_len>` entry per event |
//! | delivery | **at most once** | **at most once** | **at least once** to the running instances |
//! | an instance disconnected when the event is sent | misses it | misses it | reads it once reconnected (it resumes after the last entry it read), unless the stream was trimmed past it or Redis lost it (a restart without persistence) |
//! | a publish that fails | dropped (counted) | dropped (counted) | tried again (backoff up to 1 s) — so a duplicate is possible when a publish timed out but had succeeded; meanwhile newer events wait in the queue (past `capacity`, dropped and counted) |
//! | an instance started after the event | misses it | misses it | misses it (it reads from the stream's end at start) |
//! | size bound | [`MAX_MESSAGE_BYTES`] (Postgres refuses 8,000 bytes) | [`MAX_MESSAGE_BYTES`] too, for one rule across backends | the same; the stream keeps about `stream_max_len` entries |
//! | connections | a pool of 2 (publishing) and one listening connection | one multiplexed connection (publishing) and one subscriber connection | one multiplexed connection (publishing) and one reading (`XREAD BLOCK 1000`) |
//!
//! For every backend:
//!
//! | what | how |
//! |---|---|
//! | which events | those whose name matches a route's pattern, emitted on this instance by the host, a plugin or the kernel |
//! | the message | JSON: the emitting instance's node id, the name, the payload, the tenant, the trace id |
//! | receiving | each instance emits the events of the others on its own bus, in the background, with source [`EventSource::Bridge`] (the emitting node's id); the tenant and the trace kept |
//! | echo | none: an instance skips its own messages, and an event received from the bridge is never published again |
//! | bounds | a message over [`MAX_MESSAGE_BYTES`] is not bridged (counted as dropped, logged at WARN; the bridge stays healthy); at most `capacity` events wait to be published per route (default 1,024): past it, new ones are dropped (counted) |
//! | outage | local emits never wait for the bridge (a bounded queue between the bus and each route's publisher); while a route's server cannot be reached, the service reports itself **degraded** naming the route, the at-most-once routes drop their events (counted: one try each, Redis commands bounded by `timeout`), and the receiving side reconnects by itself (backoff up to 1 s) |
//! | recovery | no restart: the receiving side is healthy again once reconnected; the publishing side at its next successful publish, or at the next health check that reaches the server |

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod streams;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use xcore_manifest::ResourcePattern;

use super::{Dispatch, Event, EventSource, bus::EventBus};
use crate::{Health, Service, ServiceContext, ServiceError, TenantId, async_trait};

/// The largest message the bridge sends, on every backend (Postgres refuses a `NOTIFY`
/// payload of 8,000 bytes or more).
pub const MAX_MESSAGE_BYTES: usize = 7_900;

/// Where and what an [`EventBridge`] publishes: its routes, in order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BridgeOptions {
    /// The routes: an event goes through the first whose patterns match its name.
    pub routes: Vec<BridgeRoute>,
    /// The `LISTEN`/`NOTIFY` or pub/sub channel (default `xcore_events`): instances on one
    /// channel form one cluster.
    pub channel: String,
    /// How many events may wait to be published, per route (default 1,024).
    pub capacity: usize,
    /// How long a Redis connection or command may take (default 1 s); past it, the event is
    /// dropped (counted) — or, on an at-least-once route, tried again.
    pub timeout: Duration,
    /// How many entries a Redis stream (an at-least-once route) keeps, about (default
    /// 10,000; `XADD … MAXLEN ~`): an instance away for longer than that many events misses
    /// the older ones.
    pub stream_max_len: usize,
}

/// How a route delivers: see the [module docs](self) for each backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// Pub/sub or `NOTIFY`: an instance not connected when the event is sent misses it.
    #[default]
    AtMostOnce,
    /// A Redis stream: an instance that lost its connection reads on from where it was, and
    /// a publish that failed is tried again (Redis only).
    AtLeastOnce,
}

/// One route of an [`EventBridge`]: the server and the events it carries.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BridgeRoute {
    /// The server every instance shares: `postgres://…` or `redis://…`.
    pub url: String,
    /// The events carried, as patterns (`order.*`, `user.**`).
    pub patterns: Vec<String>,
    /// How the route delivers (default [`Delivery::AtMostOnce`]).
    pub delivery: Delivery,
}

impl BridgeRoute {
    /// The events matching `patterns` through the server at `url`.
    pub fn new<I, S>(url: impl Into<String>, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            url: url.into(),
            patterns: patterns.into_iter().map(Into::into).collect(),
            delivery: Delivery::AtMostOnce,
        }
    }
}

impl BridgeOptions {
    /// Bridges the events matching `patterns` through the server at `url` (the first route).
    pub fn new<I, S>(url: impl Into<String>, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            routes: vec![BridgeRoute::new(url, patterns)],
            channel: "xcore_events".into(),
            capacity: 1024,
            timeout: Duration::from_secs(1),
            stream_max_len: 10_000,
        }
    }

    /// Adds a route after the others: the events matching `patterns` (and no pattern of an
    /// earlier route) through the server at `url`.
    pub fn route<I, S>(mut self, url: impl Into<String>, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.routes.push(BridgeRoute::new(url, patterns));
        self
    }

    /// Adds an at-least-once route after the others: the events matching `patterns` through
    /// a stream on the Redis at `url` ([`Delivery::AtLeastOnce`]).
    pub fn route_at_least_once<I, S>(mut self, url: impl Into<String>, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut route = BridgeRoute::new(url, patterns);
        route.delivery = Delivery::AtLeastOnce;
        self.routes.push(route);
        self
    }
}

/// What the bridge counted, over all its routes: published, received, dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BridgeStats {
    /// Events of this instance published.
    pub published: u64,
    /// Events of other instances received and emitted here.
    pub received: u64,
    /// Events not bridged: the queue full, too large, or the server unreachable.
    pub dropped: u64,
}

/// The event bridge service (name `event_bridge`); see the [module docs](self).
pub struct EventBridge {
    options: BridgeOptions,
    routes: Vec<RouteSpec>,
    node: Arc<str>,
    state: Arc<State>,
}

/// A route, checked.
struct RouteSpec {
    backend: Backend,
    url: String,
    patterns: Vec<ResourcePattern>,
    health: Arc<RouteHealth>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    #[cfg(feature = "postgres")]
    Postgres,
    #[cfg(feature = "redis")]
    Redis,
    #[cfg(feature = "redis")]
    RedisStream,
}

/// The counters, shared by every route.
#[derive(Default)]
pub(crate) struct Counters {
    published: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// One route's health: the last failure of each side, until its next success.
struct RouteHealth {
    /// The redacted URL, for messages.
    target: String,
    publishing: Mutex<Option<String>>,
    receiving: Mutex<Option<String>>,
}

impl RouteHealth {
    fn set(slot: &Mutex<Option<String>>, value: Option<String>) {
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = value;
    }

    fn publish_failed(&self, what: String) {
        tracing::warn!(route = %self.target, error = %what, "event bridge: publishing");
        Self::set(&self.publishing, Some(what));
    }

    fn published(&self) {
        Self::set(&self.publishing, None);
    }

    fn receive_failed(&self, what: String) {
        tracing::warn!(route = %self.target, error = %what, "event bridge: receiving");
        Self::set(&self.receiving, Some(what));
    }

    fn receiving(&self) {
        Self::set(&self.receiving, None);
    }

    fn failure(&self) -> Option<String> {
        let get =
            |slot: &Mutex<Option<String>>| slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match (get(&self.publishing), get(&self.receiving)) {
            (None, None) => None,
            (Some(p), None) => Some(format!("{}: publishing: {p}", self.target)),
            (None, Some(r)) => Some(format!("{}: receiving: {r}", self.target)),
            (Some(p), Some(r)) => Some(format!("{}: publishing: {p}; receiving: {r}", self.target)),
        }
    }
}

#[derive(Default)]
struct State {
    counters: Arc<Counters>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    links: Mutex<Vec<(Arc<RouteHealth>, Arc<Link>)>>,
}

/// A started route's connection to its server: to probe it and to close it.
enum Link {
    #[cfg(feature = "postgres")]
    Postgres(postgres::PgLink),
    #[cfg(feature = "redis")]
    Redis(redis::RedisLink),
}

impl Link {
    async fn probe(&self) -> Result<(), String> {
        match self {
            #[cfg(feature = "postgres")]
            Link::Postgres(link) => link.probe().await,
            #[cfg(feature = "redis")]
            Link::Redis(link) => link.probe().await,
        }
    }

    async fn close(&self) {
        match self {
            #[cfg(feature = "postgres")]
            Link::Postgres(link) => link.close().await,
            #[cfg(feature = "redis")]
            Link::Redis(_) => {}
        }
    }
}

/// One bridged event, as sent.
#[derive(Serialize, Deserialize)]
struct Message {
    node: String,
    name: String,
    payload: Value,
    tenant: String,
    trace: String,
}

/// The message of `event` from `node`, or `None` (counted, logged) when it is over
/// [`MAX_MESSAGE_BYTES`].
fn encode(event: &Event, node: &str, counters: &Counters) -> Option<String> {
    let message = Message {
        node: node.to_owned(),
        name: event.name().to_owned(),
        payload: event.payload().clone(),
        tenant: event.tenant().as_str().to_owned(),
        trace: format!("{:032x}", event.trace_id()),
    };
    let text = serde_json::to_string(&message).unwrap_or_default();
    if text.len() > MAX_MESSAGE_BYTES {
        counters.dropped();
        tracing::warn!(
            event = event.name(),
            bytes = text.len(),
            "event bridge: an event over {MAX_MESSAGE_BYTES} bytes is not bridged"
        );
        return None;
    }
    Some(text)
}

/// Emits on `bus` the event in `payload`, unless it is this node's own or not a message.
fn deliver(payload: &[u8], node: &str, bus: &Arc<EventBus>, counters: &Counters) {
    if payload.len() > MAX_MESSAGE_BYTES {
        tracing::warn!("event bridge: a message over {MAX_MESSAGE_BYTES} bytes was ignored");
        return;
    }
    let Ok(message) = serde_json::from_slice::<Message>(payload) else {
        tracing::warn!("event bridge: a message that is not one of xcore's was ignored");
        return;
    };
    if *message.node == *node {
        return;
    }
    let trace = u128::from_str_radix(&message.trace, 16).unwrap_or(0);
    let tenant = TenantId::new(&message.tenant).unwrap_or_default();
    let event = Event::with_source(
        message.name,
        message.payload,
        EventSource::Bridge(message.node),
        tenant,
        trace,
    );
    counters.received.fetch_add(1, Ordering::Relaxed);
    bus.emit_background(event, Dispatch::Sequential);
}

/// Why an [`EventBridge`] cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// A pattern is invalid.
    #[error("event bridge: the pattern `{pattern}` is invalid: {reason}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
    /// The URL names no backend this build has.
    #[error(
        "event bridge: `{0}` is not a URL of a backend this build has (`postgres://…` with \
         the feature `postgres`, `redis://…` with the feature `redis`)"
    )]
    Url(String),
    /// No route.
    #[error("event bridge: no route (give at least one URL and its patterns)")]
    NoRoute,
    /// At-least-once delivery asked of a backend that has none.
    #[error("event bridge: `{0}`: at-least-once delivery needs a Redis route (Redis Streams)")]
    Delivery(String),
}

fn backend_of(url: &str) -> Option<Backend> {
    let scheme = url.split_once("://")?.0;
    match scheme {
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Some(Backend::Postgres),
        #[cfg(feature = "redis")]
        "redis" | "rediss" => Some(Backend::Redis),
        _ => None,
    }
}

impl EventBridge {
    /// A bridge with these options; the routes' URLs and patterns are checked here.
    pub fn new(options: BridgeOptions) -> Result<Self, BridgeError> {
        if options.routes.is_empty() {
            return Err(BridgeError::NoRoute);
        }
        let mut routes = Vec::with_capacity(options.routes.len());
        for route in &options.routes {
            let target = crate::services::redact_url(&route.url);
            let backend = match (backend_of(&route.url), route.delivery) {
                (None, _) => return Err(BridgeError::Url(target)),
                (Some(backend), Delivery::AtMostOnce) => backend,
                #[cfg(feature = "redis")]
                (Some(Backend::Redis), Delivery::AtLeastOnce) => Backend::RedisStream,
                (Some(_), Delivery::AtLeastOnce) => return Err(BridgeError::Delivery(target)),
            };
            let patterns = route
                .patterns
                .iter()
                .map(|p| {
                    ResourcePattern::parse(p).map_err(|e| BridgeError::Pattern {
                        pattern: p.clone(),
                        reason: e.reason().to_owned(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            routes.push(RouteSpec {
                backend,
                url: route.url.clone(),
                patterns,
                health: Arc::new(RouteHealth {
                    target,
                    publishing: Mutex::default(),
                    receiving: Mutex::default(),
                }),
            });
        }
        Ok(Self {
            options,
            routes,
            node: Arc::from(format!("{:016x}", fastrand::u64(..))),
            state: Arc::default(),
        })
    }

    /// This instance's node id in the messages.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// What the bridge counted so far, over all its routes.
    pub fn stats(&self) -> BridgeStats {
        let c = &self.state.counters;
        BridgeStats {
            published: c.published.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
        }
    }
}

/// The bus's side of the bridge: the routes' patterns and bounded queues to their
/// publishers.
pub(crate) struct Outbox {
    routes: Vec<(Vec<ResourcePattern>, mpsc::Sender<Event>)>,
    counters: Arc<Counters>,
}

impl Outbox {
    /// Queues `event` for publishing by the first route that carries it; never waits.
    pub(crate) fn offer(&self, event: &Event) {
        if matches!(event.source(), EventSource::Bridge(_)) {
            return;
        }
        let Some((_, queue)) = self
            .routes
            .iter()
            .find(|(patterns, _)| patterns.iter().any(|p| p.matches(event.name())))
        else {
            return;
        };
        if queue.try_send(event.clone()).is_err() {
            self.counters.dropped();
        }
    }
}

/// What a route's backend needs to run.
pub(crate) struct RouteRun {
    url: String,
    channel: String,
    timeout: Duration,
    node: Arc<str>,
    bus: Arc<EventBus>,
    counters: Arc<Counters>,
    health: Arc<RouteHealth>,
}

#[async_trait]
impl Service for EventBridge {
    fn name(&self) -> &str {
        "event_bridge"
    }

    async fn start(&self, ctx: &ServiceContext) -> Result<(), ServiceError> {
        let bus = ctx
            .xcore()
            .map(|x| x.events().clone())
            .ok_or_else(|| ServiceError::msg("the Xcore is gone"))?;
        let mut outbox = Vec::with_capacity(self.routes.len());
        let mut started = Vec::new();
        for route in &self.routes {
            let run = RouteRun {
                url: route.url.clone(),
                channel: self.options.channel.clone(),
                timeout: self.options.timeout,
                node: self.node.clone(),
                bus: bus.clone(),
                counters: self.state.counters.clone(),
                health: route.health.clone(),
            };
            let (queue, events) = mpsc::channel::<Event>(self.options.capacity.max(1));
            let begun = match route.backend {
                #[cfg(feature = "postgres")]
                Backend::Postgres => postgres::start(run, events)
                    .await
                    .map(|(link, tasks)| (Link::Postgres(link), tasks)),
                #[cfg(feature = "redis")]
                Backend::Redis => redis::start(run, events)
                    .await
                    .map(|(link, tasks)| (Link::Redis(link), tasks)),
                #[cfg(feature = "redis")]
                Backend::RedisStream => streams::start(run, events, self.options.stream_max_len)
                    .await
                    .map(|(link, tasks)| (Link::Redis(link), tasks)),
            };
            let (link, tasks) = match begun {
                Ok(begun) => begun,
                Err(why) => {
                    for (_, link, tasks) in started {
                        abort_all(tasks);
                        Link::close(&link).await;
                    }
                    return Err(ServiceError::msg(format!("event bridge: {why}")));
                }
            };
            started.push((route.health.clone(), link, tasks));
            outbox.push((route.patterns.clone(), queue));
        }
        bus.attach_bridge(Outbox {
            routes: outbox,
            counters: self.state.counters.clone(),
        });
        let mut all_tasks = self.state.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let mut links = self.state.links.lock().unwrap_or_else(|p| p.into_inner());
        for (health, link, tasks) in started {
            all_tasks.extend(tasks);
            links.push((health, Arc::new(link)));
        }
        Ok(())
    }

    async fn health(&self) -> Health {
        let links: Vec<(Arc<RouteHealth>, Arc<Link>)> = self
            .state
            .links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut failures = Vec::new();
        for (health, link) in &links {
            // A route whose last publish failed is probed: healthy again once its server
            // answers, though no event was published since.
            let publishing = health
                .publishing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some();
            if publishing && link.probe().await.is_ok() {
                health.published();
            }
            failures.extend(health.failure());
        }
        if failures.is_empty() {
            Health::healthy()
        } else {
            Health::degraded(format!("events are not bridged: {}", failures.join("; ")))
        }
    }

    async fn shutdown(&self) -> Result<(), ServiceError> {
        abort_all(std::mem::take(
            &mut *self.state.tasks.lock().unwrap_or_else(|p| p.into_inner()),
        ));
        let links =
            std::mem::take(&mut *self.state.links.lock().unwrap_or_else(|p| p.into_inner()));
        for (_, link) in links {
            link.close().await;
        }
        Ok(())
    }
}

fn abort_all(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        task.abort();
    }
}

/// Publishes the queued events of one route, one message each, through `publisher`: a
/// failed publish drops the event (counted), or, for a publisher that retries, is tried again
/// (backoff up to 1 s) while the queue holds the events behind it.
async fn publish_loop<P: Publish>(
    publisher: P,
    run: Arc<RouteRun>,
    mut events: mpsc::Receiver<Event>,
) {
    while let Some(event) = events.recv().await {
        let Some(text) = encode(&event, &run.node, &run.counters) else {
            continue;
        };
        let mut backoff = Duration::from_millis(50);
        loop {
            match publisher.publish(&text).await {
                Ok(()) => {
                    run.counters.published.fetch_add(1, Ordering::Relaxed);
                    run.health.published();
                    break;
                }
                Err(e) => {
                    run.health.publish_failed(e);
                    if !P::RETRY {
                        run.counters.dropped();
                        break;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

/// A backend's publishing side.
trait Publish: Send + Sync + 'static {
    /// Whether a failed publish is tried again (at-least-once routes).
    const RETRY: bool = false;

    /// Sends one message on the channel.
    fn publish(&self, text: &str) -> impl std::future::Future<Output = Result<(), String>> + Send;
}
