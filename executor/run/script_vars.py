"""The template variables Kestra gives a script-shaped task beside ``workingDir``.

``outputDir``: a directory of the workspace whose files become the task's ``outputFiles``
(keyed by their path inside it). The legacy ``io.kestra.core.tasks.scripts.Bash``/``Python``
name their ``outputFiles`` instead: each name is a variable holding the local path to write
(``{{ outputFiles.first }}``), collected afterwards as ``outputs.<id>.outputFiles.first``.
"""

from __future__ import annotations

import re
from typing import Any

from executor.flow.model import ScriptTask
from executor.flow.tasks_exec import ExecScript

OUTPUT_DIRS = ".kestra-outputs"
"""Where, under the workspace, each task run's ``outputDir`` is made."""

_USES_OUTPUT_DIR = re.compile(r"\boutputDir\b")


def output_dir(workspace: str, run_id: str) -> str:
    """The absolute ``outputDir`` of one task run."""
    return f"{workspace}/{OUTPUT_DIRS}/{run_id}"


def script_variables(task: ExecScript, run_id: str, workspace: str) -> dict[str, Any]:
    """``outputDir``, and the legacy tasks' ``outputFiles`` names, for one task run."""
    found: dict[str, Any] = {"outputDir": output_dir(workspace, run_id)}
    if isinstance(task, ScriptTask) and task.is_legacy:
        names = [*(task.outputFiles or []), *(task.outputsFiles or [])]
        found["outputFiles"] = {name: f"{workspace}/{name}" for name in names}
        if task.outputDirs:
            found["outputDirs"] = {name: f"{workspace}/{name}" for name in task.outputDirs}
    return found


def uses_output_dir(task: ExecScript) -> bool:
    """Whether the task writes into ``{{ outputDir }}`` (then its files are collected)."""
    if task.outputDirectory:
        return True
    texts = [*task.command_list, *task.beforeCommands, *task.env.values()]
    script = task.script_text
    if script is not None:
        texts.append(script)
    if isinstance(task.inputFiles, dict):
        texts += task.inputFiles.values()
    elif isinstance(task.inputFiles, str):
        texts.append(task.inputFiles)
    return any("{{" in text and _USES_OUTPUT_DIR.search(text) for text in texts)
