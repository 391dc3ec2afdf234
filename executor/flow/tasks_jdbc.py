"""SQL tasks of Kestra's ``plugin-jdbc``: DuckDB, SQLite, PostgreSQL and MySQL/MariaDB.

``Query`` (one statement) and ``Queries`` (several, in one transaction), PostgreSQL's ``CopyIn`` and
``CopyOut``, and ``Batch`` (rows of an Ion file inserted in chunks). Properties are Kestra's,
deprecated flags (``fetch``, ``fetchOne``, ``store``) included; the README lists what is accepted
and not acted on.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from executor.flow.base import TaskBase

_P = "io.kestra.plugin.jdbc"
DIALECTS = ("duckdb", "sqlite", "postgresql", "mysql", "mariadb")
QUERY_TYPES = tuple(f"{_P}.{d}.Query" for d in DIALECTS)
QUERIES_TYPES = tuple(f"{_P}.{d}.Queries" for d in DIALECTS)
BATCH_TYPES = tuple(f"{_P}.{d}.Batch" for d in ("sqlite", "postgresql", "mysql", "mariadb"))
COPY_IN_TYPES = (f"{_P}.postgresql.CopyIn",)
COPY_OUT_TYPES = (f"{_P}.postgresql.CopyOut",)
JDBC_TYPES = QUERY_TYPES + QUERIES_TYPES + BATCH_TYPES + COPY_IN_TYPES + COPY_OUT_TYPES

FETCH_TYPES = Literal["FETCH", "FETCH_ONE", "STORE", "NONE"]
Flag = bool | str


def dialect_of(task_type: str) -> str:
    """``postgresql`` for ``io.kestra.plugin.jdbc.postgresql.Query``."""
    return task_type.split(".")[-2]


class JdbcConnection(TaskBase):
    """What every JDBC task has: Kestra's JDBC ``url`` and credentials, PostgreSQL's TLS."""

    url: str | None = None
    username: str | None = None
    password: str | None = None
    timeZoneId: str | None = None
    # PostgreSQL (PostgresConnectionInterface)
    ssl: Flag | None = None
    sslMode: Literal["DISABLE", "ALLOW", "PREFER", "REQUIRE", "VERIFY_CA", "VERIFY_FULL"] | None = (
        None
    )
    sslRootCert: str | None = None
    sslCert: str | None = None
    sslKey: str | None = None
    sslKeyPassword: str | None = None
    # Accepted and not acted on: one connection per task run here.
    connectionPooling: Flag | None = None
    connectionPoolSize: int | str | None = None

    @model_validator(mode="after")
    def _needs_url(self) -> JdbcConnection:
        kind = getattr(self, "type", "")
        if self.url is None and not kind.startswith(f"{_P}.duckdb."):
            raise ValueError("needs 'url' (Kestra's JDBC form, such as jdbc:postgresql://host/db)")
        return self


class JdbcQueryTask(JdbcConnection):
    """What ``Query`` and ``Queries`` share (Kestra's ``AbstractJdbcBaseQuery``)."""

    sql: str
    afterSQL: str | None = None
    parameters: dict[str, Any] | str | None = None
    fetchType: FETCH_TYPES | str = "NONE"
    fetchSize: int | str | None = None
    fetch: bool = False  # deprecated: fetchType FETCH
    fetchOne: bool = False  # deprecated: fetchType FETCH_ONE
    store: bool = False  # deprecated: fetchType STORE
    autoCommit: bool | None = None
    # DuckDB
    inputFiles: dict[str, Any] | str | None = None
    outputFiles: list[str] | None = None
    databaseUri: str | None = None
    outputDbFile: Flag | None = None
    communityExtensions: list[str] | None = None
    # SQLite
    sqliteFile: str | None = None
    # MySQL: a file for LOAD DATA LOCAL INFILE '{{ inputFile }}'
    inputFile: str | None = None


class JdbcQuery(JdbcQueryTask):
    """``Query``: one statement; ``row``/``rows``/``uri`` and ``size`` by ``fetchType``."""

    type: Literal[QUERY_TYPES]  # type: ignore[valid-type]


class JdbcQueries(JdbcQueryTask):
    """``Queries``: statements split on ``;``, one transaction; ``outputs`` lists each result."""

    type: Literal[QUERIES_TYPES]  # type: ignore[valid-type]
    transaction: Flag = True


class JdbcBatch(JdbcConnection):
    """``Batch``: the rows of an Ion file inserted with ``sql`` (``?`` per column), by ``chunk``."""

    type: Literal[BATCH_TYPES]  # type: ignore[valid-type]
    from_: str = Field(alias="from")
    sql: str | None = None
    table: str | None = None
    columns: list[str] | None = None
    chunk: int | str = 1000

    @model_validator(mode="after")
    def _sql_or_table(self) -> JdbcBatch:
        if self.sql is None and self.table is None:
            raise ValueError("needs 'sql' (an INSERT with one ? per column) or 'table'")
        return self


class PostgresCopy(JdbcConnection):
    """What ``CopyIn`` and ``CopyOut`` share (Kestra's ``AbstractCopy``): COPY's options."""

    table: str | None = None
    columns: list[str] | None = None
    format: Literal["TEXT", "CSV", "BINARY"] | str = "TEXT"
    oids: Flag | None = None
    freeze: Flag | None = None
    delimiter: str | None = None
    nullString: str | None = None
    header: Flag | None = None
    quote: str | None = None
    escape: str | None = None
    forceQuote: list[str] | None = None
    forceNotNull: list[str] | None = None
    forceNull: list[str] | None = None
    encoding: str | None = None
    socketTimeout: int | str | None = None


class PostgresCopyIn(PostgresCopy):
    """``CopyIn``: a stored file into ``table`` with ``COPY ... FROM STDIN``; ``rowCount``."""

    type: Literal[COPY_IN_TYPES]  # type: ignore[valid-type]
    from_: str = Field(alias="from")


class PostgresCopyOut(PostgresCopy):
    """``CopyOut``: ``sql`` (or ``table``) with ``COPY ... TO STDOUT`` into a file; ``uri``."""

    type: Literal[COPY_OUT_TYPES]  # type: ignore[valid-type]
    sql: str | None = None
