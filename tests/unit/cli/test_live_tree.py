"""The live tree of flowable tasks: loops, nested flowables, concurrent runs, subflow executions."""

from __future__ import annotations

import io
import re
import time
from typing import Any

from rich.console import Console

from executor.cli.console import PlainConsole, summary
from executor.cli.live import LiveView
from executor.flow.model import Flow
from executor.model import Execution, Level, LogLine, RunListener, State, TaskRun, now

SH = "io.kestra.plugin.scripts.shell.Commands"
SPINNER = "[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]"


def _sh(task_id: str) -> dict[str, Any]:
    return {"id": task_id, "type": SH, "commands": ["true"]}


def _flow(*tasks: dict[str, Any]) -> Flow:
    return Flow.model_validate({"id": "tree", "namespace": "tests.live", "tasks": list(tasks)})


def _for_each(task_id: str, *tasks: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": task_id,
        "type": "io.kestra.plugin.core.flow.ForEach",
        "values": ["x"],
        "tasks": list(tasks),
    }


class _Run:
    """Drives a view the way the runner does: an execution, then task runs changing state."""

    def __init__(self, view: RunListener, flow: Flow, parent_id: str | None = None) -> None:
        self.view = view
        self.execution = Execution(flow.namespace, flow.id, parent_id=parent_id)
        self.execution.state.to(State.RUNNING)
        view.execution_changed(self.execution)

    def start(
        self, task_id: str, parent: TaskRun | None = None, value: str | None = None
    ) -> TaskRun:
        run = TaskRun(task_id, SH, parent.id if parent else None)
        run.value = value
        self.view.task_changed(self.execution, run)
        run.state.to(State.RUNNING)
        self.view.task_changed(self.execution, run)
        return run

    def end(self, run: TaskRun, state: State = State.SUCCESS, reason: str | None = None) -> None:
        run.reason = reason
        run.state.to(state)
        self.view.task_changed(self.execution, run)

    def line(self, run: TaskRun | None, text: str) -> LogLine:
        return LogLine(
            now(),
            self.execution.id,
            run.task_id if run else None,
            run.id if run else None,
            1,
            "stdout",
            Level.INFO,
            text,
        )

    def finish(self, state: State = State.SUCCESS) -> None:
        self.execution.state.to(state)
        self.view.execution_changed(self.execution)


def _render(view: LiveView) -> str:
    screen = io.StringIO()
    Console(file=screen, width=100, color_system=None).print(view)
    return screen.getvalue()


def _column(text: str, pattern: str) -> int:
    """Where the first line matching ``pattern`` starts its task name."""
    for line in text.splitlines():
        match = re.search(pattern, line)
        if match:
            return match.start()
    raise AssertionError(f"no line matches {pattern!r} in\n{text}")


def test_for_each_draws_one_line_per_value_under_the_loop() -> None:
    """A ForEach of three values shows three runs of its task, each named with its value."""
    flow = _flow(_for_each("loop", _sh("echo")))
    view = LiveView(flow, console=Console(file=io.StringIO()))
    before = _render(view)
    assert len(re.findall(r"echo +waiting", before)) == 1
    run = _Run(view, flow)
    loop = run.start("loop")
    for value in ("a", "b", "c"):
        run.end(run.start("echo", loop, value))
    text = _render(view)
    for value in ("a", "b", "c"):
        assert re.search(rf"✔ echo \[{value}\] +SUCCESS +\d+\.\ds", text)
    assert "waiting" not in text
    assert _column(text, r"echo \[a\]") > _column(text, r"loop ")


def test_two_runs_running_at_once_both_spin_with_their_timers() -> None:
    """Runs at once, of two branches or of one task for two values, each spin with a timer."""
    flow = _flow(
        {"id": "par", "type": "io.kestra.plugin.core.flow.Parallel", "tasks": [_sh("a"), _sh("b")]},
        _for_each("loop", _sh("echo")),
    )
    view = LiveView(flow, console=Console(file=io.StringIO()))
    run = _Run(view, flow)
    par = run.start("par")
    run.start("a", par)
    run.start("b", par)
    loop = run.start("loop")
    run.start("echo", loop, "1")
    run.start("echo", loop, "2")
    text = _render(view)
    for name in ("a", "b", r"echo \[1\]", r"echo \[2\]"):
        assert re.search(rf"{SPINNER} {name} +RUNNING +\d+\.\ds", text), name


