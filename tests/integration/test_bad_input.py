"""Bad input: one readable line, a distinct exit code, nothing left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import cli, our_resources, write_flow

pytestmark = pytest.mark.integration

GOOD = """
id: ok
namespace: tests.bad
tasks:
  - id: hello
    type: io.kestra.plugin.scripts.shell.Commands
    containerImage: busybox
    commands: ["echo hi"]
"""


def _one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    return stderr.strip().splitlines()[-1]


def test_missing_flow_file_exits_2(home: Path, tmp_path: Path) -> None:
    """A missing flow file: exit 2, the path named."""
    result = cli(home, "run", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert f"{tmp_path / 'nope.yaml'}: no such flow file" in _one_line_error(result.stderr)


def test_not_yaml_exits_2_with_line(home: Path, tmp_path: Path) -> None:
    """A file that is not YAML: exit 2 with file:line:column."""
    flow = write_flow(tmp_path, "id: x\ntasks: [\n  - : :\n")
    result = cli(home, "run", str(flow))
    assert result.returncode == 2
    assert f"{flow}:3:" in result.stderr and "not valid YAML" in result.stderr


@pytest.mark.serial  # orphans of its own: another run's sweep must not take them
def test_unknown_field_exits_2_naming_task(home: Path, tmp_path: Path) -> None:
    """A typo in a task: exit 2 naming file:line, the field and the task; nothing created."""
    flow = write_flow(tmp_path, GOOD.replace("commands:", "comands:"))
    before = our_resources()
    result = cli(home, "run", str(flow))
    assert result.returncode == 2
    assert (
        f"{flow}:8:5: tasks[0].comands (task 'hello'): unknown property 'comands'" in result.stderr
    )
    assert our_resources() == before


def test_unresolvable_image_exits_2_and_leaves_nothing(home: Path, tmp_path: Path) -> None:
    """An image neither local nor aliased (pulls refused): exit 2, no container or volume."""
    flow = write_flow(
        tmp_path,
        GOOD.replace(
            "containerImage: busybox",
            "containerImage: nosuch/image:1.0\n    docker:\n      pullPolicy: NEVER",
        ),
    )
    result = cli(home, "run", str(flow))
    assert result.returncode == 2, result.stderr
    line = _one_line_error(result.stderr)
    assert "nosuch/image:1.0" in line and "task 'hello'" in line
    assert not our_resources()


def test_dead_engine_exits_3_naming_the_socket(home: Path, tmp_path: Path) -> None:
    """No engine at DOCKER_HOST: exit 3, the socket named and how to start one."""
    flow = write_flow(tmp_path, GOOD)
    result = cli(home, "run", str(flow), env={"DOCKER_HOST": "unix:///tmp/no-engine-here.sock"})
    assert result.returncode == 3
    line = _one_line_error(result.stderr)
    assert "unix:///tmp/no-engine-here.sock" in line and "make engine" in line


def test_missing_required_input_exits_2(home: Path, tmp_path: Path) -> None:
    """A required input not given: exit 2 saying how to pass it."""
    flow = write_flow(
        tmp_path, GOOD.replace("tasks:", "inputs:\n  - id: who\n    type: STRING\ntasks:", 1)
    )
    result = cli(home, "run", str(flow))
    assert result.returncode == 2
    assert "input 'who' (STRING) is required: pass -i who=VALUE" in result.stderr


def test_validate_reports_success_and_failure(home: Path, tmp_path: Path) -> None:
    """validate prints a summary for a good flow (exit 0) and the problems of a bad one (exit 2)."""
    good = write_flow(tmp_path, GOOD, "good.yaml")
    bad = write_flow(tmp_path, GOOD.replace("busybox", "busybox\n    timeout: later"), "bad.yaml")
    ok = cli(home, "validate", str(good))
    assert ok.returncode == 0 and "valid (tests.bad.ok, 1 tasks)" in ok.stdout
    ko = cli(home, "validate", str(bad))
    assert ko.returncode == 2 and f"{bad}:8:" in ko.stderr
