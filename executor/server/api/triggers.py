"""Triggers: search, enable and disable, unlock, and backfills (Kestra's TriggerController).

A trigger is named by ``namespace``, ``flowId`` and ``triggerId`` (in the body of ``PUT
/triggers`` and the backfill routes, as Kestra's clients send a trigger). Disabling here is kept
apart from the flow's own ``disabled``: saving the flow again does not enable it. Flows are
loaded through the parse processes, so these routes run in the thread pool, never on the event
loop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request

from executor.errors import NotFoundError, UsageError
from executor.flow.triggers import ScheduleTrigger
from executor.server.api.deps import open_store, queue_of
from executor.server.backfills import Backfill, loads, new_backfill
from executor.server.errors import Conflict
from executor.server.trigger_rows import TriggerRow, kestra_json, trigger_rows
from executor.store.db import Store
from executor.store.flows import get_flow
from executor.store.triggers import get_state, set_backfill, switch, unlock

router = APIRouter(tags=["triggers"])

Key = tuple[str, str, str]


def _key_of(body: Any) -> Key:
    """``(namespace, flowId, triggerId)`` of a trigger as Kestra's clients send one."""
    if not isinstance(body, dict):
        raise UsageError("the body must be a trigger: {namespace, flowId, triggerId, ...}")
    context = body.get("triggerContext")
    if isinstance(context, dict):  # a row of /triggers/search sent back as is
        body = {**context, **{k: v for k, v in body.items() if k != "triggerContext"}}
    missing = [k for k in ("namespace", "flowId", "triggerId") if not body.get(k)]
    if missing:
        raise UsageError(f"the trigger needs {', '.join(missing)}")
    return str(body["namespace"]), str(body["flowId"]), str(body["triggerId"])


def _row(request: Request, store: Store, key: Key) -> TriggerRow:
    load = queue_of(request).parser.load_stored
    for row in trigger_rows(store, load, namespace=key[0], flow_id=key[1]):
        if row.state.key == key:
            return row
    raise NotFoundError(
        f"Trigger '{key[2]}' of flow '{key[0]}.{key[1]}' not found (a flow's triggers are"
        " known once the server has seen the flow)"
    )


def _paged(rows: list[TriggerRow], page: int, size: int) -> dict[str, Any]:
    start = (page - 1) * size
    return {"results": [kestra_json(r) for r in rows[start : start + size]], "total": len(rows)}


@router.get("/triggers/search")
def search(
    request: Request,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=1000)] = 10,
    q: str | None = None,
    namespace: str | None = None,
    flow_id: Annotated[str | None, Query(alias="flowId")] = None,
) -> dict[str, Any]:
    """A page of triggers (namespace, flow, id order) and how many match."""
    with open_store(request) as store:
        rows = trigger_rows(
            store, queue_of(request).parser.load_stored, namespace=namespace, flow_id=flow_id, q=q
        )
    return _paged(rows, page, size)


