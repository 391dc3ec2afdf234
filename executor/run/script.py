"""Turning a script task into one exec: argv, environment, files to place first."""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from executor.engine.container_paths import PYTHON_MODULES, VENVS
from executor.flow.model import (
    LEGACY_PYTHON_TYPE,
    PYTHON_SCRIPT_TYPES,
    SHELL_SCRIPT_TYPES,
    ScriptTask,
)
from executor.flow.tasks_exec import ExecScript


@dataclass(frozen=True)
class ScriptPlan:
    """What one script task runs: the argv, extra env, and files to place before it starts."""

    argv: tuple[str, ...]
    env: dict[str, str]
    files: dict[str, bytes] = field(default_factory=dict)


def plan_script(
    task: ExecScript,
    *,
    commands: list[str],
    before: list[str],
    script: str | None,
    env: dict[str, str],
    record_dir: str,
    args: list[str] | None = None,
    prelude: list[str] | None = None,
    workspace: str = "/workspace",
) -> ScriptPlan:
    """Build the exec for a rendered script task.

    Args:
        task: the task (for its type, interpreter and options).
        commands: rendered ``commands`` (the legacy Python task's default included).
        before: rendered ``beforeCommands``.
        script: rendered ``script`` of a Script task.
        env: rendered ``env``.
        record_dir: the exec's own directory in the container, for a script file.
        args: rendered ``args`` of a legacy Python task, appended to each command as Kestra
            does.
        prelude: lines that run first (after the fail-fast line): directories to make.
        workspace: the workspace's path, for a script file that must sit in it.
    """
    lines: list[str] = [*task.fail_fast_lines, *(prelude or []), *before]
    files: dict[str, bytes] = {}
    full_env = dict(env)
    if isinstance(task, ScriptTask):
        lines += python_environment_lines(task)
        if task.type in PYTHON_SCRIPT_TYPES:
            path = f"{record_dir}/script.py"
            files[path] = (script or "").encode()
            lines.append(f"python {shlex.quote(path)}")
        elif task.type in SHELL_SCRIPT_TYPES:
            lines.append(script or "")
        else:
            lines += [_legacy_command(task, command, args) for command in commands]
        if task.is_python:
            full_env.setdefault("PYTHONUNBUFFERED", "1")
            full_env["PYTHONPATH"] = (
                f"{PYTHON_MODULES}:{full_env['PYTHONPATH']}"
                if full_env.get("PYTHONPATH")
                else PYTHON_MODULES
            )
    elif task.script_file is not None:
        spec = task.script_file
        name = f"script{spec.extension}"
        if spec.in_workspace:
            # as Kestra: node finds node_modules from the file, `go run` needs the module's
            path = f"{workspace}/.executor-{PurePosixPath(record_dir).name}{spec.extension}"
            lines.append(f"trap 'rm -f {shlex.quote(path)}' EXIT")
        else:
            path = f"{record_dir}/{name}"
        files[path] = (script or "").encode()
        lines.append(spec.command.format(path=shlex.quote(path)))
    else:
        lines += commands
    full_env = {**task.extra_env(workspace), **full_env}
    return ScriptPlan((*task.command_line, "\n".join(lines)), full_env, files)


def _legacy_command(task: ScriptTask, command: str, args: list[str] | None) -> str:
    """A command as the legacy Python task runs it: its venv's python, ``args`` appended.

    Kestra's legacy task makes a venv in the working directory and runs ``./bin/python``;
    here the environment's ``python`` (the dependencies' venv when there is one) is that.
    """
    if task.type != LEGACY_PYTHON_TYPE:
        return command
    for prefix in ("./bin/python", "./.venv/bin/python"):
        if command.startswith(prefix):
            command = (task.pythonPath or "python") + command[len(prefix) :]
            break
    return command + (" " + " ".join(args) if args else "")


def python_environment_lines(task: ScriptTask) -> list[str]:
    """Shell lines that make the task's Python: its version, its dependencies, in a venv.

    The venv is made once per container and per (version, package manager, packages), so
    later children of the WorkingDirectory reuse it. ``pythonVersion`` picks ``pythonX.Y``
    when the image has it, else the image's Python is used and the log says so;
    ``packageManager: UV`` uses ``uv`` when the image has it, else pip, and the log says so.
    """
    deps = [*task.dependencies, *task.requirements]
    if task.type == LEGACY_PYTHON_TYPE and not task.virtualEnv:
        deps = []  # Kestra: without a virtualenv the requirements are ignored
    version = task.pythonVersion
    if not deps and not version:
        return []
    manager = task.packageManager or "PIP"  # uv only when asked: most images lack it
    key = "\n".join([version or "", manager, *sorted(deps)])
    venv = f"{VENVS}/{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    quoted = " ".join(shlex.quote(d) for d in deps)
    return [
        f"if [ ! -x {venv}/bin/python ]; then",
        *_choose_python(version),
        f'"$_exe_python" -m venv --system-site-packages {venv} && '
        f"{_install(venv, manager, quoted) if deps else 'true'} || {{ rm -rf {venv}; "
        'echo "executor: installing dependencies failed" >&2; exit 1; }',
        f'echo "executor: made the Python environment {venv}'
        + (f" with {len(deps)} package(s)" if deps else "")
        + ' (reused by later tasks in this container)"',
        "fi",
        f'export PATH="{venv}/bin:$PATH" VIRTUAL_ENV="{venv}"',
    ]


def _choose_python(version: str | None) -> list[str]:
    """Set ``$_exe_python``: ``pythonX.Y`` when asked and present, else the image's python."""
    if not version:
        return ["_exe_python=$(command -v python3 || command -v python)"]
    wanted = shlex.quote(f"python{version}")
    return [
        f"_exe_python=$(command -v {wanted} || command -v python3 || command -v python)",
        f'if [ "${{_exe_python##*/}}" != {wanted} ]; then echo "executor: pythonVersion '
        f'{version}: the image has no {wanted}; using $("$_exe_python" -V 2>&1)"; fi',
    ]


def _install(venv: str, manager: str, packages: str) -> str:
    """Install into the venv with uv when asked and present, else with pip (and say so)."""
    pip = f"{venv}/bin/python -m pip install --quiet --disable-pip-version-check {packages}"
    if manager != "UV":
        return pip
    return (
        f"{{ if command -v uv >/dev/null; then "
        f"uv pip install --quiet --python {venv}/bin/python {packages}; else "
        'echo "executor: packageManager UV: the image has no uv; installing with pip"; '
        f"{pip}; fi; }}"
    )
