"""Alembic's environment: the store hands over its open connection, inside its transaction.

Run by :mod:`executor.store.migrations` (``config.attributes["connection"]``); there is no
``alembic.ini`` and no offline mode.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
context.run_migrations()
