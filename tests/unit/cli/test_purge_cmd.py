"""`executor purge`: counts first with --dry-run, removes what ended before the age with its
lines and files, never what has not ended; bad input is one line and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from executor.host import Owner
from executor.model import Execution, Level, LogLine, State
from executor.store.db import Store
from executor.store.files.artifacts import LocalArtifactStore
from tests.unit.store.sample import ended_execution, record, running_execution


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EXECUTOR_HOME": str(home)}
    env.pop("EXECUTOR_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "executor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def _aged(e: Execution, days: float) -> Execution:
    """``e`` moved so that it ended ``days`` days ago."""
    shift = datetime.now(UTC) - timedelta(days=days) - e.state.history[-1][1]
    for history in [e.state] + [run.state for run in e.task_runs]:
        history.history = [(state, when + shift) for state, when in history.history]
    return e


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home with two executions ended 40 days ago (one SUCCESS), one ended yesterday, and one
    RUNNING for 40 days; each with lines and one stored file."""
    home = tmp_path / "home"
    files = LocalArtifactStore(home / "artifacts")
    old_success = _aged(ended_execution("report", "company.team"), 40)
    old_success.state.current = State.SUCCESS
    for e in (
        _aged(ended_execution("orders", "company.team"), 40),
        old_success,
        _aged(ended_execution("orders", "company.team"), 1),
    ):
        record(home / "executor.db", e)
        files.write(files.prefix(e.namespace, e.flow_id, e.id, "t", "r"), "out.txt", [b"x"])
    running = running_execution()
    running.namespace = "company.team"
    running.state.history = [(s, w - timedelta(days=40)) for s, w in running.state.history]
    line = LogLine(
        datetime.now(UTC) - timedelta(days=40),
        running.id,
        None,
        None,
        None,
        "executor",
        Level.INFO,
        "started",
    )
    record(home / "executor.db", running, Owner.current(), [line])  # alive: nobody ends it
    files.write(files.prefix("company.team", "slow", running.id, "t", "r"), "out.txt", [b"x"])
    return home


def _left(home: Path) -> list[tuple[str, str]]:
    with Store(home / "executor.db") as store:
        return sorted((e.flow_id, e.state.value) for e in store.list_executions())


def _files(home: Path) -> int:
    return sum(1 for p in (home / "artifacts").rglob("*") if p.is_file())


def test_dry_run_counts_then_purge_removes_only_what_ended_before_the_age(home: Path) -> None:
    everything = _left(home)
    dry = _cli(home, "purge", "--older-than", "P30D", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would remove 2 execution(s) ended before" in dry.stdout
    assert "8 log line(s), 2 file(s)" in dry.stdout
    assert _left(home) == everything and _files(home) == 4

    done = _cli(home, "purge", "--older-than", "P30D", "--namespace", "company.team")
    assert done.returncode == 0, done.stderr
    assert "removed 2 execution(s)" in done.stdout and "8 log line(s), 2 file(s)" in done.stdout
    assert _left(home) == [("orders", "FAILED"), ("slow", "RUNNING")]
    assert _files(home) == 2  # the recent execution's and the running one's


def test_states_and_keep_logs_narrow_what_goes(home: Path) -> None:
    done = _cli(home, "purge", "--older-than", "P30D", "--states", "success", "--keep-logs")
    assert done.returncode == 0, done.stderr
    assert "removed 1 execution(s)" in done.stdout and "log lines kept" in done.stdout
    assert ("report", "SUCCESS") not in _left(home)
    with Store(home / "executor.db") as store:
        kept = store.read("SELECT count(*) FROM log_chunks")[0][0]
    assert kept == 4 * 3 + 1  # every line of the three ended ones stays, and the running one's


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "thirty days"], "--older-than 'thirty days': expected an ISO-8601"),
        (["--older-than", "P0D"], "--older-than 'P0D': must be more than zero"),
        (["--older-than", "P1D", "--flow", "orders"], "--flow needs --namespace"),
        (["--older-than", "P1D", "--states", "RUNNING"], "RUNNING executions have not ended"),
        (["--older-than", "P1D", "--states", "DONE"], "'DONE' is not a state"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(home: Path, args: list[str], message: str) -> None:
    before = _left(home)
    done = _cli(home, "purge", *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert _left(home) == before
