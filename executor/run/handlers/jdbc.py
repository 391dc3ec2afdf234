"""``plugin-jdbc`` tasks on the host: DuckDB, SQLite, PostgreSQL, MySQL/MariaDB.

The JDBC ``url`` Kestra flows carry (``jdbc:postgresql://host:5432/db``) is turned into the
Python driver's connection: psycopg, PyMySQL, the ``sqlite3`` module, DuckDB. Results come back
as Kestra gives them: ``row`` (``FETCH_ONE``), ``rows`` (``FETCH``), ``uri`` of an Ion file
(``STORE``, streamed in batches of ``fetchSize``), with ``size``. The task's ``timeout`` and a
cancelled execution interrupt the running statement. DuckDB and SQLite files live in a private
working directory of the task run; DuckDB may read no file outside it.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from executor.errors import ExecutorError
from executor.flow.tasks_jdbc import (
    JdbcBatch,
    JdbcConnection,
    JdbcQueries,
    JdbcQuery,
    JdbcQueryTask,
    PostgresCopy,
    PostgresCopyIn,
    PostgresCopyOut,
    dialect_of,
)
from executor.model import Level, State
from executor.paths import safe_relative
from executor.run import ion
from executor.run.handlers.attempts import AttemptResult, Handler, with_attempts
from executor.run.handlers.bounds import need, plain, scratch, watchdog
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt
from executor.store.files.artifacts import write_file

DEFAULT_FETCH_SIZE = 10_000
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@dataclass
class Db:
    """One open connection and what its driver needs to run a statement."""

    dialect: str
    conn: Any
    workdir: Path
    interrupt: Any
    builtin: frozenset[str] = frozenset()  # DuckDB extensions already loaded

    def placeholder(self) -> str:
        return "%s" if self.dialect in ("postgresql", "mysql", "mariadb") else "?"


# ----- connecting


def _jdbc_url(task: JdbcConnection, job: HostJob) -> tuple[str, str]:
    dialect = dialect_of(str(getattr(task, "type", "")))
    url = job.text(task.url).strip() if task.url is not None else "jdbc:duckdb:"
    schemes = {"mysql": ("mysql", "mariadb"), "mariadb": ("mariadb", "mysql")}
    accepted = schemes.get(dialect, (dialect,))
    if not any(url.startswith(f"jdbc:{s}:") for s in accepted):
        raise TaskInputError(f"'url' must start with jdbc:{dialect}: (got {url.split('?')[0]!r})")
    return dialect, url.split(":", 2)[2]


def _local_file(rest: str, workdir: Path) -> Path | None:
    """A DuckDB/SQLite file named in the url, inside the task's working directory."""
    name = rest.split("?", 1)[0]
    if name in ("", ":memory:", "memory") or name.startswith(":memory:"):
        return None
    if name.startswith("//"):
        name = name[2:]
    try:
        relative = safe_relative(name.lstrip("./") if name.startswith("./") else name)
    except ExecutorError:
        raise TaskInputError(
            f"database file {name!r} must be a relative path: it lives in the task's "
            "working directory (give an existing database with 'sqliteFile' or 'databaseUri')"
        ) from None
    return workdir / Path(*relative.parts)


def _connect(task: JdbcConnection, job: HostJob, workdir: Path) -> Db:
    dialect, rest = _jdbc_url(task, job)
    user = job.text(task.username) if task.username is not None else None
    password = job.text(task.password) if task.password is not None else None
    if password:
        job.ctx.secrets.remember(password)
    timeout = job.deadline()
    if dialect == "postgresql":
        return _postgres(task, job, rest, user, password, workdir)
    if dialect in ("mysql", "mariadb"):
        return _mysql(job, dialect, rest, user, password, workdir, timeout)
    if dialect == "sqlite":
        path = _local_file(rest, workdir)
        conn = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
        conn.set_authorizer(_sqlite_guard(workdir))
        return Db(dialect, conn, workdir, conn.interrupt)
    duckdb = need("duckdb", "a DuckDB task")
    path = _local_file(rest, workdir)
    try:
        conn = duckdb.connect(str(path) if path else ":memory:")
        loaded = conn.execute(
            "SELECT extension_name FROM duckdb_extensions() WHERE loaded"
        ).fetchall()
        # Files outside the task's working directory stay out of reach of read_csv() & co.
        conn.execute("SET allowed_directories = ?", [[str(workdir)]])
        conn.execute("SET enable_external_access = false")
    except duckdb.Error as exc:
        raise TaskInputError(f"cannot open DuckDB {rest or ':memory:'}: {exc}") from None
    return Db(dialect, conn, workdir, conn.interrupt, frozenset(r[0] for r in loaded))


