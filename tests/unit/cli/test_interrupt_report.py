"""The last line after an interrupt reports what the engine still holds, not a hope."""

from __future__ import annotations

from executor.cli.local_run import _cleanup_report
from executor.engine.api import Resource


def test_report_names_what_is_left() -> None:
    """Nothing left, something left, or the engine unreachable: three different lines."""
    assert _cleanup_report([]).endswith("every container and volume of the run was removed")
    left = _cleanup_report([Resource("volume", "v1", "executor-ws-1", {})])
    assert "could not remove volume executor-ws-1" in left and "executor gc" in left
    assert "removed" not in left.split(";")[0].replace("could not remove", "")
    assert "could not be asked" in _cleanup_report(None)
