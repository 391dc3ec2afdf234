"""The recording listener: what the runner reports reaches the store, masked, while it runs."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from executor.errors import NotFoundError, StoreError
from executor.flow.secrets import Secrets
from executor.model import Attempt, Execution, Level, LogBatch, LogLine, State, TaskRun, now
from executor.store.db import Store
from executor.store.local import LocalRecords
from executor.store.recorder import Recorder, StoreRetry


def _line(e: Execution, run: TaskRun | None, text: str) -> LogLine:
    return LogLine(
        now(),
        e.id,
        run.task_id if run else None,
        run.id if run else None,
        1,
        "stdout",
        Level.INFO,
        text,
    )


def _wait_for_lines(db: Path, execution_id: str, count: int, timeout: float = 5) -> int:
    deadline = time.monotonic() + timeout
    with Store(db) as store:
        while True:
            found = store.count_logs(execution_id)
            if found >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)


def _wait_for_execution_row(db: Path, execution_id: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    with Store(db) as store:
        while True:
            try:
                store.execution_state(execution_id)
                return
            except NotFoundError:
                assert time.monotonic() < deadline, "the execution row was never written"
                time.sleep(0.02)


def test_lines_reach_the_store_while_the_run_goes_on(store_at: Path | str) -> None:
    """A line logged during a quiet task is readable by another connection before the run ends."""
    db = store_at
    e = Execution("tests.rec", "quiet")
    with Recorder(LocalRecords(db)) as recorder:
        e.state.to(State.RUNNING)
        recorder.execution_changed(e)
        run = TaskRun("t", "io.kestra.plugin.scripts.shell.Commands")
        e.task_runs.append(run)
        recorder.task_changed(e, run)
        recorder.log(_line(e, run, "first line"))
        assert _wait_for_lines(db, e.id, 1) == 1  # the recorder is still open
        with Store(db) as store:
            assert store.execution_state(e.id) == State.RUNNING


def test_a_whole_run_is_recorded_in_order(store_at: Path | str) -> None:
    """States, attempts, outputs and every line end up in the store, task runs in start order."""
    db = store_at
    e = Execution("tests.rec", "whole")
    with Recorder(LocalRecords(db)) as recorder:
        e.state.to(State.RUNNING)
        recorder.execution_changed(e)
        for name in ("a", "b"):
            run = TaskRun(name, "io.kestra.plugin.core.log.Log")
            e.task_runs.append(run)
            recorder.task_changed(e, run)
            run.state.to(State.RUNNING)
            recorder.task_changed(e, run)
            for n in range(1000):
                recorder.log(_line(e, run, f"{name}{n}"))
            run.outputs = {"value": name}
            run.state.to(State.SUCCESS)
            recorder.task_changed(e, run)
        e.state.to(State.SUCCESS)
        recorder.execution_changed(e)
    with Store(db) as store:
        back = store.get_execution(e.id).execution
        messages = [r.line.message for r in store.logs(e.id)]
    assert back.to_json() == e.to_json()
    assert messages == [f"a{n}" for n in range(1000)] + [f"b{n}" for n in range(1000)]


def test_secrets_are_masked_in_outputs_inputs_and_metrics(tmp_path: Path) -> None:
    """A secret value in outputs, inputs, metrics or the reason is never written to the store."""
    db = tmp_path / "executor.db"
    secrets = Secrets({"TOKEN": "hunter2-very-secret"})
    e = Execution("tests.rec", "masked", {"token": "hunter2-very-secret"})
    run = TaskRun("t", "io.kestra.plugin.scripts.shell.Commands")
    run.outputs = {"vars": {"leak": "value=hunter2-very-secret"}}
    run.metrics = [
        {"name": "m", "type": "counter", "value": 1, "tags": {"t": "hunter2-very-secret"}}
    ]
    e.task_runs.append(run)
    e.reason = "failed with hunter2-very-secret"
    with Recorder(LocalRecords(db), mask=secrets.mask_value) as recorder:
        recorder.execution_changed(e)
        recorder.task_changed(e, run)
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"hunter2-very-secret" not in raw
    with Store(db) as store:
        back = store.get_execution(e.id).execution
    assert back.task_runs[0].outputs == {"vars": {"leak": "value=******"}}
    assert back.inputs == {"token": "******"}
    assert back.reason == "failed with ******"
    assert run.outputs == {"vars": {"leak": "value=hunter2-very-secret"}}  # the run's own copy


def test_images_learnt_during_the_run_are_recorded(store_at: Path | str) -> None:
    """An image resolved when a task starts is on the execution row without a new state."""
    db = store_at
    e = Execution("tests.rec", "images")
    run = TaskRun("t", "io.kestra.plugin.scripts.shell.Commands")
    e.task_runs.append(run)
    with Recorder(LocalRecords(db)) as recorder:
        recorder.execution_changed(e)
        e.images["busybox"] = "sha256:abc"
        run.state.to(State.RUNNING)
        recorder.task_changed(e, run)
        with Store(db) as store:
            deadline = time.monotonic() + 5
            while _images(store, e.id) != {"busybox": "sha256:abc"}:
                assert time.monotonic() < deadline, "images never recorded"
                time.sleep(0.02)


def _images(store: Store, execution_id: str) -> dict[str, str] | None:
    try:
        return store.get_execution(execution_id).execution.images
    except NotFoundError:
        return None


def test_a_loud_task_is_recorded_whole_with_a_small_backlog(store_at: Path | str) -> None:
    """With the backlog capped low, the caller waits for the writer and no line is lost."""
    db = store_at
    e = Execution("tests.rec", "loud")
    with Recorder(LocalRecords(db), max_backlog=1000) as recorder:
        recorder.execution_changed(e)
        for n in range(60_000):
            recorder.log(_line(e, None, str(n)))
            if n % 5000 == 0:
                assert recorder._queue.qsize() <= 1000 + 512
    with Store(db) as store:
        assert store.count_logs(e.id) == 60_000


def test_unusable_store_fails_at_start(tmp_path: Path) -> None:
    """When the store cannot be opened the recorder refuses to start, before anything runs."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create"):
        Recorder(LocalRecords(blocker / "executor.db")).start()


