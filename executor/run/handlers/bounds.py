"""What the plugin host tasks (SQL, S3, Redis, archives) share: a deadline watchdog, a scratch
directory, outputs as plain JSON values, and the one-line message for a missing extra.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

from executor.run.handlers.host import HostJob, TaskInputError

PLUGINS_EXTRA = "pip install 'executor[plugins]'"


def need(module: str, what: str) -> ModuleType:
    """Import ``module`` (a heavy optional dependency) or fail the task saying which extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise TaskInputError(
            f"{what} needs the Python package behind '{module}', which is not installed: "
            f"{PLUGINS_EXTRA}"
        ) from None


@dataclass
class Watch:
    """Why a watched call was interrupted, if it was."""

    why: str | None = None


@contextlib.contextmanager
def watchdog(job: HostJob, interrupt: Callable[[], Any]) -> Iterator[Watch]:
    """Call ``interrupt()`` once if the task's ``timeout`` passes or its run is cancelled.

    The body runs on this thread; a small thread polls. After an interruption the body's own
    error (a cancelled query, a closed socket) is replaced by one naming the cause.
    """
    deadline = job.deadline()
    watch = Watch()
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.2):
            if job.scope.cancel.cancelled:
                watch.why = "stopped: the execution was cancelled"
            elif deadline is not None and time.monotonic() > deadline:
                watch.why = f"timed out after {job.task.timeout}"
            if watch.why:
                with contextlib.suppress(Exception):
                    interrupt()
                return

    thread = threading.Thread(target=poll, name=f"watch-{job.task.id}", daemon=True)
    thread.start()
    try:
        yield watch
    except Exception:
        if watch.why:
            raise TaskInputError(watch.why) from None
        raise
    finally:
        done.set()
        thread.join()
    if watch.why:
        raise TaskInputError(watch.why)


@contextlib.contextmanager
def scratch(job: HostJob) -> Iterator[Path]:
    """A private working directory for one attempt, removed afterwards whatever happens."""
    path = Path(tempfile.mkdtemp(prefix=f"executor-{job.task.id}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def plain(value: Any) -> Any:
    """``value`` as an output: JSON types only (as Kestra serialises its outputs)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, Decimal):
        return (
            int(value)
            if value == value.to_integral_value() and "E" not in str(value)
            else (float(value))
        )
    if isinstance(value, datetime | date | clock):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"PT{value.total_seconds():g}S"
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    return str(value)
