"""Kestra's webhook URL: ``GET|POST|PUT /executions/webhook/{namespace}/{flowId}/{key}``.

A call whose key names an enabled ``Webhook`` trigger of the flow queues an execution, with
``trigger.body`` (JSON parsed when it is JSON, else the text; base64 when it is not UTF-8),
``trigger.headers`` (but credentials: Authorization, Cookie) and ``trigger.parameters`` (each
name to its list of values), and answers
the execution as Kestra does. A wrong key, or a disabled or stopped trigger: 404. With the
trigger's ``wait: true`` the answer comes once the execution ended (its outputs alone with
``returnOutputs: true``).

The URL is open (its key is the secret), so nothing is read before the key is checked: a wrong
key is a 404 whatever body follows. Then the body is read up to ``maxWebhookBodyBytes`` (413
past it) and parsed in a thread, a JSON body nested deeper than ``maxJsonDepth`` refused (422).
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from executor.errors import NotFoundError, UsageError
from executor.flow.loaded import LoadedFlow
from executor.flow.triggers import WebhookTrigger
from executor.model import Execution
from executor.server.api.deps import (
    config_of,
    open_store,
    queue_of,
    stores_of,
    tenant_of,
)
from executor.server.api.executions import POLL_SECONDS, read_execution
from executor.server.errors import BodyTooLarge
from executor.server.kestra_json import execution_json
from executor.server.queue import Submission
from executor.server.schedules import stop_if_ended
from executor.server.trigger_values import trigger_inputs, trigger_object
from executor.store.flows import get_flow
from executor.store.triggers import get_state, set_last_execution

router = APIRouter(tags=["webhooks"])
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def request_variables(body: Any, request: Request) -> dict[str, Any]:
    """Kestra's Webhook output: ``body`` (as :func:`body_value` made it), ``headers``,
    ``parameters``."""
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        if name not in _CREDENTIAL_HEADERS:  # the execution is served to every API client
            headers.setdefault(name, []).append(value)
    parameters: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        parameters.setdefault(name, []).append(value)
    return {"body": body, "headers": headers, "parameters": parameters}


def body_value(raw: bytes, max_depth: int) -> Any:
    """The body as the flow sees it: JSON parsed when it is a JSON object or array, else the
    text, base64 when not UTF-8; ``None`` when empty. Runs in a thread, never on the loop.

    Raises:
        UsageError: JSON nested deeper than ``max_depth``.
    """
    if not raw:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii")
    too_deep = UsageError(f"the webhook's JSON body is nested more than {max_depth} levels deep")
    try:
        parsed = json.loads(text)
    except RecursionError:  # the decoder's own bound, far past ours
        raise too_deep from None
    except ValueError:
        return text
    if not isinstance(parsed, dict | list):
        return text
    if _depth_over(parsed, max_depth):
        raise too_deep
    return parsed


def _depth_over(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` deep (no recursion)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


async def read_capped(request: Request, max_bytes: int) -> bytes:
    """The request body, refused (413) as soon as it is known to be over ``max_bytes``."""
    declared = request.headers.get("content-length", "")
    too_large = BodyTooLarge(f"the webhook body is larger than {max_bytes} bytes")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


@router.api_route("/executions/webhook/{namespace}/{flow_id}/{key}", methods=["GET", "POST", "PUT"])
async def webhook(request: Request, namespace: str, flow_id: str, key: str) -> Any:
    """Start the flow whose Webhook trigger has this key."""
    parser = queue_of(request).parser
    limits = config_of(request).limits

    def find() -> WebhookTrigger:  # the key, before any byte of the body
        with open_store(request) as store:
            stored = get_flow(store, namespace, flow_id)
            trigger = _trigger_with_key(parser.load_stored(stored), key) if stored else None
            if stored is None or trigger is None:
                raise NotFoundError(f"Webhook not found for flow '{namespace}.{flow_id}'")
            state = get_state(store, namespace, flow_id, trigger.id)
            stopped = stop_if_ended(store, state, trigger).stopped if state else None
            if stopped:
                raise NotFoundError(f"Webhook trigger '{trigger.id}' is stopped ({stopped})")
            if state is not None and state.switched_off:
                raise NotFoundError(
                    f"Webhook trigger '{trigger.id}' is disabled (through the API or the CLI)"
                )
        return trigger

    trigger = await run_in_threadpool(find)
    raw = await read_capped(request, limits.max_webhook_body_bytes)
    body = await run_in_threadpool(body_value, raw, limits.max_json_depth)
    variables = request_variables(body, request)

    def start() -> Execution:
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
        with open_store(request) as store:
            state = get_state(store, namespace, flow_id, trigger.id)
            if state is not None:
                set_last_execution(store, state, execution.id)
        return execution

    execution = await run_in_threadpool(start)
    if trigger.wait:
        while not execution.state.current.terminal:
            await asyncio.sleep(POLL_SECONDS)
            records = stores_of(request).records
            execution = await run_in_threadpool(read_execution, records, execution.id)
        if trigger.returnOutputs:
            return JSONResponse(execution.outputs or {})
    return execution_json(execution, tenant=tenant_of(request))


def _trigger_with_key(loaded: LoadedFlow, key: str) -> WebhookTrigger | None:
    for trigger in loaded.flow.triggers or ():
        if isinstance(trigger, WebhookTrigger) and trigger.key == key and not trigger.disabled:
            return trigger
    return None
