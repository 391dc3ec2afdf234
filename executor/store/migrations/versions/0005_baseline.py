"""Baseline: the schema executors wrote before Alembic (their ``PRAGMA user_version`` 5).

Executions, task runs, attempts, log chunks (and the ``log_lines`` view), resumes and KV; the
server's flows, queue and triggers; the workers' dispatch, runs and heartbeats. Timestamps are
ISO-8601 text (they sort as text); JSON fields are text.

Revision ID: 0005
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from executor.store.dialect import LOG_LINES_VIEW

revision = "0005"
down_revision = None
branch_labels = None
depends_on = None

TEXT, INT = sa.Text, sa.Integer


def REAL() -> sa.types.TypeEngine[float]:
    """Double precision on PostgreSQL, REAL (its double) on SQLite as before Alembic."""
    return sa.Float().with_variant(sa.REAL(), "sqlite")


def BIGINT() -> sa.types.TypeEngine[int]:
    """64 bits on PostgreSQL; SQLite's INTEGER is already 64 bits."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


# SQLite's INTEGER PRIMARY KEY is its rowid; PostgreSQL gets a BIGSERIAL
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _required(name: str, kind: Any = TEXT) -> sa.Column[object]:
    return sa.Column(name, kind(), nullable=False)


def _optional(name: str, kind: Any = TEXT) -> sa.Column[object]:
    return sa.Column(name, kind(), nullable=True)


def upgrade() -> None:
    op.create_table(
        "executions",
        sa.Column("id", TEXT(), primary_key=True),
        _required("namespace"),
        _required("flow_id"),
        _required("state"),
        _required("start_date"),
        _optional("end_date"),
        _required("inputs"),
        _required("histories"),
        _required("images"),
        _required("labels"),
        _optional("reason"),
        _required("pid", INT),
        _required("pid_start"),
        _required("host"),
        sa.Column("extra", TEXT(), nullable=False, server_default="{}"),
    )
    op.create_index("executions_by_start", "executions", ["start_date"])
    op.create_index("executions_by_state", "executions", ["state"])
    op.create_table(
        "task_runs",
        sa.Column("id", TEXT(), primary_key=True),
        _required("execution_id"),
        _required("position", INT),
        _required("task_id"),
        _required("task_type"),
        _optional("parent_id"),
        _required("state"),
        _required("start_date"),
        _optional("end_date"),
        _optional("duration", REAL),
        _required("histories"),
        _required("outputs"),
        _required("metrics"),
        _required("output_files"),
        _optional("image_id"),
        _optional("reason"),
        _required("stderr_tail"),
        sa.Column("extra", TEXT(), nullable=False, server_default="{}"),
    )
    op.create_index("task_runs_by_execution", "task_runs", ["execution_id", "position"])
    op.create_table(
        "attempts",
        sa.Column("task_run_id", TEXT(), primary_key=True),
        sa.Column("number", INT(), primary_key=True, autoincrement=False),
        _required("state"),
        _required("start_date"),
        _optional("end_date"),
        _optional("duration", REAL),
        _optional("exit_code", INT),
        _required("oom_killed", INT),
        _optional("reason"),
        _required("histories"),
    )
    op.create_table(
        "log_chunks",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        _required("execution_id"),
        _optional("task_id"),
        _optional("task_run_id"),
        _optional("attempt", INT),
        _required("stream"),
        _required("level"),
        _required("lines", INT),
        sa.Column("first_ts_us", BIGINT(), nullable=False),
        _required("ts_us"),
        _required("messages"),
    )
    op.create_index("log_chunks_by_execution", "log_chunks", ["execution_id", "id"])
    op.create_table(
        "resumes",
        sa.Column("execution_id", TEXT(), primary_key=True),
        _required("inputs"),
        _required("requested"),
    )
    op.create_table(
        "kv",
        sa.Column("namespace", TEXT(), primary_key=True),
        sa.Column("key", TEXT(), primary_key=True),
        _required("type"),
        _required("value"),
        _optional("description"),
        _required("updated"),
        _optional("expires"),
    )
    op.execute(LOG_LINES_VIEW[op.get_bind().dialect.name])
    _server_tables()
    _worker_tables()


def _server_tables() -> None:
    op.create_table(
        "flows",
        sa.Column("namespace", TEXT(), primary_key=True),
        sa.Column("id", TEXT(), primary_key=True),
        sa.Column("revision", INT(), primary_key=True, autoincrement=False),
        _required("source"),
        sa.Column("deleted", INT(), nullable=False, server_default=sa.text("0")),
        _required("updated"),
    )
    op.create_table(
        "queue",
        sa.Column("seq", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("execution_id", TEXT(), nullable=False, unique=True),
        _required("namespace"),
        _required("flow_id"),
        _optional("revision", INT),
        _required("inputs"),
        _required("labels"),
        _optional("trigger"),
        _required("submitted"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "triggers",
        sa.Column("namespace", TEXT(), primary_key=True),
        sa.Column("flow_id", TEXT(), primary_key=True),
        sa.Column("trigger_id", TEXT(), primary_key=True),
        _required("type"),
        _optional("cron"),
        _required("signature"),
        _optional("last_date"),
        _optional("next_date"),
        _optional("last_execution_id"),
        sa.Column("disabled", INT(), nullable=False, server_default=sa.text("0")),
        _optional("stopped"),
        _required("since"),
    )


def _worker_tables() -> None:
    op.create_table(
        "dispatched",
        sa.Column("execution_id", TEXT(), primary_key=True),
        _required("queue"),
        _required("work"),
        _required("dispatched"),
    )
    op.create_table(
        "worker_runs",
        sa.Column("execution_id", TEXT(), primary_key=True),
        sa.Column("attempt", INT(), primary_key=True, autoincrement=False),
        _required("worker"),
        _required("claimed"),
        _optional("ended"),
        _optional("lost"),
    )
    op.create_table(
        "workers",
        sa.Column("name", TEXT(), primary_key=True),
        _required("host"),
        _required("engine_id"),
        _required("queues"),
        _required("labels"),
        _required("slots", INT),
        _required("running"),
        _required("started"),
        _required("last_seen"),
    )


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS log_lines")
    for table in (
        "workers",
        "worker_runs",
        "dispatched",
        "triggers",
        "queue",
        "flows",
        "kv",
        "resumes",
        "log_chunks",
        "attempts",
        "task_runs",
        "executions",
    ):
        op.drop_table(table)
