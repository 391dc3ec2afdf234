"""What real Kestra flows hit at run time: storage URIs in commands, outputDir, retry and
worker names of Kestra 2.0, loop values inside a WorkingDirectory, legacy outputFiles,
attemptsCount, envs, and how dates print. Each flow runs for real on the engine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from executor.model import Execution, State, TaskRun
from tests.integration.helpers import run_flow, states, write_flow

pytestmark = pytest.mark.integration

SH = "io.kestra.plugin.scripts.shell.Commands"


def _run(home: Path, tmp_path: Path, text: str) -> tuple[Execution, list[str]]:
    execution, recorder = run_flow(home, write_flow(tmp_path, text))
    return execution, recorder.messages()


def _task(execution: Execution, task_id: str) -> TaskRun:
    return next(t for t in execution.task_runs if t.task_id == task_id)


def _stored(home: Path, uri: str) -> str:
    assert uri.startswith("kestra:///"), uri
    return (home / "artifacts" / uri.removeprefix("kestra:///")).read_text()


def test_storage_uris_in_commands_script_and_before_commands_are_local_files(
    home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """A ``kestra:///`` URI in commands, beforeCommands or a Script is a local copy's path."""
    execution, messages = _run(
        home,
        tmp_path,
        f"""
        id: uris
        namespace: tests.runtime
        tasks:
          - id: make
            type: {SH}
            containerImage: busybox
            outputFiles: [data.csv]
            commands:
              - printf 'id,amount\\n1,3\\n2,5\\n' > data.csv
          - id: use
            type: {SH}
            containerImage: busybox
            beforeCommands:
              - echo "before $(wc -l < {{{{ outputs.make.outputFiles['data.csv'] }}}})"
            commands:
              - echo "path {{{{ outputs.make.outputFiles['data.csv'] }}}}"
              - echo "rows $(grep -c , {{{{ outputs.make.outputFiles['data.csv'] }}}})"
          - id: script
            type: io.kestra.plugin.scripts.shell.Script
            containerImage: busybox
            script: |
              head -n 1 {{{{ outputs.make.outputFiles['data.csv'] }}}}
        """,
    )
    assert execution.state.current == State.SUCCESS, messages
    assert "before 3" in messages
    assert "rows 3" in messages
    assert "id,amount" in messages
    path = next(m for m in messages if m.startswith("path "))[5:]
    assert path.startswith("/workspace/.kestra-inputs/") and path.endswith("/data.csv"), path


