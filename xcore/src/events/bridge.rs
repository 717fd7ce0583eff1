//! [`EventBridge`]: events published across instances through Postgres `LISTEN`/`NOTIFY`.
//!
//! Add it as a service to every instance that shares a Postgres database:
//!
//! ```no_run
//! use xcore::{Xcore, events::{BridgeOptions, EventBridge}};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bridge = EventBridge::new(BridgeOptions::new("postgres://app@db/app", ["order.*"]))?;
//! let xcore = Xcore::builder().service(bridge).build()?;
//! # Ok(())
//! # }
//! ```
//!
//! | what | how |
//! |---|---|
//! | which events | those whose name matches one of `patterns` (the grant grammar), emitted on this instance by the host, a plugin or the kernel |
//! | the message | one `NOTIFY <channel>` per event: the emitting instance's node id, the name, the payload, the tenant, the trace id (JSON) |
//! | delivery | **at most once**: each instance listening when the notification is sent emits it on its own bus, in the background (source [`EventSource::Bridge`], with the emitting node's id; the tenant and the trace kept); an instance that is not connected at that moment misses it |
//! | echo | none: an instance skips its own notifications, and an event received from the bridge is never published again |
//! | bounds | a message is at most [`MAX_MESSAGE_BYTES`] (Postgres' limit is 8,000 bytes): a larger event is not bridged (counted, logged at WARN); at most `capacity` events wait to be published (default 1,024): past it, new ones are dropped (counted) |
//! | outage | local emits never wait for the bridge (a bounded queue between the bus and the publisher); while Postgres cannot be reached, events are dropped (counted), the service reports itself degraded, and the listening connection reconnects by itself |

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio::sync::mpsc;
use xcore_manifest::ResourcePattern;

use super::{Dispatch, Event, EventSource, bus::EventBus};
use crate::{Health, Service, ServiceContext, ServiceError, TenantId, async_trait};

/// The largest message the bridge sends (Postgres refuses a `NOTIFY` payload of 8,000 bytes
/// or more).
pub const MAX_MESSAGE_BYTES: usize = 7_900;

/// Where and what an [`EventBridge`] publishes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BridgeOptions {
    /// The Postgres database every instance shares.
    pub url: String,
    /// The events bridged, as patterns (`order.*`, `user.**`).
    pub patterns: Vec<String>,
    /// The `LISTEN`/`NOTIFY` channel (default `xcore_events`): instances on one channel form
    /// one cluster.
    pub channel: String,
    /// How many events may wait to be published (default 1,024).
    pub capacity: usize,
}

impl BridgeOptions {
    /// Bridges the events matching `patterns` through the database at `url`.
    pub fn new<I, S>(url: impl Into<String>, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            url: url.into(),
            patterns: patterns.into_iter().map(Into::into).collect(),
            channel: "xcore_events".into(),
            capacity: 1024,
        }
    }
}

/// What the bridge counted: published, received, dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BridgeStats {
    /// Events of this instance published.
    pub published: u64,
    /// Events of other instances received and emitted here.
    pub received: u64,
    /// Events not bridged: the queue full, too large, or Postgres unreachable.
    pub dropped: u64,
}

/// The event bridge service (name `event_bridge`); see the [module docs](self).
pub struct EventBridge {
    options: BridgeOptions,
    patterns: Arc<[ResourcePattern]>,
    node: Arc<str>,
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    published: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    /// The last failure, until the next success.
    failing: Mutex<Option<String>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    pool: Mutex<Option<PgPool>>,
}

impl State {
    fn failed(&self, what: String) {
        tracing::warn!(error = %what, "event bridge");
        *self.failing.lock().unwrap_or_else(|p| p.into_inner()) = Some(what);
    }

