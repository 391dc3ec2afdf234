"""`executor executions`, `show`, `logs` and `kill` against a store filled without an engine."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from executor.cli import main
from executor.cli.records_cmd import parse_since
from executor.errors import UsageError
from executor.host import Owner
from executor.model import Level, LogLine, State, TaskRun, now
from executor.store.db import Store
from executor.store.records import execution_record
from tests.unit.store.sample import ended_execution, record, running_execution


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _db(home: Path) -> Path:
    return home / "executor.db"


def test_executions_lists_newest_first_with_state_and_duration(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table shows every execution, newest first, with its flow, state and duration."""
    old, new = ended_execution("old", start=0), ended_execution("new", start=60)
    record(_db(home), old)
    record(_db(home), new)
    code, out, _ = _run(capsys, "executions")
    assert code == 0
    rows = out.strip().splitlines()
    assert rows[0].split()[:3] == ["ID", "FLOW", "STATE"]
    assert rows[1].split()[:3] == [new.id, "tests.store.new", "FAILED"]
    assert rows[2].startswith(old.id)
    assert "1.60s" in rows[1]


def test_executions_filters_and_json(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--flow/--state/--since filter, and --json gives Kestra-shaped executions."""
    failed, running = ended_execution("etl"), running_execution("slow")
    record(_db(home), failed)
    record(_db(home), running, lines=[])
    code, out, _ = _run(capsys, "executions", "--state", "running", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [e["id"] for e in listed] == [running.id]
    assert listed[0]["state"]["current"] == "RUNNING"
    assert listed[0]["taskRunList"][0]["taskId"] == "sleeper"
    code, out, _ = _run(capsys, "executions", "--flow", "etl", "--json")
    assert [e["id"] for e in json.loads(out)] == [failed.id]
    code, out, err = _run(capsys, "executions", "--since", "1h", "--flow", "etl")
    assert code == 0 and out == "" and "no executions match" in err


def test_show_draws_the_task_tree_with_exit_codes_outputs_and_files(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """show prints each task under its parent with state, duration, exit code, outputs, files."""
    e = ended_execution()
    record(_db(home), e)
    code, out, _ = _run(capsys, "show", e.id[:6])
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith(f"execution {e.id}  tests.store.hello  FAILED")
    tree = "\n".join(lines[lines.index("tasks") :])
    assert "  wd " in tree
    assert "├─ first" in tree and "SUCCESS" in tree and "exit 0" in tree
    assert "└─ fails" in tree and "exit 137  OOM-killed" in tree
    assert "attempt 1  FAILED" in tree and "attempt 2  FAILED" in tree
    assert 'outputs  {"vars": {"answer": 42}}' in tree
    assert "file     out.csv  kestra:///tests/store/hello/out.csv" in tree
    assert "stderr | out of memory" in tree
    assert "image     busybox -> sha256:1023935f078f" in out


def test_show_names_each_loop_run_by_its_value_under_its_parent(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Many runs of one task (a loop's) each get a line with their value, children below it."""
    e = ended_execution()
    wd = e.task_run("wd")
    loop = TaskRun("loop", "io.kestra.plugin.core.flow.ForEach", wd.id)
    loop.state.to(State.RUNNING)
    e.task_runs.append(loop)
    for index, value in enumerate(("alpha", "beta", "gamma")):
        group = TaskRun("group", "io.kestra.plugin.core.flow.Sequential", loop.id)
        group.value, group.iteration = value, index
        inner = TaskRun("inner", "io.kestra.plugin.scripts.shell.Commands", group.id)
        for run in (group, inner):
            run.state.to(State.RUNNING)
            run.state.to(State.SUCCESS)
        e.task_runs += [group, inner]
    record(_db(home), e)
    code, out, _ = _run(capsys, "show", e.id)
    assert code == 0, out
    lines = out.splitlines()
    groups = [i for i, line in enumerate(lines) if "group [" in line]
    assert [lines[i].split("group ")[1].split("]")[0] for i in groups] == [
        "[alpha",
        "[beta",
        "[gamma",
    ]
    for i in groups:
        assert "inner" in lines[i + 1] and "SUCCESS" in lines[i + 1]
        assert lines[i + 1].index("inner") > lines[i].index("group")
    states = {line.index("SUCCESS") for line in lines if "group [" in line or "inner" in line}
    assert len(states) == 1, "the state column lines up at every depth"
    code, out, _ = _run(capsys, "show", e.id, "--json")
    shown = [r for r in json.loads(out)["taskRunList"] if r["taskId"] == "group"]
    assert [(r["value"], r["iteration"], r["parentTaskRunId"]) for r in shown] == [
        ("alpha", 0, loop.id),
        ("beta", 1, loop.id),
        ("gamma", 2, loop.id),
    ]


def test_show_json_is_the_run_json(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """show --json prints exactly what `run --json` printed for the execution."""
    e = ended_execution()
    record(_db(home), e)
    code, out, _ = _run(capsys, "show", e.id, "--json")
    assert code == 0
    assert json.loads(out) == json.loads(json.dumps(e.to_json(), default=str))


def test_logs_prints_lines_and_filters_by_task(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """logs prints every line with date, task and level; --task keeps that task's lines."""
    e = ended_execution()
    record(_db(home), e)
    code, out, _ = _run(capsys, "logs", e.id)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 4
    assert lines[1].startswith("2024-05-01 10:00:00.500 first")
    assert lines[1].endswith("INFO  hello from first")
    code, out, _ = _run(capsys, "logs", e.id, "--task", "fails", "--json")
    entries = [json.loads(line) for line in out.splitlines()]
    assert [(x["taskId"], x["level"], x["stream"], x["message"]) for x in entries] == [
        ("fails", "ERROR", "stderr", "boom")
    ]
    assert entries[0]["executionId"] == e.id and entries[0]["flowId"] == "hello"
    code, _, err = _run(capsys, "logs", e.id, "--task", "nope")
    assert code == 2 and "has no task 'nope'" in err and "first" in err


def test_logs_follow_ends_when_the_executor_is_gone(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--follow on a run whose executor died prints its lines, marks it FAILED and returns."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2.5)"])
    e = running_execution()
    owner = Owner(proc.pid, _start_of(proc.pid), socket.gethostname())
    line = LogLine(now(), e.id, "sleeper", e.task_runs[0].id, 1, "stdout", Level.INFO, "tick")
    record(_db(home), e, owner=owner, lines=[line])
    started = time.monotonic()
    code, out, _ = _run(capsys, "logs", e.id, "--follow")
    proc.wait()
    assert code == 0
    assert time.monotonic() - started < 15
    assert "tick" in out and "executor died" in out
    with Store(_db(home)) as store:
        assert store.execution_state(e.id) == State.FAILED


def _start_of(pid: int) -> str:
    from executor.host import process_status

    status = process_status(pid)
    assert status is not None
    return status[1]


def test_unknown_id_is_exit_4_with_one_line(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """show/logs/kill of an unknown id print one line naming it and exit 4, no traceback."""
    record(_db(home), ended_execution())
    for command in ("show", "logs", "kill"):
        code, out, err = _run(capsys, command, "doesnotexist")
        assert code == 4
        assert err.strip().splitlines() == [
            f"executor: no execution with id 'doesnotexist' in {_db(home)}"
            " (see `executor executions`)"
        ]
        assert "Traceback" not in err + out


def test_corrupt_store_is_exit_4(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A corrupt database makes every record command print one line and exit 4."""
    _db(home).write_bytes(b"garbage " * 1000)
    for argv in (["executions"], ["show", "x"], ["logs", "x"], ["kill", "x"]):
        code, _, err = _run(capsys, *argv)
        assert code == 4, argv
        assert len(err.strip().splitlines()) == 1 and "corrupt" in err
        assert "Traceback" not in err


def test_unwritable_home_is_exit_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A home that cannot be created is exit 4 with a message naming it."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("EXECUTOR_HOME", str(blocker / "home"))
    code, _, err = _run(capsys, "executions")
    assert code == 4 and "cannot create the state directory" in err


def test_commands_recover_dead_executions(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Any record command marks a RUNNING execution whose executor is gone FAILED."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    e = running_execution()
    record(_db(home), e, owner=Owner(proc.pid, "1", socket.gethostname()), lines=[])
    code, out, _ = _run(capsys, "executions")
    assert code == 0
    assert "FAILED" in out and "executor died" in out


def test_kill_of_an_ended_execution_changes_nothing(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kill of an execution that already ended says so and leaves it as it was."""
    e = ended_execution()
    record(_db(home), e)
    code, _, err = _run(capsys, "kill", e.id)
    assert code == 0 and "already ended FAILED; nothing to kill" in err


def test_kill_signals_the_owner_and_waits_for_the_end(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kill sends SIGTERM to the recorded pid and reports the state the executor recorded."""
    e = running_execution()
    db = _db(home)
    script = (
        "import signal, sys, time\n"
        "from pathlib import Path\n"
        "from executor.host import Owner\nfrom executor.store.db import Store\n"
        "from executor.store.records import execution_record\n"
        "from tests.unit.store.sample import running_execution\n"
        "from executor.model import State\n"
        f"e = running_execution(); e.id = {e.id!r}\n"
        f"db = Path({str(db)!r})\n"
        "def end(*_):\n"
        "    e.state.to(State.KILLED)\n"
        "    with Store(db) as s: s.write([execution_record(e, Owner.current())])\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, end)\n"
        "with Store(db) as s: s.write([execution_record(e, Owner.current())])\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    code, out, _ = _run(capsys, "kill", e.id[:8])
    assert proc.wait(timeout=5) == 0
    assert code == 0
    assert out.strip() == f"execution {e.id} KILLED"


def test_kill_refuses_an_execution_of_another_host(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kill does not signal a pid recorded on another host; it says where to run it."""
    e = running_execution()
    record(_db(home), e, owner=Owner(1, "1", "elsewhere"), lines=[])
    code, _, err = _run(capsys, "kill", e.id)
    assert code == 2 and "runs on host elsewhere" in err


def test_since_accepts_ages_and_dates() -> None:
    """--since takes 30m/2h/7d ages or ISO dates (UTC when naive), and rejects anything else."""
    ref = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
    assert parse_since("2h", ref) == datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
    assert parse_since("1d", ref) == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_since("2024-05-01", ref) == datetime(2024, 5, 1, tzinfo=UTC)
    with pytest.raises(UsageError, match="--since"):
        parse_since("yesterday", ref)


def test_store_row_written_directly_is_listed(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A running execution shows as RUNNING with no duration while its executor lives."""
    e = running_execution()
    with Store(_db(home)) as store:
        store.write([execution_record(e, Owner.current())])
    code, out, _ = _run(capsys, "executions")
    assert code == 0
    row = out.splitlines()[1].split()
    assert row[0] == e.id and row[2] == "RUNNING" and row[5] == "-"


def test_an_id_starting_with_a_dash_is_an_id_not_an_option(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ids are URL-safe base64 and may start with '-': show/logs/kill still take them."""
    e = ended_execution()
    e.id = "-Cf" + e.id[3:]
    record(_db(home), e)
    code, out, err = _run(capsys, "show", "-Cf", "--json")
    assert code == 0, err
    assert json.loads(out)["id"] == e.id
    code, out, err = _run(capsys, "logs", "-f", e.id, "--task", "fails")
    assert code == 0 and "boom" in out, err
    code, _, err = _run(capsys, "kill", "--wait", "1", "-Cf")
    assert code == 0 and "nothing to kill" in err
