"""Odoo's ``Query``: one model call over XML-RPC, from the host, as Kestra's plugin-odoo makes it.

First ``authenticate(db, username, password, {})`` on ``{url}/xmlrpc/2/common`` (a user id, or
false for a refused login), then ``execute_kw(db, uid, password, model, method, args[, kwargs])``
on ``{url}/xmlrpc/2/object``, ``kwargs`` only when there is one (``fields``, ``limit``,
``offset``). Python's ``xmlrpc.client`` speaks the protocol; each call is bounded by the task's
``timeout`` (else five minutes of silence), a size cap on the answer, and a cancelled execution
closes the connection. ``STORE`` writes the records to an Ion file, one row a line.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
import xmlrpc.client
from collections.abc import Iterator
from typing import Any
from xml.parsers.expat import ExpatError

from executor.flow.tasks_odoo import FETCH_TYPES, ODOO_OPERATIONS, OdooQuery
from executor.model import Level, State
from executor.run import ion
from executor.run.handlers.attempts import AttemptFn, AttemptResult, Handler, with_attempts
from executor.run.handlers.bounds import plain, watchdog
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt
from executor.run.http import DEFAULT_READ_TIMEOUT

MAX_ANSWER = 64 * 1024 * 1024  # one XML-RPC answer larger than this is refused, not parsed
_CHUNK = 64 * 1024


class _TooLarge(Exception):
    pass


class _Bounded:
    """What the plain and the TLS transport add: a socket timeout, a size cap, no gzip, and a
    list of open connections a watchdog can close."""

    accept_gzip_encoding = False  # a compressed answer would slip past the size cap

    def __init__(self, timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.timeout = timeout
        self.opened: list[http.client.HTTPConnection] = []

    def make_connection(self, host: Any) -> Any:
        conn: http.client.HTTPConnection = super().make_connection(host)  # type: ignore[misc]
        conn.timeout = self.timeout
        self.opened.append(conn)
        return conn

    def parse_response(self, response: http.client.HTTPResponse) -> Any:
        parser, unmarshaller = self.getparser()  # type: ignore[attr-defined]
        total = 0
        while chunk := response.read(_CHUNK):
            total += len(chunk)
            if total > MAX_ANSWER:
                raise _TooLarge
            parser.feed(chunk)
        response.close()
        parser.close()
        return unmarshaller.close()

    def interrupt(self) -> None:
        for conn in self.opened:
            if conn.sock is not None:
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_RDWR)


class _Plain(_Bounded, xmlrpc.client.Transport):
    pass


class _Tls(_Bounded, xmlrpc.client.SafeTransport):
    pass


class _Odoo:
    """One authenticated conversation with a server: its endpoints and the user id."""

    def __init__(self, job: HostJob, url: str, db: str, password: str) -> None:
        self.job, self.url, self.db, self.password = job, url, db, password
        self.uid: int | None = None
        self.transports: list[_Bounded] = []

    def _proxy(self, endpoint: str) -> tuple[xmlrpc.client.ServerProxy, _Bounded]:
        deadline = self.job.deadline()
        timeout = DEFAULT_READ_TIMEOUT
        if deadline is not None:
            timeout = max(0.1, min(timeout, deadline - time.monotonic()))
        transport: _Bounded = (
            _Tls(timeout, use_builtin_types=True)
            if self.url.lower().startswith("https://")
            else _Plain(timeout, use_builtin_types=True)
        )
        self.transports.append(transport)
        proxy = xmlrpc.client.ServerProxy(
            endpoint,
            transport=transport,  # type: ignore[arg-type]
            allow_none=True,
            use_builtin_types=True,
        )
        return proxy, transport

    def interrupt(self) -> None:
        for transport in self.transports:
            transport.interrupt()

    def call(self, endpoint: str, method: str, what: str, *params: Any) -> Any:
        url = f"{self.url}/xmlrpc/2/{endpoint}"
        proxy, transport = self._proxy(url)
        try:
            with proxy:
                return getattr(proxy, method)(*params)
        except xmlrpc.client.Fault as fault:
            raise TaskInputError(f"Odoo refused {what}: {_fault_words(fault)}") from None
        except xmlrpc.client.ProtocolError as exc:
            raise TaskInputError(
                f"Odoo answered {exc.errcode} {exc.errmsg} at {url} ({what})"
            ) from None
        except _TooLarge:
            raise TaskInputError(
                f"Odoo's answer to {what} is larger than {MAX_ANSWER // (1024 * 1024)} MB"
            ) from None
        except (ExpatError, xmlrpc.client.ResponseError):
            raise TaskInputError(f"the answer at {url} is not XML-RPC (is 'url' Odoo's?)") from None
        except TimeoutError:
            raise TaskInputError(
                f"Odoo sent nothing for {transport.timeout:g}s at {url} ({what})"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise TaskInputError(f"cannot reach Odoo at {url}: {_reason(exc)}") from None

    def authenticate(self, username: str) -> None:
        what = f"the login of '{username}' to database '{self.db}'"
        uid = self.call("common", "authenticate", what, self.db, username, self.password, {})
        if isinstance(uid, bool) or not isinstance(uid, int):
            raise TaskInputError(
                f"Odoo refused {what}: wrong login or password (authenticate returned "
                f"{json.dumps(uid)})"
            )
        self.uid = uid

    def execute_kw(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        params: list[Any] = [self.db, self.uid, self.password, model, method, args]
        if kwargs:
            params.append(kwargs)
        return self.call("object", "execute_kw", f"{method} on {model}", *params)


def _fault_words(fault: xmlrpc.client.Fault) -> str:
    """The last line of Odoo's fault (its traceback ends with the error itself)."""
    lines = [line.strip() for line in str(fault.faultString).splitlines() if line.strip()]
    said = lines[-1] if lines else f"fault {fault.faultCode}"
    return said[:300] + ("..." if len(said) > 300 else "")


