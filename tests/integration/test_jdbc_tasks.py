"""plugin-jdbc tasks against real databases: PostgreSQL and MariaDB servers started for the
session, DuckDB and SQLite files, through ``executor run``."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration.helpers import cli
from tests.integration.host_flows import logs, run_json, state_of, task_run
from tests.mariadb import MariaDb, mariadb_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mariadb() -> Iterator[MariaDb]:
    with mariadb_server() as server:
        yield server


def _secret(**values: str) -> dict[str, str]:
    return {f"SECRET_{k}": base64.b64encode(v.encode()).decode() for k, v in values.items()}


def test_postgres_queries_store_copy_and_batch(
    home: Path, tmp_path: Path, postgres_url: str
) -> None:
    parts = urlsplit(postgres_url)
    jdbc = f"jdbc:postgresql://{parts.hostname}:{parts.port}{parts.path}"
    flow = f"""
        id: pg
        namespace: tests.jdbc
        pluginDefaults:
          - type: io.kestra.plugin.jdbc.postgresql
            values:
              url: {jdbc}
              username: {parts.username}
              password: "{{{{ secret('PG_PASSWORD') }}}}"
        tasks:
          - id: create
            type: io.kestra.plugin.jdbc.postgresql.Queries
            parameters:
              label: "it's 50% off"
            sql: |
              CREATE TABLE items (id int PRIMARY KEY, label text, price numeric(6,2), seen date);
              INSERT INTO items VALUES (1, :label, 9.50, DATE '2024-03-01'), (2, 'plain', 3, NULL);
              SELECT id, label, price, seen FROM items ORDER BY id;
            fetchType: STORE
          - id: csv
            type: io.kestra.plugin.serdes.csv.IonToCsv
            from: "{{{{ outputs.create.outputs[0].uri }}}}"
          - id: copy_in
            type: io.kestra.plugin.jdbc.postgresql.Queries
            sql: CREATE TABLE copied (id int, label text, price numeric(6,2), seen date)
          - id: load
            type: io.kestra.plugin.jdbc.postgresql.CopyIn
            from: "{{{{ outputs.csv.uri }}}}"
            table: copied
            format: CSV
            header: true
          - id: batch_table
            type: io.kestra.plugin.jdbc.postgresql.Query
            sql: CREATE TABLE batched (id int, label text, price numeric(6,2), seen date)
          - id: batch
            type: io.kestra.plugin.jdbc.postgresql.Batch
            from: "{{{{ outputs.create.outputs[0].uri }}}}"
            table: batched
            chunk: 1
          - id: out
            type: io.kestra.plugin.jdbc.postgresql.CopyOut
            sql: SELECT b.label FROM batched b JOIN copied c USING (id, label) ORDER BY id
            format: CSV
          - id: one
            type: io.kestra.plugin.jdbc.postgresql.Query
            sql: >-
              SELECT count(*) AS n, sum(price) AS total
              FROM copied WHERE seen IS NULL OR seen > :d
            parameters:
              d: "2024-01-01"
            fetchOne: true
    """
    env = _secret(PG_PASSWORD=parts.password or "")
    proc, execution = run_json(home, tmp_path, flow, env=env)
    assert proc.returncode == 0, proc.stderr + logs(home, execution)
    stored = task_run(execution, "create")["outputs"]["outputs"]
    assert stored == [{"uri": stored[0]["uri"], "size": 2}]
    assert task_run(execution, "load")["outputs"]["rowCount"] == 2
    assert task_run(execution, "batch")["outputs"]["rowCount"] == 2
    assert task_run(execution, "one")["outputs"]["row"] == {"n": 2, "total": 12.5}
    out = task_run(execution, "out")["outputs"]
    assert out["rowCount"] == 2
    got = home / "got.csv"
    fetched = cli(home, "storage", "get", out["uri"], str(got))
    assert fetched.returncode == 0, fetched.stderr
    assert got.read_text().splitlines() == [
        '"it\'s 50% off"',
        "plain",
    ] or got.read_text().splitlines() == [
        "it's 50% off",
        "plain",
    ]
    assert (parts.password or "x") not in logs(home, execution)


def test_mariadb_fetch_batch_and_a_failed_transaction_rolls_back(
    home: Path, tmp_path: Path, mariadb: MariaDb
) -> None:
    flow = f"""
        id: maria
        namespace: tests.jdbc
        pluginDefaults:
          - type: io.kestra.plugin.jdbc
            values:
              url: {mariadb.jdbc_url}
              username: {mariadb.user}
              password: "{{{{ secret('DB_PASSWORD') }}}}"
        tasks:
          - id: setup
            type: io.kestra.plugin.jdbc.mariadb.Queries
            sql: |
              CREATE TABLE orders (id int PRIMARY KEY, amount decimal(8,2), note varchar(40));
              INSERT INTO orders VALUES (1, 10.25, 'first'), (2, 4, NULL);
          - id: partial
            type: io.kestra.plugin.jdbc.mysql.Queries
            allowFailure: true
            sql: |
              INSERT INTO orders VALUES (3, 1, 'kept only if all pass');
              INSERT INTO orders VALUES (1, 1, 'duplicate key');
          - id: all
            type: io.kestra.plugin.jdbc.mariadb.Query
            sql: SELECT id, amount, note FROM orders ORDER BY id
            fetchType: STORE
          - id: copy_table
            type: io.kestra.plugin.jdbc.mariadb.Query
            sql: CREATE TABLE orders_copy LIKE orders
          - id: batch
            type: io.kestra.plugin.jdbc.mysql.Batch
            from: "{{{{ outputs.all.uri }}}}"
            sql: INSERT INTO orders_copy (id, amount, note) VALUES (?, ?, ?)
          - id: check
            type: io.kestra.plugin.jdbc.mariadb.Query
            sql: SELECT id, note FROM orders_copy WHERE amount > :min ORDER BY id
            parameters:
              min: 5
            fetchType: FETCH
    """
    proc, execution = run_json(home, tmp_path, flow, env=_secret(DB_PASSWORD=mariadb.password))
    assert proc.returncode == 0, proc.stderr + logs(home, execution)
    assert state_of(execution, "partial") == "WARNING"
    assert "Duplicate entry" in task_run(execution, "partial")["reason"]
    assert task_run(execution, "all")["outputs"]["size"] == 2  # order 3 was rolled back
    assert task_run(execution, "batch")["outputs"]["rowCount"] == 2
    assert task_run(execution, "check")["outputs"] == {
        "rows": [{"id": 1, "note": "first"}],
        "size": 1,
    }
    assert mariadb.password not in logs(home, execution)


def test_duckdb_and_sqlite_files_stay_in_the_task_directory(home: Path, tmp_path: Path) -> None:
    flow = """
        id: local
        namespace: tests.jdbc
        tasks:
          - id: duck
            type: io.kestra.plugin.jdbc.duckdb.Queries
            inputFiles:
              sales.csv: |
                region,amount
                eu,10
                us,5
                eu,2
            sql: |
              INSTALL json;
              LOAD json;
              CREATE TABLE s AS SELECT * FROM read_csv_auto('{{ workingDir }}/sales.csv');
              SELECT region, sum(amount) AS total FROM s GROUP BY region ORDER BY region;
            fetchType: FETCH
          - id: lite
            type: io.kestra.plugin.jdbc.sqlite.Queries
            url: jdbc:sqlite:app.db
            outputDbFile: true
            sql: |
              CREATE TABLE f (id INTEGER PRIMARY KEY, name TEXT);
              INSERT INTO f (name) VALUES ('x'), ('y');
              SELECT count(*) AS n FROM f;
            fetchType: FETCH_ONE
          - id: reopened
            type: io.kestra.plugin.jdbc.sqlite.Query
            url: jdbc:sqlite:app.db
            sqliteFile: "{{ outputs.lite.databaseUri }}"
            sql: SELECT group_concat(name) AS names FROM f
            fetchOne: true
          - id: escape
            type: io.kestra.plugin.jdbc.duckdb.Query
            allowFailure: true
            sql: SELECT * FROM read_csv_auto('/etc/passwd')
            fetchType: FETCH
    """
    proc, execution = run_json(home, tmp_path, flow)
    assert proc.returncode == 0, proc.stderr + logs(home, execution)
    assert task_run(execution, "duck")["outputs"]["outputs"] == [
        {"rows": [{"region": "eu", "total": 12}, {"region": "us", "total": 5}], "size": 2}
    ]
    assert task_run(execution, "lite")["outputs"]["outputs"] == [{"row": {"n": 2}, "size": 1}]
    assert task_run(execution, "reopened")["outputs"]["row"] == {"names": "x,y"}
    escape = task_run(execution, "escape")
    assert escape["state"]["current"] == "WARNING"
    assert "/etc/passwd" in escape["reason"] and "disabled by configuration" in escape["reason"]


def test_a_timeout_interrupts_a_running_statement(
    home: Path, tmp_path: Path, postgres_url: str
) -> None:
    parts = urlsplit(postgres_url)
    flow = f"""
        id: slow
        namespace: tests.jdbc
        tasks:
          - id: sleep
            type: io.kestra.plugin.jdbc.postgresql.Query
            url: jdbc:postgresql://{parts.hostname}:{parts.port}{parts.path}
            username: {parts.username}
            password: {parts.password}
            timeout: PT1S
            sql: SELECT pg_sleep(600)
    """
    proc, execution = run_json(home, tmp_path, flow)
    assert proc.returncode == 1
    assert state_of(execution, "sleep") == "FAILED"
    assert "timed out after" in task_run(execution, "sleep")["reason"]
