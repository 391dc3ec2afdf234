"""``plugin-n8n``: ``TriggerWorkflow``, a call of an n8n workflow's webhook URL.

Property names are Kestra's (``AbstractTriggerWorkflow``); ``io.kestra.plugin.n8n.webhook.
TriggerWorkflow`` is the name of its first release.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from executor.flow.base import TaskBase
from executor.flow.tasks_http import Flag, HttpOptions

N8N_TYPES = ("io.kestra.plugin.n8n.TriggerWorkflow", "io.kestra.plugin.n8n.webhook.TriggerWorkflow")

N8N_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
N8N_CONTENT_TYPES = {
    "TEXT": "text/plain",
    "JSON": "application/json",
    "XML": "application/xml",
    "BINARY": "application/octet-stream",
}


class N8nTriggerWorkflow(TaskBase):
    """POST (or GET, ...) to the webhook; ``statusCode`` and ``body`` (JSON parsed, else text)."""

    type: Literal[N8N_TYPES]  # type: ignore[valid-type]
    uri: str
    method: str  # one of N8N_METHODS, or an expression rendered to one
    body: dict[str, Any] | str | None = None
    queryParameters: dict[str, Any] | str | None = None
    headers: dict[str, Any] | str | None = None
    from_: str | None = Field(default=None, alias="from")
    contentType: str = "BINARY"  # one of N8N_CONTENT_TYPES: how ``from`` is sent
    wait: Flag = True
    options: HttpOptions | None = None

    @model_validator(mode="after")
    def _known_choices(self) -> N8nTriggerWorkflow:
        for name, value, choices in (
            ("method", self.method, N8N_METHODS),
            ("contentType", self.contentType, tuple(N8N_CONTENT_TYPES)),
        ):
            if "{{" not in value and value.strip().upper() not in choices:
                raise ValueError(f"'{name}' must be one of {', '.join(choices)}, got {value!r}")
        return self
