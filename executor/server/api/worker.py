"""The workers' API (``/api/v1/worker/...``): how ``executor worker`` on another host runs an
execution without sharing a disk with the server. Workers authenticate with a worker token, and
nothing else is accepted here (``server.auth``); the list of workers is the API users' one route.

- ``POST /worker/heartbeat``: who the worker is and what it runs; answered with kills.
- ``POST /worker/executions/{id}/claim``: run it now (which attempt, the flow, the inputs),
  drop it, or wait (``store.workers.claim``).
- ``GET /worker/executions/{id}/inputs/{name}``: a FILE input's bytes.
- ``GET /worker/artifacts?uri=kestra:///...``: a stored file (of another execution) that the
  execution the worker holds may read.
- ``GET /worker/flows/{namespace}/{id}``: a stored flow's source (for a Subflow task).
- ``POST /worker/executions/{id}/resume?paused=...``: a pending resume of a Pause it runs.
- ``GET /worker/namespaces/{namespace}/archive``: a namespace's files, one tar.
- ``POST /worker/executions/{id}/records``: snapshots and log lines, in order (``store.wire``).
- ``PUT /worker/executions/{id}/artifacts/{path}``: an output file, in parts under the body
  limit, streamed into the store.

Only the worker that holds the current attempt may report on it (409 otherwise: that worker was
declared lost and another one runs the execution now), and only on it and its subflows.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from executor.errors import NotFoundError, UnsafePathError, UsageError
from executor.server.api.deps import config_of, open_store, queue_of, settings_of, worker_lapse
from executor.server.errors import Conflict
from executor.store.artifacts import CHUNK, ArtifactStore, inside, safe_relative, write_file
from executor.store.db import Store
from executor.store.flows import get_flow
from executor.store.records import ExecutionRecord, ts
from executor.store.wire import decode
from executor.store.workers import (
    WorkerInfo,
    claim,
    descends_from,
    end_run,
    foreign_record,
    heartbeat,
    holds,
    list_workers,
    reader_in,
    work_of,
)
from executor.workspace.namespaces import NamespaceStore

router = APIRouter(prefix="/worker", tags=["workers"])

PART_BYTES = 8 * 1024 * 1024  # the largest part of a file a worker sends in one request


@router.post("/heartbeat")
def beat(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """Record a worker's heartbeat; the executions it runs that were asked to die."""
    try:
        info = WorkerInfo(
            name=str(body["name"]),
            host=str(body["host"]),
            engine_id=str(body["engine_id"]),
            queues=[str(q) for q in body["queues"]],
            labels=[str(x) for x in body["labels"]],
            slots=int(body["slots"]),
            running=[str(x) for x in body["running"]],
            started=str(body["started"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"heartbeat: {type(exc).__name__}: {exc}") from None
    with open_store(request) as store:
        heartbeat(store, info)
    dispatch = queue_of(request).dispatch
    return {"kill": dispatch.kills_among(info.running) if dispatch else []}


@router.get("/workers")
def workers(request: Request) -> list[dict[str, Any]]:
    """Every worker that heartbeated: host, engine, slots busy and free, what it runs."""
    lapse = worker_lapse(request)
    now = datetime.now(UTC)
    with open_store(request) as store:
        rows = list_workers(store)
    return [
        {
            "name": row.info.name,
            "host": row.info.host,
            "engineId": row.info.engine_id,
            "queues": row.info.queues,
            "labels": row.info.labels,
            "slots": row.info.slots,
            "busy": len(row.info.running),
            "free": max(row.info.slots - len(row.info.running), 0),
            "running": row.info.running,
            "started": row.info.started,
            "lastHeartbeat": ts(row.last_seen),
            "alive": now - row.last_seen <= lapse,
        }
        for row in rows
    ]


@router.post("/executions/{execution_id}/claim")
def claim_execution(request: Request, execution_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Whether the asking worker runs the execution now; with what it needs when it does."""
    worker = str(body.get("worker") or "")
    if not worker:
        raise UsageError("claim: 'worker' is required")
    with open_store(request) as store:
        answer = claim(store, execution_id, worker, worker_lapse(request))
        if answer.action != "run" or answer.work is None:
            return {"action": answer.action, "note": answer.note}
        work = answer.work
        stored = get_flow(store, work.namespace, work.flow_id, work.revision)
    if stored is None:
        raise NotFoundError(f"Flow '{work.namespace}.{work.flow_id}' not found")
    file_inputs = [name for name, value in work.inputs.items() if _is_upload(request, value)]
    return {
        "action": "run",
        "attempt": answer.attempt,
        "partBytes": min(PART_BYTES, config_of(request).max_body_bytes),
        "allowHostOptions": config_of(request).allow_host_options,  # the server's rule, there
        "note": answer.note,
        "histories": answer.histories,
        "flow": {"source": stored.source, "revision": stored.revision},
        "work": {
            "namespace": work.namespace,
            "flow_id": work.flow_id,
            "revision": stored.revision,
            "inputs": {k: v for k, v in work.inputs.items() if k not in file_inputs},
            "file_inputs": {k: Path(work.inputs[k]).name for k in file_inputs},
            "labels": work.labels,
            "trigger": work.trigger,
            "submitted": work.submitted,
        },
    }


@router.get("/flows/{namespace}/{flow_id}")
def flow_source(
    request: Request, namespace: str, flow_id: str, revision: int | None = None
) -> dict[str, Any]:
    """A stored flow's source: the flow a Subflow task names, run by the worker."""
    with open_store(request) as store:
        stored = get_flow(store, namespace, flow_id, revision)
    if stored is None:
        asked = f" at revision {revision}" if revision is not None else ""
        raise NotFoundError(f"Flow '{namespace}.{flow_id}' not found{asked}")
    return {"source": stored.source, "revision": stored.revision}


@router.post("/executions/{execution_id}/resume")
def take_resume(request: Request, execution_id: str, paused: str) -> dict[str, Any]:
    """The resume asked through ``POST /executions/{paused}/resume`` for a Pause that the
    worker runs (in the execution, or in one of its subflows); ``inputs`` null while none."""
    with open_store(request) as store:
        _check_holder(store, execution_id, request)
        if not descends_from(store, paused, execution_id, None):
            raise Conflict(f"execution {paused} is not run by execution {execution_id}")
        return {"inputs": store.take_resume(paused)}


def _uploads(request: Request) -> Path:
    return settings_of(request).home / "uploads"


def _is_upload(request: Request, value: str) -> bool:
    return value.startswith(str(_uploads(request)) + "/")


@router.get("/executions/{execution_id}/inputs/{name}")
def file_input(request: Request, execution_id: str, name: str) -> FileResponse:
    """The bytes of one FILE input of the execution the worker runs."""
    with open_store(request) as store:
        _check_holder(store, execution_id, request)
        work = work_of(store, execution_id)
    value = work.inputs.get(name) if work else None
    if value is None or not _is_upload(request, value):
        raise NotFoundError(f"execution {execution_id} has no FILE input {name!r}")
    path = Path(value)
    if not inside(_uploads(request) / execution_id, path) or not path.is_file():
        raise NotFoundError(f"the file of input {name!r} is gone from the server")
    return FileResponse(path, media_type="application/octet-stream", filename=path.name)


@router.get("/artifacts")
def stored_file(
    request: Request, uri: str, execution: str, reader: str | None = None
) -> FileResponse:
    """A file of the artifact store by its ``kestra:///`` URI (another execution's output that
    a worker's run reads: a FILE input, ``read()``, ``inputFiles``), for the execution the
    worker holds (or one of its subflows: ``reader``), under the rule its tasks follow
    (its own files, its parent's, its namespace's)."""
    with open_store(request) as store:
        _check_holder(store, execution, request)
        found = reader_in(store, execution, reader or execution)
    if found is None:
        raise Conflict(f"execution {reader} is not run by execution {execution}")
    path = ArtifactStore(settings_of(request).artifacts_dir, found).path_of(uri)
    if path.is_symlink() or not path.is_file():
        raise NotFoundError(f"no artifact at {uri}")
    return FileResponse(path, media_type="application/octet-stream", filename=path.name)


@router.get("/namespaces/{namespace}/archive")
def namespace_archive(request: Request, namespace: str) -> FileResponse:
    """Every file of a namespace in one tar (404 when it has none)."""
    store = NamespaceStore(settings_of(request).namespaces_dir)
    files = list(store.files(namespace))
    spool = tempfile.NamedTemporaryFile(suffix=".tar", delete=False)  # noqa: SIM115
    with spool, tarfile.open(fileobj=spool, mode="w") as tar:
        for item in files:
            tar.add(item.host, arcname=item.path, recursive=False)
    return FileResponse(
        spool.name,
        media_type="application/x-tar",
        background=BackgroundTask(Path(spool.name).unlink, missing_ok=True),
    )


def _check_holder(store: Store, execution_id: str, request: Request) -> int:
    worker = request.query_params.get("worker", "")
    try:
        attempt = int(request.query_params.get("attempt", ""))
    except ValueError:
        raise UsageError("'attempt' must be a number") from None
    if not holds(store, execution_id, worker, attempt):
        raise Conflict(
            f"worker {worker!r} does not run attempt {attempt} of execution {execution_id}"
            " (it was declared lost, or the execution ended)"
        )
    return attempt


@router.post("/executions/{execution_id}/records")
def records(request: Request, execution_id: str, body: list[Any]) -> dict[str, Any]:
    """Write a batch of a worker's snapshots and log lines, in the order sent."""
    writes = decode(body)
    with open_store(request) as store:
        attempt = _check_holder(store, execution_id, request)
        refused = foreign_record(store, execution_id, writes)
        if refused is not None:  # nothing of the batch is written
            raise Conflict(f"records of worker {request.query_params.get('worker')!r}: {refused}")
        store.write(writes)
        request.app.state.metrics.observe_writes(writes)
        ended = any(
            isinstance(w, ExecutionRecord) and w.id == execution_id and w.end_date is not None
            for w in writes
        )
        if ended:
            end_run(store, execution_id, attempt)
    if ended:
        shutil.rmtree(_uploads(request) / execution_id, ignore_errors=True)
        shutil.rmtree(_incoming(request) / execution_id, ignore_errors=True)
    return {"written": len(writes)}


def _incoming(request: Request) -> Path:
    return settings_of(request).home / "incoming"


def _owner_of_file(store: Store, rel: PurePosixPath, execution_id: str) -> bool:
    """Whether ``rel`` lies in the store directory of ``execution_id`` or of one of its
    subflows' executions (``<namespace as path>/<flow>/executions/<id>/...``)."""
    for at, part in enumerate(rel.parts[:-2]):
        if part != "executions":
            continue
        candidate = rel.parts[at + 1]
        if not descends_from(store, candidate, execution_id, None):
            continue
        found = store.get_execution(candidate).execution
        prefix = (*found.namespace.split("."), found.flow_id, "executions", candidate)
        if rel.parts[: len(prefix)] == prefix and len(rel.parts) > len(prefix):
            return True
    return False


def _int_param(request: Request, name: str) -> int:
    try:
        value = int(request.query_params.get(name, ""))
    except ValueError:
        raise UsageError(f"{name!r} must be a number") from None
    if value < 0:
        raise UsageError(f"{name!r} must not be negative")
    return value


@router.put("/executions/{execution_id}/artifacts/{path:path}")
async def artifact(request: Request, execution_id: str, path: str) -> dict[str, Any]:
    """One part of an output file of the execution (or of its subflows').

    A file travels as parts no larger than ``partBytes`` (the claim says how large: at most the
    server's body limit), each sent at its ``offset`` of the whole ``size``. Parts are appended
    to a file under ``incoming/``; a part sent again (a retry) overwrites from its offset. The
    last part brings the whole file's ``sha256``: the file enters the artifact store only when
    it matches, in one rename, so a reader never sees half of it.
    """
    settings = settings_of(request)
    rel = safe_relative(path)
    offset, size = _int_param(request, "offset"), _int_param(request, "size")
    digest = request.query_params.get("sha256", "")

    def check() -> Path:
        with open_store(request) as store:
            attempt = _check_holder(store, execution_id, request)
            if not _owner_of_file(store, rel, execution_id):
                raise UnsafePathError(f"{path} is not a file of execution {execution_id}")
        staged = _incoming(request).joinpath(execution_id, str(attempt), *rel.parts)
        staged.parent.mkdir(parents=True, exist_ok=True)
        have = staged.stat().st_size if staged.exists() else 0
        if offset > have:
            raise UsageError(f"{path}: a part at {offset} but only {have} bytes arrived")
        return staged

    staged = await run_in_threadpool(check)
    with staged.open("r+b" if staged.exists() else "wb") as out:
        out.seek(offset)
        out.truncate()
        async for chunk in request.stream():
            await run_in_threadpool(out.write, chunk)
        have = out.tell()
    if have > size:
        staged.unlink(missing_ok=True)
        raise UsageError(f"{path}: {have} bytes arrived, more than the {size} announced")
    if have < size:
        return {"received": have}

    def commit() -> None:
        try:
            if digest and _sha256(staged) != digest:
                raise UsageError(
                    f"{path}: the file arrived damaged (sha256 differs); send it again"
                )
            with staged.open("rb") as data:
                write_file(settings.artifacts_dir, rel, data)
        finally:
            staged.unlink(missing_ok=True)

    await run_in_threadpool(commit)
    uri = ArtifactStore(settings.artifacts_dir).uri(rel.parent, rel.name)
    return {"received": have, "uri": uri, "size": size}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while block := data.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()
