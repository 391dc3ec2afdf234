"""The schema as executors before Alembic wrote it (``PRAGMA user_version`` 1 to 5), frozen.

Only for SQLite homes made by those executors: a home at schema 1 to 4 is brought to 5 with these
statements (every one ``IF NOT EXISTS``) as those executors did, then stamped at the Alembic
baseline (revision ``0005``), which is the same schema. Never edit: new tables and columns are a
new Alembic revision in ``versions/``.
"""

from __future__ import annotations

LEGACY_VERSION = 5

SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id          TEXT PRIMARY KEY,
    namespace   TEXT NOT NULL,
    flow_id     TEXT NOT NULL,
    state       TEXT NOT NULL,
    start_date  TEXT NOT NULL,
    end_date    TEXT,
    inputs      TEXT NOT NULL,
    histories   TEXT NOT NULL,
    images      TEXT NOT NULL,
    labels      TEXT NOT NULL,
    reason      TEXT,
    pid         INTEGER NOT NULL,
    pid_start   TEXT NOT NULL,
    host        TEXT NOT NULL,
    extra       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS executions_by_start ON executions (start_date);
CREATE INDEX IF NOT EXISTS executions_by_state ON executions (state);
CREATE TABLE IF NOT EXISTS task_runs (
    id            TEXT PRIMARY KEY,
    execution_id  TEXT NOT NULL,
    position      INTEGER NOT NULL,
    task_id       TEXT NOT NULL,
    task_type     TEXT NOT NULL,
    parent_id     TEXT,
    state         TEXT NOT NULL,
    start_date    TEXT NOT NULL,
    end_date      TEXT,
    duration      REAL,
    histories     TEXT NOT NULL,
    outputs       TEXT NOT NULL,
    metrics       TEXT NOT NULL,
    output_files  TEXT NOT NULL,
    image_id      TEXT,
    reason        TEXT,
    stderr_tail   TEXT NOT NULL,
    extra         TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS task_runs_by_execution ON task_runs (execution_id, position);
CREATE TABLE IF NOT EXISTS attempts (
    task_run_id  TEXT NOT NULL,
    number       INTEGER NOT NULL,
    state        TEXT NOT NULL,
    start_date   TEXT NOT NULL,
    end_date     TEXT,
    duration     REAL,
    exit_code    INTEGER,
    oom_killed   INTEGER NOT NULL,
    reason       TEXT,
    histories    TEXT NOT NULL,
    PRIMARY KEY (task_run_id, number)
);
CREATE TABLE IF NOT EXISTS log_chunks (
    id           INTEGER PRIMARY KEY,
    execution_id TEXT NOT NULL,
    task_id      TEXT,
    task_run_id  TEXT,
    attempt      INTEGER,
    stream       TEXT NOT NULL,
    level        TEXT NOT NULL,
    lines        INTEGER NOT NULL,
    first_ts_us  INTEGER NOT NULL,
    ts_us        TEXT NOT NULL,
    messages     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS resumes (
    execution_id TEXT PRIMARY KEY,
    inputs       TEXT NOT NULL,
    requested    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_chunks_by_execution ON log_chunks (execution_id, id);
CREATE TABLE IF NOT EXISTS kv (
    namespace   TEXT NOT NULL,
    key         TEXT NOT NULL,
    type        TEXT NOT NULL,
    value       TEXT NOT NULL,
    description TEXT,
    updated     TEXT NOT NULL,
    expires     TEXT,
    PRIMARY KEY (namespace, key)
);
CREATE VIEW IF NOT EXISTS log_lines AS
    SELECT c.id AS chunk_id, CAST(m.key AS INTEGER) AS line_in_chunk, c.execution_id,
           c.task_id, c.task_run_id, c.attempt, c.stream, c.level,
           json_extract(c.ts_us, '$[' || m.key || ']') AS ts_us, m.value AS message
    FROM log_chunks c, json_each(c.messages) m;
"""

SERVER_SCHEMA = """
CREATE TABLE IF NOT EXISTS flows (
    namespace  TEXT NOT NULL,
    id         TEXT NOT NULL,
    revision   INTEGER NOT NULL,
    source     TEXT NOT NULL,
    deleted    INTEGER NOT NULL DEFAULT 0,
    updated    TEXT NOT NULL,
    PRIMARY KEY (namespace, id, revision)
);
CREATE TABLE IF NOT EXISTS queue (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id  TEXT NOT NULL UNIQUE,
    namespace     TEXT NOT NULL,
    flow_id       TEXT NOT NULL,
    revision      INTEGER,
    inputs        TEXT NOT NULL,
    labels        TEXT NOT NULL,
    trigger       TEXT,
    submitted     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS triggers (
    namespace          TEXT NOT NULL,
    flow_id            TEXT NOT NULL,
    trigger_id         TEXT NOT NULL,
    type               TEXT NOT NULL,
    cron               TEXT,
    signature          TEXT NOT NULL,
    last_date          TEXT,
    next_date          TEXT,
    last_execution_id  TEXT,
    disabled           INTEGER NOT NULL DEFAULT 0,
    stopped            TEXT,
    since              TEXT NOT NULL,
    PRIMARY KEY (namespace, flow_id, trigger_id)
);
CREATE TABLE IF NOT EXISTS dispatched (
    execution_id  TEXT PRIMARY KEY,
    queue         TEXT NOT NULL,
    work          TEXT NOT NULL,
    dispatched    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS worker_runs (
    execution_id  TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    worker        TEXT NOT NULL,
    claimed       TEXT NOT NULL,
    ended         TEXT,
    lost          TEXT,
    PRIMARY KEY (execution_id, attempt)
);
CREATE TABLE IF NOT EXISTS workers (
    name          TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    engine_id     TEXT NOT NULL,
    queues        TEXT NOT NULL,
    labels        TEXT NOT NULL,
    slots         INTEGER NOT NULL,
    running       TEXT NOT NULL,
    started       TEXT NOT NULL,
    last_seen     TEXT NOT NULL
);
"""


def statements() -> list[str]:
    """Every statement of the legacy schema, in order."""
    return [s for s in (SCHEMA + SERVER_SCHEMA).split(";") if s.strip()]
