"""The app factory: ``create_app(settings, config)`` builds the whole server.

Kestra's API is mounted twice, at ``/api/v1`` (Kestra <= 0.21 clients) and ``/api/v1/main``
(0.22+ clients put the tenant there; ``main`` is the OSS tenant). ``/ui`` is left free for the
web UI, which a caller adds with ``extra_routers`` (or ``app.include_router`` afterwards), like
any other feature that needs the queue: ``app.state.queue`` is the ``ExecutionQueue``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from executor.errors import (
    ExecutorError,
)
from executor.server.api import API_ROUTERS
from executor.server.auth import AuthMiddleware
from executor.server.config import ServerConfig
from executor.server.errors import error_body, status_of
from executor.server.flow_parser import FlowParser
from executor.server.follows import FollowSlots
from executor.server.guard import GuardMiddleware
from executor.server.limits import BodyLimitMiddleware
from executor.server.maintenance import Maintenance
from executor.server.observe import install as install_health_and_metrics
from executor.server.queue import ExecutionQueue
from executor.server.retention import Retention
from executor.server.schedules import Scheduler
from executor.settings import Settings

log = structlog.get_logger(__name__)

API_PREFIXES = ("/api/v1", "/api/v1/main")


def create_app(
    settings: Settings,
    config: ServerConfig,
    *,
    queue: ExecutionQueue | None = None,
    extra_routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The server as an ASGI app; its queue starts and stops with the app's lifespan.

    Args:
        settings: the executor's settings (home, engine).
        config: bind, slots, users and tokens, limits.
        queue: a queue to use (default: one with ``config.workers`` slots).
        extra_routers: more routes (the web UI under ``/ui``, webhooks...), mounted as given.
    """
    # what runs here (slots, subflows) follows the server's rule on host-opening options
    settings = dataclasses.replace(settings, allow_host_options=config.allow_host_options)
    execution_queue = queue or ExecutionQueue(
        settings,
        config.workers,
        broker_url=config.broker,
        parser=FlowParser(
            config.limits.flow_parsers, config.limits.flow_parse_seconds, settings.envs
        ),
        worker_lapse=timedelta(seconds=config.worker_lapse),
    )
    scheduler = Scheduler(execution_queue)  # the flows' Schedule triggers
    retention = (
        Retention(execution_queue.stores, config.retention, config.retention_interval)
        if config.retention is not None
        else None
    )
    maintenance = Maintenance(execution_queue.stores.records)  # the store's statistics

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(execution_queue.start)
        scheduler.start()
        maintenance.start()
        if retention is not None:
            retention.start()
        try:
            yield
        finally:
            if retention is not None:
                await run_in_threadpool(retention.stop)
            await run_in_threadpool(maintenance.stop)
            await run_in_threadpool(scheduler.stop)
            await run_in_threadpool(execution_queue.stop)

    app = FastAPI(
        title="executor",
        summary="Kestra's REST API over the executor",
        lifespan=lifespan,
        docs_url=None,  # the web UI serves /api/docs with Swagger UI from the package (no CDN)
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.settings = settings
    app.state.config = config
    app.state.queue = execution_queue
    app.state.stores = execution_queue.stores
    app.state.maintenance = maintenance
    app.state.follows = FollowSlots(config.limits.max_follows)
    _install_error_handlers(app)
    for prefix in API_PREFIXES:
        for router in API_ROUTERS:
            app.include_router(router, prefix=prefix)
    for router in extra_routers:
        app.include_router(router)
    install_health_and_metrics(app, execution_queue, settings, config)  # /health*, /metrics
    # the last added runs first: Host and Origin, then credentials, before a body is read
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    app.add_middleware(AuthMiddleware, config=config)
    app.add_middleware(GuardMiddleware, config=config)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ExecutorError)
    async def executor_error(request: Request, exc: ExecutorError) -> JSONResponse:
        status = status_of(exc)
        request.app.state.metrics.error("api", exc)  # counts store and engine errors
        if status >= 500:
            log.error("request failed", path=request.url.path, error=str(exc))
        return JSONResponse(error_body(str(exc), request.url.path), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}"
            for err in exc.errors()
        )
        return JSONResponse(
            error_body(f"Invalid request: {problems}", request.url.path), status_code=422
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = "Not Found" if exc.status_code == 404 else str(exc.detail)
        return JSONResponse(error_body(message, request.url.path), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed", path=request.url.path)
        return JSONResponse(
            error_body(f"Internal server error: {type(exc).__name__}", request.url.path),
            status_code=500,
        )
