//! The Postgres route of the bridge: `NOTIFY` to publish, `LISTEN` to receive.

use std::{sync::Arc, time::Duration};

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio::{sync::mpsc, task::JoinHandle};

use super::{Event, Publish, RouteRun, deliver, publish_loop};

/// The route's pool: probed by health checks, closed on shutdown.
pub(super) struct PgLink {
    pool: PgPool,
    timeout: Duration,
}

impl PgLink {
    pub(super) async fn probe(&self) -> Result<(), String> {
        let query = sqlx::query("SELECT 1").execute(&self.pool);
        match tokio::time::timeout(self.timeout, query).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
    }
}

struct Notify {
    pool: PgPool,
    channel: String,
}

impl Publish for Notify {
    async fn publish(&self, text: &str) -> Result<(), String> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.channel)
            .bind(text)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

async fn listen(pool: &PgPool, channel: &str) -> Result<PgListener, String> {
    let mut listener = PgListener::connect_with(pool)
        .await
        .map_err(|e| format!("cannot listen: {e}"))?;
    listener
        .listen(channel)
        .await
        .map_err(|e| format!("LISTEN: {e}"))?;
    Ok(listener)
}

/// Connects, listens, and spawns the publisher and the receiver.
pub(super) async fn start(
    run: RouteRun,
    events: mpsc::Receiver<Event>,
) -> Result<(PgLink, Vec<JoinHandle<()>>), String> {
    let target = run.health.target.clone();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&run.url)
        .await
        .map_err(|e| format!("cannot connect to {target}: {e}"))?;
    let listener = listen(&pool, &run.channel)
        .await
        .map_err(|e| format!("{target}: {e}"))?;
    let run = Arc::new(run);
    let publisher = tokio::spawn(publish_loop(
        Notify {
            pool: pool.clone(),
            channel: run.channel.clone(),
        },
        run.clone(),
        events,
    ));
    let receiver = tokio::spawn(receive(pool.clone(), listener, run.clone()));
    let link = PgLink {
        pool,
        timeout: run.timeout,
    };
    Ok((link, vec![publisher, receiver]))
}

/// Emits, on this instance's bus, the events other instances published; listens again
/// (backoff up to 1 s) when the connection is lost.
async fn receive(pool: PgPool, mut listener: PgListener, run: Arc<RouteRun>) {
    loop {
        let lost = match listener.try_recv().await {
            Ok(Some(notification)) => {
                deliver(
                    notification.payload().as_bytes(),
                    &run.node,
                    &run.bus,
                    &run.counters,
                );
                None
            }
            Ok(None) => Some("the listening connection was lost".to_owned()),
            Err(e) => Some(format!("the listening connection: {e}")),
        };
        if let Some(why) = lost {
            run.health.receive_failed(why);
            let mut backoff = Duration::from_millis(50);
            loop {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                match listen(&pool, &run.channel).await {
                    Ok(fresh) => {
                        listener = fresh;
                        run.health.receiving();
                        tracing::info!(route = %run.health.target, "event bridge: listening again");
                        break;
                    }
                    Err(e) => run.health.receive_failed(e),
                }
            }
        }
    }
}
