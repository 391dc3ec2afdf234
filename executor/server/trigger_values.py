"""What every trigger gives the execution it starts: its ``trigger`` object and its inputs."""

from __future__ import annotations

import json
from typing import Any, Protocol

from executor.flow.template import Renderer


class _Trigger(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def inputs(self) -> dict[str, Any] | None: ...

    def model_dump(self, *, mode: str, exclude: set[str]) -> dict[str, Any]: ...


def trigger_object(trigger: _Trigger, variables: dict[str, Any]) -> dict[str, Any]:
    """The execution's ``trigger``, as Kestra records it."""
    return {"id": trigger.id, "type": trigger.type, "variables": variables}


def signature(trigger: _Trigger) -> str:
    """What makes a trigger the same trigger: all it says, but whether it is disabled."""
    return json.dumps(trigger.model_dump(mode="json", exclude={"disabled"}), sort_keys=True)


def trigger_inputs(trigger: _Trigger, variables: dict[str, Any], where: str) -> dict[str, str]:
    """The trigger's ``inputs``, rendered with ``trigger`` in scope, as text.

    Raises:
        TemplateError: an input's template does not render.
    """
    rendered = Renderer().render_value(
        dict(trigger.inputs or {}), {"trigger": variables}, where=where
    )
    return {str(k): _text(v) for k, v in rendered.items()}


def text_values(values: dict[str, Any]) -> dict[str, str]:
    """Input values as the queue takes them: text (JSON for lists and mappings)."""
    return {str(k): _text(v) for k, v in values.items()}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)
