//! The Lua scripts of the Redis Streams queue: each step that touches more than one key runs
//! as one script, so that it is atomic on the server (and on the server's clock, `TIME`).
//!
//! Every script takes the key prefix as `ARGV[1]` and builds its keys from it (they share
//! the hash tag `{xcore:tasks}`, so they live in one slot). Keys:
//!
//! | key | type | holds |
//! |-----|------|-------|
//! | `P:seq` | string | the last task id given |
//! | `P:t:<id>` | hash | the task: `n` name, `tn` tenant, `p` payload, `a` attempts, `m` max attempts, `k` idempotency key, `tr` trace, `s` status, `c`/`u`/`r` created, updated, run at (ms), `e` last error, `res` result, `x` its stream entry, `o` the consumer running it |
//! | `P:s:<name>` | stream | one entry (`t` = task id) per task of `name` ready or running; consumer group `xcore` |
//! | `P:names` | set | the task names with a stream |
//! | `P:delayed` | sorted set | tasks waiting for their delay or backoff, by due time (ms) |
//! | `P:dead` | sorted set | dead letters, by the time they died |
//! | `P:live` | string | tasks queued, delayed or running (the capacity bounds it) |
//! | `P:k:<…>` | string | an idempotency key: the id of the task sent with it (TTL `retention`) |

/// The server's clock in ms, as `now`.
const NOW: &str = "local t = redis.call('TIME')\n\
                   local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n";

/// Queues a task. ARGV: prefix, name, tenant, payload, max attempts, delay (ms), idempotency
/// key (the Redis key, or ``), trace (or ``), retention (ms), capacity. Returns `{0, id}`
/// (queued), `{1, id}` (the key is known: its task) or `{2, 0}` (the queue is full).
pub(super) fn push() -> String {
    format!(
        "{NOW}{}",
        r"
local p = ARGV[1]
if ARGV[7] ~= '' then
  local known = redis.call('GET', ARGV[7])
  if known then return {1, tonumber(known)} end
end
if tonumber(redis.call('GET', p .. ':live') or '0') >= tonumber(ARGV[10]) then return {2, 0} end
local id = redis.call('INCR', p .. ':seq')
if ARGV[7] ~= '' then redis.call('SET', ARGV[7], id, 'PX', ARGV[9]) end
local delay = tonumber(ARGV[6])
local key = p .. ':t:' .. id
redis.call('HSET', key, 'n', ARGV[2], 'tn', ARGV[3], 'p', ARGV[4], 'a', 0, 'm', ARGV[5],
  'k', ARGV[7], 'tr', ARGV[8], 's', 'queued', 'c', now, 'u', now, 'r', now + delay)
redis.call('INCR', p .. ':live')
local stream = p .. ':s:' .. ARGV[2]
if redis.call('SADD', p .. ':names', ARGV[2]) == 1 then
  redis.pcall('XGROUP', 'CREATE', stream, 'xcore', '0', 'MKSTREAM')
end
if delay > 0 then
  redis.call('ZADD', p .. ':delayed', now + delay, id)
else
  redis.call('HSET', key, 'x', redis.call('XADD', stream, '*', 't', id))
end
return {0, id}
"
    )
}

/// Moves the delayed tasks now due (at most 100) to their streams. ARGV: prefix. Returns the
/// ms until the next delayed task is due, or -1 if none is.
pub(super) fn promote() -> String {
    format!(
        "{NOW}{}",
        r"
local p = ARGV[1]
local due = redis.call('ZRANGEBYSCORE', p .. ':delayed', '-inf', now, 'LIMIT', 0, 100)
for _, id in ipairs(due) do
  redis.call('ZREM', p .. ':delayed', id)
  local key = p .. ':t:' .. id
  local name = redis.call('HGET', key, 'n')
  if name and redis.call('HGET', key, 's') == 'queued' then
    redis.call('HSET', key, 'x', redis.call('XADD', p .. ':s:' .. name, '*', 't', id))
  end
end
local next = redis.call('ZRANGE', p .. ':delayed', 0, 0, 'WITHSCORES')
if next[2] then return math.max(0, tonumber(next[2]) - now) end
return -1
"
    )
}

