//! The Redis Streams queue: one stream per task name with the consumer group `xcore`, each
//! instance a consumer; see [the module docs](crate::services::worker) for the semantics and
//! [`redis_lua`](super::redis_lua) for the keys and the scripts.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use redis::{AsyncConnectionConfig, Client, Value, aio::MultiplexedConnection};
use serde_json::Value as Json;
use tokio::time::Instant;

use super::{Claim, Claimed, Counts, NewTask, Outcome, Queue, Scope, Wake, redis_lua};
use crate::{
    TenantId, TraceContext, async_trait,
    services::worker::{
        TaskId, TaskInfo, TaskStatus, WorkerError, name::FullName, registry::Names,
    },
};

/// The prefix of every key (a hash tag: one slot).
const PREFIX: &str = "{xcore:tasks}";

/// The consumer group of every stream.
const GROUP: &str = "xcore";

/// The longest wait of one blocking read on the server.
pub(crate) const BLOCK: Duration = Duration::from_secs(1);

/// The bound of every command (and of every connection).
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// How many dead letters one page reads.
const DEAD_PAGE: usize = 200;

/// A Lua script, run with `EVALSHA` (loaded with `SCRIPT LOAD` the first time, and again
/// after the server forgot it: a restart).
struct Script {
    source: String,
    sha: Mutex<Option<String>>,
}

impl Script {
    fn new(source: &str) -> Self {
        Self {
            source: source.to_owned(),
            sha: Mutex::new(None),
        }
    }

    fn sha(&self) -> Option<String> {
        self.sha.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_sha(&self, sha: Option<String>) {
        *self.sha.lock().unwrap_or_else(|p| p.into_inner()) = sha;
    }
}

/// The scripts, loaded once per queue.
struct Scripts {
    push: Script,
    promote: Script,
    start: Script,
    give_back: Script,
    finish: Script,
    release: Script,
    renew: Script,
    redrive: Script,
    counts: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            push: Script::new(&redis_lua::push()),
            promote: Script::new(&redis_lua::promote()),
            start: Script::new(&redis_lua::start()),
            give_back: Script::new(redis_lua::give_back()),
            finish: Script::new(&redis_lua::finish()),
            release: Script::new(&redis_lua::release()),
            renew: Script::new(redis_lua::renew()),
            redrive: Script::new(&redis_lua::redrive()),
            counts: Script::new(redis_lua::counts()),
        }
    }
}

/// One multiplexed connection, opened on first use and again after a failure; every
/// connection and command bounded.
struct Link {
    client: Client,
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    /// The redacted URL, for messages.
    target: String,
}

fn config(response: Duration) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(COMMAND_TIMEOUT))
        .set_response_timeout(Some(response))
}

impl Link {
    fn error(&self, what: impl std::fmt::Display) -> WorkerError {
        WorkerError::Backend {
            message: format!("Redis at {}: {what}", self.target),
        }
    }

    async fn connect(&self, response: Duration) -> Result<MultiplexedConnection, WorkerError> {
        match tokio::time::timeout(
            COMMAND_TIMEOUT,
            self.client
                .get_multiplexed_async_connection_with_config(&config(response)),
        )
        .await
        {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(self.error(format_args!("cannot connect: {e}"))),
            Err(_) => Err(self.error(format_args!("no connection within {COMMAND_TIMEOUT:?}"))),
        }
    }

    async fn get(&self) -> Result<MultiplexedConnection, WorkerError> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let conn = self.connect(COMMAND_TIMEOUT).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Maps a failure of `what`, forgetting the connection if it is broken.
    async fn failed(&self, what: &str, e: &redis::RedisError) -> WorkerError {
        if e.is_io_error()
            || e.is_unrecoverable_error()
            || e.is_connection_dropped()
            || e.is_timeout()
        {
            *self.conn.lock().await = None;
        }
        if e.is_timeout() {
            return self.error(format_args!(
                "`{what}`: no answer within {COMMAND_TIMEOUT:?}"
            ));
        }
        self.error(format_args!("`{what}`: {e}"))
    }

