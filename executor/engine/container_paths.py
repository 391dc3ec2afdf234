"""The executor's own directory inside every task container, and what lives in it.

One owner for every ``/.executor/...`` path: the engine installs the exec wrapper and the
per-exec records there, the run puts the ``kestra`` module and script files there, the cache
keeps Python venvs there. It is outside the workspace, so nothing in it is harvested or seeded.
"""

from __future__ import annotations

ROOT = "/.executor"
"""The directory itself (world-writable, sticky: any task user may record)."""

WRAPPER = f"{ROOT}/wrapper.sh"
"""The exec wrapper every task starts through (it finds its records beside itself)."""

RUNS = f"{ROOT}/runs"
"""One directory per exec (``run_dir``): the wrapper's pid and exit code, script files."""

PYTHON_MODULES = f"{ROOT}/python"
"""On ``PYTHONPATH`` in every task: the ``kestra`` module (outputs, metrics, logs)."""

KESTRA_MODULE = f"{PYTHON_MODULES}/kestra.py"

VENVS = f"{ROOT}/venvs"
"""Python tasks' venvs, cached by their requirements."""


def run_dir(token: str) -> str:
    """The directory of the exec whose token is ``token``."""
    return f"{RUNS}/{token}"
