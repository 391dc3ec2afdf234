"""Kestra's webhook URL: ``GET|POST|PUT /executions/webhook/{namespace}/{flowId}/{key}``.

A call whose key names an enabled ``Webhook`` trigger of the flow queues an execution, with
``trigger.body`` (JSON parsed when it is JSON, else the text; base64 when it is not UTF-8),
``trigger.headers`` (but credentials: Authorization, Cookie) and ``trigger.parameters`` (each
name to its list of values), and answers
the execution as Kestra does. A wrong key, or a disabled or stopped trigger: 404. With the
trigger's ``wait: true`` the answer comes once the execution ended (its outputs alone with
``returnOutputs: true``).
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from executor.errors import NotFoundError
from executor.flow.loader import LoadedFlow
from executor.flow.triggers import WebhookTrigger
from executor.model import Execution
from executor.server.api.deps import open_store, queue_of, settings_of, tenant_of
from executor.server.api.executions import POLL_SECONDS, read_execution
from executor.server.kestra_json import execution_json
from executor.server.queue import Submission
from executor.server.schedules import stop_if_ended, trigger_inputs, trigger_object
from executor.server.stored_flows import load_stored
from executor.store.flows import get_flow
from executor.store.triggers import get_state, set_last_execution

router = APIRouter(tags=["webhooks"])
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def request_variables(body: bytes, request: Request) -> dict[str, Any]:
    """Kestra's Webhook output: ``body``, ``headers``, ``parameters``."""
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        if name not in _CREDENTIAL_HEADERS:  # the execution is served to every API client
            headers.setdefault(name, []).append(value)
    parameters: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        parameters.setdefault(name, []).append(value)
    return {"body": _body(body), "headers": headers, "parameters": parameters}


def _body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii")
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return parsed if isinstance(parsed, dict | list) else text


@router.api_route("/executions/webhook/{namespace}/{flow_id}/{key}", methods=["GET", "POST", "PUT"])
async def webhook(request: Request, namespace: str, flow_id: str, key: str) -> Any:
    """Start the flow whose Webhook trigger has this key."""
    variables = request_variables(await request.body(), request)

    def start() -> tuple[Execution, WebhookTrigger]:
        with open_store(request) as store:
            stored = get_flow(store, namespace, flow_id)
            trigger = _trigger_with_key(load_stored(stored), key) if stored else None
            if stored is None or trigger is None:
                raise NotFoundError(f"Webhook not found for flow '{namespace}.{flow_id}'")
            state = get_state(store, namespace, flow_id, trigger.id)
            if state is not None:
                state = stop_if_ended(store, state, trigger)
                if state.stopped:
                    raise NotFoundError(
                        f"Webhook trigger '{trigger.id}' is stopped ({state.stopped})"
                    )
            where = f"flow {namespace}.{flow_id} trigger '{trigger.id}'"
            inputs = trigger_inputs(trigger, variables, where)  # a TemplateError is a 422
            execution = queue_of(request).submit(
                Submission(
                    namespace=namespace,
                    flow_id=flow_id,
                    inputs=inputs,
                    labels=trigger.label_map(),
                    trigger=trigger_object(trigger, variables),
                )
            )
            if state is not None:
                set_last_execution(store, state, execution.id)
        return execution, trigger

    execution, trigger = await run_in_threadpool(start)
    if trigger.wait:
        while not execution.state.current.terminal:
            await asyncio.sleep(POLL_SECONDS)
            execution = await run_in_threadpool(read_execution, settings_of(request), execution.id)
        if trigger.returnOutputs:
            return JSONResponse(execution.outputs or {})
    return execution_json(execution, tenant=tenant_of(request))


def _trigger_with_key(loaded: LoadedFlow, key: str) -> WebhookTrigger | None:
    for trigger in loaded.flow.triggers or ():
        if isinstance(trigger, WebhookTrigger) and trigger.key == key and not trigger.disabled:
            return trigger
    return None
