"""``LoadedFlow``: a validated flow, its source and the position of every value in it.

What the loader makes, and what the checks, the run and the server hold; kept apart from the
loader so that reading a loaded flow never imports the loading (nor the loading the readers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from executor.flow.model import Flow
from executor.flow.walk import walk

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class LoadedFlow:
    """A validated flow and where it came from."""

    flow: Flow
    source: Path
    positions: dict[Path_, tuple[int, int]]
    text: str

    def where(self, path: Path_) -> str:
        """``file:line:column`` of the value at ``path`` (or of its nearest located parent)."""
        return locate(self.source, self.positions, path)

    def task_where(self, task_id: str) -> str:
        """``file:line`` of a task's definition."""
        for visit in walk(self.flow):
            if visit.task.id == task_id:
                return f"{locate(self.source, self.positions, visit.path)} task '{task_id}'"
        return f"{self.source} task '{task_id}'"


def locate(source: Path, positions: dict[Path_, tuple[int, int]], path: Path_) -> str:
    for cut in range(len(path), -1, -1):
        if path[:cut] in positions:
            line, col = positions[path[:cut]]
            return f"{source}:{line}:{col}"
    return str(source)