    async fn cmd<T: redis::FromRedisValue>(
        &self,
        what: &str,
        cmd: &redis::Cmd,
    ) -> Result<T, WorkerError> {
        let mut conn = self.get().await?;
        match tokio::time::timeout(COMMAND_TIMEOUT, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.failed(what, &e).await),
            Err(_) => {
                *self.conn.lock().await = None;
                Err(self.error(format_args!(
                    "`{what}`: no answer within {COMMAND_TIMEOUT:?}"
                )))
            }
        }
    }

    async fn script<T: redis::FromRedisValue>(
        &self,
        what: &str,
        script: &Script,
        args: &[String],
    ) -> Result<T, WorkerError> {
        for _ in 0..2 {
            let sha = match script.sha() {
                Some(sha) => sha,
                None => {
                    let mut load = redis::cmd("SCRIPT");
                    load.arg("LOAD").arg(&script.source);
                    let sha: String = self.cmd("SCRIPT LOAD", &load).await?;
                    script.set_sha(Some(sha.clone()));
                    sha
                }
            };
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(sha).arg(0).arg(args);
            let mut conn = self.get().await?;
            match tokio::time::timeout(COMMAND_TIMEOUT, cmd.query_async::<T>(&mut conn)).await {
                Ok(Ok(value)) => return Ok(value),
                // The server restarted and forgot the script: load it again.
                Ok(Err(e)) if e.code() == Some("NOSCRIPT") => script.set_sha(None),
                Ok(Err(e)) => return Err(self.failed(what, &e).await),
                Err(_) => {
                    *self.conn.lock().await = None;
                    return Err(self.error(format_args!(
                        "`{what}`: no answer within {COMMAND_TIMEOUT:?}"
                    )));
                }
            }
        }
        Err(self.error(format_args!(
            "`{what}`: the server keeps forgetting the script"
        )))
    }
}

/// The connection blocking reads wait on (a blocked connection holds every command behind
/// it), and its client id (for `CLIENT UNBLOCK`).
struct Reader {
    conn: MultiplexedConnection,
    id: i64,
}

/// An entry read from a stream: the task name, the entry id, the task id.
type Entry = (String, String, String);

/// The Redis Streams queue.
pub(crate) struct RedisQueue {
    link: Arc<Link>,
    reader: tokio::sync::Mutex<Option<Reader>>,
    /// The client id of the reader while it blocks (0: it does not).
    blocked: Arc<AtomicI64>,
    /// Set by [`unblock`](Queue::unblock): the next read does not block.
    nudged: Arc<AtomicBool>,
    scripts: Scripts,
    /// This instance's consumer name in every group.
    consumer: String,
    /// The names whose group this queue created (or found).
    grouped: Mutex<HashSet<String>>,
    /// When pending entries were last looked for expired leases.
    reclaimed: Mutex<Instant>,
    lease: Duration,
    retention: Duration,
    capacity: usize,
}

fn ms(d: Duration) -> String {
    d.as_millis().min(u128::from(u64::MAX)).to_string()
}

fn time(ms: &str) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.parse::<u64>().unwrap_or(0))
}

fn stream(name: &str) -> String {
    format!("{PREFIX}:s:{name}")
}

/// A trace as stored: `<trace id>-<span id>` in hex.
fn trace_text(trace: &TraceContext) -> String {
    format!("{:032x}-{:016x}", trace.trace_id(), trace.span_id())
}

fn parse_trace(text: &str) -> Option<(u128, u64)> {
    let (trace, span) = text.split_once('-')?;
    Some((
        u128::from_str_radix(trace, 16).ok()?,
        u64::from_str_radix(span, 16).ok()?,
    ))
}

/// The Redis key of an idempotency key (lengths first: names, tenants and keys may hold `:`).
fn key_of(task: &NewTask, key: &str) -> String {
    let name = &*task.name.full;
    let tenant = task.tenant.as_str();
    format!(
        "{PREFIX}:k:{}:{name}:{}:{tenant}:{key}",
        name.len(),
        tenant.len()
    )
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn items(value: &Value) -> &[Value] {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        _ => &[],
    }
}