/// Starts attempts of the entries read (or reclaimed) by a consumer. ARGV: prefix,
/// consumer, then (name, entry id, task id) triples. An entry that is not its task's current
/// one is acknowledged and deleted (stale); a task reclaimed after its last attempt becomes a
/// dead letter. Returns, per attempt started: id, name, tenant, payload, attempt, max
/// attempts, trace.
pub(super) fn start() -> String {
    format!(
        "{NOW}{}",
        r"
local p = ARGV[1]
local out = {}
for i = 3, #ARGV, 3 do
  local name, entry, id = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local stream = p .. ':s:' .. name
  local key = p .. ':t:' .. id
  local f = redis.call('HMGET', key, 's', 'x', 'a', 'm', 'tn', 'p', 'tr')
  if (f[1] ~= 'queued' and f[1] ~= 'running') or f[2] ~= entry then
    redis.call('XACK', stream, 'xcore', entry)
    redis.call('XDEL', stream, entry)
  elseif f[1] == 'running' and tonumber(f[3]) >= tonumber(f[4]) then
    redis.call('XACK', stream, 'xcore', entry)
    redis.call('XDEL', stream, entry)
    redis.call('HSET', key, 's', 'dead', 'u', now,
      'e', 'the instance running its last attempt stopped (its lease expired)')
    redis.call('HDEL', key, 'x', 'o')
    redis.call('ZADD', p .. ':dead', now, id)
    redis.call('DECR', p .. ':live')
  else
    local a = redis.call('HINCRBY', key, 'a', 1)
    redis.call('HSET', key, 's', 'running', 'o', ARGV[2], 'u', now)
    table.insert(out, id)
    table.insert(out, name)
    table.insert(out, f[5])
    table.insert(out, f[6])
    table.insert(out, a)
    table.insert(out, f[4])
    table.insert(out, f[7])
  end
end
return out
"
    )
}

/// Puts back entries a consumer read beyond what it asked for, as new entries (so any
/// consumer may read them at once). ARGV: prefix, then (name, entry id, task id) triples.
pub(super) fn give_back() -> &'static str {
    r"
local p = ARGV[1]
for i = 2, #ARGV, 3 do
  local name, entry, id = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local stream = p .. ':s:' .. name
  local key = p .. ':t:' .. id
  redis.call('XACK', stream, 'xcore', entry)
  redis.call('XDEL', stream, entry)
  if redis.call('HGET', key, 'x') == entry then
    redis.call('HSET', key, 'x', redis.call('XADD', stream, '*', 't', id))
  end
end
return 0
"
}

/// The fence every step of a running attempt passes: the task is running, by this
/// consumer, at this attempt. Sets `name`, `entry`, `stream`, `key`.
const FENCE: &str = r"
local p = ARGV[1]
local key = p .. ':t:' .. ARGV[3]
local f = redis.call('HMGET', key, 's', 'o', 'a', 'n', 'x')
if f[1] ~= 'running' or f[2] ~= ARGV[2] or tonumber(f[3]) ~= tonumber(ARGV[4]) then
  return 0
end
local name, entry = f[4], f[5]
local stream = p .. ':s:' .. name
redis.call('XACK', stream, 'xcore', entry)
redis.call('XDEL', stream, entry)
redis.call('HDEL', key, 'x', 'o')
";

