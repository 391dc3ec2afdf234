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
from pathlib import Path

import psycopg

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "ensure-postgres.sh"


@contextmanager
def postgres_server() -> Iterator[str]:
    """The admin URL of a running server (``.../postgres``), started when none is given."""
    given = os.environ.get("EXECUTOR_TEST_DATABASE_URL")
    if given:
        yield given
        return
    out = subprocess.run(
        ["bash", str(SCRIPT), "start"], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"could not start PostgreSQL for the tests: {out.stderr.strip()}")
    values = dict(line.split("=", 1) for line in out.stdout.split())
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