def test_parallel_inside_a_working_directory_is_drawn_nested() -> None:
    """A Parallel in a WorkingDirectory draws under it, its branches under the Parallel."""
    flow = _flow(
        {
            "id": "wd",
            "type": "io.kestra.plugin.core.flow.WorkingDirectory",
            "tasks": [
                {
                    "id": "par",
                    "type": "io.kestra.plugin.core.flow.Parallel",
                    "tasks": [_sh("left"), _sh("right")],
                }
            ],
        }
    )
    view = LiveView(flow, console=Console(file=io.StringIO()))
    before = _render(view)
    assert _column(before, r"wd ") < _column(before, r"par ") < _column(before, r"left ")
    run = _Run(view, flow)
    wd = run.start("wd")
    par = run.start("par", wd)
    run.end(run.start("left", par))
    run.start("right", par)
    after = _render(view)
    assert _column(after, r"wd +RUNNING") < _column(after, r"par +RUNNING")
    assert _column(after, r"par +RUNNING") < _column(after, r"left +SUCCESS")
    assert _column(after, r"left +SUCCESS") == _column(after, r"right +RUNNING")


def test_a_loop_of_200_values_draws_a_bounded_number_of_lines() -> None:
    """A ForEach of 200 values shows a handful of lines and counts the rest, failures kept."""
    flow = _flow(_for_each("loop", _sh("step")))
    view = LiveView(flow, console=Console(file=io.StringIO()), max_runs_per_task=10)
    run = _Run(view, flow)
    loop = run.start("loop")
    for n in range(200):
        step = run.start("step", loop, f"v{n}")
        if n == 3:
            run.end(step, State.FAILED, "exit code 1")
        elif n < 198:
            run.end(step)
    text = _render(view)
    assert len(text.splitlines()) <= 15
    assert re.search(r"✘ step \[v3\] +FAILED", text)
    assert re.search(rf"{SPINNER} step \[v198\] +RUNNING", text)
    assert re.search(rf"{SPINNER} step \[v199\] +RUNNING", text)
    assert re.search(r"✔ step \[v197\] +SUCCESS", text)
    assert "step [v0]" not in text
    assert "… 190 more done" in text


def test_pending_branches_read_not_run_once_their_parent_ended() -> None:
    """An If's untaken branch waits while the If runs and reads 'not run' once it ended."""
    flow = _flow(
        {
            "id": "check",
            "type": "io.kestra.plugin.core.flow.If",
            "condition": "{{ true }}",
            "then": [_sh("yes")],
            "else": [_sh("no")],
        }
    )
    view = LiveView(flow, console=Console(file=io.StringIO()))
    run = _Run(view, flow)
    check = run.start("check")
    run.end(run.start("yes", check))
    text = _render(view)
    assert "then" in text and "else" in text
    assert re.search(r"· no +waiting", text)
    run.end(check)
    run.finish()
    assert re.search(r"· no +not run", _render(view))


def test_paused_and_cancelled_runs_have_their_own_marks() -> None:
    """A paused run shows ‖ and a cancelled one ⊘, each with its reason."""
    flow = _flow(_sh("wait"), _sh("gone"))
    view = LiveView(flow, console=Console(file=io.StringIO()))
    run = _Run(view, flow)
    run.end(run.start("wait"), State.PAUSED)
    run.end(run.start("gone"), State.CANCELLED, "a sibling failed")
    text = _render(view)
    assert re.search(r"‖ wait +PAUSED +\d+\.\ds", text)
    assert re.search(r"⊘ gone +CANCELLED +\d+\.\ds  a sibling failed", text)


def test_log_lines_of_a_loop_run_carry_task_and_value() -> None:
    """Above the tree, a loop's task run's lines read '[task value]'; others just the task."""
    flow = _flow(_for_each("loop", _sh("echo")))
    screen = io.StringIO()
    console = Console(file=screen, width=120, force_terminal=True, color_system=None)
    with LiveView(flow, console=console, refresh_per_second=20) as view:
        run = _Run(view, flow)
        loop = run.start("loop")
        view.log(run.line(loop, "looping"))
        view.log(run.line(run.start("echo", loop, "b"), "hello from b"))
        time.sleep(0.2)
    text = screen.getvalue()
    assert re.search(r"\d\d:\d\d:\d\d\.\d{3} \[echo b\] +hello from b", text)
    assert re.search(r"\d\d:\d\d:\d\d\.\d{3} loop +looping", text)


