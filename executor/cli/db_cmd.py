"""``executor db current|upgrade``: the record store's schema revision, and migrating it now.

Every command migrates the store by itself when it opens it; ``upgrade`` is for an operator who
wants that done ahead of time (before starting servers and workers against PostgreSQL).
"""

from __future__ import annotations

import click

from executor.cli.context import AppContext, pass_app


@click.group("db")
def db() -> None:
    """The record store (SQLite in EXECUTOR_HOME, or EXECUTOR_DATABASE_URL)."""


@db.command("current")
@pass_app
def db_current(app: AppContext) -> None:
    """Where the records are, the schema revision they are at, and this executor's newest."""
    from executor.store.migrations import HEAD

    with app.stores().records.connect(migrate=False) as store:
        revision = store.schema_revision()
        where = store.where
    state = "up to date" if revision == HEAD else "will be migrated when opened"
    click.echo(f"{where}\nrevision {revision or 'none (empty or made before migrations)'}")
    click.echo(f"newest   {HEAD} ({state})")


@db.command("upgrade")
@pass_app
def db_upgrade(app: AppContext) -> None:
    """Migrate the record store to this executor's schema now."""
    records = app.stores().records
    with records.connect(migrate=False) as store:
        before = store.schema_revision()
    with records.connect() as store:
        after = store.schema_revision()
        where = store.where
    if before == after:
        click.echo(f"{where}: already at revision {after}")
    else:
        click.echo(f"{where}: migrated from revision {before or 'none'} to {after}")