/// The entries of an `XRANGE`-shaped list: each id and its `t` field.
fn entries_of(name: &str, value: &Value, out: &mut Vec<Entry>) {
    for entry in items(value) {
        let [id, fields] = items(entry) else { continue };
        let Some(id) = text(id) else { continue };
        let task = items(fields)
            .chunks(2)
            .find(|kv| kv.first().and_then(text).as_deref() == Some("t"))
            .and_then(|kv| kv.get(1).and_then(text));
        if let Some(task) = task {
            out.push((name.to_owned(), id, task));
        }
    }
}

/// The entries of an `XREADGROUP` reply (`nil` when the block ended with nothing).
fn read_reply(value: &Value) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut one = |key: &Value, entries: &Value| {
        if let Some(name) =
            text(key).and_then(|k| k.strip_prefix(&format!("{PREFIX}:s:")).map(str::to_owned))
        {
            entries_of(&name, entries, &mut out);
        }
    };
    match value {
        Value::Map(streams) => streams.iter().for_each(|(k, v)| one(k, v)),
        _ => {
            for stream in items(value) {
                if let [k, v] = items(stream) {
                    one(k, v);
                }
            }
        }
    }
    out
}

fn info(id: TaskId, fields: &HashMap<String, String>) -> Result<TaskInfo, WorkerError> {
    let bad = |what: &str| WorkerError::Backend {
        message: format!("the Redis hash of task {id} holds an invalid {what}"),
    };
    let get = |f: &str| fields.get(f).map_or("", String::as_str);
    let name = FullName::parse(get("n")).map_err(|_| bad("name"))?;
    let tenant = TenantId::new(get("tn")).map_err(|_| bad("tenant"))?;
    let attempts: u32 = get("a").parse().unwrap_or(0);
    let error = get("e").to_owned();
    let status = match get("s") {
        "queued" if attempts > 0 && !error.is_empty() => TaskStatus::Failed { error, attempts },
        "queued" => TaskStatus::Queued,
        "running" => TaskStatus::Running { attempt: attempts },
        "succeeded" => TaskStatus::Succeeded {
            result: serde_json::from_str(get("res")).map_err(|_| bad("result"))?,
            attempts,
        },
        "dead" => TaskStatus::Dead { error, attempts },
        _ => return Err(bad("status")),
    };
    let payload = get("p");
    Ok(TaskInfo {
        id,
        name: name.local().to_owned(),
        plugin: name.plugin().map(str::to_owned),
        tenant,
        payload: serde_json::from_str(payload).unwrap_or(Json::String(payload.to_owned())),
        status,
        attempts,
        max_attempts: get("m").parse().unwrap_or(0),
        created_at: time(get("c")),
        updated_at: time(get("u")),
        run_at: time(get("r")),
    })
}

fn visible(scope: &Scope<'_>, fields: &HashMap<String, String>) -> bool {
    let name = fields.get("n").map_or("", String::as_str);
    let tenant = fields.get("tn").map_or("", String::as_str);
    scope
        .namespace
        .is_none_or(|ns| name.split_once('.').is_some_and(|(n, _)| n == ns))
        && scope.tenant.is_none_or(|t| t.as_str() == tenant)
}

