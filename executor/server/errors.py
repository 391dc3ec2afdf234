"""Errors as Kestra's API answers them: ``{"message": ..., "_links": ...}`` and its status codes.

NotFoundError (no such flow, execution, file)           404
Forbidden (a worker's run beyond its namespace)         403
Conflict (illegal state: kill an ended run, disabled)   409
FlowError, UsageError, UnsafePathError (bad input)      422
BodyTooLarge                                            413
TooBusy (too many event streams open)                   503
StoreError                                              503
anything else                                           500, logged, no traceback served
"""

from __future__ import annotations

from typing import Any

from executor.errors import (
    ExecutorError,
    FlowError,
    ImageError,
    NotFoundError,
    StoreError,
    UnsafePathError,
    UsageError,
)


class Forbidden(ExecutorError):
    """The caller is who it says, but may not act on that (a worker's run on another namespace)."""


class Conflict(ExecutorError):
    """The request is valid but the thing is in the wrong state (Kestra's IllegalState)."""


class BodyTooLarge(ExecutorError):
    """A request body is larger than the server accepts."""


class TooBusy(ExecutorError):
    """The server keeps as many of these as it will (open event streams): try again later."""


def error_body(message: str, path: str) -> dict[str, Any]:
    """Kestra's error shape."""
    return {"message": message, "_links": {"self": {"href": path, "templated": False}}}


def status_of(exc: ExecutorError) -> int:
    """Kestra's status code for one of our errors."""
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, BodyTooLarge):
        return 413
    if isinstance(exc, FlowError | UsageError | UnsafePathError | ImageError):
        return 422
    if isinstance(exc, StoreError | TooBusy):
        return 503
    return 500
