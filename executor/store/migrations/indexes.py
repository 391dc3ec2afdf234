"""The statements of revision ``0006_history`` (the indexes of a large history), in a module of
their own so that a new SQLite home gets them without importing Alembic (see ``_migrate``).
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