impl RedisQueue {
    /// The queue on the server at `url`: checks that it answers (and runs Redis ≥ 6.2, for
    /// `XAUTOCLAIM`).
    pub(crate) async fn open(
        url: &str,
        lease: Duration,
        retention: Duration,
        capacity: usize,
    ) -> Result<Self, WorkerError> {
        let target = crate::services::redact_url(url);
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(WorkerError::InvalidOptions {
                reason: format!(
                    "`services.worker.url` must be a Redis URL (`redis://…`), not `{target}`"
                ),
            });
        }
        let client = Client::open(url).map_err(|e| WorkerError::InvalidOptions {
            reason: format!("`services.worker.url` `{target}` is not a Redis URL: {e}"),
        })?;
        let link = Arc::new(Link {
            client,
            conn: tokio::sync::Mutex::new(None),
            target,
        });
        let mut cmd = redis::cmd("INFO");
        cmd.arg("server");
        let server: String = link.cmd("INFO", &cmd).await?;
        let version = server
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("0")
            .trim()
            .to_owned();
        let parts: Vec<u32> = version.split('.').map(|p| p.parse().unwrap_or(0)).collect();
        if (
            parts.first().copied().unwrap_or(0),
            parts.get(1).copied().unwrap_or(0),
        ) < (6, 2)
        {
            return Err(link.error(format_args!(
                "runs Redis {version}; the worker's queue needs 6.2 or later (XAUTOCLAIM)"
            )));
        }
        Ok(Self {
            link,
            reader: tokio::sync::Mutex::new(None),
            blocked: Arc::new(AtomicI64::new(0)),
            nudged: Arc::new(AtomicBool::new(false)),
            scripts: Scripts::new(),
            consumer: format!("{:016x}", fastrand::u64(..)),
            grouped: Mutex::new(HashSet::new()),
            reclaimed: Mutex::new(Instant::now()),
            lease,
            retention,
            capacity,
        })
    }

    fn args(&self, rest: impl IntoIterator<Item = String>) -> Vec<String> {
        std::iter::once(PREFIX.to_owned()).chain(rest).collect()
    }

    /// Creates the group of each name not yet known to have one.
    async fn ensure_groups(&self, names: &Names) -> Result<(), WorkerError> {
        let missing: Vec<Arc<str>> = {
            let grouped = self.grouped.lock().unwrap_or_else(|p| p.into_inner());
            names
                .list
                .iter()
                .filter(|n| !grouped.contains(&***n))
                .cloned()
                .collect()
        };
        for name in missing {
            let mut create = redis::cmd("XGROUP");
            create
                .arg("CREATE")
                .arg(stream(&name))
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM");
            match self.link.cmd::<()>("XGROUP CREATE", &create).await {
                Ok(()) => {}
                Err(WorkerError::Backend { message }) if message.contains("BUSYGROUP") => {}
                Err(e) => return Err(e),
            }
            let mut add = redis::cmd("SADD");
            add.arg(format!("{PREFIX}:names")).arg(&*name);
            self.link.cmd::<i64>("SADD", &add).await?;
            self.grouped
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name.to_string());
        }
        Ok(())
    }

    fn forget_groups(&self) {
        self.grouped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Moves the delayed tasks now due to their streams; the wait until the next one.
    async fn promote(&self) -> Result<Option<Duration>, WorkerError> {
        let next: i64 = self
            .link
            .script("promote", &self.scripts.promote, &self.args([]))
            .await?;
        Ok(u64::try_from(next).ok().map(Duration::from_millis))
    }

    /// Whether pending entries are due to be looked at for expired leases (every third of
    /// a lease), and the wait until they are.
    fn reclaim_due(&self) -> (bool, Duration) {
        let mut last = self.reclaimed.lock().unwrap_or_else(|p| p.into_inner());
        let every = self.lease / 3;
        let elapsed = last.elapsed();
        if elapsed >= every {
            *last = Instant::now();
            (true, every)
        } else {
            (false, every - elapsed)
        }
    }

    /// Takes over (`XAUTOCLAIM`) at most `max` entries idle longer than the lease: their
    /// consumer stopped renewing them.
    async fn reclaim(&self, names: &Names, max: usize) -> Result<Vec<Entry>, WorkerError> {
        let mut out = Vec::new();
        for name in &names.list {
            if out.len() >= max {
                break;
            }
            let mut cmd = redis::cmd("XAUTOCLAIM");
            cmd.arg(stream(name))
                .arg(GROUP)
                .arg(&self.consumer)
                .arg(self.lease.as_millis().min(u128::from(u64::MAX)) as u64)
                .arg("0-0")
                .arg("COUNT")
                .arg(max - out.len());
            let reply: Value = match self.link.cmd("XAUTOCLAIM", &cmd).await {
                Ok(reply) => reply,
                Err(WorkerError::Backend { message }) if message.contains("NOGROUP") => {
                    // The server lost the groups (restarted empty): create them again.
                    self.forget_groups();
                    return Ok(out);
                }
                Err(e) => return Err(e),
            };
            let before = out.len();
            if let [_, entries, ..] = items(&reply) {
                entries_of(name, entries, &mut out);
            }
            if out.len() > before {
                tracing::warn!(
                    tasks = out.len() - before,
                    name = %name,
                    "tasks whose instance stopped renewing their lease are delivered again"
                );
            }
        }
        Ok(out)
    }

    /// Reads at most `max` new entries of `names` for this consumer (`COUNT` is per stream:
    /// the caller gives back what is beyond `max`), waiting on the server at most `block`.
    async fn read(
        &self,
        names: &Names,
        max: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Entry>, WorkerError> {
        let mut slot = self.reader.lock().await;
        let reader = match slot.as_mut() {
            Some(reader) => reader,
            None => {
                let mut conn = self.link.connect(BLOCK + COMMAND_TIMEOUT).await?;
                let id = tokio::time::timeout(
                    COMMAND_TIMEOUT,
                    redis::cmd("CLIENT").arg("ID").query_async::<i64>(&mut conn),
                )
                .await
                .map_err(|_| self.link.error("`CLIENT ID`: no answer"))?
                .map_err(|e| self.link.error(format_args!("`CLIENT ID`: {e}")))?;
                slot.insert(Reader { conn, id })
            }
        };
        let block = if self.nudged.swap(false, Ordering::AcqRel) {
            None
        } else {
            block
        };
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(max);
        if let Some(block) = block {
            cmd.arg("BLOCK")
                .arg(block.as_millis().clamp(1, BLOCK.as_millis()) as u64);
        }
        cmd.arg("STREAMS");
        for name in &names.list {
            cmd.arg(stream(name));
        }
        for _ in &names.list {
            cmd.arg(">");
        }
        if block.is_some() {
            self.blocked.store(reader.id, Ordering::Release);
        }
        let answer = tokio::time::timeout(
            BLOCK + COMMAND_TIMEOUT,
            cmd.query_async::<Value>(&mut reader.conn),
        )
        .await;
        self.blocked.store(0, Ordering::Release);
        match answer {
            Ok(Ok(reply)) => Ok(read_reply(&reply)),
            Ok(Err(e)) if e.code() == Some("NOGROUP") => {
                // The server lost the groups (restarted empty): create them again.
                self.forget_groups();
                Ok(Vec::new())
            }
            Ok(Err(e)) => {
                *slot = None;
                Err(self.link.error(format_args!("`XREADGROUP`: {e}")))
            }
            Err(_) => {
                *slot = None;
                Err(self.link.error("`XREADGROUP`: no answer"))
            }
        }
    }

    fn triples(entries: Vec<Entry>) -> impl Iterator<Item = String> {
        entries.into_iter().flat_map(|(n, e, t)| [n, e, t])
    }

    /// Starts an attempt of each entry.
    async fn start(&self, entries: Vec<Entry>) -> Result<Vec<Claimed>, WorkerError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let args = self.args(std::iter::once(self.consumer.clone()).chain(Self::triples(entries)));
        let reply: Value = self
            .link
            .script("start", &self.scripts.start, &args)
            .await?;
        let fields = items(&reply);
        let mut out = Vec::with_capacity(fields.len() / 7);
        for f in fields.chunks_exact(7) {
            let t = |i: usize| f.get(i).and_then(text).unwrap_or_default();
            let payload = t(3);
            out.push(Claimed {
                id: TaskId::new(t(0).parse().unwrap_or(0)),
                name: Arc::from(t(1)),
                tenant: TenantId::new(&t(2)).unwrap_or_default(),
                payload: serde_json::from_str(&payload)
                    .map_err(|e| format!("the stored payload is not JSON: {e}")),
                attempt: t(4).parse().unwrap_or(1),
                max_attempts: t(5).parse().unwrap_or(1),
                trace: parse_trace(&t(6)),
            });
        }
        Ok(out)
    }

    async fn hash(&self, id: TaskId) -> Result<HashMap<String, String>, WorkerError> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(format!("{PREFIX}:t:{id}"));
        self.link.cmd("HGETALL", &cmd).await
    }
}

