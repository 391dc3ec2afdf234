"""Logs of an execution: list with filters, download as text, follow as server-sent events.

``follow`` replays what is stored, then sends each new line as it is written, tagged
``id: progress`` as Kestra does; like Kestra's, it never closes by itself (the client does).
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
from executor.server.api.deps import settings_of
from executor.server.kestra_json import log_json, log_text
from executor.settings import Settings
from executor.store.db import Store, StoredLogLine

router = APIRouter(tags=["logs"])

LEVELS = list(Level)
POLL_SECONDS = 0.25
PAGE_CHUNKS = 200


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
    settings: Settings, execution_id: str, after: int, limit: int | None = None
) -> tuple[Execution, list[StoredLogLine]]:
    with Store(settings.db_path) as store:
        try:
            execution = store.get_execution(execution_id).execution
        except NotFoundError:
            raise NotFoundError(f"Execution '{execution_id}' not found") from None
        return execution, store.logs(execution_id, after=after, limit=limit)


@router.get("/logs/{execution_id}")
def list_logs(
    request: Request,
    execution_id: str,
    min_level: Annotated[Level | None, Query(alias="minLevel")] = None,
    task_run_id: Annotated[str | None, Query(alias="taskRunId")] = None,
    task_id: Annotated[str | None, Query(alias="taskId")] = None,
    attempt: int | None = None,
) -> list[dict[str, Any]]:
    """Every stored line of the execution that passes the filters."""
    keep = _wanted(min_level, task_run_id, task_id, attempt)
    execution, lines = _read(settings_of(request), execution_id, 0)
    return [log_json(execution, s.line) for s in lines if keep(s)]


@router.get("/logs/{execution_id}/download")
def download_logs(
    request: Request,
    execution_id: str,
    min_level: Annotated[Level | None, Query(alias="minLevel")] = None,
    task_run_id: Annotated[str | None, Query(alias="taskRunId")] = None,
    task_id: Annotated[str | None, Query(alias="taskId")] = None,
) -> StreamingResponse:
    """The lines as plain text, one per line, read page by page (any size of log)."""
    settings = settings_of(request)
    keep = _wanted(min_level, task_run_id, task_id, None)
    _read(settings, execution_id, 0, limit=0)  # 404 before the response starts

    def lines() -> Iterator[bytes]:
        after = 0
        while True:
            _, page = _read(settings, execution_id, after, limit=PAGE_CHUNKS)
            if not page:
                return
            after = page[-1].row_id
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
    """Stored lines, then new ones as they come; open until the client goes."""
    settings = settings_of(request)
    keep = _wanted(min_level, None, None, None)
    execution, _ = await run_in_threadpool(_read, settings, execution_id, 0, 0)

    async def events() -> AsyncIterator[dict[str, str]]:
        yield {"id": "start", "data": json.dumps({"executionId": execution_id})}
        after = 0
        while True:
            _, page = await run_in_threadpool(_read, settings, execution_id, after, PAGE_CHUNKS)
            for stored in page:
                if keep(stored):
                    yield {"id": "progress", "data": json.dumps(log_json(execution, stored.line))}
            if page:
                after = page[-1].row_id
            else:
                await asyncio.sleep(POLL_SECONDS)

    return EventSourceResponse(events(), ping=15)
