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

What a run on a worker reaches of the server's stores, as the execution (``reader``: the held
one, or one of its subflows) that asks (:mod:`executor.worker.remote`):

- ``GET|PUT|DELETE /worker/executions/{id}/kv/{namespace}/{key}``, ``GET .../kv/{namespace}``:
  the KV store of the reader's namespace or of one below it (Kestra's rule; 403 otherwise).
- ``GET /worker/executions/{id}/logs?of=...``: log lines of an execution of the held family or
  of the reader's namespace (``log.Fetch``), a page at a time.
- ``GET /worker/executions/{id}/namespaces``, ``.../namespaces/{namespace}/paths``,
  ``.../file?path=``: namespace files; ``PUT .../files`` (a zip) and ``DELETE .../files?path=``
  change those of the reader's namespace or one below it, with the checks of the namespace-file
  API (paths, sizes, member count, clashes).

Only the worker that holds the current attempt may report on it or use its stores (409
otherwise: that worker was declared lost and another one runs the execution now), and only on
it and its subflows. Every body is a model of :mod:`executor.worker.protocol`. Routes that touch
the store are plain functions, which the web framework runs in its thread pool: the event loop
never waits for the database or the disk.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from executor import app as root
from executor.errors import NotFoundError, UnsafePathError, UsageError
from executor.names import check_namespace as check_space
from executor.server.api.deps import (
    config_of,
    open_store,
    queue_of,
    settings_of,
    stores_of,
    worker_lapse,
)
from executor.server.errors import Conflict, Forbidden
from executor.store.db import Store
from executor.store.files.artifacts import (
    CHUNK,
    Reader,
    inside,
    safe_relative,
)
from executor.store.flows import get_flow
from executor.store.kv import KeyExists, KvEntry, check_key, check_namespace
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
    may_use_namespace,
    namespace_of,
    reader_in,
    work_of,
)
from executor.worker.protocol import (
    ClaimAnswer,
    ClaimRequest,
    FlowSource,
    Heartbeat,
    HeartbeatAnswer,
    KvDeleted,
    KvFound,
    KvList,
    KvPut,
    KvPutAnswer,
    KvValue,
    LogLineBody,
    LogsPage,
    NamespacePaths,
    NamespacePushed,
    NamespaceRemoved,
    Namespaces,
    PartAnswer,
    RecordsAnswer,
    ResumeAnswer,
    Work,
    WorkerEntry,
)

router = APIRouter(prefix="/worker", tags=["workers"])

PART_BYTES = 8 * 1024 * 1024  # the largest part of a file a worker sends in one request


@router.post("/heartbeat")
def beat(request: Request, body: Heartbeat) -> HeartbeatAnswer:
    """Record a worker's heartbeat; the executions it runs that were asked to die."""
    info = WorkerInfo(
        name=body.name,
        host=body.host,
        engine_id=body.engine_id,
        queues=body.queues,
        labels=body.labels,
        slots=body.slots,
        running=body.running,
        started=body.started,
    )
    with open_store(request) as store:
        heartbeat(store, info)
    dispatch = queue_of(request).dispatch
    return HeartbeatAnswer(kill=dispatch.kills_among(info.running) if dispatch else [])


@router.get("/workers")
def workers(request: Request) -> list[WorkerEntry]:
    """Every worker that heartbeated: host, engine, slots busy and free, what it runs."""
    lapse = worker_lapse(request)
    now = datetime.now(UTC)
    with open_store(request) as store:
        rows = list_workers(store)
    return [
        WorkerEntry(
            name=row.info.name,
            host=row.info.host,
            engine_id=row.info.engine_id,
            queues=row.info.queues,
            labels=row.info.labels,
            slots=row.info.slots,
            busy=len(row.info.running),
            free=max(row.info.slots - len(row.info.running), 0),
            running=row.info.running,
            started=row.info.started,
            last_heartbeat=ts(row.last_seen),
            alive=now - row.last_seen <= lapse,
        )
        for row in rows
    ]


