"""The statements of the revisions after the baseline, in a module of their own so that a new
SQLite home gets them without importing Alembic (see ``_migrate``): ``0006`` (the indexes of a
large history), and the SQLite form of ``0007`` (triggers) and ``0008`` (log chunks by time),
which a test compares with what Alembic makes of those revisions.
"""

from __future__ import annotations

HISTORY_SQLITE_UP = (
    "DROP INDEX IF EXISTS executions_by_state",
    "CREATE INDEX IF NOT EXISTS executions_by_state ON executions (state, start_date)",
    "CREATE INDEX IF NOT EXISTS executions_by_flow ON executions (namespace, flow_id, start_date)",
    "CREATE INDEX IF NOT EXISTS executions_by_flow_id ON executions (flow_id, start_date)",
    "CREATE INDEX IF NOT EXISTS executions_by_flow_state ON executions"
    " (namespace, flow_id, state, start_date)",
)
HISTORY_SQLITE_DOWN = (
    "DROP INDEX IF EXISTS executions_by_flow_state",
    "DROP INDEX IF EXISTS executions_by_flow_id",
    "DROP INDEX IF EXISTS executions_by_flow",
    "DROP INDEX IF EXISTS executions_by_state",
    "CREATE INDEX IF NOT EXISTS executions_by_state ON executions (state)",
)
HISTORY_POSTGRES_UP = (
    "DROP INDEX IF EXISTS executions_by_state",
    "DROP INDEX IF EXISTS executions_by_start",
    "CREATE INDEX IF NOT EXISTS executions_by_start ON executions (start_date, id)",
    "CREATE INDEX IF NOT EXISTS executions_by_state ON executions (state, start_date, id)",
    "CREATE INDEX IF NOT EXISTS executions_by_flow ON executions"
    ' (namespace COLLATE "C", flow_id, start_date, id) INCLUDE (state)',
    "CREATE INDEX IF NOT EXISTS executions_by_flow_id ON executions (flow_id, start_date, id)"
    " INCLUDE (state)",
    "CREATE INDEX IF NOT EXISTS executions_by_flow_state ON executions"
    ' (namespace COLLATE "C", flow_id, state, start_date, id)',
    'CREATE INDEX IF NOT EXISTS executions_by_id_prefix ON executions (id COLLATE "C")',
)
HISTORY_POSTGRES_DOWN = (
    "DROP INDEX IF EXISTS executions_by_flow_state",
    "DROP INDEX IF EXISTS executions_by_id_prefix",
    "DROP INDEX IF EXISTS executions_by_flow_id",
    "DROP INDEX IF EXISTS executions_by_flow",
    "DROP INDEX IF EXISTS executions_by_state",
    "DROP INDEX IF EXISTS executions_by_start",
    "CREATE INDEX IF NOT EXISTS executions_by_start ON executions (start_date)",
    "CREATE INDEX IF NOT EXISTS executions_by_state ON executions (state)",
)

TRIGGERS_SQLITE_UP = (
    "CREATE TABLE trigger_events (execution_id TEXT NOT NULL, ended TEXT NOT NULL,"
    " looked INTEGER DEFAULT 0 NOT NULL, PRIMARY KEY (execution_id))",
    "CREATE INDEX trigger_events_by_end ON trigger_events (looked, ended)",
    "CREATE TABLE trigger_fires (upstream_id TEXT NOT NULL, namespace TEXT NOT NULL,"
    " flow_id TEXT NOT NULL, trigger_id TEXT NOT NULL, execution_id TEXT, fired TEXT NOT NULL,"
    " PRIMARY KEY (upstream_id, namespace, flow_id, trigger_id))",
    "CREATE TABLE trigger_marks (namespace TEXT NOT NULL, flow_id TEXT NOT NULL,"
    " trigger_id TEXT NOT NULL, condition TEXT NOT NULL, upstream_id TEXT NOT NULL,"
    " date TEXT NOT NULL, PRIMARY KEY (namespace, flow_id, trigger_id, condition))",
    "ALTER TABLE triggers ADD COLUMN backfill TEXT",
    "ALTER TABLE triggers ADD COLUMN switched_off INTEGER DEFAULT 0 NOT NULL",
)
LOG_CHUNKS_SQLITE_UP = ("CREATE INDEX log_chunks_by_time ON log_chunks (first_ts_us, id)",)
