"""Hostile flow files: `executor validate` refuses them with a located error, in bounded memory.

Each check runs the real CLI in a child process whose address space is capped at 1 GiB, so a
loader that expands aliases or recurses without bound dies there (MemoryError, a crash, a
RecursionError traceback) instead of exiting 2 with one located line.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from executor.flow.loader import load_flow_text

ROOT = Path(__file__).resolve().parents[3]
MEMORY_CAP = 1 << 30


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "executor", "validate", str(path)],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=_cap_memory,  # the cap applies to the child only
        check=False,
        timeout=120,
    )


def billion_laughs() -> str:
    lines = [
        "id: laughs",
        "namespace: tests.hostile",
        'a: &a ["x","x","x","x","x","x","x","x","x"]',
    ]
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [{','.join(['*' + previous] * 9)}]")
        previous = name
    return "\n".join([*lines, "tasks: []", ""])


def deep_block_mapping(depth: int) -> str:
    body = "".join(f"{'  ' * level}k:\n" for level in range(1, depth))
    return f"id: deep\nnamespace: tests.hostile\nx:\n{body}{'  ' * depth}k: 1\n"


def assert_refused(path: Path, message: str) -> None:
    result = validate(path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert re.fullmatch(rf"{re.escape(str(path))}:\d+:\d+: {message}\n", result.stderr)


def test_billion_laughs_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """A few hundred bytes of nested aliases are refused where the budget runs out."""
    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs())
    assert len(path.read_bytes()) < 1000
    assert_refused(path, r"aliases expand to more than 100000 values")


@pytest.mark.parametrize(
    "nested",
    [
        "tasks: " + "[" * 1000 + "]" * 1000,
        "x: " + "{a: " * 1000 + "1" + "}" * 1000,
        deep_block_mapping(1000).split("\n", 2)[2],
    ],
    ids=["flow-sequences", "flow-mappings", "block-mappings"],
)
def test_deep_nesting_is_refused_not_a_traceback(tmp_path: Path, nested: str) -> None:
    """A document nested 1,000 deep exits 2 with a located message, not a RecursionError."""
    path = tmp_path / "deep.yaml"
    path.write_text(f"id: deep\nnamespace: tests.hostile\n{nested}\n")
    assert_refused(path, r"nested more than 100 levels deep")


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    """An alias inside the node it names (a cycle) is refused, located at the alias."""
    path = tmp_path / "cycle.yaml"
    path.write_text("id: cycle\nnamespace: tests.hostile\ntasks: &t [*t]\n")
    result = validate(path)
    assert result.returncode == 2
    assert result.stderr == f"{path}:3:12: an alias refers to a node that contains it\n"


def test_ordinary_aliases_and_merge_keys_still_load() -> None:
    """Anchors reused a few times, merge keys and YAML 1.2 booleans load as before."""
    loaded = load_flow_text(
        textwrap.dedent("""
            id: aliases
            namespace: tests.hostile
            labels: &labels {team: data, on: off}
            tasks:
              - &log {id: a, type: io.kestra.plugin.core.log.Log, message: hi}
              - <<: *log
                id: b
        """),
        Path("f.yaml"),
    )
    assert [t.id for t in loaded.flow.tasks] == ["a", "b"]
    assert loaded.flow.labels == {"team": "data", "on": "off"}
    assert loaded.where(("tasks", 1, "id")) == "f.yaml:8:5"