@router.get("/triggers/{namespace}/{flow_id}")
def of_flow(
    request: Request,
    namespace: str,
    flow_id: str,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The triggers of one flow."""
    with open_store(request) as store:
        if get_flow(store, namespace, flow_id) is None:
            raise NotFoundError(f"Flow '{namespace}.{flow_id}' not found")
        rows = [
            r
            for r in trigger_rows(store, queue_of(request).parser.load_stored, namespace=namespace)
            if r.state.flow_id == flow_id and r.state.namespace == namespace
        ]
    return _paged(rows, page, size)


@router.put("/triggers")
def update(request: Request, body: Annotated[Any, Body()]) -> dict[str, Any]:
    """Enable or disable a trigger (``disabled``) and/or start a backfill (``backfill``)."""
    key = _key_of(body)
    flat = {**(body.get("triggerContext") or {}), **body}
    with open_store(request) as store:
        row = _row(request, store, key)
        if flat.get("backfill") is not None:
            _start_backfill(request, store, row, flat["backfill"])
        if "disabled" in flat and flat["disabled"] is not None:
            if not isinstance(flat["disabled"], bool):
                raise UsageError("disabled must be true or false")
            switch(store, key, flat["disabled"])
        return kestra_json(_row(request, store, key))


def _start_backfill(request: Request, store: Store, row: TriggerRow, asked: Any) -> None:
    stored = get_flow(store, row.state.namespace, row.state.flow_id)
    assert stored is not None  # the row was found through it
    loaded = queue_of(request).parser.load_stored(stored)
    trigger = next((t for t in loaded.flow.triggers or () if t.id == row.state.trigger_id), None)
    if not isinstance(trigger, ScheduleTrigger):
        raise UsageError(
            f"trigger '{row.state.trigger_id}' is a {row.kind} trigger: only a Schedule"
            " trigger can be backfilled"
        )
    running = loads(row.state.backfill)
    if running is not None and not running.finished:
        raise Conflict(
            f"a backfill of trigger '{row.state.trigger_id}' is already running"
            f" ({running.submitted}/{running.total}): delete it first"
        )
    backfill = new_backfill(asked, trigger.schedule(), datetime.now(UTC))
    if not set_backfill(store, row.state.key, backfill.dumps(), expected=row.state.backfill):
        raise Conflict("the trigger changed meanwhile: try again")


def _move_backfill(
    request: Request, body: Any, change: Callable[[Backfill], Backfill | None]
) -> dict[str, Any]:
    key = _key_of(body)
    with open_store(request) as store:
        row = _row(request, store, key)
        backfill = loads(row.state.backfill)
        if backfill is None:
            raise NotFoundError(f"trigger '{key[2]}' of flow '{key[0]}.{key[1]}' has no backfill")
        changed = change(backfill)
        text = changed.dumps() if changed is not None else None
        if not set_backfill(store, key, text, expected=row.state.backfill):
            raise Conflict("the backfill moved on meanwhile: try again")
        return kestra_json(_row(request, store, key))


@router.put("/triggers/backfill/pause")
@router.post("/triggers/backfill/pause")
def pause_backfill(request: Request, body: Annotated[Any, Body()]) -> dict[str, Any]:
    """Pause a backfill: no more of its ticks are submitted until it is unpaused."""
    return _move_backfill(request, body, lambda b: b.model_copy(update={"paused": True}))


@router.put("/triggers/backfill/unpause")
@router.post("/triggers/backfill/unpause")
def unpause_backfill(request: Request, body: Annotated[Any, Body()]) -> dict[str, Any]:
    """Go on with a paused backfill from the tick it stopped at."""
    return _move_backfill(request, body, lambda b: b.model_copy(update={"paused": False}))


@router.post("/triggers/backfill/delete")
def delete_backfill(request: Request, body: Annotated[Any, Body()]) -> dict[str, Any]:
    """Drop a backfill: its ticks not yet submitted never run (those submitted go on)."""
    return _move_backfill(request, body, lambda b: None)


@router.post("/triggers/{namespace}/{flow_id}/{trigger_id}/unlock")
def unlock_trigger(
    request: Request, namespace: str, flow_id: str, trigger_id: str
) -> dict[str, Any]:
    """Forget the execution the trigger waits for (``allowConcurrent: false`` skips ticks
    while it runs)."""
    key = (namespace, flow_id, trigger_id)
    with open_store(request) as store:
        row = _row(request, store, key)
        if row.state.last_execution_id is None:
            raise Conflict(f"trigger '{trigger_id}' is not locked")
        unlock(store, key)
        return kestra_json(_row(request, store, key))


@router.post("/triggers/set-disabled/by-query")
def set_disabled_by_query(
    request: Request,
    disabled: bool,
    q: str | None = None,
    namespace: str | None = None,
    flow_id: Annotated[str | None, Query(alias="flowId")] = None,
) -> dict[str, int]:
    """Disable (or enable) every trigger that matches; how many."""
    with open_store(request) as store:
        rows = trigger_rows(
            store, queue_of(request).parser.load_stored, namespace=namespace, flow_id=flow_id, q=q
        )
        for row in rows:
            switch(store, row.state.key, disabled)
    return {"count": len(rows)}


@router.post("/triggers/set-disabled/by-triggers")
def set_disabled_by_triggers(
    request: Request, disabled: bool, body: Annotated[Any, Body()]
) -> dict[str, int]:
    """Disable (or enable) the triggers of the body (a list of triggers); how many."""
    if not isinstance(body, list):
        raise UsageError("the body must be a list of triggers")
    keys = [_key_of(one) for one in body]
    with open_store(request) as store:
        for key in keys:
            if get_state(store, *key) is None:
                raise NotFoundError(f"Trigger '{key[2]}' of flow '{key[0]}.{key[1]}' not found")
        for key in keys:
            switch(store, key, disabled)
    return {"count": len(keys)}
