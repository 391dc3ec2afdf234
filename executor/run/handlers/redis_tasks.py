"""``plugin-redis`` on the host: strings, lists and pub/sub through redis-py.

Values are text (``serdeType: STRING``) or JSON (``serdeType: JSON``), as Kestra stores them.
``ListPush`` and ``Publish`` take a list or a stored Ion file (``from``); ``ListPop`` writes what it
popped to an Ion file. Every call has socket timeouts bounded by the task's ``timeout``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from executor.errors import ExecutorError
from executor.flow.tasks_redis import (
    RedisDelete,
    RedisGet,
    RedisIncrement,
    RedisListPop,
    RedisListPush,
    RedisPublish,
    RedisSet,
    RedisTask,
)
from executor.model import Level, State
from executor.run import ion
from executor.run.handlers.attempts import AttemptResult, Handler, with_attempts
from executor.run.handlers.bounds import plain
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt
from executor.store.files.artifacts import SCHEME


def _client(task: RedisTask, job: HostJob) -> Any:
    import redis

    url = job.text(task.url).strip()
    if "@" in url:
        secret = url.split("@", 1)[0].rsplit(":", 1)[-1]
        if secret and not secret.startswith("//"):
            job.ctx.secrets.remember(secret)
    deadline = job.deadline()
    timeout = 30.0 if deadline is None else max(0.5, min(30.0, deadline - time.monotonic()))
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=10, socket_timeout=timeout)
    except ValueError as exc:
        raise TaskInputError(f"'url' is not a Redis URL: {exc}") from None


def _serde(task: RedisTask, job: HostJob) -> str:
    kind = job.text(task.serdeType).strip().upper()
    if kind not in ("STRING", "JSON"):
        raise TaskInputError(f"'serdeType' must be STRING or JSON, got {kind!r}")
    return kind


def _encode(value: Any, serde: str) -> str:
    if serde == "JSON":
        return json.dumps(plain(value))
    return value if isinstance(value, str) else json.dumps(plain(value))


def _decode(raw: bytes | None, serde: str) -> Any:
    if raw is None:
        return None
    text = raw.decode()
    if serde == "JSON":
        try:
            return json.loads(text)
        except ValueError:
            raise TaskInputError(f"the stored value is not JSON: {text[:80]!r}") from None
    return text


def _run(job: HostJob, what: str, fn: Any) -> Any:
    import redis

    try:
        return fn()
    except redis.RedisError as exc:
        raise TaskInputError(f"Redis {what} failed: {' '.join(str(exc).split())}") from None


def _get(task: RedisGet, job: HostJob) -> AttemptResult:
    key, serde = job.text(task.key), _serde(task, job)
    with _client(task, job) as client:
        raw = _run(job, f"GET {key}", lambda: client.get(key))
    if raw is None and job.flag(task.failedOnMissing, "failedOnMissing"):
        raise TaskInputError(f"no value at key {key!r} and 'failedOnMissing' is true")
    return AttemptResult(State.SUCCESS, outputs={"key": key, "data": _decode(raw, serde)})


def _set(task: RedisSet, job: HostJob) -> AttemptResult:
    key, serde = job.text(task.key), _serde(task, job)
    value = _encode(job.render(task.value), serde)
    opts = task.options
    args: dict[str, Any] = {
        "nx": opts.mustNotExist,
        "xx": opts.mustExist,
        "keepttl": opts.keepTtl,
        "get": job.flag(task.get, "get"),
    }
    if opts.expirationDuration is not None:
        args["px"] = int(opts.expirationDuration.total_seconds() * 1000)
    if opts.expirationDate is not None:
        from datetime import datetime

        try:
            stamp = datetime.fromisoformat(job.text(opts.expirationDate))
        except ValueError:
            raise TaskInputError("'options.expirationDate' is not an ISO date-time") from None
        args["pxat"] = int(stamp.timestamp() * 1000)
    with _client(task, job) as client:
        old = _run(job, f"SET {key}", lambda: client.set(key, value, **args))
    outputs = {"oldValue": old.decode()} if isinstance(old, bytes) else {}
    return AttemptResult(State.SUCCESS, outputs=outputs)


def _delete(task: RedisDelete, job: HostJob) -> AttemptResult:
    keys = job.render(task.keys)
    keys = [str(k) for k in (keys if isinstance(keys, list) else [keys])]
    with _client(task, job) as client:
        count = _run(job, "DEL", lambda: client.delete(*keys))
    if count < len(keys) and job.flag(task.failedOnMissingKey, "failedOnMissingKey"):
        raise TaskInputError(f"{len(keys) - count} of the keys did not exist")
    return AttemptResult(State.SUCCESS, outputs={"count": count})


def _increment(task: RedisIncrement, job: HostJob) -> AttemptResult:
    key = job.text(task.key)
    text = job.text(task.amount)
    try:
        amount: int | float = int(text)
    except ValueError:
        try:
            amount = float(text)
        except ValueError:
            raise TaskInputError(f"'amount' must be a number, got {text!r}") from None
    with _client(task, job) as client:
        if isinstance(amount, int):
            value = _run(job, f"INCRBY {key}", lambda: client.incrby(key, amount))
        else:
            value = _run(job, f"INCRBYFLOAT {key}", lambda: client.incrbyfloat(key, amount))
    return AttemptResult(State.SUCCESS, outputs={"key": key, "value": value})


def _values(task: RedisListPush | RedisPublish, job: HostJob) -> Iterator[Any]:
    rendered = job.render(task.from_)
    if isinstance(rendered, list):
        yield from rendered
        return
    text = str(rendered).strip()
    if text.startswith(f"{SCHEME}/"):
        try:
            fh = job.artifacts().open(text)
        except ExecutorError as exc:
            raise TaskInputError(exc.message) from None
        with fh:
            try:
                yield from ion.read_rows(fh)
            except ion.IonError as exc:
                raise TaskInputError(f"{text} is not an Ion file: {exc}") from None
        return
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = [text]
    yield from parsed if isinstance(parsed, list) else [parsed]


def _push(task: RedisListPush, job: HostJob) -> AttemptResult:
    key, serde = job.text(task.key), _serde(task, job)
    count = 0
    with _client(task, job) as client:
        batch: list[str] = []
        for value in _values(task, job):
            batch.append(_encode(value, serde))
            if len(batch) >= 1000:
                _run(job, f"RPUSH {key}", lambda b=batch: client.rpush(key, *b))
                count += len(batch)
                batch = []
        if batch:
            _run(job, f"RPUSH {key}", lambda: client.rpush(key, *batch))
            count += len(batch)
    job.log(Level.INFO, f"pushed {count} value(s) to {key}")
    return AttemptResult(State.SUCCESS, outputs={"count": count})


def _pop(task: RedisListPop, job: HostJob) -> AttemptResult:
    key, serde = job.text(task.key), _serde(task, job)
    per_call = job.integer(task.count, "count") or 100
    limit = job.integer(task.maxRecords, "maxRecords")
    until = time.monotonic() + task.maxDuration.total_seconds() if task.maxDuration else None
    count = 0

    def popped(client: Any) -> Iterator[Any]:
        nonlocal count
        while limit is None or count < limit:
            if until is not None and time.monotonic() > until:
                return
            want = per_call if limit is None else min(per_call, limit - count)
            values = _run(job, f"LPOP {key}", lambda w=want: client.lpop(key, w))
            if not values:
                return
            for raw in values:
                count += 1
                yield _decode(raw, serde)

    prefix = job.store_prefix()
    name = f"{task.id}.ion"
    with _client(task, job) as client:
        job.artifacts().write(prefix, name, ion.write_rows(popped(client)))
    job.log(Level.INFO, f"popped {count} value(s) from {key}")
    return AttemptResult(
        State.SUCCESS, outputs={"count": count, "uri": job.artifacts().uri(prefix, name)}
    )


def _publish(task: RedisPublish, job: HostJob) -> AttemptResult:
    channel, serde = job.text(task.channel), _serde(task, job)
    count = 0
    with _client(task, job) as client:
        for value in _values(task, job):
            message = _encode(value, serde)
            _run(job, f"PUBLISH {channel}", lambda m=message: client.publish(channel, m))
            count += 1
    return AttemptResult(State.SUCCESS, outputs={"count": count})


REDIS_ATTEMPTS = {
    RedisGet: host_attempt(_get),
    RedisSet: host_attempt(_set),
    RedisDelete: host_attempt(_delete),
    RedisIncrement: host_attempt(_increment),
    RedisListPush: host_attempt(_push),
    RedisListPop: host_attempt(_pop),
    RedisPublish: host_attempt(_publish),
}


HANDLES: dict[type[Any], Handler[Any]] = {
    **{kind: with_attempts(attempt) for kind, attempt in REDIS_ATTEMPTS.items()},
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
