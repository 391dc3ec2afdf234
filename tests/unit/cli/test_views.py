"""What a run shows: plain lines in a pipe, a live tree in a terminal, and the final summary."""

from __future__ import annotations

import io
import re
import time

import pytest
from rich.console import Console

from executor.cli.console import PlainConsole, printable, summary
from executor.cli.live import LiveView, make_view, wants_live_view
from executor.flow.model import Flow
from executor.model import Execution, Level, LogLine, State, TaskRun, now
from tests.unit.store.sample import ended_execution

FLOW = Flow.model_validate(
    {
        "id": "tree",
        "namespace": "tests.live",
        "tasks": [
            {
                "id": "wd",
                "type": "io.kestra.plugin.core.flow.WorkingDirectory",
                "tasks": [
                    {
                        "id": "build",
                        "type": "io.kestra.plugin.scripts.shell.Commands",
                        "commands": ["true"],
                    },
                    {
                        "id": "publish",
                        "type": "io.kestra.plugin.scripts.shell.Commands",
                        "commands": ["true"],
                    },
                ],
                "finally": [
                    {"id": "tidy", "type": "io.kestra.plugin.core.log.Log", "message": "x"}
                ],
            }
        ],
    }
)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _line(e: Execution, task: str | None, text: str, level: Level = Level.INFO) -> LogLine:
    return LogLine(now(), e.id, task, None, 1, "stdout", level, text)


def test_plain_console_prints_timestamped_lines_and_states() -> None:
    """In a pipe each line is 'HH:MM:SS.mmm task LEVEL text'; debug lines only when asked."""
    out = io.StringIO()
    e = Execution("tests.live", "tree")
    console = PlainConsole(out)
    run = TaskRun("build", "io.kestra.plugin.scripts.shell.Commands")
    console.task_changed(e, run)  # CREATED is not shown
    run.state.to(State.RUNNING)
    console.task_changed(e, run)
    console.log(_line(e, "build", "compiling"))
    console.log(_line(e, "build", "noise", Level.DEBUG))
    run.state.to(State.FAILED)
    run.reason = "exit code 2"
    console.task_changed(e, run)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert re.match(r"^\d\d:\d\d:\d\d\.\d{3} build +── RUNNING$", lines[0])
    assert re.match(r"^\d\d:\d\d:\d\d\.\d{3} build +INFO  compiling$", lines[1])
    assert re.search(r"── FAILED in \d+\.\d\ds \(exit code 2\)$", lines[2])


def test_quiet_console_prints_nothing() -> None:
    """--quiet shows no line while the run goes."""
    out = io.StringIO()
    e = Execution("tests.live", "tree")
    console = PlainConsole(out, quiet=True)
    console.log(_line(e, "build", "compiling"))
    assert out.getvalue() == ""


def test_summary_names_failed_tasks_with_their_stderr_tail() -> None:
    """The summary names the failed child with its last stderr lines, not its WorkingDirectory."""
    e = ended_execution()
    text = summary(e)
    lines = text.splitlines()
    assert lines[0] == f"execution {e.id} FAILED in 1.60s"
    assert "  fails: FAILED (exit code 137 (killed: out of memory))" in lines
    assert "    | boom" in lines and "    | out of memory" in lines
    assert not any(line.startswith("  wd:") for line in lines)
    assert lines[-1] == f"  all its lines: executor logs {e.id} --task fails"


def _ended(run: TaskRun, state: State, reason: str | None = None) -> TaskRun:
    run.state.to(State.RUNNING)
    run.state.to(state)
    run.reason = reason
    return run


def test_summary_names_a_failed_loop_run_by_its_value() -> None:
    """A failed loop run is named with its value; cancelled runs are listed on one line."""
    e = Execution("tests.live", "loop")
    e.state.to(State.RUNNING)
    loop = _ended(TaskRun("loop", "io.kestra.plugin.core.flow.ForEach"), State.FAILED)
    runs = [loop]
    for value in ("a", "b", "c"):
        run = TaskRun("step", "io.kestra.plugin.scripts.shell.Commands", loop.id)
        run.value = value
        state = {"a": State.SUCCESS, "b": State.FAILED, "c": State.CANCELLED}[value]
        runs.append(_ended(run, state, "exit code 5" if value == "b" else None))
    runs[2].stderr_tail = ["no such file"]
    e.task_runs = runs
    e.state.to(State.FAILED)
    lines = summary(e).splitlines()
    assert lines[0].startswith(f"execution {e.id} FAILED in ")
    assert "  step [b]: FAILED (exit code 5)" in lines
    assert "    | no such file" in lines
    assert "  cancelled: step [c]" in lines
    assert not any(line.startswith("  loop") for line in lines)
    assert lines[-1] == f"  all its lines: executor logs {e.id} --task step"