@router.post("/executions/{execution_id}/claim")
def claim_execution(request: Request, execution_id: str, body: ClaimRequest) -> ClaimAnswer:
    """Whether the asking worker runs the execution now; with what it needs when it does."""
    if not body.worker:
        raise UsageError("claim: 'worker' is required")
    with open_store(request) as store:
        answer = claim(store, execution_id, body.worker, worker_lapse(request))
        if answer.action != "run" or answer.work is None:
            return ClaimAnswer.model_validate({"action": answer.action, "note": answer.note})
        work = answer.work
        stored = get_flow(store, work.namespace, work.flow_id, work.revision)
        again = store.get_execution(execution_id).execution
        again_json = again.to_json() if root.runs_again(again) else None
    if stored is None:
        raise NotFoundError(f"Flow '{work.namespace}.{work.flow_id}' not found")
    file_inputs = [name for name, value in work.inputs.items() if _is_upload(request, value)]
    return ClaimAnswer(
        action="run",
        attempt=answer.attempt,
        part_bytes=min(PART_BYTES, config_of(request).max_body_bytes),
        allow_host_options=config_of(request).allow_host_options,  # the server's rule, there
        note=answer.note,
        histories=answer.histories or [],
        execution=again_json,
        flow=FlowSource(source=stored.source, revision=stored.revision),
        work=Work(
            namespace=work.namespace,
            flow_id=work.flow_id,
            revision=stored.revision,
            inputs={k: v for k, v in work.inputs.items() if k not in file_inputs},
            file_inputs={k: Path(work.inputs[k]).name for k in file_inputs},
            labels=work.labels,
            trigger=work.trigger,
            submitted=work.submitted,
        ),
    )


@router.get("/flows/{namespace}/{flow_id}")
def flow_source(
    request: Request, namespace: str, flow_id: str, revision: int | None = None
) -> FlowSource:
    """A stored flow's source: the flow a Subflow task names, run by the worker."""
    with open_store(request) as store:
        stored = get_flow(store, namespace, flow_id, revision)
    if stored is None:
        asked = f" at revision {revision}" if revision is not None else ""
        raise NotFoundError(f"Flow '{namespace}.{flow_id}' not found{asked}")
    return FlowSource(source=stored.source, revision=stored.revision)


@router.post("/executions/{execution_id}/resume")
def take_resume(request: Request, execution_id: str, paused: str) -> ResumeAnswer:
    """The resume asked through ``POST /executions/{paused}/resume`` for a Pause that the
    worker runs (in the execution, or in one of its subflows); ``inputs`` null while none."""
    with open_store(request) as store:
        _check_holder(store, execution_id, request)
        if not descends_from(store, paused, execution_id, None):
            raise Conflict(f"execution {paused} is not run by execution {execution_id}")
        return ResumeAnswer(inputs=store.take_resume(paused))


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
    path = stores_of(request).artifacts.for_reader(found).path_of(uri)
    if path.is_symlink() or not path.is_file():
        raise NotFoundError(f"no artifact at {uri}")
    return FileResponse(path, media_type="application/octet-stream", filename=path.name)


@router.get("/namespaces/{namespace}/archive")
def namespace_archive(request: Request, namespace: str) -> FileResponse:
    """Every file of a namespace in one tar (404 when it has none)."""
    store = stores_of(request).namespaces
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
def records(request: Request, execution_id: str, body: list[Any]) -> RecordsAnswer:
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
    return RecordsAnswer(written=len(writes))


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
async def artifact(request: Request, execution_id: str, path: str) -> PartAnswer:
    """One part of an output file of the execution (or of its subflows').

    A file travels as parts no larger than ``partBytes`` (the claim says how large: at most the
    server's body limit), each sent at its ``offset`` of the whole ``size``. Parts are appended
    to a file under ``incoming/``; a part sent again (a retry) overwrites from its offset. The
    last part brings the whole file's ``sha256``: the file enters the artifact store only when
    it matches, in one rename, so a reader never sees half of it.
    """
    artifacts = stores_of(request).artifacts
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
        return PartAnswer(received=have)

    def commit() -> str:
        try:
            if digest and _sha256(staged) != digest:
                raise UsageError(
                    f"{path}: the file arrived damaged (sha256 differs); send it again"
                )
            with staged.open("rb") as data:
                return artifacts.write(rel.parent, rel.name, data)
        finally:
            staged.unlink(missing_ok=True)

    uri = await run_in_threadpool(commit)
    return PartAnswer(received=have, uri=uri, size=size)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while block := data.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