/// Records how an attempt ended. ARGV: prefix, consumer, id, attempt, `ok`/`retry`/`dead`,
/// result (JSON) or error, backoff (ms), retention (ms). Returns 1, or 0 if the attempt no
/// longer holds the task.
pub(super) fn finish() -> String {
    format!(
        "{NOW}{FENCE}{}",
        r"
if ARGV[5] == 'ok' then
  redis.call('HSET', key, 's', 'succeeded', 'res', ARGV[6], 'e', '', 'u', now)
  redis.call('PEXPIRE', key, ARGV[8])
  redis.call('DECR', p .. ':live')
elseif ARGV[5] == 'retry' then
  local at = now + tonumber(ARGV[7])
  redis.call('HSET', key, 's', 'queued', 'e', ARGV[6], 'u', now, 'r', at)
  redis.call('ZADD', p .. ':delayed', at, ARGV[3])
else
  redis.call('HSET', key, 's', 'dead', 'e', ARGV[6], 'u', now)
  redis.call('ZADD', p .. ':dead', now, ARGV[3])
  redis.call('DECR', p .. ':live')
end
return 1
"
    )
}

/// Puts an interrupted attempt's task back, its attempt not counted, as a new entry.
/// ARGV: prefix, consumer, id, attempt.
pub(super) fn release() -> String {
    format!(
        "{NOW}{FENCE}{}",
        r"
redis.call('HINCRBY', key, 'a', -1)
redis.call('HSET', key, 's', 'queued', 'u', now, 'r', now,
  'x', redis.call('XADD', stream, '*', 't', ARGV[3]))
return 1
"
    )
}

/// Renews the leases of the attempts running in a consumer: resets the idle time of their
/// entries (`XCLAIM … 0 … JUSTID`), only where the attempt still holds its task. ARGV:
/// prefix, consumer, then (id, attempt) pairs. Returns how many were renewed.
pub(super) fn renew() -> &'static str {
    r"
local p = ARGV[1]
local renewed = 0
for i = 3, #ARGV, 2 do
  local key = p .. ':t:' .. ARGV[i]
  local f = redis.call('HMGET', key, 's', 'o', 'a', 'n', 'x')
  if f[1] == 'running' and f[2] == ARGV[2] and tonumber(f[3]) == tonumber(ARGV[i + 1]) then
    redis.call('XCLAIM', p .. ':s:' .. f[4], 'xcore', ARGV[2], 0, f[5], 'JUSTID')
    renewed = renewed + 1
  end
end
return renewed
"
}

/// Queues a dead letter again, its attempts reset. ARGV: prefix, id. Returns `ok`, or the
/// task's status (`` if unknown).
pub(super) fn redrive() -> String {
    format!(
        "{NOW}{}",
        r"
local p = ARGV[1]
local key = p .. ':t:' .. ARGV[2]
local f = redis.call('HMGET', key, 's', 'n')
if f[1] ~= 'dead' then return f[1] or '' end
local stream = p .. ':s:' .. f[2]
redis.call('ZREM', p .. ':dead', ARGV[2])
redis.call('INCR', p .. ':live')
redis.call('SADD', p .. ':names', f[2])
redis.pcall('XGROUP', 'CREATE', stream, 'xcore', '0', 'MKSTREAM')
redis.call('HSET', key, 's', 'queued', 'a', 0, 'e', '', 'u', now, 'r', now,
  'x', redis.call('XADD', stream, '*', 't', ARGV[2]))
return 'ok'
"
    )
}

/// Counts, for health. ARGV: prefix. Returns ready, delayed, running, dead.
pub(super) fn counts() -> &'static str {
    r"
local p = ARGV[1]
local entries, pending = 0, 0
for _, name in ipairs(redis.call('SMEMBERS', p .. ':names')) do
  local stream = p .. ':s:' .. name
  entries = entries + redis.call('XLEN', stream)
  local summary = redis.pcall('XPENDING', stream, 'xcore')
  if type(summary) == 'table' and summary[1] then pending = pending + summary[1] end
end
return {entries - pending, redis.call('ZCARD', p .. ':delayed'), pending,
  redis.call('ZCARD', p .. ':dead')}
"
}
