"""``validate`` reports a name a task's templates use that the run would not define."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from executor.errors import FlowValidationError
from executor.flow.loader import load_flow_text
from executor.settings import Settings

SH = "io.kestra.plugin.scripts.shell.Commands"


def _problems(tasks: str, envs: dict[str, str] | None = None) -> list[str]:
    text = "id: f\nnamespace: tests.names\ntasks:\n" + textwrap.indent(textwrap.dedent(tasks), "  ")
    try:
        load_flow_text(text, Path("f.yaml"), envs)
    except FlowValidationError as exc:
        return exc.problems
    return []


def test_output_dir_is_a_script_task_variable_only() -> None:
    """``outputDir`` in a script task is fine; in a Log it is reported with its line."""
    assert (
        _problems(f"- id: s\n  type: {SH}\n  commands: ['echo x > {{{{ outputDir }}}}/a']\n") == []
    )
    found = _problems(
        "- id: log\n  type: io.kestra.plugin.core.log.Log\n  message: '{{ outputDir }}'\n"
    )
    assert found == [
        "f.yaml:6:5: task 'log': undefined name 'outputDir': outputDir exists only in script "
        "tasks (Commands, Script, CLIs)"
    ]


def test_envs_are_checked_against_the_settings_envs(monkeypatch: pytest.MonkeyPatch) -> None:
    """``envs.x`` is defined exactly when the run's settings have it (``ENV_X`` as Settings
    read it); a guarded use is fine; with no envs given (the flow runs elsewhere), none is
    judged, whatever this process's own environment holds."""
    tasks = (
        "- id: log\n  type: io.kestra.plugin.core.log.Log\n"
        "  message: '{{ envs.region }} {{ envs.zone }} {{ envs.other ?? 1 }}"
        " {{ envs.more | default(2) }}'\n"
    )
    settings = Settings.from_env({"HOME": "/h", "ENV_REGION": "eu"})
    (problem,) = _problems(tasks, dict(settings.envs))
    assert "undefined name 'envs.zone': no ENV_ZONE variable in the environment" in problem
    monkeypatch.delenv("ENV_ZONE", raising=False)
    assert _problems(tasks) == []


def test_legacy_output_files_are_the_declared_names() -> None:
    """A legacy Bash task's ``outputFiles.x`` must be one it lists; other tasks have none."""
    found = _problems(
        "- id: bash\n  type: io.kestra.core.tasks.scripts.Bash\n  outputFiles: [first]\n"
        "  commands:\n    - echo 1 > {{ outputFiles.first }}\n"
        "    - echo 2 > {{ outputFiles.second }}\n"
        f"- id: new\n  type: {SH}\n  commands: ['echo {{{{ outputFiles.first }}}}']\n"
    )
    assert len(found) == 2, found
    assert (
        "task 'bash': undefined name 'outputFiles.second': this legacy task's outputFiles"
        in (found[0])
    )
    assert (
        "task 'new': undefined name 'outputFiles': outputFiles is a variable of legacy"
        in (found[1])
    )


def test_loop_and_set_names_branches_and_descriptions_are_not_reported() -> None:
    """Names bound by for/set, used only in a ternary branch, or in a description are fine;
    ``workerTaskrun`` is defined inside a WorkingDirectory."""
    found = _problems(
        """
        - id: wd
          type: io.kestra.plugin.core.flow.WorkingDirectory
          tasks:
            - id: s
              type: io.kestra.plugin.scripts.shell.Script
              description: "{{ not_rendered }}"
              script: |
                {% for x in [1, 2] %}{{ x }}{% endfor %}
                {% set y = 3 %}{{ y }} {{ workerTaskrun.id }}
                {{ inputs.fail is defined ? boom : taskrun.id }}
        """
    )
    assert found == []


def test_an_unknown_root_name_is_reported_at_its_line() -> None:
    """A name no task has (a typo of ``outputs``) is reported with the template's line."""
    found = _problems(
        f"- id: s\n  type: {SH}\n  commands:\n    - |\n      echo ok\n"
        "      echo {{ output.a.value }}\n"
    )
    assert found == [
        "f.yaml:9: task 's': undefined name 'output': the task has no such variable when it runs"
    ]
