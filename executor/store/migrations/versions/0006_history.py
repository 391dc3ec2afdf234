"""History that stays fast: indexes that serve the searches of a large history.

Every list of executions is newest first and filtered by flow, namespace or state, so each
filter gets an index that ends with ``start_date``: the index then yields the rows already in
order, and a page reads a page of index entries instead of sorting every match.

- ``executions_by_flow`` (namespace, flow_id, start_date): a flow's executions (its last one on
  the Flows page) and a namespace with the namespaces below it (a prefix range);
- ``executions_by_flow_state`` (namespace, flow_id, state, start_date): a state within a flow
  or a namespace (the state is a few percent of a flow's executions: without it in the index
  a page would read many rows to find a few);
- ``executions_by_flow_id`` (flow_id, start_date): the ``flowId`` filter alone;
- ``executions_by_state`` (state, start_date), in place of the index on state alone.

On SQLite each index ends with the rowid, the insertion-order tiebreak of the lists. On
PostgreSQL the tiebreak is the id, so every index ends with it; text is compared byte by byte
there (``COLLATE "C"``) where a range serves a prefix (namespaces, ``resolve_id``), since a
language collation does not keep a prefix's matches together; the flow indexes carry the state
(``INCLUDE``), so a state filter inside a flow or namespace reads no table rows.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

from executor.store.migrations.indexes import (
    HISTORY_POSTGRES_DOWN,
    HISTORY_POSTGRES_UP,
    HISTORY_SQLITE_DOWN,
    HISTORY_SQLITE_UP,
)

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _sqlite() -> bool:
    return bool(op.get_bind().dialect.name == "sqlite")


def upgrade() -> None:
    for statement in HISTORY_SQLITE_UP if _sqlite() else HISTORY_POSTGRES_UP:
        op.execute(statement)


def downgrade() -> None:
    for statement in HISTORY_SQLITE_DOWN if _sqlite() else HISTORY_POSTGRES_DOWN:
        op.execute(statement)
