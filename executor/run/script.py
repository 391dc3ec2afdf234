"""Turning a script task into one exec: argv, environment, files to place first."""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field

from executor.flow.model import PYTHON_SCRIPT_TYPES, SHELL_SCRIPT_TYPES, ScriptTask

KESTRA_MODULE_DIR = "/.executor/python"


@dataclass(frozen=True)
class ScriptPlan:
    """What one script task runs: the argv, extra env, and files to place before it starts."""

    argv: tuple[str, ...]
    env: dict[str, str]
    files: dict[str, bytes] = field(default_factory=dict)


def plan_script(
    task: ScriptTask,
    *,
    commands: list[str],
    before: list[str],
    script: str | None,
    env: dict[str, str],
    record_dir: str,
) -> ScriptPlan:
    """Build the exec for a rendered script task.

    Args:
        task: the task (for its type, interpreter and options).
        commands: rendered ``commands``.
        before: rendered ``beforeCommands``.
        script: rendered ``script`` of a Script task.
        env: rendered ``env``.
        record_dir: the exec's own directory in the container, for a python script file.
    """
    lines: list[str] = ["set -e"] if task.fail_fast else []
    lines += before
    deps = [*task.dependencies, *task.requirements]
    if deps:
        lines += _venv_lines(deps)
    files: dict[str, bytes] = {}
    if task.type in PYTHON_SCRIPT_TYPES:
        path = f"{record_dir}/script.py"
        files[path] = (script or "").encode()
        lines.append(f"python {shlex.quote(path)}")
    elif task.type in SHELL_SCRIPT_TYPES:
        lines.append(script or "")
    else:
        lines += commands
    full_env = dict(env)
    if task.is_python:
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        full_env["PYTHONPATH"] = (
            f"{KESTRA_MODULE_DIR}:{full_env['PYTHONPATH']}"
            if full_env.get("PYTHONPATH")
            else KESTRA_MODULE_DIR
        )
    return ScriptPlan((*tuple(task.interpreter), "\n".join(lines)), full_env, files)


def _venv_lines(deps: list[str]) -> list[str]:
    """Install python dependencies once per container into a venv named by their hash."""
    digest = hashlib.sha256("\n".join(sorted(deps)).encode()).hexdigest()[:16]
    venv = f"/.executor/venvs/{digest}"
    quoted = " ".join(shlex.quote(d) for d in deps)
    return [
        f"if [ ! -x {venv}/bin/python ]; then python -m venv --system-site-packages {venv} "
        f"&& {venv}/bin/python -m pip install --quiet --disable-pip-version-check {quoted} "
        f'|| {{ rm -rf {venv}; echo "executor: installing dependencies failed" >&2; exit 1; }}; fi',
        f'export PATH="{venv}/bin:$PATH" VIRTUAL_ENV="{venv}"',
    ]