def test_summary_counts_failed_runs_past_ten_and_shows_paused_ones() -> None:
    """Past ten failed runs the rest are counted; a still-paused run is listed, no duration."""
    e = Execution("tests.live", "loop")
    e.state.to(State.RUNNING)
    for n in range(25):
        run = TaskRun("step", "io.kestra.plugin.scripts.shell.Commands")
        run.value = f"v{n}"
        e.task_runs.append(_ended(run, State.FAILED, "exit code 1"))
    gate = TaskRun("gate", "io.kestra.plugin.core.flow.Pause")
    gate.state.to(State.PAUSED)
    e.task_runs.append(gate)
    e.state.to(State.PAUSED)
    lines = summary(e).splitlines()
    assert lines[0] == f"execution {e.id} PAUSED"
    assert sum(1 for line in lines if line.startswith("  step [")) == 10
    assert "  … and 15 more failed task run(s)" in lines
    assert "  paused: gate" in lines


def test_view_is_live_only_in_a_real_terminal() -> None:
    """A terminal gets the live view; a pipe, TERM=dumb, CI or --quiet get plain lines."""
    assert isinstance(make_view(FLOW, stream=_Tty()), LiveView) == wants_live_view(_Tty())
    assert wants_live_view(_Tty(), {"TERM": "xterm"})
    assert not wants_live_view(io.StringIO(), {"TERM": "xterm"})
    assert not wants_live_view(_Tty(), {"TERM": "dumb"})
    assert not wants_live_view(_Tty(), {"TERM": "xterm", "CI": "true"})
    assert isinstance(make_view(FLOW, stream=io.StringIO()), PlainConsole)
    assert isinstance(make_view(FLOW, stream=_Tty(), quiet=True), PlainConsole)


def _render(view: LiveView) -> str:
    screen = io.StringIO()
    Console(file=screen, width=100, color_system=None).print(view)
    return screen.getvalue()


def test_live_tree_shows_every_task_with_its_state() -> None:
    """The tree lists all tasks from the start (waiting), then states and elapsed times."""
    view = LiveView(FLOW, console=Console(file=io.StringIO(), width=100))
    before = _render(view)
    assert all(re.search(rf"· {name} +waiting", before) for name in ("wd", "build", "publish"))
    assert "finally" in before and "tidy" in before
    e = Execution("tests.live", "tree")
    e.state.to(State.RUNNING)
    view.execution_changed(e)
    wd = TaskRun("wd", "io.kestra.plugin.core.flow.WorkingDirectory")
    build = TaskRun("build", "io.kestra.plugin.scripts.shell.Commands", wd.id)
    for run in (wd, build):
        run.state.to(State.RUNNING)
        view.task_changed(e, run)
    build.state.to(State.SUCCESS)
    view.task_changed(e, build)
    publish = TaskRun("publish", "io.kestra.plugin.scripts.shell.Commands", wd.id)
    publish.state.to(State.RUNNING)
    view.task_changed(e, publish)
    publish.state.to(State.FAILED)
    publish.reason = "exit code 4"
    view.task_changed(e, publish)
    after = _render(view)
    assert f"tests.live.tree  {e.id}  RUNNING" in after
    assert re.search(r"wd +RUNNING +\d+\.\ds", after)
    assert re.search(r"✔ build +SUCCESS +\d+\.\ds", after)
    assert re.search(r"✘ publish +FAILED +\d+\.\ds  exit code 4", after)
    assert re.search(r"· tidy +waiting", after)


