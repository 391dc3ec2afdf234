"""Node.js and R scripts run for real in their local images (built on demand), with npm
packages installed from the registry, outputs, outputDir files and the WorkingDirectory's
shared workspace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from executor.model import Execution, State, TaskRun
from tests.integration.helpers import cli, run_flow, write_flow

pytestmark = pytest.mark.integration


def build_image(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    """``executor images build NAME``: built once per engine, adopted by later homes."""
    home = tmp_path_factory.mktemp(f"{name}-image-home")
    done = cli(home, "images", "build", name, timeout=1500)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def node_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    build_image(tmp_path_factory, "node")
    yield


@pytest.fixture(scope="module")
def r_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    build_image(tmp_path_factory, "r")
    yield


def _task(execution: Execution, task_id: str) -> TaskRun:
    return next(t for t in execution.task_runs if t.task_id == task_id)


NODE = """
id: node
namespace: tests.languages
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: install
        type: io.kestra.plugin.scripts.node.Commands
        beforeCommands:
          - npm install --no-audit --no-fund --loglevel=error is-odd@3.0.1
        commands:
          - node -e 'console.log("odd", require("is-odd")(7))'
      - id: script
        type: io.kestra.plugin.scripts.node.Script
        outputFiles: [sum.txt]
        script: |
          const fs = require("fs");
          const isOdd = require("is-odd");
          const total = [1, 2, 3, 4].filter((n) => isOdd(n)).reduce((a, b) => a + b, 0);
          fs.writeFileSync("sum.txt", String(total));
          fs.writeFileSync("{{ outputDir }}/report.json", JSON.stringify({ total }));
          console.log("::" + JSON.stringify({ outputs: { total, flow: "{{ flow.id }}" } }) + "::");
"""


def test_node_commands_and_script_run_in_the_node_image_with_npm_packages(
    node_image: None, home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """npm installs a package from the registry; a later Script of the same WorkingDirectory
    requires it; its outputs, outputFiles and outputDir files come back."""
    execution, recorder = run_flow(home, write_flow(tmp_path, NODE))
    messages = recorder.messages()
    assert execution.state.current == State.SUCCESS, messages
    assert "odd true" in recorder.messages("install")
    script = _task(execution, "script")
    assert script.outputs["vars"] == {"total": 4, "flow": "node"}
    files = script.outputs["outputFiles"]
    assert sorted(files) == ["report.json", "sum.txt"]
    stored = home / "artifacts" / files["report.json"].removeprefix("kestra:///")
    assert stored.read_text() == '{"total":4}'
    assert execution.images["node"] == script.image_id  # Kestra's default image, resolved here


R = """
id: r
namespace: tests.languages
tasks:
  - id: stats
    type: io.kestra.plugin.scripts.r.Script
    script: |
      values <- c(2, 4, 9)
      write.csv(data.frame(v = values), "{{ outputDir }}/values.csv", row.names = FALSE)
      cat(sprintf('::{"outputs":{"mean":%s,"n":%d}}::\\n', mean(values), length(values)))
      message("R ", R.version$major)
  - id: commands
    type: io.kestra.plugin.scripts.r.Commands
    commands:
      - Rscript -e 'library(jsonlite); cat(toJSON(list(ok = TRUE), auto_unbox = TRUE), "\\n")'
"""


def test_r_script_and_commands_run_in_the_r_image(
    r_image: None, home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """An R Script's protocol outputs and outputDir file come back; Commands run Rscript."""
    execution, recorder = run_flow(home, write_flow(tmp_path, R))
    assert execution.state.current == State.SUCCESS, recorder.messages()
    stats = _task(execution, "stats")
    assert stats.outputs["vars"] == {"mean": 5, "n": 3}
    stored = (
        home / "artifacts" / stats.outputs["outputFiles"]["values.csv"].removeprefix("kestra:///")
    )
    assert stored.read_text().splitlines() == ['"v"', "2", "4", "9"]
    assert any(m.startswith("R 4") for m in recorder.messages("stats"))
    assert '{"ok":true} ' in recorder.messages("commands")