#[async_trait]
impl Queue for RedisQueue {
    async fn push(&self, task: NewTask) -> Result<TaskId, WorkerError> {
        let key = task
            .key
            .as_deref()
            .map(|k| key_of(&task, k))
            .unwrap_or_default();
        let args = self.args([
            task.name.full.to_string(),
            task.tenant.as_str().to_owned(),
            task.payload.to_string(),
            task.max_attempts.to_string(),
            ms(task.delay),
            key,
            task.trace.as_ref().map(trace_text).unwrap_or_default(),
            ms(self.retention),
            self.capacity.to_string(),
        ]);
        let (code, id): (i64, u64) = self.link.script("push", &self.scripts.push, &args).await?;
        match code {
            2 => Err(WorkerError::QueueFull {
                capacity: self.capacity,
            }),
            _ => Ok(TaskId::new(id)),
        }
    }

    async fn claim(&self, names: &Names, max: usize) -> Result<Vec<Claimed>, WorkerError> {
        if names.list.is_empty() || max == 0 {
            return Ok(Vec::new());
        }
        self.ensure_groups(names).await?;
        let next_due = self.promote().await?;
        let (reclaim, until_reclaim) = self.reclaim_due();
        let mut entries = if reclaim {
            self.reclaim(names, max).await?
        } else {
            Vec::new()
        };
        if entries.is_empty() {
            let block = next_due.map_or(BLOCK, |d| d.min(BLOCK)).min(until_reclaim);
            entries = self.read(names, max, Some(block)).await?;
        }
        if entries.len() > max {
            let extra = entries.split_off(max);
            let args = self.args(Self::triples(extra));
            self.link
                .script::<i64>("give back", &self.scripts.give_back, &args)
                .await?;
        }
        self.start(entries).await
    }

