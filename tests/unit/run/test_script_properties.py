"""Kestra's script-task properties: accepted, and what they turn into in the exec."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import executor.run
from executor.flow.loader import load_flow_text
from executor.flow.model import ScriptTask
from executor.run.script import ScriptPlan, plan_script

MODULE_DIR = Path(executor.run.__file__).parent / "kestra"


def task(**props: Any) -> ScriptTask:
    return ScriptTask.model_validate({"id": "t", **props})


def plan(t: ScriptTask, args: list[str] | None = None) -> ScriptPlan:
    return plan_script(
        t,
        commands=t.command_list,
        before=list(t.beforeCommands),
        script=t.script,
        env=dict(t.env),
        record_dir="/.executor/runs/x",
        args=args,
    )


def body(p: ScriptPlan) -> str:
    return p.argv[-1]


def test_legacy_python_without_commands_runs_main_py_with_args() -> None:
    """The legacy Python task's default is `./bin/python main.py`, with `args` appended."""
    t = task(type="io.kestra.core.tasks.scripts.Python", args=["data.json", "x"])
    assert t.command_list == ["./bin/python main.py"]
    assert body(plan(t, ["data.json", "x"])).splitlines()[-1] == "python main.py data.json x"


def test_legacy_python_path_replaces_the_interpreter() -> None:
    """`pythonPath` is the python the default command runs."""
    t = task(type="io.kestra.core.tasks.scripts.Python", pythonPath="/usr/bin/python3")
    assert body(plan(t)).splitlines()[-1] == "/usr/bin/python3 main.py"


def test_legacy_interpreter_string_with_interpreter_args() -> None:
    """`interpreter: bash` with `interpreterArgs: [-e, -c]` is the argv before the script."""
    t = task(
        type="io.kestra.core.tasks.scripts.Bash",
        commands=["echo hi"],
        interpreter="bash",
        interpreterArgs=["-e", "-c"],
    )
    assert plan(t).argv[:3] == ("bash", "-e", "-c")
    assert plan(
        task(type="io.kestra.core.tasks.scripts.Bash", commands=["x"], interpreter="sh")
    ).argv[:2] == ("sh", "-c")


def test_interpreter_args_need_a_string_interpreter() -> None:
    """`interpreterArgs` with a list interpreter is refused: it would be silently dropped."""
    with pytest.raises(ValueError, match="interpreterArgs"):
        task(
            type="io.kestra.plugin.scripts.shell.Commands",
            commands=["x"],
            interpreter=["bash", "-c"],
            interpreterArgs=["-c"],
        )


def test_legacy_requirements_make_a_venv_unless_virtual_env_is_off() -> None:
    """Legacy `requirements` install into a venv; `virtualEnv: false` ignores them, as Kestra."""
    with_venv = body(plan(task(type="io.kestra.core.tasks.scripts.Python", requirements=["six"])))
    assert "-m venv" in with_venv and "six" in with_venv
    without = task(
        type="io.kestra.core.tasks.scripts.Python", requirements=["six"], virtualEnv=False
    )
    assert "-m venv" not in body(plan(without))


def test_python_version_picks_that_python_or_says_what_it_used() -> None:
    """`pythonVersion: "3.11"` looks for python3.11 and logs the fallback when it is absent."""
    text = body(
        plan(
            task(
                type="io.kestra.plugin.scripts.python.Script",
                script="print(1)",
                pythonVersion="3.11",
            )
        )
    )
    assert "command -v python3.11" in text
    assert "pythonVersion 3.11: the image has no python3.11" in text


def test_package_manager_uv_falls_back_to_pip_and_says_so() -> None:
    """`packageManager: uv` (any case) uses uv when present, else pip with a log line."""
    t = task(
        type="io.kestra.plugin.scripts.python.Commands",
        commands=["python -V"],
        dependencies=["six==1.16.0"],
        packageManager="uv",
    )
    assert t.packageManager == "UV"
    text = body(plan(t))
    assert "uv pip install" in text and "the image has no uv; installing with pip" in text
    pip_only = body(plan(t.model_copy(update={"packageManager": "PIP"})))
    assert "uv pip" not in pip_only and "-m pip install" in pip_only


def test_a_venv_is_named_by_version_manager_and_packages() -> None:
    """Two tasks with the same packages share a venv; another version gets its own."""
    base = {"type": "io.kestra.plugin.scripts.python.Commands", "commands": ["x"]}
    first = body(plan(task(**base, dependencies=["b", "a"])))
    same = body(plan(task(**base, dependencies=["a", "b"])))
    other = body(plan(task(**base, dependencies=["a", "b"], pythonVersion="3.12")))

    def venv(text: str) -> str:
        return text.split("/.executor/venvs/")[1][:16]

    assert venv(first) == venv(same) != venv(other)


@pytest.mark.parametrize(
    "prop",
    [
        "executionContext: true",
        "outputDirectory: true",
        "targetOS: LINUX",
        "version: 1.2.0",
        "pluginDefaultsRef: mine",
        "taskCache: {enabled: true, ttl: PT1H}",
        "dependencyCacheEnabled: false",
        "pythonVersion: '3.12'",
        "packageManager: PIP",
    ],
)
def test_kestra_properties_on_a_python_task_are_accepted(prop: str) -> None:
    """Every property Kestra documents for a python task validates."""
    load_flow_text(
        textwrap.dedent(f"""
            id: x
            namespace: n
            tasks:
              - id: wd
                type: io.kestra.plugin.core.flow.WorkingDirectory
                tasks:
                  - id: a
                    type: io.kestra.plugin.scripts.python.Commands
                    commands: [python -V]
                    {prop}
        """),
        Path("f.yaml"),
    )


def test_legacy_output_file_aliases_are_collected() -> None:
    """The legacy tasks' `outputsFiles` and `files` are outputFiles too."""
    t = task(
        type="io.kestra.core.tasks.scripts.Bash",
        commands=["x"],
        outputFiles=["a"],
        outputsFiles=["b"],
        files=["c"],
    )
    assert t.output_globs == ["a", "b", "c"]


def test_the_kestra_module_reads_the_execution_context(tmp_path: Path) -> None:
    """`from kestra import context` reads .kestra-execution-context.json as attributes."""
    (tmp_path / ".kestra-execution-context.json").write_text(
        json.dumps({"inputs": {"dataset": "products"}, "outputs": {"e": {"uri": "kestra:///x"}}})
    )
    code = "from kestra import context\nprint(context.inputs.dataset, context.outputs.e.uri)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(MODULE_DIR)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "products kestra:///x"


def test_the_kestra_module_without_a_context_file_says_how_to_get_one(tmp_path: Path) -> None:
    """Reading `context` without `executionContext: true` fails with the property to set."""
    result = subprocess.run(
        [sys.executable, "-c", "from kestra import context\ncontext.inputs"],
        env={**os.environ, "PYTHONPATH": str(MODULE_DIR)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "set 'executionContext: true' on the task" in result.stderr