def _sqlite_guard(workdir: Path) -> Any:
    """Deny ATTACH of a file outside the task's working directory."""
    root = workdir.resolve()

    def check(action: int, arg1: str | None, *_: Any) -> int:
        if action == sqlite3.SQLITE_ATTACH and arg1 and arg1 != ":memory:":
            target = (root / arg1).resolve()
            if target != root and root not in target.parents:
                return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    return check


def _postgres(
    task: JdbcConnection,
    job: HostJob,
    rest: str,
    user: str | None,
    password: str | None,
    workdir: Path,
) -> Db:
    psycopg = need("psycopg", "a PostgreSQL task")
    parts = urlsplit(rest)
    query = dict(parse_qsl(parts.query))
    params: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": parts.port or 5432,
        "dbname": unquote(parts.path.lstrip("/")) or None,
        "user": user or query.pop("user", None),
        "password": password or query.pop("password", None),
        "connect_timeout": 10,
        "application_name": "executor",
    }
    mode = task.sslMode or query.pop("sslmode", None)
    if mode:
        params["sslmode"] = str(mode).lower().replace("_", "-")
    elif isinstance(task.ssl, bool) and task.ssl:
        params["sslmode"] = "require"
    for name, key in (("sslRootCert", "sslrootcert"), ("sslCert", "sslcert"), ("sslKey", "sslkey")):
        value = getattr(task, name)
        if value:
            pem = workdir / key
            pem.write_text(job.text(value))
            pem.chmod(0o600)
            params[key] = str(pem)
    if task.sslKeyPassword:
        params["sslpassword"] = job.text(task.sslKeyPassword)
        job.ctx.secrets.remember(params["sslpassword"])
    try:
        conn = psycopg.connect(**{k: v for k, v in params.items() if v is not None})
    except psycopg.Error as exc:
        raise TaskInputError(
            f"cannot connect to PostgreSQL at {_where(parts)}: {_one(exc)}"
        ) from None
    return Db("postgresql", conn, workdir, conn.cancel_safe)


def _mysql(
    job: HostJob,
    dialect: str,
    rest: str,
    user: str | None,
    password: str | None,
    workdir: Path,
    deadline: float | None,
) -> Db:
    pymysql = need("pymysql", "a MySQL/MariaDB task")
    parts = urlsplit(rest)
    query = dict(parse_qsl(parts.query))
    try:
        conn = pymysql.connect(
            host=parts.hostname or "localhost",
            port=parts.port or 3306,
            user=user or query.get("user"),
            password=password or query.get("password") or "",
            database=unquote(parts.path.lstrip("/")) or None,
            connect_timeout=10,
            autocommit=True,
            charset="utf8mb4",
            local_infile=True,
        )
    except pymysql.MySQLError as exc:
        raise TaskInputError(
            f"cannot connect to {dialect} at {_where(parts)}: {_one(exc)}"
        ) from None

    def interrupt() -> None:
        # KILL QUERY from a second connection: the first is busy with the statement.
        killer = pymysql.connect(
            host=parts.hostname or "localhost",
            port=parts.port or 3306,
            user=user or query.get("user"),
            password=password or query.get("password") or "",
            connect_timeout=5,
        )
        with killer, killer.cursor() as cur:
            cur.execute(f"KILL QUERY {int(conn.thread_id())}")

    return Db(dialect, conn, workdir, interrupt)


