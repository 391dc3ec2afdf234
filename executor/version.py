"""The executor's version: one answer for ``executor --version`` and ``GET /api/v1/configs``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

UNKNOWN = "unknown"


def executor_version() -> str:
    """The installed package's version (``unknown`` when run from a tree never installed)."""
    try:
        return version("executor")
    except PackageNotFoundError:
        return UNKNOWN
