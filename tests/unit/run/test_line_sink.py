"""A task's output lines reach every listener, in order and masked, one by one or in batches."""

from __future__ import annotations

from pathlib import Path

from executor.engine.api import Stream
from executor.engine.fake import FakeBackend
from executor.flow.loader import load_flow_text
from executor.flow.secrets import Secrets
from executor.model import Execution, Level, LogLine, TaskRun
from executor.run.context import RunContext
from executor.run.handlers.script import LineSink
from executor.settings import Settings

FLOW = (
    "id: f\nnamespace: t\ntasks:\n"
    "  - id: say\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
)


class OneByOne:
    """A listener that only knows ``log`` (the interface before batches)."""

    def __init__(self) -> None:
        self.lines: list[LogLine] = []

    def execution_changed(self, execution: Execution) -> None:
        pass

    def task_changed(self, execution: Execution, task_run: object) -> None:
        pass

    def log(self, line: LogLine) -> None:
        self.lines.append(line)


class Batches(OneByOne):
    """A listener that takes batches."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def log_many(self, lines: list[LogLine]) -> None:
        self.batches += 1
        self.lines.extend(lines)


def sink(secrets: dict[str, str]) -> tuple[LineSink, OneByOne, Batches, TaskRun]:
    loaded = load_flow_text(FLOW, Path("flow.yaml"))
    single, batched = OneByOne(), Batches()
    ctx = RunContext(
        loaded=loaded,
        execution=Execution("t", "f"),
        inputs={},
        settings=Settings(home=Path("/nonexistent")),
        backend=FakeBackend(),
        resolve_image=lambda ref, policy: ref,
        secrets=Secrets(secrets),
        listeners=[single, batched],
    )
    run = TaskRun("say", "io.kestra.plugin.scripts.shell.Commands", None)
    return LineSink(ctx, run, 1), single, batched, run


def test_every_line_reaches_every_listener_in_order_with_protocol_lines_in_between() -> None:
    """Plain lines, stderr lines and protocol lines keep their order; outputs are parsed."""
    line_sink, single, batched, run = sink({})
    line_sink([(Stream.STDOUT, f"line {i}") for i in range(1000)])
    line_sink(
        [
            (Stream.STDOUT, "before"),
            (Stream.STDERR, "oops 1"),
            (Stream.STDERR, "oops 2"),
            (Stream.STDOUT, '::{"outputs": {"answer": 42}}::'),
            (Stream.STDOUT, "::{not json}::"),
            (Stream.STDOUT, "after"),
        ]
    )
    expected = [f"line {i}" for i in range(1000)] + ["before", "oops 1", "oops 2"]
    got = [(line.stream, line.message) for line in single.lines]
    assert [m for _, m in got[:1003]] == expected
    assert got[1001] == ("stderr", "oops 1") and got[1000] == ("stdout", "before")
    assert "malformed protocol line" in got[1003][1]
    assert got[-1] == ("stdout", "after")
    assert [(line.stream, line.message) for line in batched.lines] == got
    assert batched.batches < len(got)  # the thousand lines came as one batch
    assert line_sink.outputs == {"vars": {"answer": 42}}
    assert line_sink.stderr_lines == 2 and run.stderr_tail == ["oops 1", "oops 2"]
    assert all(line.task_run_id == run.id and line.attempt == 1 for line in single.lines)
    assert {line.level for line in single.lines if line.stream == "stderr"} == {Level.ERROR}


def test_secrets_are_masked_in_batches_and_in_the_stderr_tail() -> None:
    """A secret value printed by a task is masked in every stored line and in the tail."""
    line_sink, single, batched, run = sink({"TOKEN": "hunter2-very-secret"})
    line_sink(
        [(Stream.STDOUT, "token is hunter2-very-secret"), (Stream.STDERR, "hunter2-very-secret!")]
    )
    messages = [line.message for line in single.lines]
    assert messages == ["token is ******", "******!"]
    assert [line.message for line in batched.lines] == messages
    assert run.stderr_tail == ["******!"]


def test_lines_built_in_a_batch_equal_lines_built_one_by_one() -> None:
    """LogLine.many gives the same (frozen, comparable) values as the constructor."""
    from datetime import UTC, datetime

    stamp = datetime.now(UTC)
    many = LogLine.many(stamp, "e", "t", "r", 2, "stdout", Level.INFO, ["a", "b"])
    assert many == [LogLine(stamp, "e", "t", "r", 2, "stdout", Level.INFO, m) for m in "ab"]
    assert hash(many[0]) == hash(LogLine(stamp, "e", "t", "r", 2, "stdout", Level.INFO, "a"))
