"""Every error the executor reports on purpose.

The CLI turns an :class:`ExecutorError` into one readable line and the exit code
its class names; anything else is a bug and shows a traceback.

    ExecutorError                     exit 1  root; never raised directly
    ├── FlowError                     exit 2  the flow cannot run as written
    │   ├── FlowLoadError                     missing, unreadable or not YAML
    │   ├── FlowValidationError               a field is wrong (carries every problem)
    │   └── TemplateError                     an expression failed to render
    ├── UsageError                    exit 2  a bad command-line argument or input value
    ├── ImageError                    exit 2  an image cannot be resolved or built
    ├── EngineError                   exit 3  the container engine failed
    │   ├── EngineUnavailable                 no engine answers at the socket
    │   │   └── EngineLost                    it answered, then stopped answering mid-run
    │   └── TransientEngineError              worth retrying (reset, 5xx, timeout)
    ├── WorkspaceError                exit 1  seeding or harvesting the workspace failed
    │   └── UnsafePathError           exit 2  a path escapes the workspace
    ├── StoreError                    exit 4  the record store cannot be used
    │   └── NotFoundError             exit 4  no such execution, artifact or namespace
    ├── HostFileError                 exit 5  a host file or directory cannot be read or written
    ├── ServerConfigError             exit 6  the server refuses to start as configured
    ├── ServerError                   exit 1  the server answered with an error (``--server``)
    └── Interrupted                   exit 130 Ctrl-C or SIGTERM
"""

from __future__ import annotations


class ExecutorError(Exception):
    """Root of the errors the executor reports as one line and an exit code."""

    exit_code = 1

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class FlowError(ExecutorError):
    """The flow cannot run as written."""

    exit_code = 2


class FlowLoadError(FlowError):
    """The flow file is missing, unreadable or not YAML."""


class FlowValidationError(FlowError):
    """One or more fields of the flow are wrong; ``problems`` lists each, located."""

    def __init__(
        self, problems: list[str], *, where: str | None = None, hint: str | None = None
    ) -> None:
        self.problems = problems
        self.hint = hint  # said once after the problems (e.g. the supported task types)
        head = f"{len(problems)} problem(s) in the flow" if len(problems) > 1 else problems[0]
        super().__init__(
            head if len(problems) == 1 else head + ":\n  " + "\n  ".join(problems), where=where
        )

    @property
    def without_hint(self) -> str:
        """The located problems alone, for a caller that prints the hint once for many flows."""
        return super().__str__()

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n{self.hint}" if self.hint else text


class TemplateError(FlowError):
    """An expression in the flow failed to render."""


class UsageError(ExecutorError):
    """A command-line argument or an input value is wrong."""

    exit_code = 2


class ImageError(ExecutorError):
    """An image reference cannot be resolved to a local image, or a build failed."""

    exit_code = 2


class EngineError(ExecutorError):
    """The container engine failed."""

    exit_code = 3


class EngineUnavailable(EngineError):
    """No container engine answers."""


class EngineLost(EngineUnavailable):
    """The engine stopped answering during a run; the run cannot go on.

    Attributes:
        address: the engine's address (``unix:///...``, ``tcp://...``).
        cause: the transport's own words, shortened.
        task: the task that was running, once known.
    """

    def __init__(self, address: str, cause: str, task: str | None = None) -> None:
        during = f" during task '{task}'" if task else ""
        super().__init__(f"the Docker engine at {address} stopped answering{during} ({cause})")
        self.address, self.cause, self.task = address, cause, task

    def during(self, task: str) -> EngineLost:
        """The same loss, told as having happened while ``task`` ran."""
        return self if self.task else EngineLost(self.address, self.cause, task)


class TransientEngineError(EngineError):
    """An engine failure worth retrying: connection reset, 5xx, timeout."""


class WorkspaceError(ExecutorError):
    """Seeding or harvesting the workspace failed."""


class UnsafePathError(WorkspaceError):
    """A path is absolute, climbs out with '..', or is a link leading outside."""

    exit_code = 2


class StoreError(ExecutorError):
    """The record or artifact store cannot be used."""

    exit_code = 4


class StoreUnavailable(StoreError):
    """The store cannot be reached or is locked now, and may be back later (a PostgreSQL
    restart, a lost connection, another process holding the lock): worth trying again."""


class NotFoundError(StoreError):
    """No such execution, artifact, namespace or cache entry."""


class HostFileError(ExecutorError):
    """A host file or directory cannot be read or written (read-only, full, no permission)."""

    exit_code = 5

    @classmethod
    def of(cls, exc: OSError, doing: str) -> HostFileError:
        """One line from an ``OSError``: what was being done, the path, the system's reason."""
        reason = exc.strerror or str(exc)
        path = f" {exc.filename}" if exc.filename else ""
        return cls(f"{doing}: cannot use{path}: {reason.lower()}")


class ServerConfigError(ExecutorError):
    """The server refuses to start as configured (e.g. an open bind without authentication)."""

    exit_code = 6


class ServerError(ExecutorError):
    """A server asked with ``--server`` answered with an error, or could not be reached."""

    def __init__(
        self, message: str, *, status: int | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail or message  # the server's own words, without the URL


class Interrupted(ExecutorError):
    """The run was stopped by Ctrl-C or SIGTERM."""

    exit_code = 130
