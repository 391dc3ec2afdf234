"""Subflow references at validation: a missing flow is reported to a callback (validate warns,
as Kestra does when a flow is saved); without one it stops the run; a loop is always an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.errors import FlowError
from executor.flow.loader import load_flow
from executor.subflows import FlowIndex, SubflowNotFound, check_subflows


def _write(root: Path, flow_id: str, calls: str) -> Path:
    path = root / f"{flow_id}.yaml"
    path.write_text(
        f"id: {flow_id}\nnamespace: t\ntasks:\n"
        "  - {id: call, type: io.kestra.plugin.core.flow.Subflow, namespace: t,"
        f" flowId: {calls}}}\n"
    )
    return path


def test_a_missing_flow_goes_to_the_callback_located_through_the_chain(tmp_path: Path) -> None:
    parent = _write(tmp_path, "parent", "middle")
    _write(tmp_path, "middle", "ghost")
    seen: list[FlowError] = []
    check_subflows(load_flow(parent), FlowIndex(tmp_path), missing=seen.append)
    assert len(seen) == 1 and isinstance(seen[0], SubflowNotFound)
    assert "Unable to find flow 't'.'ghost'" in seen[0].message
    assert "(called through t.parent -> t.middle)" in seen[0].message
    assert seen[0].where is not None and "parent.yaml:4:5 task 'call'" in seen[0].where
    with pytest.raises(SubflowNotFound, match=r"'t'\.'ghost'"):
        check_subflows(load_flow(parent), FlowIndex(tmp_path))


def test_a_loop_is_an_error_even_with_the_callback(tmp_path: Path) -> None:
    ping = _write(tmp_path, "ping", "pong")
    _write(tmp_path, "pong", "ping")
    seen: list[FlowError] = []
    with pytest.raises(FlowError, match=r"t\.ping -> t\.pong -> t\.ping"):
        check_subflows(load_flow(ping), FlowIndex(tmp_path), missing=seen.append)
    assert seen == []
