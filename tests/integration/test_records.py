"""The run record against the real engine: what executions/show/logs/kill report of real runs."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from executor.engine import labels
from executor.errors import NotFoundError
from executor.model import State
from executor.store.db import Store
from tests.integration.helpers import cli, our_resources, until, write_flow

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("executions_leave_nothing")]

SECRET = "s3cr3t-Token-Value"

RECORDED = """
id: recorded
namespace: tests.records
inputs:
  - id: who
    type: STRING
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: produce
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        outputFiles: [report.txt]
        commands:
          - echo "hello {{ inputs.who }}"
          - echo "token is {{ secret('TOKEN') }}"
          - echo "a result" > report.txt
          - echo '::{"outputs":{"rows":3,"tok":"{{ secret('TOKEN') }}"}}::'
      - id: complain
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands:
          - echo "first problem" >&2
          - echo "second problem" >&2
          - exit 5
"""

SLOW = """
id: slow
namespace: tests.records
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: sleeper
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands:
          - echo "sleeping now"
          - sleep 300
"""


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "EXECUTOR_HOME": str(home)}


def _start_run(home: Path, flow: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "executor", "run", str(flow), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(home),
    )


def _single_execution(home: Path) -> str | None:
    with Store(home / "executor.db") as store:
        found = store.list_executions()
    return found[0].id if found else None


def _line_recorded(home: Path, execution_id: str, text: str) -> bool:
    with Store(home / "executor.db") as store:
        return any(r.line.message == text for r in store.logs(execution_id))


def _state(home: Path, execution_id: str) -> State | None:
    try:
        with Store(home / "executor.db") as store:
            return store.execution_state(execution_id)
    except NotFoundError:
        return None


def test_run_then_executions_show_and_logs_agree(home: Path, tmp_path: Path) -> None:
    """After a run, executions/show/logs report exactly what the run printed, secrets masked."""
    flow = write_flow(tmp_path, RECORDED)
    encoded = base64.b64encode(SECRET.encode()).decode()
    run = cli(home, "run", str(flow), "-i", "who=records", "--json", env={"SECRET_TOKEN": encoded})
    assert run.returncode == 1, run.stderr
    ran = json.loads(run.stdout)
    execution_id = ran["id"]

    listed = cli(home, "executions", "--json")
    assert [e["id"] for e in json.loads(listed.stdout)] == [execution_id]
    table = cli(home, "executions", "--flow", "recorded", "--state", "FAILED")
    assert table.stdout.splitlines()[1].split()[:3] == [
        execution_id,
        "tests.records.recorded",
        "FAILED",
    ]

    shown = cli(home, "show", execution_id[:7], "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == ran  # the record is what `run --json` said
    produce = next(t for t in ran["taskRunList"] if t["taskId"] == "produce")
    assert produce["outputs"]["vars"] == {"rows": 3, "tok": "******"}
    assert ran["images"]["busybox"].startswith("sha256:")

    text = cli(home, "show", execution_id).stdout
    assert "├─ produce" in text and "exit 0" in text
    assert "└─ complain" in text and "exit 5" in text and "(exit code 5)" in text
    assert "file     report.txt  kestra:///tests/records/recorded/executions/" in text
    assert "stderr | second problem" in text
    assert f"execution {execution_id}  tests.records.recorded  FAILED" in text

    logs = cli(home, "logs", execution_id).stdout.splitlines()
    messages = [line.split(None, 4)[4] for line in logs]
    assert "hello records" in messages and "token is ******" in messages
    assert messages.index("first problem") < messages.index("second problem")
    # every line the run showed (its stderr, in plain mode) is in the record, in order
    printed = [
        line.split(None, 1)[1]
        for line in run.stderr.splitlines()
        if line[:2].isdigit() and " ── " not in line
    ]
    recorded = [line.split(None, 2)[2] for line in logs if " DEBUG " not in line]
    assert recorded == printed
    complain = cli(home, "logs", execution_id, "--task", "complain", "--json").stdout
    entries = [json.loads(line) for line in complain.splitlines()]
    assert {(e["stream"], e["level"]) for e in entries if "problem" in e["message"]} == {
        ("stderr", "ERROR")
    }
    assert all(e["taskId"] == "complain" for e in entries)
    assert SECRET.encode() not in b"".join(p.read_bytes() for p in home.glob("executor.db*"))


def test_logs_follow_streams_a_running_execution(
    home: Path, tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """`logs --follow` prints each line while the run goes and returns when it ends."""
    flow = write_flow(
        tmp_path,
        """
        id: ticking
        namespace: tests.records
        tasks:
          - id: ticker
            type: io.kestra.plugin.scripts.shell.Commands
            containerImage: busybox
            commands:
              - for i in 1 2 3 4 5; do echo "tick $i"; sleep 0.6; done
    """,
    )
    run = _start_run(home, flow)
    started.append(run)
    execution_id = until(lambda: _single_execution(home), 60, "the execution row")
    follow = subprocess.Popen(
        [sys.executable, "-m", "executor", "logs", execution_id, "--follow"],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(home),
    )
    started.append(follow)
    assert follow.stdout is not None
    seen: list[tuple[str, bool]] = []
    for line in follow.stdout:
        seen.append((line.rstrip("\n"), run.poll() is None))
    assert follow.wait(timeout=30) == 0
    assert run.wait(timeout=30) == 0
    ticks = [
        (text.split(None, 4)[4], alive)
        for text, alive in seen
        if text.split(None, 4)[2:4] == ["ticker", "INFO"]
    ]
    assert [t for t, _ in ticks] == [f"tick {i}" for i in range(1, 6)]
    assert ticks[0][1], "the first line only came after the run had ended"
    assert "execution ended SUCCESS" in seen[-1][0]


def test_kill_from_another_process(
    home: Path, tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """`executor kill ID` ends the running execution KILLED and removes its containers."""
    run = _start_run(home, write_flow(tmp_path, SLOW))
    started.append(run)
    execution_id = until(lambda: _single_execution(home), 60, "the execution row")
    until(lambda: _line_recorded(home, execution_id, "sleeping now"), 60, "the task's first line")
    assert our_resources(**{labels.EXECUTION: execution_id})

    began = time.monotonic()
    killed = cli(home, "kill", execution_id[:10], timeout=120)
    assert killed.returncode == 0, killed.stderr
    assert killed.stdout.strip().startswith(f"execution {execution_id} KILLED")
    assert run.wait(timeout=30) == 130
    assert time.monotonic() - began < 30
    assert not our_resources(**{labels.EXECUTION: execution_id})
    shown = json.loads(cli(home, "show", execution_id, "--json").stdout)
    assert shown["state"]["current"] == "KILLED"
    sleeper = next(t for t in shown["taskRunList"] if t["taskId"] == "sleeper")
    assert sleeper["state"]["current"] == "KILLED"
    again = cli(home, "kill", execution_id)
    assert again.returncode == 0 and "already ended KILLED" in again.stderr


@pytest.mark.serial  # orphans of its own: another run's sweep must not take them
def test_sigkilled_executor_is_recovered_and_its_containers_collected(
    home: Path, tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """After SIGKILL the next command marks the run FAILED 'executor died'; gc removes leftovers."""
    run = _start_run(home, write_flow(tmp_path, SLOW))
    started.append(run)
    execution_id = until(lambda: _single_execution(home), 60, "the execution row")
    until(lambda: _line_recorded(home, execution_id, "sleeping now"), 60, "the task's first line")
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=10)
    assert _state(home, execution_id) == State.RUNNING  # nobody has looked yet
    assert our_resources(**{labels.EXECUTION: execution_id})  # the dead run left them

    listed = cli(home, "executions")
    assert listed.returncode == 0, listed.stderr
    row = listed.stdout.splitlines()[1]
    assert row.startswith(execution_id) and " FAILED " in row and row.endswith("executor died")
    logs = cli(home, "logs", execution_id).stdout
    assert "sleeping now" in logs and "executor died" in logs
    shown = json.loads(cli(home, "show", execution_id, "--json").stdout)
    assert shown["reason"] == "executor died"
    assert {t["state"]["current"] for t in shown["taskRunList"]} == {"FAILED"}

    gc = cli(home, "gc")
    assert gc.returncode == 0, gc.stderr
    assert not our_resources(**{labels.EXECUTION: execution_id})


def test_twenty_concurrent_executions_are_all_recorded(
    home: Path, tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """Twenty executors on one home at once: every execution and every line is recorded."""
    flow = write_flow(
        tmp_path,
        """
        id: burst
        namespace: tests.records
        tasks:
          - id: count
            type: io.kestra.plugin.scripts.shell.Commands
            containerImage: busybox
            commands:
              - seq 1 300
    """,
    )
    runs = [_start_run(home, flow, "--json") for _ in range(20)]
    started.extend(runs)
    printed: dict[str, list[str]] = {}
    for proc in runs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        printed[json.loads(out)["id"]] = [
            line.split(None, 3)[3]
            for line in err.splitlines()
            if line[:2].isdigit() and " count " in line and " INFO  " in line
        ]
    listed = json.loads(cli(home, "executions", "--json").stdout)
    assert sorted(e["id"] for e in listed) == sorted(printed)
    assert {e["state"]["current"] for e in listed} == {"SUCCESS"}
    with Store(home / "executor.db") as store:
        for execution_id, shown in printed.items():
            lines = [
                r.line.message
                for r in store.logs(execution_id, task_id="count")
                if r.line.stream == "stdout"
            ]
            # the record holds every line the executor received and showed ...
            assert lines == shown, execution_id
            # ... and that is every line the task printed
            assert lines == [str(n) for n in range(1, 301)], (
                f"{execution_id}: the executor received {len(lines)} of 300 lines from the"
                " engine (see the report on docker-py exec output races)"
            )
