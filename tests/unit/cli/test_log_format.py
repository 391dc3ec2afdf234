"""The executor's own logs: readable or JSON, with execution_id and task_id bound while running."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from executor.cli import main
from executor.log import LogContext, configure
from executor.model import Execution, State, TaskRun


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    """Each test starts and ends with structlog's defaults and an empty context."""
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


def test_json_lines_carry_the_bound_execution_and_task() -> None:
    """With JSON format every line is one object with execution_id and the running task_id."""
    out = io.StringIO()
    configure("json", stream=out)
    context = LogContext()
    e = Execution("tests.log", "flow")
    wd = TaskRun("wd", "io.kestra.plugin.core.flow.WorkingDirectory")
    child = TaskRun("child", "io.kestra.plugin.scripts.shell.Commands", wd.id)
    logger = structlog.get_logger("test")
    e.state.to(State.RUNNING)
    context.execution_changed(e)
    for run in (wd, child):
        run.state.to(State.RUNNING)
        context.task_changed(e, run)
    logger.info("container started", image="busybox")
    child.state.to(State.SUCCESS)
    context.task_changed(e, child)
    logger.warning("cleanup slow")
    wd.state.to(State.SUCCESS)
    context.task_changed(e, wd)
    logger.debug("hidden at info level")
    logger.error("after the tasks")
    e.state.to(State.SUCCESS)
    context.execution_changed(e)
    logger.info("next command")
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(x["event"], x.get("task_id")) for x in events] == [
        ("container started", "child"),
        ("cleanup slow", "wd"),
        ("after the tasks", None),
        ("next command", None),
    ]
    assert [x.get("execution_id") for x in events] == [e.id, e.id, e.id, None]
    assert events[0]["level"] == "info" and events[0]["image"] == "busybox"
    assert events[0]["timestamp"].endswith("Z")


def test_console_format_is_readable_key_value_text() -> None:
    """The default format is one readable line per event, not JSON."""
    out = io.StringIO()
    configure("console", stream=out)
    structlog.contextvars.bind_contextvars(execution_id="abc")
    structlog.get_logger("test").warning("store slow", waited=2)
    text = out.getvalue()
    assert "store slow" in text and "execution_id=abc" in text and "waited=2" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_log_format_option_switches_the_cli_to_json(
    home: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """`executor --log-format json` makes the executor's own warnings JSON on stderr."""
    import socket
    import subprocess

    from executor.host import Owner
    from tests.unit.store.sample import record, running_execution

    proc = subprocess.Popen(["true"])
    proc.wait()
    e = running_execution()
    record(
        home / "executor.db",
        e,  # type: ignore[operator]
        owner=Owner(proc.pid, "1", socket.gethostname()),
        lines=[],
    )
    assert main(["--log-format", "json", "executions"]) == 0
    err = capsys.readouterr().err
    event = json.loads(err.strip().splitlines()[0])
    assert event["event"] == "execution marked FAILED: its executor died"
    assert event["execution_id"] == e.id and event["level"] == "warning"