def _where(parts: Any) -> str:
    return f"{parts.hostname or 'localhost'}:{parts.port or ''}{parts.path}".replace(":/", "/")


def _one(exc: BaseException) -> str:
    return " ".join(str(exc).split())


# ----- statements


class _Same:
    """DuckDB's connection used as its own cursor; closing it leaves the connection open."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)

    def close(self) -> None:
        """The connection is closed once, by the task."""


def split_statements(sql: str) -> list[str]:
    """``sql`` cut at top-level ``;`` (not inside quotes, comments or ``$tag$`` bodies)."""
    statements, start, i, n = [], 0, 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in ("'", '"', "`"):
            end = i + 1
            while end < n:
                if sql[end] == ch:
                    if end + 1 < n and sql[end + 1] == ch:
                        end += 2
                        continue
                    break
                if sql[end] == "\\" and ch != '"':
                    end += 1
                end += 1
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch == "$" and (tag := re.match(r"\$[A-Za-z_]?\w*\$", sql[i:])):
            end = sql.find(tag.group(), i + len(tag.group()))
            i = n if end < 0 else end + len(tag.group())
        elif ch == ";":
            statements.append(sql[start:i])
            start = i = i + 1
        else:
            i += 1
    statements.append(sql[start:])
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    stripped = re.sub(r"--[^\n]*|/\*.*?\*/", "", statement, flags=re.S)
    return bool(stripped.strip())


def _bind(sql: str, params: dict[str, Any] | None, db: Db) -> tuple[str, list[Any] | None]:
    """Kestra's ``:name`` placeholders turned into the driver's, with values in order."""
    if not params:
        return sql, None
    values: list[Any] = []
    escaped = sql.replace("%", "%%") if db.placeholder() == "%s" else sql

    def swap(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in params:
            return found.group(0)
        values.append(params[name])
        return db.placeholder()

    return _PARAM.sub(swap, escaped), values


def _fetch_type(task: JdbcQueryTask, job: HostJob) -> str:
    if task.fetch:
        return "FETCH"
    if task.fetchOne:
        return "FETCH_ONE"
    if task.store:
        return "STORE"
    kind = job.text(task.fetchType).strip().upper()
    if kind not in ("FETCH", "FETCH_ONE", "STORE", "NONE"):
        raise TaskInputError(f"'fetchType' must be FETCH, FETCH_ONE, STORE or NONE, got {kind!r}")
    return kind


def _parameters(task: JdbcQueryTask, job: HostJob) -> dict[str, Any] | None:
    if task.parameters is None:
        return None
    return job.mapping(task.parameters, "parameters")


def _rows(cursor: Any, size: int) -> Iterator[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    while batch := cursor.fetchmany(size):
        for row in batch:
            yield dict(zip(names, row, strict=False))


_NO_ROWS = re.compile(
    r"\s*(CREATE|INSERT|UPDATE|DELETE|COPY|DROP|ALTER|ATTACH|DETACH|INSTALL|LOAD|SET|USE|BEGIN|"
    r"COMMIT|ROLLBACK|CHECKPOINT|EXPORT|IMPORT|TRUNCATE|VACUUM|ANALYZE)\b",
    re.I,
)


def _result(
    db: Db, cursor: Any, kind: str, job: HostJob, size: int, index: int | None, statement: str
) -> dict[str, Any] | None:
    """One statement's output by ``fetchType``; None when it returned no rows at all."""
    if cursor.description is None:
        return None
    if db.dialect == "duckdb" and _NO_ROWS.match(statement):
        return None  # DuckDB answers DDL and DML with a "Count" column; JDBC gives no result set
    if kind == "NONE":
        return {}
    if kind == "FETCH_ONE":
        first = next(_rows(cursor, 1), None)
        return {"row": plain(first), "size": 0 if first is None else 1}
    if kind == "FETCH":
        rows = [plain(r) for r in _rows(cursor, size)]
        return {"rows": rows, "size": len(rows)}
    count = 0

    def counted() -> Iterator[bytes]:
        nonlocal count
        for line in ion.write_rows(_rows(cursor, size)):
            count += 1
            yield line

    prefix = job.store_prefix()
    name = f"{job.task.id}{'' if index is None else f'-{index}'}.ion"
    job.artifacts().write(prefix, name, counted())
    return {"uri": job.artifacts().uri(prefix, name), "size": count}


