//! The Redis Streams route of the bridge (at least once): `XADD` to publish (retried until
//! it succeeds), `XREAD` from the last entry read to receive (resumed there after a lost
//! connection).

use std::{sync::Arc, time::Duration};

use redis::{Client, Value, aio::MultiplexedConnection};
use tokio::{sync::mpsc, task::JoinHandle};

use super::{
    Event, Publish, RouteRun, deliver, publish_loop,
    redis::{Connection, RedisLink},
};

/// How long one `XREAD` blocks on the server.
const BLOCK: Duration = Duration::from_secs(1);

/// How many entries one `XREAD` returns at most.
const BATCH: usize = 100;

struct Publisher {
    conn: Arc<Connection>,
    stream: String,
    max_len: usize,
}

impl Publish for Publisher {
    const RETRY: bool = true;

    async fn publish(&self, text: &str) -> Result<(), String> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.max_len)
            .arg("*")
            .arg("m")
            .arg(text);
        self.conn.query::<String>(&cmd).await.map(drop)
    }
}

/// The id of the stream's last entry (`0-0` when it is empty or absent).
async fn last_id(conn: &Connection, stream: &str) -> Result<String, String> {
    let mut cmd = redis::cmd("XREVRANGE");
    cmd.arg(stream).arg("+").arg("-").arg("COUNT").arg(1);
    let entries: Value = conn.query(&cmd).await?;
    Ok(entries_of(&entries)
        .into_iter()
        .next()
        .map_or_else(|| "0-0".to_owned(), |(id, _)| id))
}

/// Connects, finds where the stream ends, and spawns the publisher and the reader.
pub(super) async fn start(
    run: RouteRun,
    events: mpsc::Receiver<Event>,
    max_len: usize,
) -> Result<(RedisLink, Vec<JoinHandle<()>>), String> {
    let target = run.health.target.clone();
    let client = Client::open(run.url.as_str())
        .map_err(|e| format!("`{target}` is not a Redis URL: {e}"))?;
    let conn = Arc::new(Connection::new(client.clone(), run.timeout));
    let from = last_id(&conn, &run.channel)
        .await
        .map_err(|e| format!("{target}: {e}"))?;
    let run = Arc::new(run);
    let publisher = tokio::spawn(publish_loop(
        Publisher {
            conn: conn.clone(),
            stream: run.channel.clone(),
            max_len,
        },
        run.clone(),
        events,
    ));
    let reader = tokio::spawn(read(client, from, run));
    Ok((RedisLink::new(conn), vec![publisher, reader]))
}

async fn connect(client: &Client, timeout: Duration) -> Result<MultiplexedConnection, String> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(BLOCK + timeout));
    match tokio::time::timeout(
        timeout,
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(format!("cannot connect: {e}")),
        Err(_) => Err(format!("no connection within {timeout:?}")),
    }
}

/// Emits, on this instance's bus, the entries other instances added after `from`; on a lost
/// connection, reads again from the last entry read (backoff up to 1 s).
async fn read(client: Client, mut from: String, run: Arc<RouteRun>) {
    let mut conn: Option<MultiplexedConnection> = None;
    let mut backoff = Duration::from_millis(50);
    loop {
        let reader = match conn.as_mut() {
            Some(reader) => reader,
            None => match connect(&client, run.timeout).await {
                Ok(fresh) => conn.insert(fresh),
                Err(e) => {
                    run.health.receive_failed(e);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&run.channel)
            .arg(&from);
        let answer =
            tokio::time::timeout(BLOCK + run.timeout, cmd.query_async::<Value>(reader)).await;
        match answer {
            Ok(Ok(reply)) => {
                run.health.receiving();
                backoff = Duration::from_millis(50);
                for (id, payload) in streams_of(&reply) {
                    if let Some(payload) = payload {
                        deliver(&payload, &run.node, &run.bus, &run.counters);
                    }
                    from = id;
                }
            }
            Ok(Err(e)) => {
                conn = None;
                run.health.receive_failed(format!("XREAD: {e}"));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Err(_) => {
                conn = None;
                run.health
                    .receive_failed(format!("XREAD: no answer within {:?}", BLOCK + run.timeout));
            }
        }
    }
}

fn text(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        _ => None,
    }
}

fn items(value: &Value) -> &[Value] {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        _ => &[],
    }
}

/// The entries of an `XRANGE`-shaped reply: each id and its `m` field.
fn entries_of(value: &Value) -> Vec<(String, Option<Vec<u8>>)> {
    items(value)
        .iter()
        .filter_map(|entry| {
            let [id, fields] = items(entry) else {
                return None;
            };
            let id = String::from_utf8(text(id)?).ok()?;
            let payload = items(fields)
                .chunks(2)
                .find(|kv| kv.first().and_then(text).as_deref() == Some(b"m"))
                .and_then(|kv| kv.get(1).and_then(text));
            Some((id, payload))
        })
        .collect()
}

/// The entries of an `XREAD` reply on one stream (`nil` when the block timed out).
fn streams_of(value: &Value) -> Vec<(String, Option<Vec<u8>>)> {
    match value {
        Value::Map(streams) => streams
            .iter()
            .flat_map(|(_, entries)| entries_of(entries))
            .collect(),
        _ => items(value)
            .iter()
            .flat_map(|stream| match items(stream) {
                [_, entries] => entries_of(entries),
                _ => Vec::new(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn replies_are_read_and_odd_ones_skipped() {
        let entry = |id: &str, m: &str| {
            Value::Array(vec![bulk(id), Value::Array(vec![bulk("m"), bulk(m)])])
        };
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("xcore_events"),
            Value::Array(vec![
                entry("1-0", "a"),
                Value::Array(vec![
                    bulk("2-0"),
                    Value::Array(vec![bulk("other"), bulk("x")]),
                ]),
                Value::Int(3),
                entry("3-0", "c"),
            ]),
        ])]);
        let got = streams_of(&reply);
        assert_eq!(
            got,
            vec![
                ("1-0".to_owned(), Some(b"a".to_vec())),
                ("2-0".to_owned(), None),
                ("3-0".to_owned(), Some(b"c".to_vec())),
            ]
        );
        assert!(streams_of(&Value::Nil).is_empty());
    }
}