# ----- the stores of the held execution, as the execution that asks (``reader``)

PAGE_CHUNKS = 200  # log chunks per page: up to 100,000 lines, the page's memory bounded


def _asking(store: Store, execution_id: str, request: Request) -> Reader:
    """The execution that asks (``reader``: the held one by default), checked: the worker
    holds ``execution_id`` now and the reader is it or one of its subflows (409 otherwise)."""
    _check_holder(store, execution_id, request)
    asked = request.query_params.get("reader") or execution_id
    found = reader_in(store, execution_id, asked)
    if found is None:
        raise Conflict(f"execution {asked} is not run by execution {execution_id}")
    return found


def _may_use(reader: Reader, namespace: str, what: str) -> None:
    """Kestra's rule for what a run changes or reads of a namespace: its own namespace's, and
    those of the namespaces below it (403 otherwise)."""
    if not may_use_namespace(reader, namespace):
        raise Forbidden(
            f"execution {reader.execution_id} of namespace {reader.namespace} may not use the"
            f" {what} of namespace {namespace}: a run on a worker uses its own namespace's and"
            " those of the namespaces below it"
        )


def _kv_value(entry: KvEntry) -> KvValue:
    return KvValue(
        namespace=entry.namespace,
        key=entry.key,
        type=entry.type,
        value=entry.value,
        description=entry.description,
        updated=entry.updated,
        expires=entry.expires,
    )


@router.get("/executions/{execution_id}/kv/{namespace}")
def kv_entries(
    request: Request, execution_id: str, namespace: str, prefix: str | None = None
) -> KvList:
    """The live KV entries of a namespace (those whose key starts with ``prefix``)."""
    with open_store(request) as store:
        _may_use(_asking(store, execution_id, request), check_namespace(namespace), "KV store")
    entries = stores_of(request).kv.entries(namespace, prefix)
    return KvList(entries=[_kv_value(e) for e in entries])


@router.get("/executions/{execution_id}/kv/{namespace}/{key}")
def kv_get(request: Request, execution_id: str, namespace: str, key: str) -> KvFound:
    """The live value of a key (``entry`` null when it has none)."""
    with open_store(request) as store:
        _may_use(_asking(store, execution_id, request), check_namespace(namespace), "KV store")
    entry = stores_of(request).kv.get(namespace, check_key(key))
    return KvFound(entry=_kv_value(entry) if entry is not None else None)


@router.put("/executions/{execution_id}/kv/{namespace}/{key}")
def kv_put(
    request: Request, execution_id: str, namespace: str, key: str, body: KvPut
) -> KvPutAnswer:
    """Set a key (``written`` false, with the reason, when ``overwrite`` is false and it has a
    value: the task fails as it would on the server)."""
    with open_store(request) as store:
        _may_use(_asking(store, execution_id, request), check_namespace(namespace), "KV store")
    ttl = timedelta(seconds=body.ttl_seconds) if body.ttl_seconds is not None else None
    try:
        stores_of(request).kv.put(
            namespace,
            check_key(key),
            body.type,
            body.value,
            description=body.description,
            ttl=ttl,
            overwrite=body.overwrite,
        )
    except KeyExists as exc:
        return KvPutAnswer(written=False, message=exc.message)
    return KvPutAnswer(written=True)


@router.delete("/executions/{execution_id}/kv/{namespace}/{key}")
def kv_delete(request: Request, execution_id: str, namespace: str, key: str) -> KvDeleted:
    """Remove a key; whether it had a live value."""
    with open_store(request) as store:
        _may_use(_asking(store, execution_id, request), check_namespace(namespace), "KV store")
    return KvDeleted(deleted=stores_of(request).kv.delete(namespace, check_key(key)))


@router.get("/executions/{execution_id}/logs")
def logs(request: Request, execution_id: str, of: str, after: int = 0) -> LogsPage:
    """A page of the log lines of execution ``of``: of the held execution's family, or of an
    execution of the reader's namespace (or one below it); none when ``of`` does not exist."""
    with open_store(request) as store:
        reader = _asking(store, execution_id, request)
        if not descends_from(store, of, execution_id, None):
            namespace = namespace_of(store, of)
            if namespace is None:
                return LogsPage(lines=[], after=None)
            _may_use(reader, namespace, "logs of execution " + of)
        page = store.logs(of, after=after, limit=PAGE_CHUNKS)
    return LogsPage(
        lines=[
            LogLineBody(
                timestamp=s.line.timestamp,
                task_id=s.line.task_id,
                task_run_id=s.line.task_run_id,
                attempt=s.line.attempt,
                stream=s.line.stream,
                level=s.line.level.value,
                message=s.line.message,
            )
            for s in page
        ],
        after=page[-1].row_id if page else None,
    )


@router.get("/executions/{execution_id}/namespaces")
def namespaces(request: Request, execution_id: str) -> Namespaces:
    """The namespaces with files that the reader may change (its own, those below it)."""
    with open_store(request) as store:
        reader = _asking(store, execution_id, request)
    found = stores_of(request).namespaces.namespaces()
    return Namespaces(namespaces=[n for n in found if may_use_namespace(reader, n)])


@router.get("/executions/{execution_id}/namespaces/{namespace}/paths")
def namespace_paths(request: Request, execution_id: str, namespace: str) -> NamespacePaths:
    """Every file of a namespace (read as the workers' archive reads them: any namespace)."""
    with open_store(request) as store:
        _asking(store, execution_id, request)
    files = stores_of(request).namespaces
    if not files.exists(check_space(namespace)):
        return NamespacePaths(exists=False, paths=[])
    return NamespacePaths(exists=True, paths=files.paths(namespace))


@router.get("/executions/{execution_id}/namespaces/{namespace}/file")
def namespace_file(request: Request, execution_id: str, namespace: str, path: str) -> FileResponse:
    """One namespace file's bytes (404 when there is none)."""
    with open_store(request) as store:
        _asking(store, execution_id, request)
    target = stores_of(request).namespaces.locate(namespace, str(safe_relative(path.lstrip("/"))))
    if not target.is_file():
        raise NotFoundError(f"namespace {namespace!r} has no file {path!r}")
    return FileResponse(target, media_type="application/octet-stream", filename=target.name)


@router.put("/executions/{execution_id}/namespaces/{namespace}/files")
async def namespace_push(
    request: Request, execution_id: str, namespace: str, prefix: str = "", replace: bool = False
) -> NamespacePushed:
    """A zip's files into a namespace of the reader's (under ``prefix``; ``replace``: they
    become its only files), checked as the namespace-file API checks an uploaded zip."""

    def check() -> None:
        with open_store(request) as store:
            _may_use(
                _asking(store, execution_id, request), check_space(namespace), "namespace files"
            )

    await run_in_threadpool(check)
    config = config_of(request)
    with tempfile.SpooledTemporaryFile(max_size=1024 * 1024) as archive:
        async for chunk in request.stream():  # under the body limit (the middleware's)
            await run_in_threadpool(archive.write, chunk)
        archive.seek(0)
        count = await run_in_threadpool(
            stores_of(request).namespaces.put_zip,
            namespace,
            prefix.strip("/"),
            archive,
            config.max_body_bytes * 10,
            config.limits.max_zip_members,
            replace=replace,
        )
    return NamespacePushed(copied=count, bytes=0)


@router.delete("/executions/{execution_id}/namespaces/{namespace}/files")
def namespace_remove(
    request: Request, execution_id: str, namespace: str, path: str
) -> NamespaceRemoved:
    """Remove a file or directory of a namespace of the reader's."""
    rel = path.strip("/")
    if not rel:
        raise UsageError("give the path to delete (?path=/dir/name)")
    with open_store(request) as store:
        _may_use(_asking(store, execution_id, request), check_space(namespace), "namespace files")
    return NamespaceRemoved(removed=stores_of(request).namespaces.remove(namespace, rel))