    fn ok(&self) {
        self.failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
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
    /// The URL is not a Postgres URL.
    #[error("event bridge: `{0}` is not a Postgres URL (`postgres://…`)")]
    Url(String),
}

impl EventBridge {
    /// A bridge with these options; the patterns and the URL are checked here.
    pub fn new(options: BridgeOptions) -> Result<Self, BridgeError> {
        if !(options.url.starts_with("postgres://") || options.url.starts_with("postgresql://")) {
            return Err(BridgeError::Url(crate::services::redact_url(&options.url)));
        }
        let patterns = options
            .patterns
            .iter()
            .map(|p| {
                ResourcePattern::parse(p).map_err(|e| BridgeError::Pattern {
                    pattern: p.clone(),
                    reason: e.reason().to_owned(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            options,
            patterns: patterns.into(),
            node: Arc::from(format!("{:016x}", fastrand::u64(..))),
            state: Arc::default(),
        })
    }

    /// This instance's node id in the messages.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// What the bridge counted so far.
    pub fn stats(&self) -> BridgeStats {
        BridgeStats {
            published: self.state.published.load(Ordering::Relaxed),
            received: self.state.received.load(Ordering::Relaxed),
            dropped: self.state.dropped.load(Ordering::Relaxed),
        }
    }
}

/// The bus's side of the bridge: a bounded queue to the publisher.
pub(crate) struct Outbox {
    patterns: Arc<[ResourcePattern]>,
    queue: mpsc::Sender<Event>,
    state: Arc<State>,
}

impl Outbox {
    /// Queues `event` for publishing if it is bridged; never waits.
    pub(crate) fn offer(&self, event: &Event) {
        if matches!(event.source(), EventSource::Bridge(_))
            || !self.patterns.iter().any(|p| p.matches(event.name()))
        {
            return;
        }
        if self.queue.try_send(event.clone()).is_err() {
            self.state.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
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
        let url = crate::services::redact_url(&self.options.url);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&self.options.url)
            .await
            .map_err(|e| {
                ServiceError::msg(format!("event bridge: cannot connect to {url}: {e}"))
            })?;
        let mut listener = PgListener::connect_with(&pool)
            .await
            .map_err(|e| ServiceError::msg(format!("event bridge: cannot listen on {url}: {e}")))?;
        listener
            .listen(&self.options.channel)
            .await
            .map_err(|e| ServiceError::msg(format!("event bridge: LISTEN on {url}: {e}")))?;
        let (queue, outbox) = mpsc::channel::<Event>(self.options.capacity.max(1));
        let publisher = tokio::spawn(publish(
            pool.clone(),
            self.options.channel.clone(),
            self.node.clone(),
            outbox,
            self.state.clone(),
        ));
        let receiver = tokio::spawn(receive(
            listener,
            self.node.clone(),
            bus.clone(),
            self.state.clone(),
        ));
        bus.attach_bridge(Outbox {
            patterns: self.patterns.clone(),
            queue,
            state: self.state.clone(),
        });
        let mut tasks = self.state.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.push(publisher);
        tasks.push(receiver);
        *self.state.pool.lock().unwrap_or_else(|p| p.into_inner()) = Some(pool);
        Ok(())
    }

    async fn health(&self) -> Health {
        let failing = self
            .state
            .failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match failing {
            Some(why) => Health::degraded(format!("events are not bridged: {why}")),
            None => Health::healthy(),
        }
    }

    async fn shutdown(&self) -> Result<(), ServiceError> {
        for task in self
            .state
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
        let pool = self
            .state
            .pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(pool) = pool {
            pool.close().await;
        }
        Ok(())
    }
}

/// Publishes the queued events, one `NOTIFY` each.
async fn publish(
    pool: PgPool,
    channel: String,
    node: Arc<str>,
    mut outbox: mpsc::Receiver<Event>,
    state: Arc<State>,
) {
    while let Some(event) = outbox.recv().await {
        let message = Message {
            node: node.to_string(),
            name: event.name().to_owned(),
            payload: event.payload().clone(),
            tenant: event.tenant().as_str().to_owned(),
            trace: format!("{:032x}", event.trace_id()),
        };
        let text = serde_json::to_string(&message).unwrap_or_default();
        if text.len() > MAX_MESSAGE_BYTES {
            state.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                event = event.name(),
                bytes = text.len(),
                "event bridge: an event over {MAX_MESSAGE_BYTES} bytes is not bridged"
            );
            continue;
        }
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&channel)
            .bind(&text)
            .execute(&pool)
            .await;
        match sent {
            Ok(_) => {
                state.published.fetch_add(1, Ordering::Relaxed);
                state.ok();
            }
            Err(e) => {
                state.dropped.fetch_add(1, Ordering::Relaxed);
                state.failed(format!("publishing: {e}"));
            }
        }
    }
}

/// Emits, on this instance's bus, the events other instances published.
async fn receive(mut listener: PgListener, node: Arc<str>, bus: Arc<EventBus>, state: Arc<State>) {
    loop {
        let notification = match listener.recv().await {
            Ok(notification) => notification,
            Err(e) => {
                state.failed(format!("listening: {e}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Ok(message) = serde_json::from_str::<Message>(notification.payload()) else {
            tracing::warn!("event bridge: a message that is not one of xcore's was ignored");
            continue;
        };
        if *message.node == *node {
            continue;
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
        state.received.fetch_add(1, Ordering::Relaxed);
        bus.emit_background(event, Dispatch::Sequential);
    }
}