def _reason(exc: BaseException) -> str:
    return (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)[:200]


# ----- properties


def _list(value: Any, job: HostJob, name: str) -> list[Any]:
    rendered = job.render(value)
    if isinstance(rendered, str):
        try:
            rendered = json.loads(rendered) if rendered.strip() else []
        except ValueError:
            raise TaskInputError(f"'{name}' is not a list: {rendered!r}") from None
    if not isinstance(rendered, list):
        raise TaskInputError(f"'{name}' is not a list: {rendered!r}")
    return rendered


def _ids(task: OdooQuery, job: HostJob, operation: str) -> list[int]:
    raw = _list(task.ids, job, "ids") if task.ids is not None else []
    ids = []
    for value in raw:
        try:
            ids.append(int(value))
        except (TypeError, ValueError):
            raise TaskInputError(f"'ids' must be whole numbers, got {value!r}") from None
    if not ids:
        raise TaskInputError(f"IDs are required for {operation.lower()} operation ('ids')")
    return ids


def _values(task: OdooQuery, job: HostJob, operation: str) -> dict[str, Any]:
    rendered = job.render(task.values) if task.values is not None else {}
    if isinstance(rendered, str):
        try:
            rendered = json.loads(rendered) if rendered.strip() else {}
        except ValueError:
            raise TaskInputError(f"'values' is not a map: {rendered!r}") from None
    if not isinstance(rendered, dict):
        raise TaskInputError(f"'values' is not a map: {rendered!r}")
    if not rendered:
        raise TaskInputError(f"Values are required for {operation.lower()} operation ('values')")
    return {str(k): v for k, v in rendered.items()}


