//! Cross-instance invalidation of a tiered cache's L1: the messages on `<prefix>:invalidate`,
//! and the subscriber task that applies them.
//!
//! A message is `<instance> k <full key>` (drop this key) or `<instance> p <full pattern>`
//! (drop the keys matching this Redis glob). The instance id lets a cache ignore its own
//! messages. The task resubscribes with a backoff when the connection drops; meanwhile L1 is
//! empty and bypassed ([`Near::reset`]).

use std::{sync::Arc, time::Duration};

use bb8_redis::redis;
use futures_util::StreamExt;
use tokio::{sync::oneshot, task::JoinHandle};

use super::tiered::Near;

/// What a message asks to drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Key,
    Pattern,
}

/// The message `instance` publishes to drop `text` (a key or a pattern).
pub(crate) fn encode(instance: &str, kind: Kind, text: &str) -> String {
    let tag = match kind {
        Kind::Key => 'k',
        Kind::Pattern => 'p',
    };
    format!("{instance} {tag} {text}")
}

/// The sender, kind and key (or pattern) of a message; `None` if it is not one of ours.
pub(crate) fn decode(payload: &str) -> Option<(&str, Kind, &str)> {
    let mut parts = payload.splitn(3, ' ');
    let instance = parts.next()?;
    let kind = match parts.next()? {
        "k" => Kind::Key,
        "p" => Kind::Pattern,
        _ => return None,
    };
    Some((instance, kind, parts.next()?))
}

fn apply(near: &Near, me: &str, payload: &[u8]) {
    let Some((from, kind, text)) = std::str::from_utf8(payload).ok().and_then(decode) else {
        tracing::debug!("ignoring a malformed cache invalidation message");
        return;
    };
    if from == me {
        return;
    }
    match kind {
        Kind::Key => near.invalidate_key(text),
        Kind::Pattern => near.invalidate_pattern(text),
    }
}

async fn subscribe(
    client: &redis::Client,
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
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

/// Spawns the subscriber. The receiver says whether the first subscription succeeded; if it
/// did not, the task ends.
pub(crate) fn spawn(
    client: redis::Client,
    channel: String,
    me: String,
    near: Arc<Near>,
    connect_timeout: Duration,
) -> (JoinHandle<()>, oneshot::Receiver<Result<(), String>>) {
    let (ready_tx, ready_rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        let mut backoff = Duration::from_millis(50);
        loop {
            match subscribe(&client, &channel, connect_timeout).await {
                Ok(pubsub) => {
                    near.reset(true);
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(Ok(()));
                    } else {
                        tracing::info!(channel, "cache invalidation subscription restored");
                    }
                    backoff = Duration::from_millis(50);
                    let mut messages = pubsub.into_on_message();
                    while let Some(msg) = messages.next().await {
                        apply(&near, &me, msg.get_payload_bytes());
                    }
                    near.reset(false);
                    tracing::warn!(
                        channel,
                        "lost the cache invalidation subscription; the L1 cache is bypassed until \
                         it is back"
                    );
                }
                Err(e) => {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(Err(e));
                        return;
                    }
                    tracing::debug!(channel, error = %e, "cache invalidation resubscribe failed");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    });
    (task, ready_rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let m = encode("ab12", Kind::Key, "xcore:acme:users:with space");
        assert_eq!(
            decode(&m),
            Some(("ab12", Kind::Key, "xcore:acme:users:with space"))
        );
        let p = encode("ab12", Kind::Pattern, r"xcore:acme:users:\*");
        assert_eq!(
            decode(&p),
            Some(("ab12", Kind::Pattern, r"xcore:acme:users:\*"))
        );
        assert_eq!(decode("garbage"), None);
        assert_eq!(decode("a x key"), None);
    }
}
