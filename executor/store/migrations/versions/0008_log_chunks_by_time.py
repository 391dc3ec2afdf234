"""Log chunks by time: ``PurgeLogs`` and the server's retention find old lines without reading
every chunk.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("log_chunks_by_time", "log_chunks", ["first_ts_us", "id"])


def downgrade() -> None:
    op.drop_index("log_chunks_by_time", table_name="log_chunks")
