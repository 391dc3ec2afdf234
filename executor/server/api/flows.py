"""Flows: create, read, update, delete as YAML; a namespace's flows in bulk; validate.

Bodies are YAML (``application/x-yaml``), as Kestra's clients (its CLI, Terraform, the deploy
action) send them. A flow is checked by the same loader as ``executor validate`` before it is
stored, and every save of a changed source is a new revision. Flows are parsed in the server's
parse processes (``server.flow_parser``), never on the event loop: a flow too large or too many
flows in a body is a 413, a parse past its time a 422.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from executor.errors import FlowError, NotFoundError, UsageError
from executor.flow.host_access import refuse_host_openings
from executor.flow.loaded import LoadedFlow
from executor.server.api.deps import config_of, open_store, queue_of
from executor.server.flow_parser import BodyLimits
from executor.server.kestra_json import flow_json
from executor.server.trigger_loops import refuse_trigger_loops
from executor.store.flows import StoredFlow, delete_flow, get_flow, list_flows, save_flow

router = APIRouter(tags=["flows"])


async def _parsed(request: Request, *, many: bool) -> list[LoadedFlow | FlowError]:
    """The body's flows (``many``: documents split on ``---``), each loaded or its problems."""
    config = config_of(request)
    limits = BodyLimits(config.max_flow_bytes, config.limits.max_flow_documents)
    parsed = await queue_of(request).parser.parse_request(await request.body(), limits, many=many)
    return [_host_checked(p, config.allow_host_options) for p in parsed]


def _host_checked(parsed: LoadedFlow | FlowError, allowed: bool) -> LoadedFlow | FlowError:
    """A parsed flow, or its problem when it uses options that open the host (unless the
    server allows them: ``allowHostOptions``)."""
    if isinstance(parsed, FlowError):
        return parsed
    try:
        refuse_host_openings(parsed, allowed)
    except FlowError as exc:
        return exc
    return parsed


async def _one(request: Request) -> LoadedFlow:
    (parsed,) = await _parsed(request, many=False)
    if isinstance(parsed, FlowError):
        raise parsed
    return parsed


def _without(
    load: Callable[[StoredFlow], LoadedFlow], gone: list[StoredFlow]
) -> Callable[[StoredFlow], LoadedFlow]:
    """``load``, but flows about to be deleted load as nothing (they trigger nothing)."""
    names = {(s.namespace, s.id) for s in gone}

    def loading(stored: StoredFlow) -> LoadedFlow:
        if (stored.namespace, stored.id) in names:
            raise FlowError(f"{stored.namespace}.{stored.id} is being deleted")
        return load(stored)

    return loading


def _shown(loaded: LoadedFlow, stored: StoredFlow, with_source: bool) -> dict[str, Any]:
    data = loaded.flow.model_dump(mode="json", by_alias=True, exclude_unset=True)
    data.pop("revision", None)
    return flow_json(data, stored.revision, stored.deleted, stored.source if with_source else None)


@router.post("/flows")
async def create_flow(request: Request) -> dict[str, Any]:
    """Create a flow from its YAML (422 when it exists already or is invalid)."""
    loaded = await _one(request)
    flow = loaded.flow

    def create() -> StoredFlow:
        with open_store(request) as store:
            if get_flow(store, flow.namespace, flow.id) is not None:
                raise UsageError(f"Flow id already exists: {flow.namespace}.{flow.id}")
            refuse_trigger_loops(store, queue_of(request).parser.load_stored, [flow])
            return save_flow(store, flow.namespace, flow.id, loaded.text)

    return _shown(loaded, await run_in_threadpool(create), True)


@router.post("/flows/validate")
async def validate_flows(request: Request) -> list[dict[str, Any]]:
    """Check every document of the body; one entry per flow with its problems (or none)."""
    results: list[dict[str, Any]] = []
    for index, parsed in enumerate(await _parsed(request, many=True)):
        entry: dict[str, Any] = {
            "index": index,
            "outdated": False,
            "deprecationPaths": [],
            "warnings": [],
            "infos": [],
        }
        if isinstance(parsed, FlowError):
            entry["constraints"] = str(parsed)
        else:
            entry.update(flow=parsed.flow.id, namespace=parsed.flow.namespace, constraints=None)
        results.append(entry)
    return results


