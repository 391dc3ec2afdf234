"""What tasks that run on the host (HTTP, KV, mail, storage) share: rendering and bounds.

A :class:`HostJob` is one attempt's view of its task: render a property in the task's context,
read a Kestra boolean that may be an expression, log a line, and the deadline the task's
``timeout`` sets.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import IO, Any

from executor.errors import ExecutorError, TemplateError, UnsafePathError
from executor.flow.durations import parse_duration
from executor.flow.model import Task
from executor.flow.template import kestra_truthy
from executor.model import Attempt, Level, State, TaskRun
from executor.paths import safe_relative
from executor.run.context import RunContext
from executor.run.handlers.attempts import AttemptFn, AttemptResult
from executor.run.http import HttpFailure
from executor.run.scope import Scope
from executor.store.api import ArtifactStore
from executor.store.files.artifacts import SCHEME, write_file


class TaskInputError(Exception):
    """A property's value cannot be used; the message names the property."""


@dataclass
class HostJob:
    """One attempt of a host task."""

    task: Task
    run: TaskRun
    scope: Scope
    ctx: RunContext

    def __post_init__(self) -> None:
        self.variables = self.ctx.variables(self.run, self.task, self.scope)
        self.where = self.ctx.where(self.task)
        self.started = time.monotonic()

    def render(self, value: Any) -> Any:
        """``value`` with every template in it rendered (strings, inside dicts and lists)."""
        return self.ctx.renderer.render_value(value, self.variables, where=self.where)

    def text(self, value: Any) -> str:
        """A property rendered to text (a non-string value as Kestra prints it)."""
        rendered = self.render(value)
        if isinstance(rendered, str):
            return rendered
        if isinstance(rendered, bool):
            return "true" if rendered else "false"
        return "" if rendered is None else str(rendered)

    def flag(self, value: bool | str | None, name: str, default: bool = False) -> bool:
        """A Kestra boolean property: a literal or an expression giving true or false."""
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        rendered = self.text(value).strip().lower()
        if rendered not in ("true", "false"):
            raise TaskInputError(f"'{name}' must be true or false, got {rendered!r}")
        return kestra_truthy(rendered)

    def integer(self, value: int | str | None, name: str) -> int | None:
        """A whole-number property, literal or rendered."""
        if value is None or isinstance(value, int):
            return value
        text = self.text(value).strip()
        try:
            return int(text)
        except ValueError:
            raise TaskInputError(f"'{name}' must be a whole number, got {text!r}") from None

    def mapping(self, value: Any, name: str) -> dict[str, Any]:
        """A map property, rendered: a map, or the JSON text of one."""
        rendered = self.render(value)
        if isinstance(rendered, str):
            try:
                rendered = json.loads(rendered)
            except ValueError:
                raise TaskInputError(f"'{name}' is neither a map nor its JSON text") from None
        if not isinstance(rendered, dict):
            raise TaskInputError(f"'{name}' must be a map")
        return {str(k): v for k, v in rendered.items()}

    @contextmanager
    def content(self, value: Any) -> Iterator[IO[bytes]]:
        """A file's content as a property gives it: its text, or the ``kestra:///`` URI of a
        stored file, read as this execution (what it may not read is refused)."""
        text = "" if value is None else str(value)
        if not text.strip().startswith(f"{SCHEME}/"):
            yield io.BytesIO(text.encode("utf-8"))
            return
        try:
            stored = self.artifacts().open(text.strip())
        except ExecutorError as exc:
            raise TaskInputError(exc.message) from None
        with stored:
            yield stored

    def write_input_files(self, value: Any, dest: Path, name: str = "inputFiles") -> None:
        """``inputFiles`` (path -> text or ``kestra:///`` URI) written under ``dest``."""
        for path, content in self.mapping(value, name).items():
            try:
                rel = safe_relative(path)
            except UnsafePathError as exc:
                raise TaskInputError(f"'{name}': {exc.message}") from None
            with self.content(content) as fh:
                write_file(dest, rel, fh)

    def log(self, level: Level, message: str) -> None:
        self.ctx.log(self.run, level, message)

    def deadline(self) -> float | None:
        """When the task's ``timeout`` runs out (``time.monotonic()``), or ``None``."""
        timeout = self.task.timeout
        if isinstance(timeout, str):  # a template, rendered as the task starts
            text = self.text(timeout).strip()
            if not text:
                return None
            try:
                timeout = parse_duration(text)
            except ValueError as exc:
                raise TaskInputError(f"'timeout': {exc}") from None
        return self.started + timeout.total_seconds() if timeout else None

    def artifacts(self) -> ArtifactStore:
        """The artifact store, read as this execution (what it may not read is refused)."""
        return self.ctx.stores().artifacts

    def store_prefix(self) -> PurePosixPath:
        """The artifact-store directory of this task run's files."""
        flow, execution = self.ctx.loaded.flow, self.ctx.execution
        return self.artifacts().prefix(
            flow.namespace, flow.id, execution.id, self.task.id, self.run.id
        )


def seconds(value: timedelta | None, default: float) -> float:
    return value.total_seconds() if value is not None else default


HostAttempt = Callable[[Any, HostJob], AttemptResult]


def host_attempt(body: HostAttempt) -> AttemptFn[Any]:
    """An attempt function from ``body(task, job)``; a bad value or a failed call ends it FAILED.

    The reason is one line that names the task and its place in the flow file.
    """

    def attempt(
        task: Any, run: TaskRun, attempt: Attempt, scope: Scope, ctx: RunContext
    ) -> AttemptResult:
        job = HostJob(task, run, scope, ctx)
        try:
            return body(task, job)
        except TemplateError:
            raise  # with_attempts reports it, located
        except (TaskInputError, HttpFailure) as exc:
            message = str(exc)
        except ExecutorError as exc:
            message = exc.message
        job.log(Level.ERROR, message)
        return AttemptResult(State.FAILED, f"{job.where}: {message}")

    return attempt