def test_live_view_prints_logs_above_the_tree_and_thins_a_flood() -> None:
    """Lines appear with time and task id above the tree; a flood is cut with a count."""
    screen = io.StringIO()
    console = Console(file=screen, width=120, force_terminal=True, color_system=None)
    e = Execution("tests.live", "tree")
    with LiveView(FLOW, console=console, refresh_per_second=20, max_buffered_lines=50) as view:
        view.log(_line(e, "build", "compiling main.c"))
        printed = r"\d\d:\d\d:\d\d\.\d{3} build +compiling main\.c"
        deadline = time.monotonic() + 10  # a refresh, however busy the machine
        while not re.search(printed, screen.getvalue()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert re.search(printed, screen.getvalue())
        for n in range(1000):
            view.log(_line(e, "build", f"line {n}"))
        view.log(_line(e, "build", "debug noise", Level.DEBUG))
    text = screen.getvalue()
    assert "950 line(s) not shown here" in text
    assert "line 999" in text and "line 949\n" not in text
    assert "debug noise" not in text
    assert "build" in text.split("compiling main.c")[-1]  # the tree is drawn below the lines


HOSTILE = (
    "\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b]8;;http://evil\x1b\\"
    "red \x1b[31mtext\x1b[0m\tkept\rback\x08\x07\x9b1A\x1bc"
)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text, ünïcödé 😀", "plain text, ünïcödé 😀"),
        ("\x1b[1;31mred\x1b[0m and \x1b[38;5;208morange\x1b[m", "red and orange"),
        ("title\x1b]2;owned\x07 next", "title next"),
        ("link \x1b]8;;http://x\x1b\\text\x1b]8;;\x1b\\ end", "link text end"),
        ("tab\tstays, newline\nstays", "tab\tstays, newline\nstays"),
        ("cr\rbs\x08bell\x07nul\x00del\x7f", "crbsbellnuldel"),
        ("8-bit \x9b2Jcsi", "8-bit csi"),
        ("dcs \x1bPq#0;2;0;0;0\x1b\\ done", "dcs  done"),
        ("reset\x1bc and cut \x1b[", "reset and cut "),
    ],
)
def test_printable_takes_out_escape_sequences_and_controls(raw: str, shown: str) -> None:
    """CSI, OSC, DCS and other escapes and controls go; text, tabs and newlines stay."""
    assert printable(raw) == shown


def test_task_output_cannot_drive_the_terminal() -> None:
    """Escapes in task lines, reasons and stderr tails reach neither console nor live view."""
    e = Execution("tests.live", "tree")
    out = io.StringIO()
    with PlainConsole(out) as console:
        console.log(_line(e, "build", HOSTILE))
    assert out.getvalue().endswith(" build            INFO  red text\tkeptback\n")
    assert "\x1b" not in out.getvalue() and "pwned" not in out.getvalue()

    screen = io.StringIO()
    rich_console = Console(file=screen, width=200, force_terminal=True, color_system=None)
    run = TaskRun("publish", "io.kestra.plugin.scripts.shell.Commands")
    run.state.to(State.RUNNING)
    run.state.to(State.FAILED)
    run.reason = "exit 1\x1b]0;pwned-reason\x07"
    with LiveView(FLOW, console=rich_console, refresh_per_second=20) as view:
        view.task_changed(e, run)
        view.log(_line(e, "build", HOSTILE))
    shown = screen.getvalue()
    assert re.search(r"build +red text +keptback", shown)
    assert re.search(r"FAILED +\d+\.\ds  exit 1\n", shown)
    for bad in ("pwned", "\x1b[2J", "\x1b[H", "\x1b[31m", "\x1bc", "\x9b", "\x07", "\x08"):
        assert bad not in shown

    run.stderr_tail = ["\x1b[2Jwiped", "fine"]
    e.task_runs.append(run)
    assert "    | wiped" in summary(e).splitlines()
    assert "\x1b" not in summary(e)


def test_the_stored_line_keeps_what_the_task_wrote() -> None:
    """Only the display is cleaned: the log line handed to the console is unchanged."""
    e = Execution("tests.live", "tree")
    line = _line(e, "build", HOSTILE)
    with PlainConsole(io.StringIO()) as console:
        console.log(line)
    assert line.message == HOSTILE