def test_output_dir_files_become_output_files(
    home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """Files written under ``{{ outputDir }}`` are the task's outputFiles, by their path there."""
    execution, messages = _run(
        home,
        tmp_path,
        f"""
        id: outdir
        namespace: tests.runtime
        tasks:
          - id: write
            type: {SH}
            containerImage: busybox
            commands:
              - echo "hello" > {{{{ outputDir }}}}/report.txt
              - mkdir {{{{ outputDir }}}}/nested && echo "deep" > {{{{ outputDir }}}}/nested/n.txt
          - id: read
            type: {SH}
            containerImage: busybox
            commands:
              - cat {{{{ outputs.write.outputFiles['report.txt'] }}}}
        """,
    )
    assert execution.state.current == State.SUCCESS, messages
    files = _task(execution, "write").outputs["outputFiles"]
    assert sorted(files) == ["nested/n.txt", "report.txt"]
    assert _stored(home, files["nested/n.txt"]) == "deep\n"
    assert "hello" in messages


def test_retry_max_attempts_bounds_the_tries(
    home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """``retry.maxAttempts`` (Kestra's current name for ``maxAttempt``) bounds the tries."""
    execution, messages = _run(
        home,
        tmp_path,
        f"""
        id: retries
        namespace: tests.runtime
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - id: flaky
                type: {SH}
                containerImage: busybox
                retry: {{type: constant, interval: PT0.1S, maxAttempts: 3}}
                commands:
                  - echo x >> tries && test "$(wc -l < tries)" -ge 5
        """,
    )
    assert execution.state.current == State.FAILED, messages
    assert len(_task(execution, "flaky").attempts) == 3


def test_attempts_count_counts_the_attempts_before(
    home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """``taskrun.attemptsCount`` is the number of attempts before this one (0 on the first)."""
    execution, messages = _run(
        home,
        tmp_path,
        f"""
        id: retries
        namespace: tests.runtime
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - id: flaky
                type: {SH}
                containerImage: busybox
                retry: {{type: constant, interval: PT0.1S, maxAttempt: 3}}
                commands:
                  - echo "attempts before {{{{ taskrun.attemptsCount }}}}"
                  - echo x >> tries && test "$(wc -l < tries)" -ge 3
        """,
    )
    assert execution.state.current == State.SUCCESS, messages
    assert len(_task(execution, "flaky").attempts) == 3
    seen = [m for m in messages if m.startswith("attempts before")]
    assert seen == ["attempts before 0", "attempts before 1", "attempts before 2"]


def test_worker_selector_is_accepted(
    home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """Kestra 2.0's ``workerSelector`` is accepted on a task and a flow; a local run runs."""
    execution, messages = _run(
        home,
        tmp_path,
        f"""
        id: selector
        namespace: tests.runtime
        workerSelector: {{tags: [linux]}}
        tasks:
          - id: hello
            type: {SH}
            containerImage: busybox
            workerSelector: {{tags: [linux], fallback: WAIT}}
            commands: ["echo selected"]
        """,
    )
    assert execution.state.current == State.SUCCESS, messages
    assert "selected" in messages


def test_working_directory_in_a_for_each_gives_its_value_and_worker_taskrun(
    home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """Children of a WorkingDirectory in a ForEach see the value and ``workerTaskrun``."""
    execution, messages = _run(
        home,
        tmp_path,
        f"""
        id: loopwd
        namespace: tests.runtime
        tasks:
          - id: each
            type: io.kestra.plugin.core.flow.ForEach
            values: ["eu", "us"]
            tasks:
              - id: wd
                type: io.kestra.plugin.core.flow.WorkingDirectory
                tasks:
                  - id: child
                    type: {SH}
                    containerImage: busybox
                    commands:
                      - echo "value {{{{ taskrun.value }}}} worker {{{{ workerTaskrun.id }}}}"
        """,
    )
    assert execution.state.current == State.SUCCESS, messages
    wd_runs = {t.value: t.id for t in execution.task_runs if t.task_id == "wd"}
    assert set(wd_runs) == {"eu", "us"}
    for value, run_id in wd_runs.items():
        assert f"value {value} worker {run_id}" in messages


def test_legacy_bash_output_files_are_paths_to_write(
    home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """Legacy Bash: each ``outputFiles`` name is a variable holding the path to write."""
    execution, messages = _run(
        home,
        tmp_path,
        """
        id: legacy
        namespace: tests.runtime
        tasks:
          - id: bash
            type: io.kestra.core.tasks.scripts.Bash
            dockerOptions: {image: busybox}
            outputFiles: [first, second]
            commands:
              - echo 1 >> {{ outputFiles.first }}
              - echo 2 > {{ outputFiles.second }}
        """,
    )
    assert execution.state.current == State.SUCCESS, messages
    files = _task(execution, "bash").outputs["outputFiles"]
    assert _stored(home, files["first"]) == "1\n"
    assert _stored(home, files["second"]) == "2\n"


def test_envs_are_the_env_prefixed_variables(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, executions_leave_nothing: None
) -> None:
    """``ENV_GREETING`` in the executor's environment is ``{{ envs.greeting }}``."""
    monkeypatch.setenv("ENV_GREETING", "bonjour")
    execution, messages = _run(
        home,
        tmp_path,
        """
        id: envs
        namespace: tests.runtime
        tasks:
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: "greeting {{ envs.greeting }}"
        """,
    )
    assert execution.state.current == State.SUCCESS, messages
    assert "greeting bonjour" in messages


def test_dates_print_in_utc_with_z(
    home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """Instants print as Kestra prints them: UTC, ending in ``Z`` (not ``+00:00``)."""
    execution, messages = _run(
        home,
        tmp_path,
        """
        id: dates
        namespace: tests.runtime
        tasks:
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: "started {{ execution.startDate }} task {{ taskrun.startDate }}"
        """,
    )
    assert execution.state.current == State.SUCCESS, messages
    line = next(m for m in messages if m.startswith("started "))
    instant = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6})?Z"
    assert re.fullmatch(f"started {instant} task {instant}", line), line
    assert states(execution) == {"log": "SUCCESS"}
