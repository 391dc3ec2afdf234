"""The worker queue of an execution: ``workerGroup.key`` or Kestra 2.0's ``workerSelector``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from executor.errors import UsageError
from executor.flow.loader import load_flow_text
from executor.server.dispatch import worker_group


def _flow(tasks: str, head: str = "") -> str:
    return textwrap.dedent(
        f"""
        id: f
        namespace: tests.routing
        {head}
        tasks:
        """
    ) + textwrap.indent(textwrap.dedent(tasks), "  ")


def _group(text: str) -> str | None:
    return worker_group(load_flow_text(text, Path("f.yaml")))


LOG = "type: io.kestra.plugin.core.log.Log\n  message: hi"


@pytest.mark.parametrize(
    ("extra", "queue"),
    [
        ("workerGroup: {key: gpu}", "gpu"),
        ("workerSelector: {tags: [gpu]}", "gpu"),
        ("workerSelector: {tags: gpu}", "gpu"),
        ("workerSelector: {tags: [gpu, eu, gpu], fallback: FAIL}", "eu+gpu"),
        ("workerSelector: {key: big}", "big"),
        ("workerSelector: {fallback: WAIT}", None),
    ],
)
def test_a_task_names_its_queue(extra: str, queue: str | None) -> None:
    """A task's workerGroup.key or workerSelector tags name the queue it waits on."""
    assert _group(_flow(f"- id: a\n  {LOG}\n  {extra}\n")) == queue


def test_the_flow_selector_is_the_default() -> None:
    """A flow's own workerSelector routes it when no task names a queue."""
    assert _group(_flow(f"- id: a\n  {LOG}\n", "workerSelector: {tags: [arm]}")) == "arm"


def test_two_queues_in_one_flow_are_refused() -> None:
    """An execution runs on one worker: tasks naming two queues are refused."""
    text = _flow(
        f"- id: a\n  {LOG}\n  workerSelector: {{tags: [gpu]}}\n"
        f"- id: b\n  {LOG}\n  workerGroup: {{key: cpu}}\n"
    )
    with pytest.raises(UsageError, match="different worker groups"):
        _group(text)
