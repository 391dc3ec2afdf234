"""``app.kill_execution``: the one kill of the CLI, the server and the worker, step by step."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from executor import app
from executor.host import Owner, process_status
from executor.model import State
from executor.run.cancel import CancelScope, Running
from executor.store.db import Store
from tests.unit.store.sample import ended_execution, record, running_execution

REASON = "killed in a test"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "executor.db"


def _opener(db: Path) -> app.RecordStoreOpener:
    return lambda: Store(db)


@pytest.fixture
def other_process() -> Iterator[Owner]:
    """A live process of this host that is not this one."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        status = process_status(proc.pid)
        assert status is not None
        yield Owner(proc.pid, status[1], socket.gethostname())
    finally:
        proc.kill()
        proc.wait()


def test_what_this_process_runs_is_stopped_through_its_scope_without_a_store() -> None:
    """A worker (no store): the scope of an execution it runs is cancelled KILLED with the
    reason; one it does not run is not its to kill."""
    running, scope = Running(), CancelScope()
    running.add("e1", scope)
    assert app.kill_execution("e1", REASON, running=running).kill == app.Kill.STOPPING
    assert scope.state == State.KILLED and scope.reason == REASON
    assert app.kill_execution("e2", REASON, running=running).kill == app.Kill.NOT_HERE


def test_an_ended_execution_is_left_as_it_was(db: Path) -> None:
    """Already ended: said so, with its state; the record does not change."""
    e = ended_execution()
    record(db, e)
    killed = app.kill_execution(e.id, REASON, records=_opener(db))
    assert killed == app.Killed(app.Kill.ALREADY_ENDED, State.FAILED)
    with Store(db) as store:
        assert store.execution_state(e.id) == State.FAILED


def test_an_execution_whose_runner_is_gone_is_ended_killed_in_the_store(db: Path) -> None:
    """Recorded as run by this process, which no longer holds it (its runner ended without
    recording the end): ended KILLED in the store, with a note saying why."""
    e = running_execution()
    record(db, e, lines=[])
    killed = app.kill_execution(e.id, REASON, running=Running(), records=_opener(db))
    assert killed == app.Killed(app.Kill.ENDED, State.KILLED)
    with Store(db) as store:
        stored = store.get_execution(e.id)
        assert stored.execution.state.current == State.KILLED
        assert stored.execution.reason == REASON
        notes = [row.line.message for row in store.logs(e.id)]
    assert any("had ended without recording its end" in note for note in notes), notes


def test_another_live_process_is_refused_unless_asked_to_signal_it(
    db: Path, other_process: Owner
) -> None:
    """Run by another live process of this host: a server refuses (and says where it runs);
    nothing is changed."""
    e = running_execution()
    record(db, e, owner=other_process, lines=[])
    killed = app.kill_execution(e.id, REASON, running=Running(), records=_opener(db))
    assert killed.kill == app.Kill.REFUSED and f"pid {other_process.pid}" in killed.message
    with Store(db) as store:
        assert store.execution_state(e.id) == State.RUNNING


def test_another_host_is_never_signalled(db: Path) -> None:
    """A pid recorded on another host is not ours to signal, even for `executor kill`."""
    e = running_execution()
    record(db, e, owner=Owner(1, "1", "elsewhere"), lines=[])
    killed = app.kill_execution(e.id, REASON, records=_opener(db), signal_wait=1)
    assert killed.kill == app.Kill.REFUSED and "runs on host elsewhere" in killed.message


def test_a_run_registered_while_the_kill_looks_in_the_store_is_stopped(db: Path) -> None:
    """A slot that takes the execution just as the kill starts (it registers after the kill
    looked at what this process runs) is still stopped through its scope, not refused nor
    ended in the store under its feet."""
    e = running_execution()
    record(db, e, lines=[])
    running, scope = Running(), CancelScope()

    @contextmanager
    def store_while_a_slot_takes_it() -> Iterator[Store]:
        with Store(db) as store:
            running.add(e.id, scope)
            yield store

    killed = app.kill_execution(e.id, REASON, running=running, records=store_while_a_slot_takes_it)
    assert killed.kill == app.Kill.STOPPING and scope.state == State.KILLED
    with Store(db) as store:
        assert store.execution_state(e.id) == State.RUNNING  # its runner ends it, not the kill
