"""The workers' API (``/api/v1/worker/...``): how ``executor worker`` on another host runs an
execution without sharing a disk with the server. Same authentication as the rest of the API.

- ``POST /worker/heartbeat``: who the worker is and what it runs; answered with kills.
- ``POST /worker/executions/{id}/claim``: run it now (which attempt, the flow, the inputs),
  drop it, or wait (``store.workers.claim``).
- ``GET /worker/executions/{id}/inputs/{name}``: a FILE input's bytes.
- ``GET /worker/namespaces/{namespace}/archive``: a namespace's files, one tar.
- ``POST /worker/executions/{id}/records``: snapshots and log lines, in order (``store.wire``).
- ``PUT /worker/executions/{id}/artifacts/{path}``: an output file, streamed into the store.

Only the worker that holds the current attempt may report on it (409 otherwise: that worker was
declared lost and another one runs the execution now).
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from executor.errors import NotFoundError, UnsafePathError, UsageError
from executor.server.api.deps import open_store, queue_of, settings_of, worker_lapse
from executor.server.errors import Conflict
from executor.store.artifacts import ArtifactStore, inside, safe_relative, write_file
from executor.store.db import ExecutionRecord, Store, ts
from executor.store.flows import get_flow
from executor.store.wire import decode
from executor.store.workers import (
    WorkerInfo,
    claim,
    end_run,
    heartbeat,
    holds,
    list_workers,
    work_of,
)
from executor.workspace.namespaces import NamespaceStore

router = APIRouter(prefix="/worker", tags=["workers"])

SPOOL_BYTES = 1024 * 1024


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


def _uploads(request: Request) -> Path:
    return settings_of(request).home / "uploads"


def _is_upload(request: Request, value: str) -> bool:
    return value.startswith(str(_uploads(request)) + "/")


@router.get("/executions/{execution_id}/inputs/{name}")
def file_input(request: Request, execution_id: str, name: str) -> FileResponse:
    """The bytes of one FILE input of a dispatched execution."""
    with open_store(request) as store:
        work = work_of(store, execution_id)
    value = work.inputs.get(name) if work else None
    if value is None or not _is_upload(request, value):
        raise NotFoundError(f"execution {execution_id} has no FILE input {name!r}")
    path = Path(value)
    if not inside(_uploads(request) / execution_id, path) or not path.is_file():
        raise NotFoundError(f"the file of input {name!r} is gone from the server")
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
        store.write(writes)
        ended = any(
            isinstance(w, ExecutionRecord) and w.id == execution_id and w.end_date is not None
            for w in writes
        )
        if ended:
            end_run(store, execution_id, attempt)
    if ended:
        shutil.rmtree(_uploads(request) / execution_id, ignore_errors=True)
    return {"written": len(writes)}


@router.put("/executions/{execution_id}/artifacts/{path:path}")
async def artifact(request: Request, execution_id: str, path: str) -> dict[str, Any]:
    """Store one output file of the execution, streamed (spooled to disk past 1 MiB)."""
    settings = settings_of(request)
    rel = safe_relative(path)

    def check() -> None:
        with open_store(request) as store:
            _check_holder(store, execution_id, request)
            namespace = store.get_execution(execution_id).execution
        parts = [*namespace.namespace.split("."), namespace.flow_id, "executions", execution_id]
        if list(rel.parts[: len(parts)]) != parts or len(rel.parts) <= len(parts):
            raise UnsafePathError(f"{path} is not a file of execution {execution_id}")

    await run_in_threadpool(check)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        size = 0
        async for chunk in request.stream():
            spool.write(chunk)
            size += len(chunk)
        spool.seek(0)
        await run_in_threadpool(write_file, settings.artifacts_dir, rel, spool)
    return {"uri": ArtifactStore(settings.artifacts_dir).uri(rel.parent, rel.name), "size": size}
