"""A task's ``timeout`` or ``pauseDuration``, with a template rendered when the task starts."""

from __future__ import annotations

from datetime import timedelta

from executor.errors import TemplateError
from executor.flow.base import TaskBase
from executor.flow.durations import parse_duration
from executor.model import TaskRun
from executor.run.context import RunContext
from executor.run.scope import Scope


def resolve_duration(
    value: timedelta | str | None,
    name: str,
    task: TaskBase,
    run: TaskRun,
    scope: Scope,
    ctx: RunContext,
) -> timedelta | None:
    """``value`` as a duration: as written, or its template rendered and parsed now.

    Raises:
        TemplateError: the template failed, or rendered to something that is not a positive
            ISO-8601 duration; the message names the property and the rendered text.
    """
    if value is None or isinstance(value, timedelta):
        return value
    where = ctx.where(task)
    rendered = ctx.renderer.render(value, ctx.variables(run, task, scope), where=where).strip()
    if not rendered:
        return None
    try:
        duration = parse_duration(rendered)
    except ValueError as exc:
        raise TemplateError(f"{name}: {exc}", where=where) from None
    if duration.total_seconds() <= 0:
        raise TemplateError(f"{name}: {rendered!r} is not a positive duration", where=where)
    return duration
