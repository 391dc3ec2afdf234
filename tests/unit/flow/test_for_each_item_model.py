"""ForEachItem in a flow file: Kestra's properties accepted, typos refused, its own task runs'
outputs known to the reference check, and its flow call part of the cycle check."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.errors import FlowError
from executor.flow.checks import check_flow
from executor.flow.loader import load_flow
from executor.flow.model import ForEachItemTask
from executor.subflows import FlowIndex, check_subflows

EVERY_PROPERTY = """
id: parent
namespace: t
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{ inputs.file }}"
    batch:
      rows: 10
      bytes: 10MB
      partitions: 4
      separator: ";"
      regexPattern: "^(\\\\w+)"
    namespace: t
    flowId: child
    revision: 2
    inputs:
      data: "{{ taskrun.items }}"
      n: "{{ taskrun.iteration }}"
    labels:
      team: data
    wait: false
    transmitFailed: false
    inheritLabels: true
    scheduleDate: "2030-01-01T00:00:00Z"
    restartBehavior: NEW_EXECUTION
    errors:
      - id: said
        type: io.kestra.plugin.core.log.Log
        message: "{{ outputs.each_items.iterations }}"
    finally:
      - id: done
        type: io.kestra.plugin.core.log.Log
        message: done
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.each_merge.subflowOutputs }} {{ outputs.each_split.splits }}"
inputs:
  - id: file
    type: FILE
"""


def _flow(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_every_kestra_property_is_accepted_and_its_parts_outputs_are_known(
    tmp_path: Path,
) -> None:
    """The full property set loads; ``outputs.each_merge`` etc. are not unknown tasks."""
    loaded = load_flow(_flow(tmp_path, "parent", EVERY_PROPERTY))
    task = loaded.flow.tasks[0]
    assert isinstance(task, ForEachItemTask)
    assert (task.batch.rows, task.batch.partitions, task.wait) == (10, 4, False)
    assert check_flow(loaded) == []


def test_defaults_are_kestras(tmp_path: Path) -> None:
    """One row per batch, wait, pass failures on, no labels inherited."""
    text = EVERY_PROPERTY.split("    batch:")[0] + "    namespace: t\n    flowId: child\n"
    text += "inputs:\n  - id: file\n    type: FILE\n"
    task = load_flow(_flow(tmp_path, "parent", text)).flow.tasks[0]
    assert isinstance(task, ForEachItemTask)
    assert (task.batch.rows, task.batch.separator, task.wait, task.transmitFailed) == (
        1,
        "\n",
        True,
        True,
    )
    assert (task.inheritLabels, task.restartBehavior) == (False, "RETRY_FAILED")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("      rows: 10", "      row: 10"), "row"),
        (("      rows: 10", "      rows: 0"), "rows"),
        (("restartBehavior: NEW_EXECUTION", "restartBehavior: SOMETIMES"), "restartBehavior"),
    ],
)
def test_a_typo_or_a_bad_value_is_refused_with_its_place(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    """extra="forbid": a misspelt batch property is an error, located."""
    text = EVERY_PROPERTY.replace(*change)
    with pytest.raises(FlowError, match=rf"parent\.yaml:\d+:\d+: tasks\[0\]\..*{message}"):
        load_flow(_flow(tmp_path, "parent", text))


def test_a_foreachitem_that_calls_its_own_flow_is_a_cycle(tmp_path: Path) -> None:
    """check_subflows treats ForEachItem as it treats Subflow: a loop is an error."""
    ping = _flow(
        tmp_path,
        "ping",
        "id: ping\nnamespace: t\ntasks:\n"
        "  - {id: each, type: io.kestra.plugin.core.flow.ForEachItem, items: 'kestra:///x',"
        " namespace: t, flowId: pong}\n",
    )
    _flow(
        tmp_path,
        "pong",
        "id: pong\nnamespace: t\ntasks:\n"
        "  - {id: call, type: io.kestra.plugin.core.flow.Subflow, namespace: t, flowId: ping}\n",
    )
    with pytest.raises(FlowError, match=r"calls its own flow again: t\.ping -> t\.pong -> t\.ping"):
        check_subflows(load_flow(ping), FlowIndex(tmp_path))
    itself = _flow(
        tmp_path,
        "itself",
        "id: itself\nnamespace: t\ntasks:\n"
        "  - {id: each, type: io.kestra.plugin.core.flow.ForEachItem, items: 'kestra:///x',"
        " namespace: t, flowId: itself}\n",
    )
    with pytest.raises(FlowError, match=r"a ForEachItem calls its own flow again: t\.itself"):
        check_subflows(load_flow(itself), FlowIndex(tmp_path))


def test_a_missing_child_flow_is_reported(tmp_path: Path) -> None:
    """The flow a ForEachItem names is looked up before the run, as a Subflow's is."""
    lone = _flow(
        tmp_path,
        "lone",
        "id: lone\nnamespace: t\ntasks:\n"
        "  - {id: each, type: io.kestra.plugin.core.flow.ForEachItem, items: 'kestra:///x',"
        " namespace: t, flowId: ghost}\n",
    )
    with pytest.raises(FlowError, match=r"'t'\.'ghost'"):
        check_subflows(load_flow(lone), FlowIndex(tmp_path))


def test_not_inside_a_working_directory(tmp_path: Path) -> None:
    """Its children are executions of their own: a WorkingDirectory's container cannot hold it."""
    text = (
        "id: wd\nnamespace: t\ntasks:\n"
        "  - id: wd\n    type: io.kestra.plugin.core.flow.WorkingDirectory\n    tasks:\n"
        "      - {id: each, type: io.kestra.plugin.core.flow.ForEachItem, items: 'kestra:///x',"
        " namespace: t, flowId: child}\n"
    )
    with pytest.raises(FlowError, match="a ForEachItem cannot run inside the WorkingDirectory"):
        load_flow(_flow(tmp_path, "wd", text))
