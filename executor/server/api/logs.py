"""Logs of an execution: list with filters, download as text, follow as server-sent events.

Each reads the store a page of chunks at a time, so a log of any length is served in bounded
memory: the list is Kestra's JSON array, written page by page. ``follow`` replays what is
stored, then sends each new line as it is written, tagged ``id: progress`` as Kestra does; once
the execution has ended and every line is sent it says ``id: end`` and closes (Kestra's stays
open until the client goes; a stream of an ended run has nothing left to say).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from executor.errors import NotFoundError
from executor.model import Execution, Level
from executor.server.api.deps import follows_of, stores_of
from executor.server.follows import Backoff
from executor.server.kestra_json import log_json, log_text
from executor.store.local import LocalRecords
from executor.store.records import StoredLogLine

router = APIRouter(tags=["logs"])

LEVELS = list(Level)
PAGE_CHUNKS = 10  # chunks (up to 500 lines each) read and sent at a time


def _wanted(
    min_level: Level | None, task_run_id: str | None, task_id: str | None, attempt: int | None
) -> Any:
    floor = LEVELS.index(min_level) if min_level else 0

    def keep(stored: StoredLogLine) -> bool:
        line = stored.line
        return (
            LEVELS.index(line.level) >= floor
            and (task_run_id is None or line.task_run_id == task_run_id)
            and (task_id is None or line.task_id == task_id)
            and (attempt is None or line.attempt == attempt)
        )

    return keep


def _read(
    records: LocalRecords, execution_id: str, after: int, limit: int | None = None
) -> tuple[Execution, list[StoredLogLine]]:
    with records.connect() as store:
        try:
            execution = store.get_execution(execution_id).execution
        except NotFoundError:
            raise NotFoundError(f"Execution '{execution_id}' not found") from None
        return execution, store.logs(execution_id, after=after, limit=limit)


def _pages(records: LocalRecords, execution_id: str) -> Iterator[tuple[Execution, list[Any]]]:
    """The stored lines, a page at a time (read in the thread that iterates)."""
    after = 0
    while True:
        execution, page = _read(records, execution_id, after, limit=PAGE_CHUNKS)
        if not page:
            return
        after = page[-1].row_id
        yield execution, page
        if len({stored.row_id for stored in page}) < PAGE_CHUNKS:
            return  # a short page is the last one: no need to ask again


@router.get("/logs/{execution_id}", response_model=list[dict[str, Any]])
def list_logs(
    request: Request,
    execution_id: str,
    min_level: Annotated[Level | None, Query(alias="minLevel")] = None,
    task_run_id: Annotated[str | None, Query(alias="taskRunId")] = None,
    task_id: Annotated[str | None, Query(alias="taskId")] = None,
    attempt: int | None = None,
) -> StreamingResponse:
    """Every stored line of the execution that passes the filters: one JSON array, streamed."""
    records = stores_of(request).records
    keep = _wanted(min_level, task_run_id, task_id, attempt)
    _read(records, execution_id, 0, limit=0)  # 404 before the response starts

    def array() -> Iterator[bytes]:
        yield b"["
        first = True
        for execution, page in _pages(records, execution_id):
            entries = [log_json(execution, s.line) for s in page if keep(s)]
            if entries:
                text = json.dumps(entries, ensure_ascii=False, separators=(",", ":"))[1:-1]
                yield (text if first else "," + text).encode()
                first = False
        yield b"]"

    return StreamingResponse(array(), media_type="application/json")


@router.get("/logs/{execution_id}/download")
def download_logs(
    request: Request,
    execution_id: str,
    min_level: Annotated[Level | None, Query(alias="minLevel")] = None,
    task_run_id: Annotated[str | None, Query(alias="taskRunId")] = None,
    task_id: Annotated[str | None, Query(alias="taskId")] = None,
) -> StreamingResponse:
    """The lines as plain text, one per line, read page by page (any size of log)."""
    records = stores_of(request).records
    keep = _wanted(min_level, task_run_id, task_id, None)
    _read(records, execution_id, 0, limit=0)  # 404 before the response starts

    def lines() -> Iterator[bytes]:
        for _, page in _pages(records, execution_id):
            yield "".join(log_text(s.line) + "\n" for s in page if keep(s)).encode()

    return StreamingResponse(
        lines(),
        media_type="text/plain",
        headers={"Content-Disposition": f'attachment; filename="{execution_id}.log"'},
    )


@router.get("/logs/{execution_id}/follow")
async def follow_logs(
    request: Request,
    execution_id: str,
    min_level: Annotated[Level | None, Query(alias="minLevel")] = None,
) -> EventSourceResponse:
    """Stored lines, then new ones as they come; ``end`` once the execution has ended and
    every line is sent (or when the client goes)."""
    records = stores_of(request).records
    keep = _wanted(min_level, None, None, None)
    execution, _ = await run_in_threadpool(_read, records, execution_id, 0, 0)

    async def events() -> AsyncIterator[dict[str, str]]:
        yield {"id": "start", "data": json.dumps({"executionId": execution_id})}
        after = 0
        polls = Backoff()
        while True:
            # the state is read before the lines: ended then, every line is in this read
            now, page = await run_in_threadpool(_read, records, execution_id, after, PAGE_CHUNKS)
            for stored in page:
                if keep(stored):
                    yield {"id": "progress", "data": json.dumps(log_json(execution, stored.line))}
            if page:
                after = page[-1].row_id
                await asyncio.sleep(0)  # a long replay still lets the loop breathe
                polls.busy()
            elif now.state.current.terminal:
                yield {"id": "end", "data": json.dumps({"executionId": execution_id})}
                return
            else:
                await asyncio.sleep(polls.idle())

    return follows_of(request).response(events())
