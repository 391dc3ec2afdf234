"""A restart recorded in the store (SQLite, then PostgreSQL): kept and dropped task runs, the
state checked in the same transaction, the work queued with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor import app
from executor.flow.loaded import LoadedFlow
from executor.flow.loader import load_flow_text
from executor.host import Owner
from executor.model import Execution, State
from executor.run.restart import NotRestartable
from executor.store.db import Store
from executor.store.queue import QueuedWork, take_next, withdraw
from executor.store.records import execution_record, task_run_record
from tests.unit.run.test_restart import LOOP, Engine, run


def _failed_in(store: Store) -> tuple[Execution, LoadedFlow]:
    loaded = load_flow_text(LOOP, Path("flow.yaml"))
    execution, _ = run(LOOP, Execution(loaded.flow.namespace, loaded.flow.id), Engine())
    assert execution.state.current == State.FAILED
    store.write(
        [
            execution_record(execution, Owner.current()),
            *(task_run_record(execution.id, n, r) for n, r in enumerate(execution.task_runs)),
        ]
    )
    return execution, loaded


def _work(execution: Execution) -> QueuedWork:
    return QueuedWork(execution.id, execution.namespace, execution.flow_id, None, {}, {}, None, "")


def test_a_restart_is_recorded_and_queued_once(store_at: Path | str) -> None:
    with Store(store_at) as store:
        failed, loaded = _failed_in(store)
        on_error = next(r.id for r in failed.task_runs if r.task_id == "on_error")
        step_b = next(r.id for r in failed.task_runs if r.value == "b")

        app.restart_execution(store, failed.id, lambda e, r: loaded, Owner.current(), _work)

        stored = store.get_execution(failed.id).execution
        assert stored.state.current == State.QUEUED
        assert [s for s, _ in stored.state.history][-3:] == [
            State.FAILED,
            State.RESTARTED,
            State.QUEUED,
        ]
        ids = [r.id for r in stored.task_runs]
        assert on_error not in ids and step_b in ids
        assert next(r for r in stored.task_runs if r.id == step_b).state.current == State.RESTARTED
        assert app.runs_again(stored)
        with pytest.raises(NotRestartable, match="QUEUED"):
            app.restart_execution(store, failed.id, lambda e, r: loaded, Owner.current(), _work)
        taken = take_next(store, Owner.current())
        assert taken is not None and taken.execution_id == failed.id
        assert take_next(store, Owner.current()) is None  # queued once


def test_a_restart_killed_before_it_ran_leaves_no_task_run_unfinished(
    store_at: Path | str,
) -> None:
    with Store(store_at) as store:
        failed, loaded = _failed_in(store)
        app.restart_execution(store, failed.id, lambda e, r: loaded, Owner.current(), _work)
        assert withdraw(store, failed.id, State.KILLED, "killed through the API")
        stored = store.get_execution(failed.id).execution
        assert stored.state.current == State.KILLED
        assert State.RESTARTED not in {r.state.current for r in stored.task_runs}
        assert {r.state.current for r in stored.task_runs if r.value == "b"} == {State.KILLED}
        # and it restarts again
        app.restart_execution(store, failed.id, lambda e, r: loaded, Owner.current(), _work)