@router.get("/flows/{namespace}/{flow_id}")
def get_one(
    request: Request,
    namespace: str,
    flow_id: str,
    source: bool = False,
    revision: int | None = None,
    allow_deleted: Annotated[bool, Query(alias="allowDeleted")] = False,
) -> dict[str, Any]:
    """A flow (its latest revision, or ``revision``), with its YAML when ``source=true``."""
    with open_store(request) as store:
        stored = get_flow(store, namespace, flow_id, revision, allow_deleted=allow_deleted)
    if stored is None:
        raise NotFoundError(f"Flow '{namespace}.{flow_id}' not found")
    return _shown(queue_of(request).parser.load_stored(stored), stored, source)


@router.get("/flows/{namespace}")
def list_namespace(request: Request, namespace: str) -> list[dict[str, Any]]:
    """The flows of one namespace (latest revisions)."""
    with open_store(request) as store:
        found = list_flows(store, namespace)
    parser = queue_of(request).parser
    return [_shown(parser.load_stored(s), s, False) for s in found]


@router.put("/flows/{namespace}/{flow_id}")
async def update_flow(request: Request, namespace: str, flow_id: str) -> dict[str, Any]:
    """Replace a flow's source: a new revision (404 when there is no such flow)."""
    loaded = await _one(request)
    if (loaded.flow.namespace, loaded.flow.id) != (namespace, flow_id):
        raise UsageError(
            f"the flow's namespace and id ({loaded.flow.namespace}.{loaded.flow.id}) must be "
            f"those of the URL ({namespace}.{flow_id})"
        )

    def update() -> StoredFlow:
        with open_store(request) as store:
            if get_flow(store, namespace, flow_id) is None:
                raise NotFoundError(f"Flow '{namespace}.{flow_id}' not found")
            refuse_trigger_loops(store, queue_of(request).parser.load_stored, [loaded.flow])
            return save_flow(store, namespace, flow_id, loaded.text)

    return _shown(loaded, await run_in_threadpool(update), True)


@router.delete("/flows/{namespace}/{flow_id}", status_code=204)
def remove_flow(request: Request, namespace: str, flow_id: str) -> Response:
    """Delete a flow (kept as a deleted revision)."""
    with open_store(request) as store:
        if not delete_flow(store, namespace, flow_id):
            raise NotFoundError(f"Flow '{namespace}.{flow_id}' not found")
    return Response(status_code=204)


@router.post("/flows/{namespace}")
async def update_namespace(
    request: Request, namespace: str, delete: bool = True
) -> list[dict[str, Any]]:
    """Make the namespace's flows those of the body (``delete=true``: the others are deleted).

    Every flow is checked before any is stored: one invalid flow changes nothing.
    """
    loaded_all: list[LoadedFlow] = []
    problems: list[str] = []
    for index, parsed in enumerate(await _parsed(request, many=True)):
        if isinstance(parsed, FlowError):
            problems.append(f"flow {index + 1}: {parsed}")
            continue
        if parsed.flow.namespace != namespace:
            problems.append(
                f"flow {index + 1} ({parsed.flow.id}) is in namespace {parsed.flow.namespace},"
                f" not {namespace}"
            )
        loaded_all.append(parsed)
    if problems:
        raise UsageError("; ".join(problems))
    ids = [loaded.flow.id for loaded in loaded_all]
    if len(set(ids)) != len(ids):
        raise UsageError(f"the same flow id appears twice: {sorted(ids)}")

    def replace() -> list[dict[str, Any]]:
        shown: list[dict[str, Any]] = []
        with open_store(request) as store:
            # with delete, the namespace's other flows go: they close no loop
            gone = [s for s in list_flows(store, namespace) if s.id not in ids] if delete else []
            load = _without(queue_of(request).parser.load_stored, gone)
            refuse_trigger_loops(store, load, [loaded.flow for loaded in loaded_all])
            for loaded in loaded_all:
                stored = save_flow(store, namespace, loaded.flow.id, loaded.text)
                shown.append(_shown(loaded, stored, True))
            if delete:
                for old in list_flows(store, namespace):
                    if old.id not in ids:
                        delete_flow(store, namespace, old.id)
        return shown

    return await run_in_threadpool(replace)