_EXTENSION = re.compile(r"\s*(?:FORCE\s+)?(?:INSTALL|LOAD)\s+'?(\w+)'?\s*$", re.I)


def _builtin_extension(db: Db, statement: str) -> bool:
    """``INSTALL json``/``LOAD json`` of an extension built into DuckDB: nothing to do.

    Others would download or load code from disk, which this sandboxed DuckDB refuses.
    """
    found = _EXTENSION.match(statement) if db.dialect == "duckdb" else None
    return found is not None and found.group(1).lower() in db.builtin


def _execute(db: Db, cursor: Any, sql: str, params: list[Any] | None) -> None:
    if params is None:
        cursor.execute(sql)
    else:
        cursor.execute(sql, params)


def _cursor(db: Db, kind: str) -> Any:
    if db.dialect == "duckdb":
        return _Same(
            db.conn
        )  # a DuckDB cursor would be another connection, outside the transaction
    if db.dialect in ("mysql", "mariadb") and kind == "STORE":
        cursors = need("pymysql.cursors", "a MySQL/MariaDB task")
        return db.conn.cursor(cursors.SSCursor)  # streamed, not buffered
    return db.conn.cursor()


def _prepare(task: JdbcQueryTask, job: HostJob, workdir: Path) -> dict[str, Any]:
    """Kestra's ``inputFiles``/``sqliteFile``/``databaseUri``/``inputFile`` into the workdir."""
    extra: dict[str, Any] = {"workingDir": str(workdir)}
    if task.inputFiles is not None:
        job.write_input_files(task.inputFiles, workdir)
    for prop, fixed in (("sqliteFile", None), ("databaseUri", None), ("inputFile", "inputFile")):
        value = getattr(task, prop)
        if value is not None:
            uri = job.text(value).strip()
            _put(job, workdir, fixed or PurePosixPath(uri).name, uri)
            extra[prop] = str(workdir / (fixed or PurePosixPath(uri).name))
    if task.outputFiles:
        extra["outputFiles"] = {n: str(workdir / f"{n}") for n in task.outputFiles}
    return extra


def _put(job: HostJob, workdir: Path, name: str, content: Any) -> None:
    try:
        relative = safe_relative(name)
    except ExecutorError as exc:
        raise TaskInputError(f"'inputFiles': {exc.message}") from None
    with job.content(content) as fh:
        write_file(workdir, relative, fh)


def _database_file(task: JdbcQueryTask, job: HostJob, workdir: Path, extra: dict[str, Any]) -> Any:
    """``jdbc:duckdb:`` with ``databaseUri``, or SQLite's ``sqliteFile``: open that copy."""
    if task.sqliteFile is not None or task.databaseUri is not None:
        path = Path(extra.get("sqliteFile") or extra["databaseUri"])
        scheme = "sqlite" if task.sqliteFile is not None else "duckdb"
        return f"jdbc:{scheme}:{path.relative_to(workdir)}"
    return task.url