def test_a_write_failure_is_reported_when_the_recorder_finishes(tmp_path: Path) -> None:
    """A store that breaks mid-run does not stop the run; finish() reports it (exit 4)."""
    db = tmp_path / "executor.db"
    e = Execution("tests.rec", "broken")
    recorder = Recorder(LocalRecords(db, busy_timeout=0.2)).start()
    recorder.execution_changed(e)
    _wait_for_execution_row(db, e.id)  # the execution's own write must not be the one locked out
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    for n in range(10):
        recorder.log(_line(e, None, str(n)))
    problem = recorder.finish()
    holder.execute("COMMIT")
    holder.close()
    assert problem is not None and problem.exit_code == 4
    assert "locked" in problem.message and "incomplete" in problem.message
    assert "10 update(s) and line(s) not written" in problem.message


def test_lone_surrogates_are_recorded_as_replacement_characters(store_at: Path | str) -> None:
    """Text SQLite cannot encode (a lone surrogate) is stored as U+FFFD; nothing else is lost."""
    db = store_at
    e = Execution("tests.rec", "surrogates", {"arg": "\udcff"})  # a surrogate-escaped argv byte
    run = TaskRun("t", "io.kestra.plugin.core.log.Log")
    run.attempts.append(Attempt(1, reason="odd \ud800 reason"))
    e.task_runs.append(run)
    recorder = Recorder(LocalRecords(db)).start()
    e.state.to(State.RUNNING)
    recorder.execution_changed(e)
    recorder.task_changed(e, run)
    recorder.log(_line(e, run, "a\ud800b"))
    recorder.log(_line(e, run, "pair \ud83d\ude00"))
    e.state.to(State.SUCCESS)
    recorder.execution_changed(e)
    assert recorder.finish() is None
    with Store(db) as store:
        back = store.get_execution(e.id).execution
        messages = [r.line.message for r in store.logs(e.id)]
    assert messages == ["a\ufffdb", "pair \U0001f600"]
    assert back.state.current == State.SUCCESS
    assert back.inputs == {"arg": "\ufffd"}
    assert back.task_runs[0].attempts[0].reason == "odd \ufffd reason"


