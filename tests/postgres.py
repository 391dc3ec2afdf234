"""A real PostgreSQL for the tests: the one in EXECUTOR_TEST_DATABASE_URL, or one started here.

``scripts/run-tests.sh`` starts one (``scripts/ensure-postgres.sh``) and exports its URL; a test
run without it (``pytest tests/unit/store``) starts its own the same way and stops it at the end.
Every test gets a fresh database of a random name, dropped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "ensure-postgres.sh"


def _script(*args: str) -> dict[str, str]:
    out = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"ensure-postgres.sh {' '.join(args)}: {out.stderr.strip()}")
    return dict(line.split("=", 1) for line in out.stdout.split())


@dataclass(frozen=True)
class OwnPostgres:
    """A PostgreSQL server of one test's own, which the test may stop and start again."""

    admin_url: str
    directory: str

    def halt(self) -> None:
        """Stop the server (its data stays): an outage."""
        _script("halt", self.directory)

    def resume(self) -> None:
        """Start it again, on the same port; returns once it accepts connections."""
        _script("resume", self.directory)


@contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    """A PostgreSQL started for the caller alone (never the suite's shared one), removed after."""
    values = _script("start")
    server = OwnPostgres(values["EXECUTOR_TEST_DATABASE_URL"], values["EXECUTOR_TEST_PG_DIR"])
    try:
        yield server
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", server.directory], check=False)


@contextmanager
def postgres_server() -> Iterator[str]:
    """The admin URL of a running server (``.../postgres``), started when none is given."""
    given = os.environ.get("EXECUTOR_TEST_DATABASE_URL")
    if given:
        yield given
        return
    try:
        values = _script("start")
    except RuntimeError as exc:
        raise RuntimeError(f"could not start PostgreSQL for the tests: {exc}") from None
    try:
        yield values["EXECUTOR_TEST_DATABASE_URL"]
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", values["EXECUTOR_TEST_PG_DIR"]], check=False)


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """The URL of a new, empty database on the server of ``admin_url``, dropped afterwards."""
    from executor.store.dialect import forget, location_of

    name = f"executor_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        forget(location_of(url))
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
