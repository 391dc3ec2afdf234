"""Running host-task flows through the CLI (``executor run --json``) and reading the result."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.integration.helpers import cli, write_flow


def run_json(
    home: Path, tmp_path: Path, flow: str, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``executor run --json FLOW``: the process and the execution it printed."""
    path = write_flow(tmp_path, flow)
    proc = cli(home, "run", "--json", str(path), *args, env=env, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    try:
        execution = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"no JSON on stdout: {proc.stdout!r} {proc.stderr!r}") from None
    return proc, execution


def task_run(execution: dict[str, Any], task_id: str) -> dict[str, Any]:
    return next(t for t in execution["taskRunList"] if t["taskId"] == task_id)


def state_of(execution: dict[str, Any], task_id: str) -> str:
    return str(task_run(execution, task_id)["state"]["current"])


def logs(home: Path, execution: dict[str, Any]) -> str:
    proc = cli(home, "logs", execution["id"])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout
