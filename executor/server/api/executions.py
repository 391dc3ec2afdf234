"""Executions: create (multipart inputs), read, search, follow (SSE), kill, delete, resume, files.

Creating only queues: the execution is QUEUED on disk when the answer leaves, and a slot runs it
(``wait=true`` answers once it ended). ``follow`` speaks Kestra's server-sent events, tagged in
the ``id:`` field: ``start``, ``progress`` (the whole execution) on every change, ``end``.
"""

from __future__ import annotations

import asyncio
import codecs
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import StreamingResponse
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from executor.errors import NotFoundError, UnsafePathError, UsageError
from executor.model import Execution, State
from executor.run.resume_check import NotPaused, ResumeCheck, check_resume
from executor.server.api.deps import (
    follows_of,
    open_store,
    queue_of,
    stores_of,
    tenant_of,
)
from executor.server.errors import Conflict
from executor.server.follows import Backoff
from executor.server.kestra_json import execution_json
from executor.server.queue import Submission
from executor.store.files.artifacts import SCHEME
from executor.store.local import LocalRecords
from executor.store.queue import delete_execution
from executor.store.search import ExecutionFilter, search_executions

router = APIRouter(tags=["executions"])

POLL_SECONDS = 0.25
MAX_FORM_FIELDS = 1000
MAX_BULK = 1000


def read_execution(records: LocalRecords, execution_id: str) -> Execution:
    """The stored execution (raises NotFoundError, naming only the id)."""
    with records.connect() as store:
        try:
            return store.get_execution(execution_id).execution
        except NotFoundError:
            raise NotFoundError(f"Execution '{execution_id}' not found") from None


def parse_labels(pairs: list[str]) -> dict[str, str]:
    """Kestra's ``labels=key:value`` query parameters."""
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition(":")
        if not sep or not key:
            raise UsageError(f"label {pair!r} is not key:value")
        labels[key] = value
    return labels


async def _resume_form(request: Request) -> dict[str, str]:
    """The text fields of a resume request (multipart or urlencoded); files are not taken."""
    form = await request.form(max_fields=MAX_FORM_FIELDS, max_files=MAX_FORM_FIELDS)
    try:
        if any(isinstance(v, UploadFile) for _, v in form.multi_items()):
            raise UsageError("a resume takes text inputs only (FILE inputs cannot be sent here)")
        return {k: v for k, v in form.items() if isinstance(v, str)}
    finally:
        await form.close()


def _check_resume(request: Request, execution_id: str, given: dict[str, str]) -> ResumeCheck:
    """The resume checked against the paused execution (409 when it is not PAUSED)."""
    execution = read_execution(stores_of(request).records, execution_id)
    try:
        check = check_resume(execution, given)
    except NotPaused as exc:
        raise Conflict(f"Illegal state: {exc.message}") from None
    for spec in check.specs:
        if spec.type == "FILE" and spec.id in given:
            # a path would name a file of the server's host: never taken from a client
            raise UsageError(f"input '{spec.id}' (FILE) cannot be given to a resume here")
    return check


@router.post("/executions/{execution_id}/resume/validate")
async def validate_resume(request: Request, execution_id: str) -> dict[str, Any]:
    """Kestra's check of resume inputs: each ``onResume`` input with its value and errors."""
    given = await _resume_form(request)
    check = await run_in_threadpool(_check_resume, request, execution_id, given)
    execution = check.execution
    inputs = []
    for spec in check.specs:
        problem = check.problems.get(spec.id)
        inputs.append(
            {
                "input": spec.model_dump(mode="json", exclude_none=True),
                "value": check.values.get(spec.id),
                "enabled": True,
                "isDefault": spec.id not in given and spec.defaults is not None,
                "errors": [{"message": problem.message}] if problem else [],
            }
        )
    checks = [{"message": f"unknown input '{name}'"} for name in check.unknown]
    return {
        "id": execution.flow_id,
        "namespace": execution.namespace,
        "inputs": inputs,
        "checks": checks,
    }


@router.post("/executions/{execution_id}/resume", status_code=204)
async def resume(request: Request, execution_id: str) -> Response:
    """Let a PAUSED execution go on, with its Pause's ``onResume`` inputs (multipart): checked
    first (422 naming each bad input, 409 when not PAUSED), then asked of the paused run."""
    given = await _resume_form(request)

    def ask() -> None:
        check = _check_resume(request, execution_id, given)
        if not check.ok:
            raise UsageError(check.message())
        with open_store(request) as store:
            try:
                store.request_resume(execution_id, given)
            except UsageError as exc:
                raise Conflict(f"Illegal state: {exc.message}") from None

    await run_in_threadpool(ask)
    return Response(status_code=204)


@router.post("/executions/{execution_id}/restart")
async def restart(request: Request, execution_id: str) -> dict[str, Any]:
    """Run a FAILED or KILLED execution again, in itself: its failed task runs (a
    WorkingDirectory whole) as new attempts, the ones that ended well kept; 409 otherwise."""
    execution = await run_in_threadpool(queue_of(request).restart, execution_id)
    return execution_json(execution, tenant=tenant_of(request))


@router.post("/executions/restart/by-ids")
async def restart_by_ids(request: Request, ids: Annotated[list[str], Body()]) -> dict[str, Any]:
    """Restart several executions (a JSON list of ids): ``count`` restarted, and ``errors``
    naming each one that was not (unknown, or not FAILED/KILLED) and why."""
    if len(ids) > MAX_BULK:
        raise UsageError(f"at most {MAX_BULK} executions at once, not {len(ids)}")

    def restart_each() -> dict[str, Any]:
        errors: list[dict[str, str]] = []
        count = 0
        for execution_id in dict.fromkeys(ids):
            try:
                queue_of(request).restart(execution_id)
                count += 1
            except (Conflict, NotFoundError) as exc:
                errors.append({"id": execution_id, "message": exc.message})
        return {"count": count, "errors": errors}

    return await run_in_threadpool(restart_each)


@router.post("/executions/{execution_id}/replay")
async def replay(
    request: Request,
    execution_id: str,
    task_run_id: Annotated[str | None, Query(alias="taskRunId")] = None,
    revision: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    """A new execution that starts at ``taskRunId`` (from the start without it), the task
    runs before it copied with their outputs; ``originalId`` names the replayed one."""
    execution = await run_in_threadpool(
        queue_of(request).replay, execution_id, task_run_id, revision
    )
    return execution_json(execution, tenant=tenant_of(request))


# after the routes of one execution: /executions/{id}/restart is not a flow 'restart'
@router.post("/executions/{namespace}/{flow_id}")
async def create_execution(
    request: Request,
    namespace: str,
    flow_id: str,
    labels: Annotated[list[str] | None, Query()] = None,
    wait: bool = False,
    revision: int | None = None,
) -> dict[str, Any]:
    """Queue an execution of a stored flow; with ``wait=true``, answer once it has ended."""
    form = await request.form(max_fields=MAX_FORM_FIELDS, max_files=MAX_FORM_FIELDS)
    try:
        texts = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        files = {
            k: (v.filename or k, v.file) for k, v in form.multi_items() if isinstance(v, UploadFile)
        }
        submission = Submission(
            namespace=namespace,
            flow_id=flow_id,
            inputs=texts,
            files=files,
            labels=parse_labels(labels or []),
            revision=revision,
        )
        execution = await run_in_threadpool(queue_of(request).submit, submission)
    finally:
        await form.close()
    if wait:
        execution = await _until_ended(request, execution.id)
    return execution_json(execution, tenant=tenant_of(request))


async def _until_ended(request: Request, execution_id: str) -> Execution:
    """The execution once it ended; a client that went away stops the polling (not the run)."""
    records = stores_of(request).records
    while True:
        execution = await run_in_threadpool(read_execution, records, execution_id)
        if execution.state.current.terminal or await request.is_disconnected():
            return execution
        await asyncio.sleep(POLL_SECONDS)


def started_between(
    start_date: datetime | None, end_date: datetime | None, time_range: timedelta | None
) -> tuple[datetime | None, datetime | None]:
    """Kestra's ``startDate``, ``endDate`` and ``timeRange`` (an ISO-8601 duration: ``PT1H`` is
    the last hour) as the bounds of the executions' start, in UTC (a time without a zone is
    UTC).

    Raises:
        UsageError: ``startDate`` and ``timeRange`` together, or a range that ends before it
            starts.
    """
    if time_range is not None:
        if start_date is not None:
            raise UsageError("give startDate or timeRange, not both")
        if time_range <= timedelta(0):
            raise UsageError(f"timeRange must be a positive duration (got {time_range})")
        start_date = datetime.now(UTC) - time_range
    start_date, end_date = (
        None if d is None else d if d.tzinfo is not None else d.replace(tzinfo=UTC)
        for d in (start_date, end_date)
    )
    if start_date is not None and end_date is not None and end_date < start_date:
        raise UsageError("endDate is before startDate")
    return start_date, end_date


@router.get("/executions/search")
def search(
    request: Request,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=1000)] = 10,
    namespace: str | None = None,
    flow_id: Annotated[str | None, Query(alias="flowId")] = None,
    state: Annotated[list[State] | None, Query()] = None,
    labels: Annotated[list[str] | None, Query()] = None,
    q: str | None = None,
    start_date: Annotated[datetime | None, Query(alias="startDate")] = None,
    end_date: Annotated[datetime | None, Query(alias="endDate")] = None,
    time_range: Annotated[timedelta | None, Query(alias="timeRange")] = None,
) -> dict[str, Any]:
    """A page of executions, newest first, and how many match (counted up to 1 000 past the
    page: a total of that plus one means more); ``startDate``/``endDate``/``timeRange`` bound
    when they started."""
    after, before = started_between(start_date, end_date, time_range)
    wanted = ExecutionFilter(
        namespace=namespace,
        flow_id=flow_id,
        states=state or (),
        labels=parse_labels(labels or []),
        q=q,
        start_after=after,
        start_before=before,
    )
    with open_store(request) as store:
        found = search_executions(store, wanted, page=page, size=size)
        executions = [s.execution for s in store.get_executions(found.ids)]
    tenant = tenant_of(request)
    total = found.total if found.exact else found.total + 1
    return {"results": [execution_json(e, tenant=tenant) for e in executions], "total": total}


@router.get("/executions/{execution_id}")
def get_execution(request: Request, execution_id: str) -> dict[str, Any]:
    """One execution with its task runs."""
    return execution_json(
        read_execution(stores_of(request).records, execution_id), tenant=tenant_of(request)
    )


@router.delete("/executions/{execution_id}/kill", status_code=202)
def kill(request: Request, execution_id: str) -> Response:
    """Kill a queued or running execution (202); 409 when it already ended."""
    queue_of(request).kill(execution_id)
    return Response(status_code=202)


@router.delete("/executions/{execution_id}", status_code=204)
def delete(
    request: Request,
    execution_id: str,
    delete_storage: Annotated[bool, Query(alias="deleteStorage")] = True,
) -> Response:
    """Forget an ended execution: its record, logs and (by default) its output files."""
    records = stores_of(request).records
    execution = read_execution(records, execution_id)
    if not execution.state.current.terminal:
        raise Conflict(
            f"Illegal state: execution {execution_id} is {execution.state.current.value}; "
            "kill it first"
        )
    with open_store(request) as store:
        delete_execution(store, execution_id)
    if delete_storage:
        stores_of(request).artifacts.purge(execution.namespace, execution.flow_id, execution.id)
    return Response(status_code=204)


def _execution_prefix(execution: Execution) -> PurePosixPath:
    return PurePosixPath(
        *execution.namespace.split("."), execution.flow_id, "executions", execution.id
    )


def _artifact_path(execution: Execution, uri: str) -> str:
    """``uri`` when it names a file of this execution (else 404 or 422)."""
    if not uri.startswith(SCHEME + "/"):
        raise UsageError(f"path {uri!r} is not a {SCHEME}/ URI")
    rel = PurePosixPath(uri[len(SCHEME) + 1 :])
    prefix = _execution_prefix(execution)
    if rel.parts[: len(prefix.parts)] != prefix.parts or ".." in rel.parts:
        raise UnsafePathError(f"{uri} is not a file of execution {execution.id}")
    return uri


@router.get("/executions/{execution_id}/file")
def download_file(request: Request, execution_id: str, path: str) -> StreamingResponse:
    """An output (or input) file of the execution, by its ``kestra:///`` URI."""
    records = stores_of(request).records
    execution = read_execution(records, execution_id)
    uri = _artifact_path(execution, path)
    handle = stores_of(request).artifacts.open(uri)
    name = PurePosixPath(uri).name.replace('"', "")

    def chunks() -> Any:
        with handle:
            while block := handle.read(1024 * 1024):
                yield block

    return StreamingResponse(
        chunks(),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


PREVIEW_ROWS = 100  # Kestra's kestra.server.preview.initial-rows
MAX_PREVIEW_ROWS = 5000  # and its max-rows
MAX_PREVIEW_BYTES = 1024 * 1024


@router.get("/executions/{execution_id}/file/preview")
def preview_file(
    request: Request,
    execution_id: str,
    path: str,
    max_rows: Annotated[int | None, Query(alias="maxRows", ge=1)] = None,
    encoding: str = "UTF-8",
) -> dict[str, Any]:
    """The first lines of an execution's file as text, in Kestra's shape: ``extension``,
    ``type`` (``TEXT``), ``content``, ``truncated``; 422 for a file that is not text."""
    stores = stores_of(request)
    execution = read_execution(stores.records, execution_id)
    uri = _artifact_path(execution, path)
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise UsageError(f"Unable to preview using encoding '{encoding}'") from None
    rows = min(max_rows or PREVIEW_ROWS, MAX_PREVIEW_ROWS)
    lines: list[bytes] = []
    truncated = False
    read = 0
    with stores.artifacts.open(uri) as handle:
        while line := handle.readline(MAX_PREVIEW_BYTES - read + 1):
            if len(lines) == rows or read + len(line) > MAX_PREVIEW_BYTES:
                truncated = True
                break
            lines.append(line)
            read += len(line)
    raw = b"".join(lines)
    if b"\0" in raw:
        raise UsageError(f"{PurePosixPath(uri).name} is not a text file: download it instead")
    try:
        content = raw.decode(codec)
    except UnicodeDecodeError:
        raise UsageError(
            f"{PurePosixPath(uri).name} is not {encoding} text: download it instead"
        ) from None
    extension = PurePosixPath(uri).suffix.lstrip(".").lower()
    return {"extension": extension, "type": "TEXT", "content": content, "truncated": truncated}


@router.get("/executions/{execution_id}/file/metas")
def file_metas(request: Request, execution_id: str, path: str) -> dict[str, Any]:
    """The size of an execution's file."""
    records = stores_of(request).records
    execution = read_execution(records, execution_id)
    uri = _artifact_path(execution, path)
    try:
        size = stores_of(request).artifacts.size(uri)
    except FileNotFoundError:
        raise NotFoundError(f"no artifact at {uri}") from None
    return {"size": size}


@router.get("/executions/{execution_id}/follow")
async def follow(request: Request, execution_id: str) -> EventSourceResponse:
    """Server-sent events: ``start``, ``progress`` on every change, ``end``; then it closes."""
    records = stores_of(request).records
    tenant = tenant_of(request)
    first = await run_in_threadpool(read_execution, records, execution_id)  # 404 before streaming

    async def events() -> AsyncIterator[dict[str, str]]:
        execution = first
        if not execution.state.current.terminal:
            yield {"id": "start", "data": json.dumps({"id": execution_id})}
        seen: Any = None
        polls = Backoff()  # an execution that sits (paused, a long task) is polled less often
        while True:
            if execution.state.current.terminal:
                yield {"id": "end", "data": json.dumps(execution_json(execution, tenant=tenant))}
                return
            mark = _progress_mark(execution)
            if mark != seen:
                seen = mark
                data = json.dumps(execution_json(execution, tenant=tenant))
                yield {"id": "progress", "data": data}
                await asyncio.sleep(polls.busy())
            else:
                await asyncio.sleep(polls.idle())
            execution = await run_in_threadpool(read_execution, records, execution_id)

    return follows_of(request).response(events())


def _progress_mark(execution: Execution) -> Any:
    """What a follower is told about: states of the execution and of each task run, outputs."""
    return (
        execution.state.current,
        tuple(
            (r.id, r.state.current, len(r.attempts), bool(r.outputs)) for r in execution.task_runs
        ),
    )
