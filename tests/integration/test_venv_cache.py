"""A python task's venv is kept for the next execution with the WorkingDirectory's cache."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from executor.engine.docker.client import connect
from executor.model import State
from tests.integration.helpers import Recorder, run_flow, write_flow

pytestmark = pytest.mark.integration

PYTHON_IMAGE = "executor/python:3.11"
FLOW = """
id: venvs
namespace: tests.venvcache
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    cache:
      patterns: ["nothing-here/**"]
      ttl: PT1H
    tasks:
      - id: use
        type: io.kestra.plugin.scripts.python.Commands
        containerImage: {image}
        dependencies: ["{package}"]
        commands:
          - python -c "import six, sys; print('six', six.__version__, sys.prefix)"
"""
MADE = "executor: made the Python environment"
RESTORED = "Python environment restored from cache"


@pytest.fixture
def other_image() -> Iterator[str]:
    """A second image id with the same Python (a label on top of the python image)."""
    client: Any = connect(None)
    tag = f"executor-test/venvcache:{uuid.uuid4().hex[:12]}"
    dockerfile = f"FROM {PYTHON_IMAGE}\nLABEL executor.test=venvcache\n".encode()
    image, _ = client.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True)
    yield tag
    client.images.remove(image.id, force=True)
    client.close()


def run(home: Path, tmp_path: Path, image: str, package: str) -> Recorder:
    flow = write_flow(tmp_path, FLOW.format(image=image, package=package))
    execution, recorder = run_flow(home, flow)
    assert execution.state.current == State.SUCCESS, recorder.messages()
    return recorder


def test_the_next_execution_restores_the_venv_instead_of_installing(
    home: Path, tmp_path: Path, other_image: str, executions_leave_nothing: None
) -> None:
    """Run 1 installs six from PyPI and saves the venv; run 2 restores it and installs nothing;
    another image or other dependencies do not reuse it."""
    first = run(home, tmp_path, PYTHON_IMAGE, "six==1.16.0")
    assert any(m.startswith(MADE) for m in first.messages("use")), first.messages()
    assert not any(RESTORED in m for m in first.messages())
    assert any(m.startswith("Python environment cached for") for m in first.messages())
    assert list((home / "cache" / "tests.venvcache" / "venvs" / "wd.venvs").glob("*.tar"))

    second = run(home, tmp_path, PYTHON_IMAGE, "six==1.16.0")
    assert any(RESTORED in m for m in second.messages("use")), second.messages()
    assert not any(m.startswith(MADE) for m in second.messages()), second.messages()
    assert any(m.startswith("six 1.16.0 /.executor/venvs/") for m in second.messages("use"))

    other = run(home, tmp_path, other_image, "six==1.16.0")
    assert not any(RESTORED in m for m in other.messages()), other.messages()
    assert any(m.startswith(MADE) for m in other.messages("use"))

    changed = run(home, tmp_path, PYTHON_IMAGE, "six==1.15.0")
    assert any(RESTORED in m for m in changed.messages("use"))  # the 1.16.0 venv came back...
    assert any(m.startswith(MADE) for m in changed.messages("use"))  # ...but is not this one
    assert any(m.startswith("six 1.15.0 ") for m in changed.messages("use"))


def test_dependency_cache_disabled_keeps_nothing(
    home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """``dependencyCacheEnabled: false`` on the task opts out even with a cache."""
    text = FLOW.replace("commands:", "dependencyCacheEnabled: false\n        commands:")
    flow = write_flow(tmp_path, text.format(image=PYTHON_IMAGE, package="six==1.16.0"))
    for _ in range(2):
        execution, recorder = run_flow(home, flow)
        assert execution.state.current == State.SUCCESS, recorder.messages()
        assert any(m.startswith(MADE) for m in recorder.messages("use"))
        assert not any(RESTORED in m for m in recorder.messages())
    assert not (home / "cache" / "tests.venvcache" / "venvs" / "wd.venvs").exists()