    async fn finish(&self, claim: Claim, outcome: Outcome) -> Result<bool, WorkerError> {
        let (kind, value, after) = match outcome {
            Outcome::Succeeded(result) => ("ok", result.to_string(), Duration::ZERO),
            Outcome::Retry { error, after } => ("retry", error, after),
            Outcome::Dead(error) => ("dead", error, Duration::ZERO),
        };
        let args = self.args([
            self.consumer.clone(),
            claim.id.to_string(),
            claim.attempt.to_string(),
            kind.to_owned(),
            value,
            ms(after),
            ms(self.retention),
        ]);
        let done: i64 = self
            .link
            .script("finish", &self.scripts.finish, &args)
            .await?;
        if kind == "retry" {
            // The consumer may be blocked past the retry's due time.
            self.unblock();
        }
        Ok(done == 1)
    }

    async fn release(&self, claim: Claim) -> Result<(), WorkerError> {
        let args = self.args([
            self.consumer.clone(),
            claim.id.to_string(),
            claim.attempt.to_string(),
        ]);
        self.link
            .script::<i64>("release", &self.scripts.release, &args)
            .await?;
        Ok(())
    }

    async fn info(&self, id: TaskId, scope: Scope<'_>) -> Result<Option<TaskInfo>, WorkerError> {
        let fields = self.hash(id).await?;
        if fields.is_empty() || !visible(&scope, &fields) {
            return Ok(None);
        }
        info(id, &fields).map(Some)
    }

