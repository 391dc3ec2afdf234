"""The web UI's pages under ``/ui``: server-rendered (Jinja, autoescaped) with small scripts.

Pages read the store directly, as the API does; everything they change goes through Kestra's
API from the browser (save a flow, execute, kill, upload), so the UI has no write path of its
own and the same checks apply. Live parts follow the API's server-sent events. Assets are
served from the package (no CDN), and every page forbids inline and foreign scripts (CSP), so a
log line or flow id that holds markup can only ever be text.
"""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from executor.errors import ExecutorError, FlowError, NotFoundError
from executor.flow.model import Flow, Input
from executor.model import Execution, State
from executor.paths import safe_relative
from executor.run.resume_check import paused_run
from executor.server.api.deps import open_store, queue_of, stores_of, worker_lapse
from executor.server.errors import status_of
from executor.server.trigger_rows import TriggerRow, trigger_rows
from executor.server.ui import views
from executor.store.flows import get_flow, list_flows
from executor.store.search import ExecutionFilter, search_executions
from executor.store.workers import list_workers

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
PAGE_SIZE = 25
MAX_SHOWN_FILE_BYTES = 512 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@cache
def templates() -> Jinja2Templates:
    """The page templates, built on first use (importing this module does no work)."""
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        pretty=views.pretty_json,
        duration=views.duration_text,
        time=views.time_text,
        state_class=views.state_class,
    )
    env.globals.update(STATES=[s.value for s in State], LEVELS=["TRACE", "DEBUG", "INFO", "WARN"])
    return Jinja2Templates(env=env)


@cache
def static_files() -> dict[str, Path]:
    """The assets, by name: nothing else under /ui/static is ever served."""
    return {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}