def test_an_unexpected_write_failure_is_reported_and_the_final_state_kept(
    store_at: Path | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure that is not a StoreError does not kill the writer silently: finish() reports
    it, and the states that follow are still recorded, so the record says how the run ended."""
    db = store_at
    real_write = Store.write

    def write_failing_on_lines(store: Store, batch: list[Any]) -> None:
        if any(isinstance(item, LogLine) for item in batch):
            raise RuntimeError("a bug in writing lines")
        real_write(store, batch)

    monkeypatch.setattr(Store, "write", write_failing_on_lines)
    e = Execution("tests.rec", "unexpected")
    recorder = Recorder(LocalRecords(db)).start()
    e.state.to(State.RUNNING)
    recorder.execution_changed(e)
    for n in range(3):
        recorder.log(_line(e, None, str(n)))
    e.state.to(State.SUCCESS)
    recorder.execution_changed(e)
    problem = recorder.finish()
    assert problem is not None and problem.exit_code == 4
    assert "RuntimeError: a bug in writing lines" in problem.message
    assert "its final state is recorded" in problem.message
    with Store(db) as store:
        assert store.execution_state(e.id) == State.SUCCESS


def test_states_are_recorded_again_once_a_locked_store_frees_up(tmp_path: Path) -> None:
    """Lines lost to a lock stay lost (and are counted), but the final state is written."""
    db = tmp_path / "executor.db"
    e = Execution("tests.rec", "relocked")
    recorder = Recorder(LocalRecords(db, busy_timeout=0.2)).start()
    e.state.to(State.RUNNING)
    recorder.execution_changed(e)
    assert _wait_for_lines(db, e.id, 0) == 0
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    for n in range(10):
        recorder.log(_line(e, None, str(n)))
    deadline = time.monotonic() + 10
    while recorder.error is None and time.monotonic() < deadline:
        time.sleep(0.02)
    holder.execute("COMMIT")
    holder.close()
    e.state.to(State.SUCCESS)
    recorder.execution_changed(e)
    problem = recorder.finish()
    assert problem is not None and "locked" in problem.message
    assert "10 update(s) and line(s) not written; its final state is recorded" in problem.message
    with Store(db) as store:
        assert store.execution_state(e.id) == State.SUCCESS
        assert store.count_logs(e.id) == 0


def _locked_while(db: Path, recorder: Recorder, e: Execution) -> sqlite3.Connection:
    """Lock the store (another process's long transaction), log ten lines and end the run
    while it is locked; the lock's holder, once the recorder has failed to write."""
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    for n in range(10):
        recorder.log(_line(e, None, str(n)))
    e.state.to(State.SUCCESS)
    recorder.execution_changed(e)
    deadline = time.monotonic() + 10
    while recorder._outage_since is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert recorder._outage_since is not None, "the recorder never met the lock"
    return holder


def test_a_store_locked_for_a_while_is_waited_for_and_nothing_is_lost(tmp_path: Path) -> None:
    """With a retry, a store that cannot be written for a while (here: locked by another
    process past busy_timeout) is tried again until it can: every line and the final state
    are written, in order, and nothing is reported missing."""
    db = tmp_path / "executor.db"
    e = Execution("tests.rec", "waited")
    retry = StoreRetry(patience=60, max_wait=0.1)
    recorder = Recorder(LocalRecords(db, busy_timeout=0.1), retry=retry).start()
    e.state.to(State.RUNNING)
    recorder.execution_changed(e)
    _wait_for_execution_row(db, e.id)
    holder = _locked_while(db, recorder, e)
    holder.execute("COMMIT")
    holder.close()
    assert recorder.finish() is None
    with Store(db) as store:
        assert store.execution_state(e.id) == State.SUCCESS
        assert [r.line.message for r in store.logs(e.id)] == [str(n) for n in range(10)]


def test_past_its_patience_the_recorder_keeps_the_states_and_says_what_it_lost(
    tmp_path: Path,
) -> None:
    """An outage longer than the retry's patience: the lines are given up (and counted), the
    final state is still written once the store is back. Setting ``give_up`` stops the wait at
    once (a server that stops)."""
    db = tmp_path / "executor.db"
    e = Execution("tests.rec", "patience")
    retry = StoreRetry(patience=0.3, max_wait=0.05)
    recorder = Recorder(LocalRecords(db, busy_timeout=0.1), retry=retry).start()
    e.state.to(State.RUNNING)
    recorder.execution_changed(e)
    _wait_for_execution_row(db, e.id)
    holder = _locked_while(db, recorder, e)
    deadline = time.monotonic() + 10
    while recorder.error is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert recorder.error is not None and "locked" in recorder.error.message
    holder.execute("COMMIT")
    holder.close()
    e.state.to(State.FAILED)  # a later state, written now that the store is free
    recorder.execution_changed(e)
    problem = recorder.finish()
    assert problem is not None and "10 update(s) and line(s) not written" in problem.message
    with Store(db) as store:
        assert store.execution_state(e.id) == State.FAILED
        assert store.count_logs(e.id) == 0

    stopping = StoreRetry(patience=3600, max_wait=0.05)
    second = Execution("tests.rec", "given-up")
    recorder = Recorder(LocalRecords(db, busy_timeout=0.1), retry=stopping).start()
    recorder.execution_changed(second)
    _wait_for_execution_row(db, second.id)
    holder = _locked_while(db, recorder, second)
    stopping.give_up.set()
    problem = recorder.finish()  # at once, not in an hour
    holder.execute("COMMIT")
    holder.close()
    assert problem is not None and "locked" in problem.message


def test_batches_count_by_their_lines_against_the_backlog(store_at: Path | str) -> None:
    """A batch is one queue item but counts as its lines: memory stays bounded by lines."""
    db = store_at
    e = Execution("tests.rec", "loud")
    with Recorder(LocalRecords(db), max_backlog=2000) as recorder:
        recorder.execution_changed(e)
        for n in range(300):
            messages = [f"{n}.{i}" for i in range(200)]
            recorder.log_batch(
                LogBatch(now(), e.id, None, None, None, "stdout", Level.INFO, messages)
            )
            assert recorder._backlog() <= 2000 + 200
    with Store(db) as store:
        assert store.count_logs(e.id) == 60_000
        assert store.logs(e.id)[-1].line.message == "299.199"
