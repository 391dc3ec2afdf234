"""Property: any mutation of a valid flow either validates or exits 2 with a located message."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from executor.cli import main
from tests.conftest import FLOWS

BASES = [
    yaml.safe_load((FLOWS / name).read_text())
    for name in sorted(p.name for p in FLOWS.glob("*.yaml"))
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.text(max_size=12),
    st.just("{{ outputs.nope.vars.x }}"),
    st.just("PT-1S"),
    st.just("../etc"),
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> str:
    doc = draw(st.sampled_from(BASES))
    doc = yaml.safe_load(yaml.safe_dump(doc))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        key = path[-1]
        action = draw(st.sampled_from(["delete", "replace", "rename", "add"]))
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(
                st.one_of(
                    SCALARS,
                    st.lists(SCALARS, max_size=2),
                    st.dictionaries(st.text(max_size=5), SCALARS, max_size=2),
                )
            )
        elif action == "rename" and isinstance(parent, dict):
            parent[str(key) + draw(st.sampled_from(["x", "_", "s"]))] = parent.pop(key)
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(SCALARS)
    text = yaml.safe_dump(doc, sort_keys=False)
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", ":", "- [", "\t", "{{", "\x00"])) + text[cut:]
    return text


def _validate(tmp: Path, text: str) -> tuple[int, str]:
    path = tmp / "flow.yaml"
    path.write_text(text)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["validate", str(path)])
    return code, err.getvalue()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=mutated())
def test_mutated_flows_never_crash(tmp_path: Path, text: str) -> None:
    """A mutated flow validates (0) or is refused (2) naming file:line, never with a traceback."""
    code, err = _validate(tmp_path, text)
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert re.search(r"flow\.yaml(:\d+:\d+)?", err), err


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=200))
def test_random_text_never_crashes(tmp_path: Path, text: str) -> None:
    """Arbitrary text as a flow file gives exit 2 (or 0 if by chance valid), never a traceback."""
    code, err = _validate(tmp_path, text)
    assert code in (0, 2), err
    assert "Traceback" not in err
