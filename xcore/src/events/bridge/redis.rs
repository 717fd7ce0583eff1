//! The Redis route of the bridge: `PUBLISH` to publish, a pub/sub subscription to receive.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use redis::{Client, aio::MultiplexedConnection};
use tokio::{
    sync::{Mutex, mpsc},
    task::JoinHandle,
};

use super::{Event, Publish, RouteRun, deliver, publish_loop};

/// One multiplexed connection, opened on first use and again after an I/O error; every
/// connection and command bounded by the route's timeout.
pub(super) struct RedisLink {
    inner: Arc<Connection>,
}

pub(super) struct Connection {
    client: Client,
    conn: Mutex<Option<MultiplexedConnection>>,
    timeout: Duration,
}

impl Connection {
    pub(super) fn new(client: Client, timeout: Duration) -> Self {
        Self {
            client,
            conn: Mutex::new(None),
            timeout,
        }
    }

    async fn get(&self) -> Result<MultiplexedConnection, String> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let conn = match tokio::time::timeout(
            self.timeout,
            self.client.get_multiplexed_async_connection(),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(format!("cannot connect: {e}")),
            Err(_) => return Err(format!("no connection within {:?}", self.timeout)),
        };
        *slot = Some(conn.clone());
        Ok(conn)
    }

    pub(super) async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T, String> {
        let mut conn = self.get().await?;
        match tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if e.is_io_error() || e.is_unrecoverable_error() || e.is_connection_dropped() {
                    *self.conn.lock().await = None;
                }
                Err(e.to_string())
            }
            Err(_) => {
                *self.conn.lock().await = None;
                Err(format!("no answer within {:?}", self.timeout))
            }
        }
    }
}

impl RedisLink {
    pub(super) fn new(conn: Arc<Connection>) -> Self {
        Self { inner: conn }
    }

    pub(super) async fn probe(&self) -> Result<(), String> {
        self.inner
            .query::<String>(&redis::cmd("PING"))
            .await
            .map(drop)
    }
}

struct Publisher {
    conn: Arc<Connection>,
    channel: String,
}

impl Publish for Publisher {
    async fn publish(&self, text: &str) -> Result<(), String> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(&self.channel).arg(text);
        self.conn.query::<i64>(&cmd).await.map(drop)
    }
}

async fn subscribe(
    client: &Client,
    channel: &str,
    limit: Duration,
) -> Result<redis::aio::PubSub, String> {
    let attempt = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(Ok(pubsub)) => Ok(pubsub),
        Ok(Err(e)) => Err(format!("cannot subscribe: {e}")),
        Err(_) => Err(format!("no subscription within {limit:?}")),
    }
}

/// Connects, subscribes, and spawns the publisher and the receiver.
pub(super) async fn start(
    run: RouteRun,
    events: mpsc::Receiver<Event>,
) -> Result<(RedisLink, Vec<JoinHandle<()>>), String> {
    let target = run.health.target.clone();
    let client = Client::open(run.url.as_str())
        .map_err(|e| format!("`{target}` is not a Redis URL: {e}"))?;
    let conn = Arc::new(Connection::new(client.clone(), run.timeout));
    conn.query::<String>(&redis::cmd("PING"))
        .await
        .map_err(|e| format!("{target}: {e}"))?;
    let pubsub = subscribe(&client, &run.channel, run.timeout)
        .await
        .map_err(|e| format!("{target}: {e}"))?;
    let run = Arc::new(run);
    let publisher = tokio::spawn(publish_loop(
        Publisher {
            conn: conn.clone(),
            channel: run.channel.clone(),
        },
        run.clone(),
        events,
    ));
    let receiver = tokio::spawn(receive(client, pubsub, run));
    Ok((RedisLink { inner: conn }, vec![publisher, receiver]))
}

/// Emits, on this instance's bus, the events other instances published; subscribes again
/// (backoff up to 1 s) when the subscription is lost.
async fn receive(client: Client, first: redis::aio::PubSub, run: Arc<RouteRun>) {
    let mut pubsub = Some(first);
    let mut backoff = Duration::from_millis(50);
    loop {
        if let Some(subscribed) = pubsub.take() {
            backoff = Duration::from_millis(50);
            let mut messages = subscribed.into_on_message();
            while let Some(message) = messages.next().await {
                deliver(
                    message.get_payload_bytes(),
                    &run.node,
                    &run.bus,
                    &run.counters,
                );
            }
            run.health
                .receive_failed("the subscription was lost".to_owned());
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
        match subscribe(&client, &run.channel, run.timeout).await {
            Ok(fresh) => {
                run.health.receiving();
                tracing::info!(route = %run.health.target, "event bridge: subscribed again");
                pubsub = Some(fresh);
            }
            Err(e) => run.health.receive_failed(e),
        }
    }
}
