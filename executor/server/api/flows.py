"""Flows: create, read, update, delete as YAML; a namespace's flows in bulk; validate.

Bodies are YAML (``application/x-yaml``), as Kestra's clients (its CLI, Terraform, the deploy
action) send them. A flow is checked by the same loader as ``executor validate`` before it is
stored, and every save of a changed source is a new revision.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from executor.errors import FlowError, NotFoundError, UsageError
from executor.flow.loader import LoadedFlow
from executor.server.api.deps import config_of, open_store
from executor.server.kestra_json import flow_json
from executor.server.stored_flows import load_stored, parse_flow, split_documents
from executor.store.flows import StoredFlow, delete_flow, get_flow, list_flows, save_flow

router = APIRouter(tags=["flows"])


async def _text(request: Request) -> str:
    body = await request.body()
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("the flow is not UTF-8 text") from None


def _shown(loaded: LoadedFlow, stored: StoredFlow, with_source: bool) -> dict[str, Any]:
    data = loaded.flow.model_dump(mode="json", by_alias=True, exclude_unset=True)
    data.pop("revision", None)
    return flow_json(data, stored.revision, stored.deleted, stored.source if with_source else None)


def _parse(request: Request, text: str) -> LoadedFlow:
    return parse_flow(text, config_of(request).max_flow_bytes)


@router.post("/flows")
async def create_flow(request: Request) -> dict[str, Any]:
    """Create a flow from its YAML (422 when it exists already or is invalid)."""
    text = await _text(request)
    loaded = _parse(request, text)
    flow = loaded.flow
    with open_store(request) as store:
        if get_flow(store, flow.namespace, flow.id) is not None:
            raise UsageError(f"Flow id already exists: {flow.namespace}.{flow.id}")
        stored = save_flow(store, flow.namespace, flow.id, text)
    return _shown(loaded, stored, True)


@router.post("/flows/validate")
async def validate_flows(request: Request) -> list[dict[str, Any]]:
    """Check every document of the body; one entry per flow with its problems (or none)."""
    results: list[dict[str, Any]] = []
    for index, text in enumerate(split_documents(await _text(request))):
        entry: dict[str, Any] = {
            "index": index,
            "outdated": False,
            "deprecationPaths": [],
            "warnings": [],
            "infos": [],
        }
        try:
            loaded = _parse(request, text)
            entry.update(flow=loaded.flow.id, namespace=loaded.flow.namespace, constraints=None)
        except FlowError as exc:
            entry["constraints"] = str(exc)
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
    return _shown(load_stored(stored), stored, source)


@router.get("/flows/{namespace}")
def list_namespace(request: Request, namespace: str) -> list[dict[str, Any]]:
    """The flows of one namespace (latest revisions)."""
    with open_store(request) as store:
        found = list_flows(store, namespace)
    return [_shown(load_stored(s), s, False) for s in found]


@router.put("/flows/{namespace}/{flow_id}")
async def update_flow(request: Request, namespace: str, flow_id: str) -> dict[str, Any]:
    """Replace a flow's source: a new revision (404 when there is no such flow)."""
    text = await _text(request)
    loaded = _parse(request, text)
    if (loaded.flow.namespace, loaded.flow.id) != (namespace, flow_id):
        raise UsageError(
            f"the flow's namespace and id ({loaded.flow.namespace}.{loaded.flow.id}) must be "
            f"those of the URL ({namespace}.{flow_id})"
        )
    with open_store(request) as store:
        if get_flow(store, namespace, flow_id) is None:
            raise NotFoundError(f"Flow '{namespace}.{flow_id}' not found")
        stored = save_flow(store, namespace, flow_id, text)
    return _shown(loaded, stored, True)


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
    loaded_all: list[tuple[LoadedFlow, str]] = []
    problems: list[str] = []
    for index, text in enumerate(split_documents(await _text(request))):
        try:
            loaded = _parse(request, text)
        except FlowError as exc:
            problems.append(f"flow {index + 1}: {exc}")
            continue
        if loaded.flow.namespace != namespace:
            problems.append(
                f"flow {index + 1} ({loaded.flow.id}) is in namespace {loaded.flow.namespace},"
                f" not {namespace}"
            )
        loaded_all.append((loaded, text))
    if problems:
        raise UsageError("; ".join(problems))
    ids = [loaded.flow.id for loaded, _ in loaded_all]
    if len(set(ids)) != len(ids):
        raise UsageError(f"the same flow id appears twice: {sorted(ids)}")
    shown: list[dict[str, Any]] = []
    with open_store(request) as store:
        for loaded, text in loaded_all:
            stored = save_flow(store, namespace, loaded.flow.id, text)
            shown.append(_shown(loaded, stored, True))
        if delete:
            for old in list_flows(store, namespace):
                if old.id not in ids:
                    delete_flow(store, namespace, old.id)
    return shown