def _run_queries(task: JdbcQueryTask, job: HostJob) -> AttemptResult:
    kind = _fetch_type(task, job)
    params = _parameters(task, job)
    with scratch(job) as workdir:
        extra = _prepare(task, job, workdir)
        sql = job.ctx.renderer.render_value(task.sql, {**job.variables, **extra}, where=job.where)
        statements = split_statements(str(sql))
        if not statements:
            raise TaskInputError("'sql' has no statement")
        if isinstance(task, JdbcQuery) and len(statements) > 1:
            raise TaskInputError(
                "Query runs one SQL statement; use the Queries task to run several"
            )
        url = _database_file(task, job, workdir, extra)
        db = _connect(task.model_copy(update={"url": url}), job, workdir)
        size = job.integer(task.fetchSize, "fetchSize") or DEFAULT_FETCH_SIZE
        transaction = isinstance(task, JdbcQueries) and job.flag(task.transaction, "transaction")
        results: list[dict[str, Any]] = []
        with contextlib.closing(db.conn), watchdog(job, db.interrupt):
            try:
                _begin(db, transaction)
                for index, statement in enumerate(statements):
                    if _builtin_extension(db, statement):
                        continue
                    bound, values = _bind(statement, params, db)
                    cursor = _cursor(db, kind)
                    try:
                        _execute(db, cursor, bound, values)
                        slot = index if isinstance(task, JdbcQueries) else None
                        out = _result(db, cursor, kind, job, size, slot, statement)
                    finally:
                        cursor.close()
                    if out is not None:
                        results.append(out)
                if task.afterSQL:
                    after = _cursor(db, "NONE")
                    _execute(db, after, *_bind(job.text(task.afterSQL), params, db))
                    after.close()
                _commit(db)
            except Exception as exc:
                _rollback(db)
                if _is_driver_error(exc):
                    raise TaskInputError(f"SQL failed: {_one(exc)}") from None
                raise
        outputs: dict[str, Any] = {}
        if isinstance(task, JdbcQueries):
            outputs["outputs"] = [r for r in results if r]
        elif results:
            outputs.update(results[-1])
        files = _collect_files(task, job, workdir, extra, url)
        if files:
            outputs.update(files)
    job.log(Level.INFO, f"{len(statements)} statement(s) run on {db.dialect}")
    return AttemptResult(State.SUCCESS, outputs=outputs)


def _begin(db: Db, transaction: bool) -> None:
    if db.dialect == "postgresql":
        db.conn.autocommit = not transaction
    elif db.dialect in ("mysql", "mariadb"):
        db.conn.autocommit(not transaction)
    elif db.dialect == "sqlite":
        db.conn.isolation_level = "DEFERRED" if transaction else None
    elif transaction:
        db.conn.execute("BEGIN TRANSACTION")
    db.transaction = transaction  # type: ignore[attr-defined]


def _commit(db: Db) -> None:
    if getattr(db, "transaction", False) or db.dialect == "sqlite":
        db.conn.commit()


def _rollback(db: Db) -> None:
    if getattr(db, "transaction", False):
        with contextlib.suppress(Exception):
            db.conn.rollback()


def _is_driver_error(exc: Exception) -> bool:
    module = type(exc).__module__.split(".")[0]
    return module in ("psycopg", "pymysql", "sqlite3", "duckdb", "_duckdb") or isinstance(
        exc, sqlite3.Error
    )


def _collect_files(
    task: JdbcQueryTask, job: HostJob, workdir: Path, extra: dict[str, Any], url: str | None
) -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    prefix = job.store_prefix()
    artifacts = job.artifacts()
    if task.outputFiles:
        found = {}
        for name, path in extra["outputFiles"].items():
            if Path(path).is_file():
                with Path(path).open("rb") as fh:
                    artifacts.write(prefix, name, fh)
                found[name] = artifacts.uri(prefix, name)
        outputs["outputFiles"] = found
    if task.outputDbFile is not None and job.flag(task.outputDbFile, "outputDbFile"):
        rest = (url or "").split(":", 2)[2] if url else ""
        path = _local_file(rest, workdir) if rest else None
        if path is None or not path.is_file():
            raise TaskInputError("'outputDbFile' needs a database file in 'url' or 'sqliteFile'")
        with path.open("rb") as fh:
            artifacts.write(prefix, path.name, fh)
        outputs["databaseUri"] = artifacts.uri(prefix, path.name)
    return outputs


# ----- Batch, CopyIn, CopyOut