def _paging(task: OdooQuery, job: HostJob, with_fields: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if with_fields and task.fields is not None:
        fields = [str(f) for f in _list(task.fields, job, "fields")]
        if fields:
            kwargs["fields"] = fields
    for name in ("limit", "offset"):
        number = job.integer(getattr(task, name), name)
        if number is not None:
            kwargs[name] = number
    return kwargs


# ----- the task


def _query(task: OdooQuery, job: HostJob) -> AttemptResult:
    url = job.text(task.url).strip().rstrip("/")
    if not url.lower().startswith(("http://", "https://")):
        raise TaskInputError(f"'url' must be an http:// or https:// URL, got {url!r}")
    db, username, password = job.text(task.db), job.text(task.username), job.text(task.password)
    job.ctx.secrets.remember(password)
    model = job.text(task.model).strip()
    operation = job.text(task.operation).strip().upper()
    fetch = job.text(task.fetchType).strip().upper() or "NONE"
    if operation not in ODOO_OPERATIONS:
        raise TaskInputError(f"'operation' must be one of {', '.join(ODOO_OPERATIONS)}")
    if fetch not in FETCH_TYPES:
        raise TaskInputError(f"'fetchType' must be one of {', '.join(FETCH_TYPES)}, got {fetch!r}")
    odoo = _Odoo(job, url, db, password)
    job.log(Level.INFO, f"connecting to Odoo at {url}, database {db}")
    with watchdog(job, odoo.interrupt):
        odoo.authenticate(username)
        job.log(Level.INFO, f"authenticated as user {odoo.uid}; {operation} on {model}")
        outputs = _run(task, job, odoo, model, operation, fetch)
    job.log(Level.INFO, f"{operation} on {model}: {outputs['size']} record(s)")
    return AttemptResult(State.SUCCESS, outputs=outputs)


def _domain(task: OdooQuery, job: HostJob) -> list[Any]:
    return _list(task.filters, job, "filters") if task.filters is not None else []


def _run(
    task: OdooQuery, job: HostJob, odoo: _Odoo, model: str, operation: str, fetch: str
) -> dict[str, Any]:
    if operation == "SEARCH_COUNT":
        count = odoo.execute_kw(model, "search_count", [_domain(task, job)], {})
        return {"size": count if isinstance(count, int) and not isinstance(count, bool) else 0}
    if operation == "CREATE":
        created = odoo.execute_kw(model, "create", [_values(task, job, operation)], {})
        ids = [created] if isinstance(created, int) and not isinstance(created, bool) else None
        return {"size": 1, "ids": ids}
    if operation in ("WRITE", "UNLINK"):
        ids = _ids(task, job, operation)
        args: list[Any] = [ids, _values(task, job, operation)] if operation == "WRITE" else [ids]
        odoo.execute_kw(model, operation.lower(), args, {})
        return {"size": len(ids), "ids": ids}
    if operation == "READ":
        ids = _ids(task, job, operation)
        kwargs = {"fields": f} if (f := _paging(task, job, True).get("fields")) else {}
        rows = odoo.execute_kw(model, "read", [ids], kwargs)
    elif operation == "SEARCH_READ":
        rows = odoo.execute_kw(model, "search_read", [_domain(task, job)], _paging(task, job, True))
    else:  # SEARCH: ids, as rows of {"id": n}
        found = odoo.execute_kw(model, "search", [_domain(task, job)], _paging(task, job, False))
        rows = [{"id": i} for i in found] if isinstance(found, list) else found
    if not isinstance(rows, list):
        raise TaskInputError(f"Odoo answered {operation.lower()} on {model} with no list")
    return _fetched(job, rows, fetch)


def _fetched(job: HostJob, rows: list[Any], fetch: str) -> dict[str, Any]:
    if fetch == "NONE":
        return {"size": 0}
    if fetch == "FETCH_ONE":
        return {"size": 1 if rows else 0, "row": plain(rows[0]) if rows else None}
    if fetch == "FETCH":
        return {"size": len(rows), "rows": plain(rows)}
    uri = job.artifacts().write(job.store_prefix(), f"{job.task.id}.ion", _lines(rows))
    return {"size": len(rows), "uri": uri}


def _lines(rows: list[Any]) -> Iterator[bytes]:
    yield from ion.write_rows(rows)


ODOO_ATTEMPTS: dict[type[Any], AttemptFn[Any]] = {OdooQuery: host_attempt(_query)}


HANDLES: dict[type[Any], Handler[Any]] = {
    **{kind: with_attempts(attempt) for kind, attempt in ODOO_ATTEMPTS.items()},
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