router = APIRouter(include_in_schema=False)


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    response = templates().TemplateResponse(request, name, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def error_page(request: Request, exc: ExecutorError) -> HTMLResponse:
    """Our error as a page, with the API's status code for it."""
    return page(request, "error.html", status=status_of(exc), message=str(exc))


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/ui", status_code=302)


@router.get("/ui")
@router.get("/ui/")
def home() -> RedirectResponse:
    return RedirectResponse("/ui/executions", status_code=302)


@router.get("/ui/main/{rest:path}")
def tenant_alias(rest: str) -> RedirectResponse:
    """Kestra 0.22+ links carry the tenant (``/ui/main/executions/...``): the same pages."""
    return RedirectResponse(f"/ui/{rest}", status_code=302)


@router.get("/ui/static/{name}")
def static(name: str) -> Response:
    path = static_files().get(name)
    if path is None:
        return Response("Not Found", status_code=404, media_type="text/plain")
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(
        path,
        media_type=media_type,
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


# ----- the API's documentation: Swagger UI, vendored (swagger-ui-dist, see vendor/swagger-ui)

SWAGGER_DIR = HERE / "vendor" / "swagger-ui"
SWAGGER_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "LICENSE": "text/plain",
    "NOTICE": "text/plain",
    "swagger-ui-bundle.js.LICENSE.txt": "text/plain",
}
DOCS_HEADERS = {
    **SECURITY_HEADERS,
    # Swagger UI sets style attributes on what it draws
    "Content-Security-Policy": SECURITY_HEADERS["Content-Security-Policy"].replace(
        "style-src 'self'", "style-src 'self' 'unsafe-inline'"
    ),
}


@router.get("/api/docs")
def api_docs(request: Request) -> HTMLResponse:
    """The API's documentation, drawn by Swagger UI from /api/openapi.json; every asset comes
    from this server, so it works without a network."""
    response = templates().TemplateResponse(request, "api_docs.html", {})
    response.headers.update(DOCS_HEADERS)
    return response


@router.get("/ui/static/swagger-ui/{name}")
def swagger_asset(name: str) -> Response:
    media_type = SWAGGER_FILES.get(name)
    if media_type is None:
        return Response("Not Found", status_code=404, media_type="text/plain")
    return FileResponse(
        SWAGGER_DIR / name,
        media_type=media_type,
        headers={"Cache-Control": "max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


# ----- flows


def _last_execution(request: Request, namespace: str, flow_id: str) -> Any:
    with open_store(request) as store:
        return store.last_executions([(namespace, flow_id)]).get((namespace, flow_id))


@router.get("/ui/flows")
def flows_page(request: Request) -> HTMLResponse:
    with open_store(request) as store:
        stored = list_flows(store)
        last = store.last_executions()  # one query for every flow
    rows = []
    for flow in stored:
        try:  # parsed once per revision (the parser keeps it), in its process pool
            triggers = views.trigger_kinds(queue_of(request).parser.load_stored(flow).flow)
        except FlowError:
            triggers = ["(invalid)"]
        rows.append((flow, triggers, last.get((flow.namespace, flow.id))))
    return page(request, "flows.html", rows=rows)


@router.get("/ui/flows/new")
def new_flow_page(request: Request) -> HTMLResponse:
    return page(request, "flow_new.html")


@router.get("/ui/flows/{namespace}/{flow_id}")
def flow_page(
    request: Request, namespace: str, flow_id: str, revision: int | None = None
) -> HTMLResponse:
    with open_store(request) as store:
        stored = get_flow(store, namespace, flow_id, revision)
        latest = get_flow(store, namespace, flow_id)
    if stored is None or latest is None:
        return error_page(request, NotFoundError(f"Flow '{namespace}.{flow_id}' not found"))
    problems: list[views.Problem] = []
    fields: list[views.InputField] = []
    triggers: list[str] = []
    try:
        flow = queue_of(request).parser.load_stored(stored).flow
        fields = views.input_fields(list(flow.inputs))
        triggers = views.trigger_kinds(flow)
    except FlowError as exc:
        problems = views.problems_of(str(exc))
    bad_lines = {p.line for p in problems if p.line is not None}
    return page(
        request,
        "flow.html",
        rows=_trigger_rows(request, namespace, flow_id),
        namespace=namespace,
        flow_id=flow_id,
        stored=stored,
        latest_revision=latest.revision,
        lines=views.highlight_yaml(stored.source),
        problems=problems,
        bad_lines=bad_lines,
        fields=fields,
        triggers=triggers,
        last=_last_execution(request, namespace, flow_id),
    )


# ----- triggers


def _trigger_rows(request: Request, namespace: str, flow_id: str) -> list[TriggerRow]:
    with open_store(request) as store:
        rows = trigger_rows(
            store,
            queue_of(request).parser.load_stored,
            namespace=namespace or None,
            flow_id=flow_id or None,
        )
    if flow_id:  # exactly this flow (``namespace`` also matches those below it)
        rows = [r for r in rows if r.state.namespace == namespace]
    return rows


@router.get("/ui/triggers")
def triggers_page(
    request: Request,
    namespace: str = "",
    flow_id: Annotated[str, Query(alias="flowId")] = "",
    partial: bool = False,
) -> HTMLResponse:
    """Every trigger: next and last tick, on or off and why, backfills; ``partial=true``: only
    the rows (``namespace``/``flowId``: one flow's, for its page)."""
    rows = _trigger_rows(request, namespace, flow_id)
    context: dict[str, Any] = {"rows": rows, "namespace": namespace, "flow_id": flow_id}
    return page(request, "_trigger_rows.html" if partial else "triggers.html", **context)


# ----- executions


@router.get("/ui/executions")
def executions_page(
    request: Request,
    namespace: str = "",
    flow_id: Annotated[str, Query(alias="flowId")] = "",
    state: str = "",
    q: str = "",
    page_number: Annotated[int, Query(alias="page", ge=1)] = 1,
    partial: bool = False,
) -> HTMLResponse:
    """The executions, newest first, filtered; ``partial=true``: only the table's rows."""
    states = [State(state)] if state in State.__members__ else []
    wanted = ExecutionFilter(
        namespace=namespace.strip() or None,
        flow_id=flow_id.strip() or None,
        states=states,
        q=q.strip() or None,
    )
    with open_store(request) as store:
        found_page = search_executions(store, wanted, page=page_number, size=PAGE_SIZE)
        found = [s.execution for s in store.get_executions(found_page.ids)]
    now = datetime.now(UTC)
    total = found_page.total
    context: dict[str, Any] = dict(
        executions=[(e, views.elapsed(e.state.start, e.state.end, now)) for e in found],
        total=total,
        exact=found_page.exact,
        page_number=page_number,
        pages=max(1, -(-total // PAGE_SIZE)),
        filters={"namespace": namespace, "flowId": flow_id, "state": state, "q": q},
    )
    name = "_execution_rows.html" if partial else "executions.html"
    return page(request, name, **context)


def _read_execution(request: Request, execution_id: str) -> Execution:
    with open_store(request) as store:
        try:
            return store.get_execution(execution_id).execution
        except NotFoundError:
            raise NotFoundError(f"Execution '{execution_id}' not found") from None


def _execution_url(execution: Execution) -> str:
    return f"/ui/executions/{execution.namespace}/{execution.flow_id}/{execution.id}"


@router.get("/ui/executions/{execution_id}")
def execution_short(request: Request, execution_id: str) -> Response:
    try:
        return RedirectResponse(_execution_url(_read_execution(request, execution_id)), 302)
    except NotFoundError as exc:
        return error_page(request, exc)


def _flow_of(request: Request, execution: Execution) -> Flow | None:
    """The stored revision the execution runs (None when gone or no longer loading)."""
    with open_store(request) as store:
        stored = get_flow(store, execution.namespace, execution.flow_id, execution.flow_revision)
    if stored is None:
        return None
    try:
        return queue_of(request).parser.load_stored(stored).flow
    except FlowError:
        return None


def _resume_context(execution: Execution) -> dict[str, Any]:
    pause = paused_run(execution) if execution.state.current == State.PAUSED else None
    specs = [Input.model_validate(s) for s in pause.resume_inputs or []] if pause else []
    return {"pause": pause, "resume_fields": views.input_fields(specs)}


@router.get("/ui/executions/{namespace}/{flow_id}/{execution_id}")
def execution_page(
    request: Request, namespace: str, flow_id: str, execution_id: str, partial: str = ""
) -> Response:
    """One execution; ``partial=true``: only its live part (state, tree, Gantt, outputs);
    ``partial=resume``: only the resume form of its waiting Pause."""
    try:
        execution = _read_execution(request, execution_id)
    except NotFoundError as exc:
        return error_page(request, exc)
    if (execution.namespace, execution.flow_id) != (namespace, flow_id):
        return RedirectResponse(_execution_url(execution), 302)
    if partial == "resume":
        return page(request, "_resume_form.html", execution=execution, **_resume_context(execution))
    now = datetime.now(UTC)
    files = views.output_files(execution.outputs)
    for run in execution.task_runs:
        files += [
            views.OutputFile(f"{run.task_id}: {f.name}", f.uri)
            for f in views.output_files(run.outputs)
        ]
    unique_files: dict[str, views.OutputFile] = {}
    for found in files:
        unique_files.setdefault(found.uri, found)
    rows = views.task_rows(execution, now)
    flow = None if execution.state.current.terminal else _flow_of(request, execution)
    context: dict[str, Any] = dict(
        execution=execution,
        seconds=views.elapsed(execution.state.start, execution.state.end, now),
        rows=views.with_pending(rows, execution, flow),
        ticks=views.timeline_ticks(execution, now),
        files=list(unique_files.values()),
        task_outputs=[(r, r.outputs) for r in execution.task_runs if r.outputs],
        failure=views.failure_of(execution),
        metrics=views.metric_rows(execution),
        task_ids=sorted({r.task_id for r in execution.task_runs}),
        **_resume_context(execution),
    )
    return page(request, "_execution_live.html" if partial else "execution.html", **context)


# ----- workers


@router.get("/ui/workers")
def workers_page(request: Request, partial: bool = False) -> HTMLResponse:
    """The workers of a server started with ``--broker``; ``partial=true``: only the rows."""
    with open_store(request) as store:
        rows = list_workers(store)
    dispatch = queue_of(request).dispatch
    judged = worker_lapse(request)  # longer just after a start: workers get to heartbeat first
    context: dict[str, Any] = dict(
        workers=views.worker_views(rows, judged, datetime.now(UTC)),
        lapse=(dispatch.lapse if dispatch is not None else judged).total_seconds(),
        brokered=dispatch is not None,
    )
    return page(request, "_worker_rows.html" if partial else "workers.html", **context)


# ----- namespace files


@router.get("/ui/namespaces")
def namespaces_page(request: Request) -> HTMLResponse:
    with open_store(request) as store:
        from_flows = {f.namespace for f in list_flows(store)}
    with_files = set(stores_of(request).namespaces.namespaces())
    names = sorted(from_flows | with_files)
    return page(request, "namespaces.html", names=names, with_files=with_files)


@router.get("/ui/namespaces/{namespace}/files")
def files_page(request: Request, namespace: str, path: str = "/") -> Response:
    """A directory of the namespace's files (or one file's text)."""
    rel = path.strip("/")
    store = stores_of(request).namespaces
    try:
        if rel:
            rel = str(safe_relative(rel))
        try:
            target = store.locate(namespace, rel)
        except NotFoundError:
            if rel:
                raise
            target = None  # a namespace with no files yet: an empty root
    except ExecutorError as exc:
        return error_page(request, exc)
    shown = "/" + rel
    crumbs = []
    parts = PurePosixPath(rel).parts if rel else ()
    for i, part in enumerate(parts):
        crumbs.append((part, "/" + "/".join(parts[: i + 1])))
    if target is not None and target.is_file():
        size = target.stat().st_size
        text: str | None = None
        if size <= MAX_SHOWN_FILE_BYTES:
            raw = target.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        return page(
            request,
            "file.html",
            namespace=namespace,
            path=shown,
            crumbs=crumbs,
            size=size,
            text=text,
            lines=(text or "").removesuffix("\n").split("\n"),
        )
    entries = []
    if target is not None:
        for child in sorted(target.iterdir(), key=lambda p: (not p.is_dir(), p.name)):
            if child.is_symlink() or child.name.endswith(".part"):
                continue
            stat = child.stat()
            entries.append(
                {
                    "name": child.name,
                    "path": (shown.rstrip("/") + "/" + child.name),
                    "dir": child.is_dir(),
                    "size": 0 if child.is_dir() else stat.st_size,
                    "modified": datetime.fromtimestamp(stat.st_mtime, UTC),
                }
            )
    return page(
        request, "files.html", namespace=namespace, path=shown, crumbs=crumbs, entries=entries
    )
