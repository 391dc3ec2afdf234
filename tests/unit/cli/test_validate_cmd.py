"""`executor validate`: every problem in one pass, suggestions for misspelt task types, and the
list of supported types on request."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from executor.cli.main import cli, main
from executor.flow.model import SUPPORTED_TASK_TYPES

ONE_OF_EACH = """
id: mixed
namespace: company.team
tasks:
  - id: first
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.nowhere.value }}"
  - id: second
    type: io.kestra.plugin.core.log.Logg
    message: hi
  - id: third
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputz.first }}"
    colour: red
"""


def _validate(tmp_path: Path, text: str, *args: str) -> tuple[int, str]:
    flow = tmp_path / "flow.yaml"
    flow.write_text(textwrap.dedent(text))
    result = CliRunner().invoke(cli, ["validate", str(flow), *args])
    return result.exit_code, result.output


def test_structure_and_template_problems_come_in_one_pass(tmp_path: Path) -> None:
    """A misspelt type, an unknown property, a reference to no task and an undefined name:
    all four reported by one `validate`, each on its line."""
    code, output = _validate(tmp_path, ONE_OF_EACH)
    assert code == 2
    assert "4 problem(s) in the flow" in output
    assert "flow.yaml:7:5: task 'first' refers to outputs.nowhere, but no task has that id" in (
        output
    )
    assert "flow.yaml:8:5: tasks[1] (task 'second'): unknown task type" in output
    assert "flow.yaml:13:5: task 'third': undefined name 'outputz'" in output
    assert "flow.yaml:14:5: tasks[2].colour (task 'third'): unknown property 'colour'" in output


def test_a_refused_task_raises_no_false_problem_elsewhere(tmp_path: Path) -> None:
    """A task with a wrong type still counts as a task: a later reference to its outputs is no
    problem, and the children of a refused WorkingDirectory are still checked."""
    code, output = _validate(
        tmp_path,
        """
        id: kept
        namespace: company.team
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            colour: red
            tasks:
              - id: inner
                type: io.kestra.plugin.core.log.Log
                message: "{{ outputs.ghost.value }}"
          - id: make
            type: io.kestra.plugin.core.debug.Returns
            format: x
          - id: use
            type: io.kestra.plugin.core.log.Log
            message: "{{ outputs.make.value }}"
        """,
    )
    assert code == 2
    assert "3 problem(s) in the flow" in output, output
    assert "unknown property 'colour'" in output
    assert "task 'inner' refers to outputs.ghost" in output
    assert "unknown task type 'io.kestra.plugin.core.debug.Returns'" in output
    assert "outputs.make" not in output


def test_a_misspelt_task_type_gets_a_suggestion_not_the_whole_list(tmp_path: Path) -> None:
    """`...log.Logg` and `shell.Command` are answered with the type meant; the supported types
    are not dumped, one line says how to list them."""
    code, output = _validate(
        tmp_path,
        """
        id: typo
        namespace: company.team
        tasks:
          - id: a
            type: io.kestra.plugin.core.log.Logg
            message: hi
          - id: b
            type: io.kestra.plugin.scripts.shell.Command
            commands: [ls]
          - id: c
            type: io.kestra.plugin.nothing.Like.This
        """,
    )
    assert code == 2
    assert "did you mean 'io.kestra.plugin.core.log.Log'?" in output
    assert "did you mean 'io.kestra.plugin.scripts.shell.Commands'?" in output
    assert "unknown task type 'io.kestra.plugin.nothing.Like.This' (not a task this " in output
    assert output.count("did you mean") == 2
    assert output.rstrip().splitlines()[-1] == (
        "`executor validate --list-types` lists the task types this executor runs"
    )
    assert "io.kestra.plugin.core.flow.WorkingDirectory" not in output


def test_list_types_prints_every_supported_type() -> None:
    """`validate --list-types` prints the supported types, one a line, and needs no flow."""
    result = CliRunner().invoke(cli, ["validate", "--list-types"])
    assert result.exit_code == 0
    assert result.output.splitlines() == list(SUPPORTED_TASK_TYPES)


def test_validate_without_a_flow_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """No FLOW and no --list-types: one line saying what is missing, exit 2."""
    assert main(["validate"]) == 2
    assert capsys.readouterr().err == (
        "executor: validate needs at least one FLOW (or --list-types)\n"
    )
