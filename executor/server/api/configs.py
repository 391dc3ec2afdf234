"""``GET /configs``: what Kestra's UI and clients probe first (version, auth)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from executor.server.api.deps import config_of
from executor.version import executor_version

router = APIRouter(tags=["configs"])


@router.get("/configs")
def configs(request: Request) -> dict[str, Any]:
    """The server's version and whether it asks for credentials."""
    return {
        "version": executor_version(),
        "edition": "OSS",
        "server": "executor",
        "isBasicAuthEnabled": bool(config_of(request).users),
        "isAnonymousUsageEnabled": False,
        "isTaskRunEnabled": False,
        "isUiAnonymousUsageEnabled": False,
        "isTemplateEnabled": False,
    }
