"""ForEachItem's handler on host tasks only (the fake engine): what a user sees when the file is
empty, not a stored file, or the child refuses its inputs; the batch of each child."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from executor import app
from executor.model import Execution, State
from executor.run.ion import read_rows
from executor.settings import Settings
from executor.store.files.artifacts import LocalArtifactStore

CHILD = """
id: echo_batch
namespace: t
inputs:
  - id: data
    type: STRING
  - id: n
    type: INT
tasks:
  - id: said
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.n }}"
outputs:
  - id: text
    type: STRING
    value: "{{ read(inputs.data) }}"
"""


def _parent(content: str, batch: str = "rows: 2", items: str = "{{ outputs.rows.uri }}") -> str:
    return f"""
id: parent
namespace: t
tasks:
  - id: rows
    type: io.kestra.plugin.core.storage.Write
    extension: .txt
    content: "{content}"
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{items}"
    batch:
      {batch}
    namespace: t
    flowId: echo_batch
    inputs:
      data: "{{{{ taskrun.items }}}}"
      n: "{{{{ taskrun.iteration }}}}"
"""


def _run(tmp_path: Path, parent: str, child: str = CHILD) -> Execution:
    flows = tmp_path / "flows"
    flows.mkdir(exist_ok=True)
    (flows / "echo_batch.yaml").write_text(textwrap.dedent(child))
    (flows / "parent.yaml").write_text(textwrap.dedent(parent))
    settings = Settings(home=tmp_path / "home", engine="fake")
    return app.run_flow(settings, flows / "parent.yaml", {})


def _outputs(execution: Execution, task_id: str) -> dict[str, Any]:
    return next(r.outputs for r in execution.task_runs if r.task_id == task_id)


def _run_of(execution: Execution, task_id: str) -> dict[str, object]:
    run = next(r for r in execution.task_runs if r.task_id == task_id)
    return {"state": run.state.current, "outputs": run.outputs, "reason": run.reason}


@pytest.fixture(autouse=True)
def _fake_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXECUTOR_ENGINE", "fake")


def test_each_child_gets_its_batch_and_its_iteration(tmp_path: Path) -> None:
    """Five rows by two: three children, the last with one row; outputs merged in order."""
    execution = _run(tmp_path, _parent("1\\n2\\n3\\n4\\n5"))
    assert execution.state.current == State.SUCCESS, execution.reason
    outputs = _outputs(execution, "each")
    merged = _outputs(execution, "each_merge")["subflowOutputs"]
    assert outputs == {
        "numberOfBatches": 3,
        "iterations": {"CREATED": 0, "RUNNING": 0, "SUCCESS": 3},
        "subflowOutputs": merged,
    }
    with LocalArtifactStore(tmp_path / "home" / "artifacts").open(merged) as fh:
        assert list(read_rows(fh)) == [{"text": "1\n2\n"}, {"text": "3\n4\n"}, {"text": "5\n"}]


def test_an_empty_file_starts_no_child_and_succeeds(tmp_path: Path) -> None:
    """Nothing to do is not a failure: 0 batches, nothing merged."""
    execution = _run(tmp_path, _parent(""))
    assert execution.state.current == State.SUCCESS, execution.reason
    items = _outputs(execution, "each_items")
    assert (items["numberOfBatches"], items["iterations"]) == (0, {"CREATED": 0, "RUNNING": 0})
    assert _outputs(execution, "each_merge") == {}


def test_items_that_are_not_a_stored_file_fail_the_split_saying_so(tmp_path: Path) -> None:
    """A path or a text is refused at ``<id>_split``, naming what it got; no child starts."""
    execution = _run(tmp_path, _parent("x", items="/etc/passwd"))
    assert execution.state.current == State.FAILED
    split = _run_of(execution, "each_split")
    assert split["state"] == State.FAILED
    assert "'items' must be a kestra:/// URI of a stored file" in str(split["reason"])
    assert "'/etc/passwd'" in str(split["reason"])
    assert not [r for r in execution.task_runs if r.task_id == "each_items"]


def test_a_bad_batch_size_is_refused_with_its_name(tmp_path: Path) -> None:
    """``bytes`` that is not a size fails the split with the property named."""
    execution = _run(tmp_path, _parent("a", batch="bytes: lots"))
    split = _run_of(execution, "each_split")
    assert split["state"] == State.FAILED
    assert "'batch.bytes' 'lots' is not a size such as 10MB" in str(split["reason"])


def test_a_child_that_refuses_its_inputs_fails_the_items_once(tmp_path: Path) -> None:
    """An input the child does not declare: ``<id>_items`` fails with the child's message."""
    child = CHILD.replace("  - id: n\n    type: INT\n", "")
    execution = _run(tmp_path, _parent("1\\n2\\n3", batch="rows: 1"), child)
    assert execution.state.current == State.FAILED
    items = _run_of(execution, "each_items")
    assert items["state"] == State.FAILED
    assert "unknown input(s) n" in str(items["reason"])
