"""Kestra's REST API, one router per resource; ``API_ROUTERS`` is what the app mounts."""

from __future__ import annotations

from fastapi import APIRouter

from executor.server.api import (
    configs,
    executions,
    flows,
    logs,
    namespace_files,
    triggers,
    webhooks,
    worker,
)

API_ROUTERS: tuple[APIRouter, ...] = (
    flows.router,
    executions.router,
    logs.router,
    namespace_files.router,
    configs.router,
    webhooks.router,
    triggers.router,
    worker.router,
)