def test_plain_lines_of_a_loop_run_carry_task_and_value() -> None:
    """In a pipe, a loop's task run's lines and states read '[task value]'."""
    flow = _flow(_for_each("loop", _sh("echo")))
    out = io.StringIO()
    console = PlainConsole(out, flow=flow)
    run = _Run(console, flow)
    echo = run.start("echo", run.start("loop"), "b")
    console.log(run.line(echo, "hello from b"))
    run.end(echo, State.FAILED, "exit code 3")
    lines = out.getvalue().splitlines()
    assert any(re.search(r"^\S+ \[echo b\] +INFO  hello from b$", line) for line in lines)
    assert any(re.search(r"\[echo b\] +── FAILED in .* \(exit code 3\)$", line) for line in lines)


def test_a_task_nested_in_loops_is_tagged_with_the_values_it_runs_for() -> None:
    """A task below loop runs is tagged with their values, outermost first, once per state."""
    flow = _flow(_for_each("outer", _for_each("inner", _sh("leaf"))))
    out = io.StringIO()
    console = PlainConsole(out, flow=flow)
    run = _Run(console, flow)
    inner = run.start("inner", run.start("outer"), "a")
    seq = TaskRun("seq", "io.kestra.plugin.core.flow.Sequential", inner.id)
    seq.value = "2"
    console.task_changed(run.execution, seq)
    leaf = run.start("leaf", seq)
    console.log(run.line(leaf, "deep"))
    console.task_changed(run.execution, leaf)  # outputs changed, not the state
    run.end(leaf, State.FAILED, "exit code 1")
    lines = out.getvalue().splitlines()
    assert any(re.search(r"^\S+ \[leaf a, 2\] +INFO  deep$", line) for line in lines)
    assert sum(1 for line in lines if "[leaf a, 2]" in line and "── RUNNING" in line) == 1
    run.execution.task_runs = [inner, seq, leaf]
    assert "  leaf [a, 2]: FAILED (exit code 1)" in summary(run.execution).splitlines()


def test_a_subflow_execution_is_not_drawn_only_noted_when_it_ends() -> None:
    """Task runs and lines of a subflow's execution stay out of the view; its end is one line."""
    flow = _flow({"id": "call", "type": SH, "commands": ["true"]})
    screen = io.StringIO()
    console = Console(file=screen, width=120, force_terminal=True, color_system=None)
    with LiveView(flow, console=console, refresh_per_second=20) as view:
        run = _Run(view, flow)
        call = run.start("call")
        child = _Run(view, flow, parent_id=run.execution.id)  # even one of the same flow
        inner = child.start("call")
        child.start("stranger")
        view.log(child.line(inner, "from the subflow"))
        view.log(run.line(call, "from the parent"))
        child.end(inner, State.FAILED)
        child.finish(State.FAILED)
        time.sleep(0.2)
        tree = _render(view)
    text = screen.getvalue()
    assert "stranger" not in tree and "FAILED" not in tree
    assert re.search(r"call +RUNNING", tree)
    assert f"tests.live.tree  {run.execution.id}" in tree
    assert "from the subflow" not in text and "from the parent" in text
    assert f"subflow tests.live.tree execution {child.execution.id}: FAILED" in text


def test_plain_console_ignores_a_subflow_execution_but_its_end() -> None:
    """In a pipe, a subflow execution's states and lines are left out; its end is one line."""
    flow = _flow(_sh("call"))
    out = io.StringIO()
    console = PlainConsole(out, flow=flow)
    run = _Run(console, flow)
    run.start("call")
    child = _Run(console, _flow(_sh("inner")), parent_id=run.execution.id)
    inner = child.start("inner")
    console.log(child.line(inner, "from the subflow"))
    child.finish(State.SUCCESS)
    child.finish(State.SUCCESS)  # told twice, noted once
    text = out.getvalue()
    assert "call" in text and "inner" not in text and "from the subflow" not in text
    assert text.count(f"execution {child.execution.id}: SUCCESS") == 1
