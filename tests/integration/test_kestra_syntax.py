"""Kestra syntax on the real engine: a real pip install, legacy defaults, templated timeouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.model import State
from tests.integration.helpers import run_flow, states, write_flow

pytestmark = pytest.mark.integration

DEPENDENCIES = """
id: deps
namespace: tests.syntax
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: install
        type: io.kestra.plugin.scripts.python.Script
        dependencies: ["six==1.16.0"]
        packageManager: uv
        script: |
          import six
          print("six", six.__version__)
      - id: reuse
        type: io.kestra.plugin.scripts.python.Commands
        dependencies: ["six==1.16.0"]
        packageManager: UV
        commands:
          - python -c "import six, sys; print('again', six.__version__, sys.prefix)"
"""


def test_dependencies_install_for_real_and_later_children_reuse_the_venv(
    home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """six==1.16.0 is installed from PyPI through the host's CA bundle, once per container."""
    execution, recorder = run_flow(home, write_flow(tmp_path, DEPENDENCIES))
    assert execution.state.current == State.SUCCESS, recorder.messages()
    assert "six 1.16.0" in recorder.messages("install")
    made = [m for m in recorder.messages() if m.startswith("executor: made the Python env")]
    assert len(made) == 1, made  # the second child found the venv and did not install again
    again = [m for m in recorder.messages("reuse") if m.startswith("again 1.16.0")]
    assert again and "/.executor/venvs/" in again[0]
    assert "executor: packageManager UV: the image has no uv; installing with pip" in (
        recorder.messages("install")
    )


LEGACY = """
id: legacy
namespace: tests.syntax
inputs:
  - id: timeout
    type: STRING
    defaults: PT30S
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: python
        type: io.kestra.core.tasks.scripts.Python
        timeout: "{{ inputs.timeout }}"
        inputFiles:
          data.json: '{"status": "OK"}'
          main.py: |
            import json, sys
            print("status", json.load(open(sys.argv[1]))["status"], sys.argv[2])
        args: [data.json, second]
      - id: bash
        type: io.kestra.core.tasks.scripts.Bash
        interpreter: bash
        interpreterArgs: [-c]
        commands:
          - 'echo "shell $0"'
"""


def test_legacy_python_defaults_and_a_templated_timeout(
    home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """No commands runs main.py with args; a string interpreter runs; the timeout renders."""
    execution, recorder = run_flow(home, write_flow(tmp_path, LEGACY))
    assert execution.state.current == State.SUCCESS, recorder.messages()
    assert "status OK second" in recorder.messages("python")
    assert "shell bash" in recorder.messages("bash")


def test_a_templated_timeout_that_renders_badly_fails_the_task(
    home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """`timeout: "{{ inputs.timeout }}"` given `soon` fails that task with a clear reason."""
    execution, _ = run_flow(home, write_flow(tmp_path, LEGACY), {"timeout": "soon"})
    assert execution.state.current == State.FAILED
    assert states(execution)["python"] == "FAILED"
    python = next(r for r in execution.task_runs if r.task_id == "python")
    assert python.reason is not None
    assert "timeout: 'soon' is not an ISO-8601 duration" in python.reason


def test_a_templated_timeout_is_enforced(
    home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """A timeout rendered from an input stops a task that runs longer."""
    flow = LEGACY.replace('print("status"', 'import time; time.sleep(30); print("status"')
    execution, _ = run_flow(home, write_flow(tmp_path, flow), {"timeout": "pt1s"})
    python = next(r for r in execution.task_runs if r.task_id == "python")
    assert python.state.current == State.FAILED
    assert python.reason is not None and python.reason.startswith("timed out after PT1S")