    async fn dead(&self, scope: Scope<'_>, limit: usize) -> Result<Vec<TaskInfo>, WorkerError> {
        let mut out = Vec::new();
        let mut from = 0usize;
        while out.len() < limit {
            let mut cmd = redis::cmd("ZRANGE");
            cmd.arg(format!("{PREFIX}:dead"))
                .arg(from)
                .arg(from + DEAD_PAGE - 1);
            let ids: Vec<u64> = self.link.cmd("ZRANGE", &cmd).await?;
            if ids.is_empty() {
                break;
            }
            from += ids.len();
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("HGETALL").arg(format!("{PREFIX}:t:{id}"));
            }
            let mut conn = self.link.get().await?;
            let hashes: Vec<HashMap<String, String>> =
                match tokio::time::timeout(COMMAND_TIMEOUT, pipe.query_async(&mut conn)).await {
                    Ok(Ok(hashes)) => hashes,
                    Ok(Err(e)) => return Err(self.link.failed("HGETALL", &e).await),
                    Err(_) => return Err(self.link.error("`HGETALL`: no answer")),
                };
            for (id, fields) in ids.into_iter().zip(hashes) {
                if out.len() < limit && !fields.is_empty() && visible(&scope, &fields) {
                    out.push(info(TaskId::new(id), &fields)?);
                }
            }
        }
        Ok(out)
    }

    async fn redrive(&self, id: TaskId, scope: Scope<'_>) -> Result<(), WorkerError> {
        let Some(task) = self.info(id, scope).await? else {
            return Err(WorkerError::UnknownTask { id });
        };
        let args = self.args([id.to_string()]);
        let answer: String = self
            .link
            .script("redrive", &self.scripts.redrive, &args)
            .await?;
        if answer == "ok" {
            return Ok(());
        }
        Err(WorkerError::NotDead {
            id,
            status: task.status.label(),
        })
    }

    async fn counts(&self) -> Result<Counts, WorkerError> {
        let (ready, delayed, running, dead): (i64, u64, u64, u64) = self
            .link
            .script("counts", &self.scripts.counts, &self.args([]))
            .await?;
        Ok(Counts {
            ready: u64::try_from(ready).unwrap_or(0),
            delayed,
            running,
            dead,
        })
    }

    fn wake(&self, _names: &Names) -> Wake {
        // A claim waits on the server (`XREADGROUP … BLOCK`): look again at once.
        Wake::At(Instant::now())
    }

    fn unblock(&self) {
        self.nudged.store(true, Ordering::Release);
        let id = self.blocked.load(Ordering::Acquire);
        if id == 0 {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let link = self.link.clone();
        runtime.spawn(async move {
            let mut cmd = redis::cmd("CLIENT");
            cmd.arg("UNBLOCK").arg(id);
            if let Err(error) = link.cmd::<i64>("CLIENT UNBLOCK", &cmd).await {
                tracing::debug!(%error, "could not interrupt the worker's blocking read");
            }
        });
    }

    fn maintenance_interval(&self) -> Option<Duration> {
        Some(self.lease / 3)
    }

    async fn maintain(&self, inflight: &[Claim]) -> Result<(), WorkerError> {
        if !inflight.is_empty() {
            let args = self.args(
                std::iter::once(self.consumer.clone()).chain(
                    inflight
                        .iter()
                        .flat_map(|c| [c.id.to_string(), c.attempt.to_string()]),
                ),
            );
            self.link
                .script::<i64>("renew", &self.scripts.renew, &args)
                .await?;
        }
        // Due delayed tasks go to their streams even while every consumer is busy.
        self.promote().await?;
        Ok(())
    }

    async fn close(&self) {
        *self.reader.lock().await = None;
        *self.link.conn.lock().await = None;
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn read_replies_are_parsed_and_odd_entries_skipped() {
        let entry = |id: &str, t: &str| {
            Value::Array(vec![bulk(id), Value::Array(vec![bulk("t"), bulk(t)])])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk("{xcore:tasks}:s:@host.a"),
                Value::Array(vec![
                    entry("1-0", "7"),
                    Value::Array(vec![bulk("2-0"), Value::Nil]),
                    Value::Int(3),
                ]),
            ]),
            Value::Array(vec![bulk("other"), Value::Array(vec![entry("3-0", "8")])]),
        ]);
        assert_eq!(
            read_reply(&reply),
            vec![("@host.a".to_owned(), "1-0".to_owned(), "7".to_owned())]
        );
        assert!(read_reply(&Value::Nil).is_empty());
    }

    #[test]
    fn idempotency_keys_cannot_collide_across_names_and_tenants() {
        let task = |name: &str, tenant: &str| NewTask {
            name: FullName::new("p", name).unwrap(),
            tenant: TenantId::new(tenant).unwrap(),
            payload: Json::Null,
            max_attempts: 1,
            delay: Duration::ZERO,
            key: None,
            trace: None,
        };
        assert_ne!(key_of(&task("a", "b"), "c"), key_of(&task("a", "bc"), ""));
        assert_eq!(key_of(&task("a", "b"), "k"), "{xcore:tasks}:k:3:p.a:1:b:k");
    }

    #[test]
    fn traces_round_trip() {
        let trace = TraceContext::new_root();
        assert_eq!(
            parse_trace(&trace_text(&trace)),
            Some((trace.trace_id(), trace.span_id()))
        );
    }
}
