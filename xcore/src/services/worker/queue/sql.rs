//! The SQL of the durable queue (Postgres). Times are milliseconds since the Unix epoch on the
//! database server's clock, so instances with skewed clocks agree.

/// The server's clock, in milliseconds.
macro_rules! now_ms {
    () => {
        "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
    };
}

/// The key of the advisory lock taken while creating the table ("xcore_wk").
pub(super) const SCHEMA_LOCK: i64 = 0x7863_6f72_655f_776b;

pub(super) const LOCK_SCHEMA: &str = "SELECT pg_advisory_xact_lock($1)";

/// The table and its indexes, created if missing, and the trigger that notifies the channel
/// `xcore_tasks` after each insert of a queued task, with the task's full name as payload
/// (Postgres folds the identical notifications of one transaction into one): the wake-up of
/// the instances listening that have a handler for the name. A task inserted `running`
/// (claimed by its sender) notifies nobody.
pub(super) const SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS xcore_tasks (
    id BIGSERIAL PRIMARY KEY,
    plugin TEXT NOT NULL,
    name TEXT NOT NULL,
    tenant TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at BIGINT NOT NULL,
    locked_by TEXT,
    locked_until BIGINT,
    last_error TEXT,
    result TEXT,
    idempotency_key TEXT,
    trace TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS xcore_tasks_due ON xcore_tasks (run_at, id) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS xcore_tasks_lease ON xcore_tasks (locked_until) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS xcore_tasks_dead ON xcore_tasks (updated_at, id) WHERE status = 'dead';
CREATE INDEX IF NOT EXISTS xcore_tasks_done ON xcore_tasks (updated_at) WHERE status = 'succeeded';
CREATE UNIQUE INDEX IF NOT EXISTS xcore_tasks_idempotency
    ON xcore_tasks (name, tenant, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE OR REPLACE FUNCTION xcore_tasks_notify() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_notify('xcore_tasks', NEW.name);
    RETURN NULL;
END
$fn$;
CREATE OR REPLACE TRIGGER xcore_tasks_notify AFTER INSERT ON xcore_tasks
    FOR EACH ROW WHEN (NEW.status = 'queued') EXECUTE FUNCTION xcore_tasks_notify();";

/// $1 plugin, $2 name, $3 tenant, $4 payload, $5 max_attempts, $6 delay (ms), $7 key, $8 trace;
/// returns the id and the server process of the connection (whose notification is the
/// sender's own).
pub(super) const INSERT: &str = concat!(
    "INSERT INTO xcore_tasks (plugin, name, tenant, payload, status, attempts, max_attempts, \
     run_at, idempotency_key, trace, created_at, updated_at) \
     SELECT $1, $2, $3, $4, 'queued', 0, $5, n.ms + $6, $7, $8, n.ms, n.ms FROM (SELECT ",
    now_ms!(),
    " AS ms) n \
     ON CONFLICT (name, tenant, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
     RETURNING id, pg_backend_pid()"
);

/// A task due now, claimed by its sender for its first attempt (no notification: it is
/// `running`): $1 plugin, $2 name, $3 tenant, $4 payload, $5 max_attempts, $6 key, $7 trace,
/// $8 instance, $9 lease (ms).
pub(super) const INSERT_CLAIMED: &str = concat!(
    "INSERT INTO xcore_tasks (plugin, name, tenant, payload, status, attempts, max_attempts, \
     run_at, idempotency_key, trace, locked_by, locked_until, created_at, updated_at) \
     SELECT $1, $2, $3, $4, 'running', 1, $5, n.ms, $6, $7, $8, n.ms + $9, n.ms, n.ms FROM (SELECT ",
    now_ms!(),
    " AS ms) n \
     ON CONFLICT (name, tenant, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
     RETURNING id"
);

/// $1 name, $2 tenant, $3 key.
pub(super) const BY_KEY: &str =
    "SELECT id FROM xcore_tasks WHERE name = $1 AND tenant = $2 AND idempotency_key = $3";

/// Claims due tasks: $1 names joined with `,`, $2 limit, $3 instance, $4 lease (ms).
/// (Expired leases are put back in the queue by [`REQUEUE`], so that this query only reads
/// the partial index of queued tasks.)
pub(super) const CLAIM: &str = concat!(
    "WITH n AS (SELECT ",
    now_ms!(),
    " AS ms), due AS (\
       SELECT t.id FROM xcore_tasks t, n \
       WHERE t.status = 'queued' AND t.run_at <= n.ms \
         AND t.name = ANY(string_to_array($1, ',')) \
       ORDER BY t.run_at, t.id \
       LIMIT $2 \
       FOR UPDATE OF t SKIP LOCKED) \
     UPDATE xcore_tasks t SET status = 'running', attempts = t.attempts + 1, locked_by = $3, \
       locked_until = n.ms + $4, updated_at = n.ms \
     FROM due, n WHERE t.id = due.id \
     RETURNING t.id, t.name, t.tenant, t.payload, t.attempts, t.max_attempts, t.trace"
);

/// Running tasks whose lease expired with attempts left go back to the queue (their
/// interrupted attempt counts).
pub(super) const REQUEUE: &str = concat!(
    "UPDATE xcore_tasks SET status = 'queued', \
       last_error = 'the instance running attempt ' || attempts || ' stopped renewing its \
lease (it crashed or lost the database)', \
       locked_by = NULL, locked_until = NULL, run_at = ",
    now_ms!(),
    ", updated_at = ",
    now_ms!(),
    " WHERE status = 'running' AND locked_until < ",
    now_ms!(),
    " AND attempts < max_attempts"
);

/// The fence of every statement that ends an attempt: $a id, $b instance, $c attempt.
macro_rules! fenced {
    ($set:expr, $a:literal, $b:literal, $c:literal) => {
        concat!(
            "UPDATE xcore_tasks SET ",
            $set,
            ", locked_by = NULL, locked_until = NULL, updated_at = ",
            now_ms!(),
            " WHERE id = $",
            $a,
            " AND status = 'running' AND locked_by = $",
            $b,
            " AND attempts = $",
            $c
        )
    };
}

/// $1 result, then the fence $2 $3 $4.
pub(super) const SUCCEED: &str = fenced!(
    "status = 'succeeded', result = $1, last_error = NULL",
    "2",
    "3",
    "4"
);

/// $1 error, $2 backoff (ms), then the fence $3 $4 $5.
pub(super) const RETRY: &str = fenced!(
    concat!(
        "status = 'queued', last_error = $1, run_at = ",
        now_ms!(),
        " + $2"
    ),
    "3",
    "4",
    "5"
);

/// $1 error, then the fence $2 $3 $4.
pub(super) const DEAD: &str = fenced!("status = 'dead', last_error = $1", "2", "3", "4");

/// The fence $1 $2 $3: back to the queue, the attempt not counted.
pub(super) const RELEASE: &str = fenced!(
    concat!(
        "status = 'queued', attempts = attempts - 1, run_at = ",
        now_ms!()
    ),
    "1",
    "2",
    "3"
);

/// Renews the leases of the attempts in flight in this instance, and of no other task it
/// marked (an attempt lost in a crash or an outage lets its lease expire): $1 lease (ms),
/// $2 instance, $3 the task ids joined with `,`, $4 their attempts joined with `,`, in the
/// same order (an attempt fences its renewal as it fences its outcome).
pub(super) const EXTEND: &str = concat!(
    "UPDATE xcore_tasks t SET locked_until = ",
    now_ms!(),
    " + $1 FROM (SELECT UNNEST(string_to_array($3, ',')::BIGINT[]) AS id, \
       UNNEST(string_to_array($4, ',')::INTEGER[]) AS attempt) f \
     WHERE t.id = f.id AND t.attempts = f.attempt AND t.status = 'running' AND t.locked_by = $2"
);

/// Running tasks whose lease expired on their last attempt become dead letters.
pub(super) const REAP: &str = concat!(
    "UPDATE xcore_tasks SET status = 'dead', \
       last_error = 'the instance running its last attempt stopped renewing its lease \
(it crashed or lost the database)', \
       locked_by = NULL, locked_until = NULL, updated_at = ",
    now_ms!(),
    " WHERE status = 'running' AND locked_until < ",
    now_ms!(),
    " AND attempts >= max_attempts"
);

/// Forgets succeeded tasks: $1 retention (ms).
pub(super) const PURGE: &str = concat!(
    "DELETE FROM xcore_tasks WHERE status = 'succeeded' AND updated_at < ",
    now_ms!(),
    " - $1"
);

/// The columns of a [`TaskInfo`](crate::services::worker::TaskInfo).
macro_rules! info_columns {
    () => {
        "SELECT id, name, tenant, payload, status, attempts, max_attempts, last_error, result, \
         created_at, updated_at, run_at FROM xcore_tasks "
    };
}

/// $1 id, $2 namespace (`''`: any), $3 tenant (`''`: any).
pub(super) const INFO: &str = concat!(
    info_columns!(),
    "WHERE id = $1 AND ($2 = '' OR plugin = $2) AND ($3 = '' OR tenant = $3)"
);

/// $1 namespace (`''`: any), $2 tenant (`''`: any), $3 limit.
pub(super) const DEAD_LETTERS: &str = concat!(
    info_columns!(),
    "WHERE status = 'dead' AND ($1 = '' OR plugin = $1) AND ($2 = '' OR tenant = $2) \
     ORDER BY updated_at, id LIMIT $3"
);

/// $1 id, $2 namespace (`''`: any), $3 tenant (`''`: any).
pub(super) const REDRIVE: &str = concat!(
    "UPDATE xcore_tasks SET status = 'queued', attempts = 0, last_error = NULL, run_at = ",
    now_ms!(),
    ", updated_at = ",
    now_ms!(),
    " WHERE id = $1 AND status = 'dead' AND ($2 = '' OR plugin = $2) AND ($3 = '' OR tenant = $3)"
);

/// Ready, delayed, running, dead: one subquery per partial index, so that the succeeded
/// tasks kept for `retention` are never scanned.
pub(super) const COUNTS: &str = concat!(
    "WITH n AS (SELECT ",
    now_ms!(),
    " AS ms) SELECT \
       (SELECT COUNT(*) FROM xcore_tasks, n WHERE status = 'queued' AND run_at <= n.ms), \
       (SELECT COUNT(*) FROM xcore_tasks, n WHERE status = 'queued' AND run_at > n.ms), \
       (SELECT COUNT(*) FROM xcore_tasks WHERE status = 'running'), \
       (SELECT COUNT(*) FROM xcore_tasks WHERE status = 'dead')"
);
