"""Triggers: Flow triggers' events, fires and preconditions met; backfills; a trigger switched
off through the API.

- ``trigger_events``: executions whose end the server learned, and whether Flow triggers looked
  at them yet (taken oldest first; an end is never lost to a restart, nor looked at twice when
  it is told twice; kept a day);
- ``trigger_fires``: which upstream execution started which flow through which trigger (claimed
  before the execution is submitted, so an upstream end never starts a flow twice);
- ``trigger_marks``: the preconditions of a Flow trigger met so far in its time window;
- ``triggers.backfill``: a running backfill (JSON) and ``triggers.switched_off``: disabled through
  the API or the CLI, whatever the flow says.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TEXT = sa.Text


def upgrade() -> None:
    op.create_table(
        "trigger_events",
        sa.Column("execution_id", TEXT(), primary_key=True),
        sa.Column("ended", TEXT(), nullable=False),
        sa.Column("looked", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.create_index("trigger_events_by_end", "trigger_events", ["looked", "ended"])
    op.create_table(
        "trigger_fires",
        sa.Column("upstream_id", TEXT(), primary_key=True),
        sa.Column("namespace", TEXT(), primary_key=True),
        sa.Column("flow_id", TEXT(), primary_key=True),
        sa.Column("trigger_id", TEXT(), primary_key=True),
        sa.Column("execution_id", TEXT(), nullable=True),
        sa.Column("fired", TEXT(), nullable=False),
    )
    op.create_table(
        "trigger_marks",
        sa.Column("namespace", TEXT(), primary_key=True),
        sa.Column("flow_id", TEXT(), primary_key=True),
        sa.Column("trigger_id", TEXT(), primary_key=True),
        sa.Column("condition", TEXT(), primary_key=True),
        sa.Column("upstream_id", TEXT(), nullable=False),
        sa.Column("date", TEXT(), nullable=False),
    )
    op.add_column("triggers", sa.Column("backfill", TEXT(), nullable=True))
    op.add_column(
        "triggers",
        sa.Column("switched_off", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    with op.batch_alter_table("triggers") as table:
        table.drop_column("switched_off")
        table.drop_column("backfill")
    op.drop_table("trigger_marks")
    op.drop_table("trigger_fires")
    op.drop_index("trigger_events_by_end", "trigger_events")
    op.drop_table("trigger_events")
