"""Loading and validating flows: located errors, every problem at once, Kestra's forms accepted."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from executor.errors import FlowLoadError, FlowValidationError
from executor.flow.loader import load_flow, load_flow_text
from executor.flow.model import ScriptTask, WorkingDirectoryTask
from tests.conftest import FLOWS


def load(text: str) -> object:
    return load_flow_text(textwrap.dedent(text), Path("f.yaml"))


def problems(text: str) -> list[str]:
    with pytest.raises(FlowValidationError) as info:
        load(text)
    return info.value.problems


@pytest.mark.parametrize("name", sorted(p.name for p in FLOWS.glob("*.yaml")))
def test_every_example_flow_is_valid(name: str) -> None:
    """The example flows load unchanged."""
    assert load_flow(FLOWS / name).flow.tasks


def test_missing_file_names_the_path() -> None:
    """A missing flow file is a FlowLoadError naming it."""
    with pytest.raises(FlowLoadError, match="no such flow file") as info:
        load_flow(Path("/nonexistent/flow.yaml"))
    assert "/nonexistent/flow.yaml" in str(info.value)


def test_yaml_syntax_error_is_located() -> None:
    """Broken YAML reports file:line:column."""
    with pytest.raises(FlowLoadError, match=r"f\.yaml:4:3: not valid YAML"):
        load("id: x\nnamespace: n\ntasks: [\n  - a: b\n")


def test_typo_is_located_with_a_suggestion() -> None:
    """An unknown property names its line, field path, task and the likely intended name."""
    found = problems("""
        id: x
        namespace: n
        tasks:
          - id: a
            type: io.kestra.plugin.scripts.shell.Commands
            comands: [ls]
    """)
    assert found == [
        "f.yaml:7:5: tasks[0].comands (task 'a'): unknown property 'comands'; "
        "did you mean 'commands'?"
    ]


def test_all_problems_reported_at_once() -> None:
    """Several errors in one flow are all listed, in line order."""
    found = problems("""
        id: x
        namespace: n
        tasks:
          - id: a
            type: io.kestra.plugin.scripts.shell.Nope
          - id: b
            type: io.kestra.plugin.scripts.shell.Commands
            commands: [ls]
            timeout: soon
    """)
    assert len(found) == 2
    assert "unknown task type 'io.kestra.plugin.scripts.shell.Nope'" in found[0]
    assert "io.kestra.plugin.core.flow.WorkingDirectory" not in found[0]
    assert found[1].startswith("f.yaml:10:")


def test_duplicate_ids_and_forward_output_references() -> None:
    """Duplicate task ids and outputs.x of a later or unknown task are caught before running."""
    found = problems("""
        id: x
        namespace: n
        tasks:
          - id: a
            type: io.kestra.plugin.core.log.Log
            message: "{{ outputs.b.value }} {{ outputs.ghost.value }}"
          - id: b
            type: io.kestra.plugin.core.debug.Return
            format: x
          - id: b
            type: io.kestra.plugin.core.debug.Return
            format: y
    """)
    text = "\n".join(found)
    assert "duplicate task id 'b'" in text
    assert "outputs.b, which has not run yet" in text
    assert "outputs.ghost, but no task has that id" in text


def test_run_if_must_be_an_expression() -> None:
    """A runIf that is not a template is refused."""
    assert (
        "runIf must be an expression"
        in problems("""
        id: x
        namespace: n
        tasks:
          - id: a
            type: io.kestra.plugin.core.log.Log
            runIf: "yes"
            message: hi
    """)[0]
    )


def test_legacy_types_and_docker_image_forms() -> None:
    """Legacy type names and docker.image / taskRunner forms give the same image."""
    loaded = load("""
        id: x
        namespace: n
        tasks:
          - id: wd
            type: io.kestra.core.tasks.flows.Worker
            tasks:
              - id: a
                type: io.kestra.core.tasks.scripts.Bash
                docker:
                  image: busybox
                commands: [ls]
              - id: b
                type: io.kestra.plugin.scripts.python.Commands
                taskRunner:
                  type: io.kestra.plugin.scripts.runner.docker.Docker
                  image: python:3.12
                commands: [ls]
              - id: c
                type: io.kestra.plugin.scripts.python.Commands
                taskRunner:
                  type: io.kestra.plugin.core.runner.Process
                commands: [ls]
    """)
    wd = loaded.flow.tasks[0]  # type: ignore[attr-defined]
    assert isinstance(wd, WorkingDirectoryTask)
    images = [t.image for t in wd.tasks if isinstance(t, ScriptTask)]
    assert images == ["busybox", "python:3.12", None]


def test_plugin_defaults_fill_and_forced_override() -> None:
    """pluginDefaults fill missing properties; forced ones override the task's own."""
    loaded = load("""
        id: x
        namespace: n
        pluginDefaults:
          - type: io.kestra.plugin.scripts.shell
            values:
              containerImage: busybox
              warningOnStdErr: false
          - type: io.kestra.plugin.scripts.shell.Commands
            forced: true
            values:
              failFast: false
        tasks:
          - id: a
            type: io.kestra.plugin.scripts.shell.Commands
            failFast: true
            commands: [ls]
    """)
    task = loaded.flow.tasks[0]  # type: ignore[attr-defined]
    assert task.image == "busybox" and task.warningOnStdErr is False and task.failFast is False


def test_yaml_12_booleans_keep_on_off_as_strings() -> None:
    """`id: on` is the string 'on' (YAML 1.2), not a boolean."""
    loaded = load("""
        id: x
        namespace: n
        tasks:
          - id: on
            type: io.kestra.plugin.core.log.Log
            message: hi
    """)
    assert loaded.flow.tasks[0].id == "on"  # type: ignore[attr-defined]


def test_colon_in_a_command_line_is_kept() -> None:
    """`- echo "a: b"` (a YAML mapping by accident) is read as the command the author wrote."""
    loaded = load("""
        id: x
        namespace: n
        tasks:
          - id: a
            type: io.kestra.plugin.scripts.shell.Commands
            commands:
              - echo "not started: slow failed"
    """)
    assert loaded.flow.tasks[0].commands == ['echo "not started: slow failed"']  # type: ignore[attr-defined]