def _batch(task: JdbcBatch, job: HostJob) -> AttemptResult:
    chunk = job.integer(task.chunk, "chunk") or 1000
    source = job.text(task.from_).strip()
    columns = [job.text(c) for c in task.columns] if task.columns else None
    try:
        fh = job.artifacts().open(source)
    except ExecutorError as exc:
        raise TaskInputError(exc.message) from None
    with scratch(job) as workdir, contextlib.closing(fh):
        db = _connect(task, job, workdir)
        count = 0
        with contextlib.closing(db.conn), watchdog(job, db.interrupt):
            try:
                _begin(db, True)
                cursor = _cursor(db, "NONE")
                sql: str | None = job.text(task.sql) if task.sql else None
                pending: list[list[Any]] = []
                for row in ion.read_rows(fh):
                    values = _row_values(row, columns)
                    if sql is None:
                        sql = _insert(job.text(task.table), columns or list(row), db)
                    pending.append(values)
                    if len(pending) >= chunk:
                        cursor.executemany(_to_driver(sql, db), pending)
                        count += len(pending)
                        pending = []
                if pending and sql is not None:
                    cursor.executemany(_to_driver(sql, db), pending)
                    count += len(pending)
                cursor.close()
                db.conn.commit()
            except ion.IonError as exc:
                _rollback(db)
                raise TaskInputError(f"{source} is not an Ion file: {exc}") from None
            except Exception as exc:
                _rollback(db)
                if _is_driver_error(exc):
                    raise TaskInputError(f"SQL failed after {count} row(s): {_one(exc)}") from None
                raise
    job.log(Level.INFO, f"inserted {count} row(s)")
    return AttemptResult(State.SUCCESS, outputs={"rowCount": count, "updatedCount": count})


def _row_values(row: Any, columns: list[str] | None) -> list[Any]:
    if isinstance(row, dict):
        names = columns or list(row)
        return [row.get(c) for c in names]
    if isinstance(row, list):
        return row
    raise TaskInputError("each row of the file must be a struct or a list")


def _insert(table: str, columns: list[str], db: Db) -> str:
    if not re.fullmatch(r"[A-Za-z_][\w.]*", table):
        raise TaskInputError(f"'table' {table!r} is not a table name")
    quoted = ", ".join(_quote_name(c, db) for c in columns)
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({quoted}) VALUES ({marks})"  # noqa: S608 - names checked


def _quote_name(name: str, db: Db) -> str:
    q = "`" if db.dialect in ("mysql", "mariadb") else '"'
    return q + name.replace(q, q + q) + q


def _to_driver(sql: str, db: Db) -> str:
    """Kestra's ``?`` markers in the driver's style."""
    if db.placeholder() == "?":
        return sql
    return sql.replace("%", "%%").replace("?", "%s")


def _copy_sql(task: PostgresCopy, job: HostJob, query: str | None, direction: str) -> str:
    sql = ["COPY"]
    if query is None:
        if not task.table:
            raise TaskInputError("needs 'table'" + (" or 'sql'" if direction == "TO" else ""))
        sql.append(job.text(task.table))
        if task.columns:
            sql.append("(" + ", ".join(job.text(c) for c in task.columns) + ")")
    else:
        sql.append(f"({query})")
    sql.append("TO STDOUT" if direction == "TO" else "FROM STDIN")
    options = []
    fmt = job.text(task.format).strip().upper()
    if fmt not in ("TEXT", "CSV", "BINARY"):
        raise TaskInputError(f"'format' must be TEXT, CSV or BINARY, got {fmt!r}")
    if fmt != "TEXT":
        options.append(f"FORMAT {fmt}")
    for name, word in (("oids", "OIDS"), ("freeze", "FREEZE")):
        value = getattr(task, name)
        if value is not None and job.flag(value, name):
            options.append(word)
    for name, word in (("delimiter", "DELIMITER"), ("quote", "QUOTE"), ("escape", "ESCAPE")):
        value = getattr(task, name)
        if value is not None:
            options.append(f"{word} {_literal(_char(job.text(value), name))}")
    if task.nullString is not None:
        options.append(f"NULL {_literal(job.text(task.nullString))}")
    if task.header is not None:
        options.append("HEADER " + ("TRUE" if job.flag(task.header, "header") else "FALSE"))
    if task.forceQuote:
        names = [job.text(c) for c in task.forceQuote]
        options.append("FORCE_QUOTE " + ("*" if names == ["*"] else "(" + ", ".join(names) + ")"))
    for name, word in (("forceNotNull", "FORCE_NOT_NULL"), ("forceNull", "FORCE_NULL")):
        value = getattr(task, name)
        if value:
            options.append(f"{word} (" + ", ".join(job.text(c) for c in value) + ")")
    if task.encoding is not None:
        options.append(f"ENCODING {_literal(job.text(task.encoding))}")
    if options:
        sql.append("WITH (" + ", ".join(options) + ")")
    return " ".join(sql)


