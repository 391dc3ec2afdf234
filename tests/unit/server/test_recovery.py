"""A live server's recovery: an execution recorded as run by it that none of its runners holds
is ended FAILED (after a grace), never one it runs."""

from __future__ import annotations

import threading
from pathlib import Path

from executor.host import Owner
from executor.model import State
from executor.run.cancel import CancelScope, Running, runner_gone
from executor.server.recovery import LOST_RUNNER_REASON, Recovery
from executor.settings import Settings
from executor.store.db import Store
from executor.store.local import LocalRecords
from executor.store.records import execution_record, task_run_record
from tests.unit.store.sample import running_execution


def _record(store: Store, owner: Owner) -> str:
    e = running_execution()
    store.write([execution_record(e, owner), task_run_record(e.id, 0, e.task_runs[0])])
    return e.id


def test_a_run_without_its_runner_is_ended_failed_after_the_grace(tmp_path: Path) -> None:
    """Seen without a runner twice, a grace apart: FAILED with the reason, its task run too;
    the execution a runner holds is left alone, and so is another live process's."""
    settings = Settings(home=tmp_path, store_retry_wait_seconds=0.01)
    me = Owner.current()
    running = Running()
    recovery = Recovery(settings, LocalRecords(settings.db_path), me, running, threading.Event())
    with Store(settings.db_path) as store:
        lost = _record(store, me)
        held = _record(store, me)
        other = _record(store, Owner(1, "", me.host))  # pid 1: alive, not this process
    with running.holding(held, CancelScope()):
        assert recovery.look() == []  # first seen: a slot may be about to register it
        assert recovery.look() == []  # still inside the grace (a second and a bit)
        recovery._suspects = {e: since - 5 for e, since in recovery._suspects.items()}
        assert recovery.look() == [lost]
    with Store(settings.db_path) as store:
        ended = store.get_execution(lost).execution
        assert ended.state.current == State.FAILED and ended.reason == LOST_RUNNER_REASON
        assert ended.task_runs[0].state.current == State.FAILED
        assert store.execution_state(held) == State.RUNNING
        assert store.execution_state(other) == State.RUNNING


def test_the_rule_kill_and_recovery_share() -> None:
    """This process's record is lost when none of its runners holds it; another process's when
    that process no longer runs."""
    me = Owner.current()
    running = Running()
    assert runner_gone(me, me, running, "x")
    with running.holding("x", CancelScope()):
        assert not runner_gone(me, me, running, "x")
    assert not runner_gone(Owner(1, "", me.host), me, running, "x")
    assert runner_gone(Owner(2**22 + 7, "", me.host), me, running, "x")  # no such pid