def _char(text: str, name: str) -> str:
    decoded = text.encode().decode("unicode_escape") if "\\" in text else text
    if len(decoded) != 1:
        raise TaskInputError(f"'{name}' must be one character, got {text!r}")
    return decoded


def _literal(text: str) -> str:
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _copy_in(task: PostgresCopyIn, job: HostJob) -> AttemptResult:
    source = job.text(task.from_).strip()
    sql = _copy_sql(task, job, None, "FROM")
    try:
        fh = job.artifacts().open(source)
    except ExecutorError as exc:
        raise TaskInputError(exc.message) from None
    with scratch(job) as workdir, contextlib.closing(fh):
        db = _connect(task, job, workdir)
        with contextlib.closing(db.conn), watchdog(job, db.interrupt):
            try:
                with db.conn.cursor() as cur:
                    with cur.copy(sql) as copy:
                        while block := fh.read(1024 * 1024):
                            copy.write(block)
                    count = cur.rowcount
                db.conn.commit()
            except Exception as exc:
                _rollback(db)
                if _is_driver_error(exc):
                    raise TaskInputError(f"COPY failed: {_one(exc)}") from None
                raise
    job.log(Level.INFO, f"copied {count} row(s) in")
    return AttemptResult(State.SUCCESS, outputs={"rowCount": count})


def _copy_out(task: PostgresCopyOut, job: HostJob) -> AttemptResult:
    query = job.text(task.sql).strip().rstrip(";") if task.sql else None
    sql = _copy_sql(task, job, query, "TO")
    prefix = job.store_prefix()
    name = f"{task.id}.{'csv' if 'FORMAT CSV' in sql else 'bin' if 'BINARY' in sql else 'txt'}"
    count = 0
    with scratch(job) as workdir:
        db = _connect(task, job, workdir)
        with contextlib.closing(db.conn), watchdog(job, db.interrupt):
            try:
                with db.conn.cursor() as cur:

                    def blocks() -> Iterator[bytes]:
                        with cur.copy(sql) as copy:
                            for block in copy:
                                yield bytes(block)

                    job.artifacts().write(prefix, name, blocks())
                    count = cur.rowcount
            except Exception as exc:
                if _is_driver_error(exc):
                    raise TaskInputError(f"COPY failed: {_one(exc)}") from None
                raise
    job.log(Level.INFO, f"copied {count} row(s) out")
    return AttemptResult(
        State.SUCCESS, outputs={"uri": job.artifacts().uri(prefix, name), "rowCount": count}
    )


query_attempt = host_attempt(_run_queries)
batch_attempt = host_attempt(_batch)
copy_in_attempt = host_attempt(_copy_in)
copy_out_attempt = host_attempt(_copy_out)


HANDLES: dict[type[Any], Handler[Any]] = {
    JdbcQuery: with_attempts(query_attempt),
    JdbcQueries: with_attempts(query_attempt),
    JdbcBatch: with_attempts(batch_attempt),
    PostgresCopyIn: with_attempts(copy_in_attempt),
    PostgresCopyOut: with_attempts(copy_out_attempt),
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
