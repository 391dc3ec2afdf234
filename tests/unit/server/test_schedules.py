"""The scheduler against a real SQLite store and the real queue, on a clock the test sets."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from executor.flow.cron import Cron
from executor.model import State
from executor.server.queue import ExecutionQueue
from executor.server.schedules import Scheduler, plan_ticks
from executor.settings import Settings
from executor.store.db import Store
from executor.store.flows import delete_flow, save_flow
from executor.store.queue import withdraw
from executor.store.triggers import get_state

T0 = datetime(2024, 5, 15, 10, 0, 0, 400000, tzinfo=UTC)
EVERY_SECOND = Cron("* * * * * *", with_seconds=True)


def flow(trigger: str, flow_id: str = "tick") -> str:
    return textwrap.dedent(
        f"""\
        id: {flow_id}
        namespace: company.team
        inputs:
          - id: day
            type: STRING
            defaults: none
        tasks:
          - id: say
            type: io.kestra.plugin.core.log.Log
            message: "{{{{ trigger.date }}}}"
        triggers:
        """
    ) + textwrap.indent(textwrap.dedent(trigger), "  ")


SECONDLY = """\
- id: every_second
  type: io.kestra.plugin.core.trigger.Schedule
  cron: "* * * * * *"
  withSeconds: true
  allowConcurrent: true
  inputs:
    day: "{{ trigger.date | date('yyyy-MM-dd') }}"
"""


@pytest.fixture
def queue(tmp_path: Path) -> ExecutionQueue:
    return ExecutionQueue(Settings(home=tmp_path), workers=1)


def push(queue: ExecutionQueue, source: str, flow_id: str = "tick") -> None:
    with Store(queue.settings.db_path) as store:
        save_flow(store, "company.team", flow_id, source)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# ----- which ticks run


def test_ticks_missed_while_down_follow_recover_missed_schedules() -> None:
    """Five ticks passed while down: NONE runs none, LAST the latest, ALL each."""
    due, now = at(0.6), at(5.5)  # ticks at 1..5 s
    none = plan_ticks(EVERY_SECOND, due, now, catching_up=True, recover="NONE")
    last = plan_ticks(EVERY_SECOND, due, now, catching_up=True, recover="LAST")
    every = plan_ticks(EVERY_SECOND, due, now, catching_up=True, recover="ALL")
    assert none is not None and last is not None and every is not None
    assert none.run == []
    assert last.run == [at(4.6)]
    assert every.run == [at(s + 0.6) for s in range(5)]
    assert none.last == at(4.6) and none.next == at(5.6)


def test_ticks_due_while_running_all_run_but_the_too_late() -> None:
    """While running, every due tick runs; lateMaximumDelay drops the ones later than it."""
    plan = plan_ticks(EVERY_SECOND, at(0.6), at(3.0), catching_up=False)
    assert plan is not None and plan.run == [at(0.6), at(1.6), at(2.6)]
    late = plan_ticks(
        EVERY_SECOND, at(0.6), at(3.0), catching_up=False, late_maximum=timedelta(seconds=1)
    )
    assert late is not None and late.run == [at(2.6)]
    assert plan_ticks(EVERY_SECOND, at(3.6), at(3.0), catching_up=False) is None


# ----- the scheduler over the store


def scheduled(queue: ExecutionQueue) -> list[tuple[str, str, dict[str, str]]]:
    """(state, trigger.date, inputs) of every execution, by trigger date."""
    with Store(queue.settings.db_path) as store:
        found = [store.get_execution(e.id).execution for e in store.list_executions()]
    rows = [
        (e.state.current.value, (e.trigger or {})["variables"]["date"], e.inputs) for e in found
    ]
    return sorted(rows, key=lambda row: row[1])


def test_a_new_schedule_starts_from_now_then_runs_each_tick_once(queue: ExecutionQueue) -> None:
    """First pass plans the next tick; later passes queue one execution per tick, never twice."""
    push(queue, flow(SECONDLY))
    scheduler = Scheduler(queue)
    assert scheduler.run_once(T0) == []
    started = scheduler.run_once(at(2.0))  # ticks 10:00:01 and 10:00:02
    assert [e.state.current for e in started] == [State.QUEUED, State.QUEUED]
    assert scheduler.run_once(at(2.5)) == []
    rows = scheduled(queue)
    assert [r[1] for r in rows] == ["2024-05-15T10:00:01Z", "2024-05-15T10:00:02Z"]
    assert rows[0][2] == {"day": "2024-05-15"}
    trigger = started[0].trigger
    assert trigger is not None
    assert trigger["id"] == "every_second"
    assert trigger["type"] == "io.kestra.plugin.core.trigger.Schedule"
    assert trigger["variables"] == {
        "date": "2024-05-15T10:00:01Z",
        "next": "2024-05-15T10:00:02Z",
        "previous": "2024-05-15T10:00:00Z",
    }


def test_a_restart_neither_reruns_nor_replays_ticks(queue: ExecutionQueue) -> None:
    """With recoverMissedSchedules NONE, a restart reruns nothing and skips the missed ticks."""
    push(queue, flow(SECONDLY + "  recoverMissedSchedules: NONE\n"))
    first = Scheduler(queue)
    first.run_once(T0)
    first.run_once(at(1.0))  # 10:00:01 runs
    again = Scheduler(queue)  # "down" from 1.0 to 6.5
    assert again.run_once(at(6.5), catching_up=True) == []
    again.run_once(at(7.0))  # 10:00:07 runs
    assert [r[1] for r in scheduled(queue)] == ["2024-05-15T10:00:01Z", "2024-05-15T10:00:07Z"]
    with Store(queue.settings.db_path) as store:
        state = get_state(store, "company.team", "tick", "every_second")
    assert state is not None and state.last_date is not None
    assert state.last_date.startswith("2024-05-15T10:00:07")


def test_recover_all_replays_each_missed_tick_once(queue: ExecutionQueue) -> None:
    """By default (Kestra's ALL) every tick that passed while down is queued, each once."""
    push(queue, flow(SECONDLY))
    Scheduler(queue).run_once(T0)
    Scheduler(queue).run_once(at(3.0), catching_up=True)
    Scheduler(queue).run_once(at(3.0), catching_up=True)
    assert [r[1][-3:] for r in scheduled(queue)] == ["01Z", "02Z", "03Z"]


def test_stop_after_stops_the_trigger_once_an_execution_ends_so(queue: ExecutionQueue) -> None:
    """stopAfter [FAILED]: after a FAILED execution of the trigger no tick runs any more."""
    push(queue, flow(SECONDLY + "  stopAfter: [FAILED]\n"))
    scheduler = Scheduler(queue)
    scheduler.run_once(T0)
    (execution,) = scheduler.run_once(at(1.0))
    scheduler.run_once(at(2.0))  # still QUEUED: goes on
    with Store(queue.settings.db_path) as store:
        assert withdraw(store, execution.id, State.FAILED, "broke")
    assert scheduler.run_once(at(5.0)) == []
    assert scheduler.run_once(at(9.0)) == []
    with Store(queue.settings.db_path) as store:
        state = get_state(store, "company.team", "tick", "every_second")
    assert state is not None
    assert state.stopped == f"stopAfter: execution {execution.id} ended FAILED"
    assert len(scheduled(queue)) == 2


def test_a_success_does_not_stop_a_trigger_that_stops_after_failure(
    queue: ExecutionQueue,
) -> None:
    """stopAfter lists states: an execution ending in another state leaves the trigger on."""
    push(queue, flow(SECONDLY + "  stopAfter: [FAILED]\n"))
    scheduler = Scheduler(queue)
    scheduler.run_once(T0)
    (execution,) = scheduler.run_once(at(1.0))
    with Store(queue.settings.db_path) as store:
        withdraw(store, execution.id, State.SUCCESS, "done")
    assert len(scheduler.run_once(at(2.0))) == 1


def test_allow_concurrent_false_skips_ticks_while_the_last_run_goes_on(
    queue: ExecutionQueue,
) -> None:
    """Kestra's default: no new execution while the trigger's last one has not ended."""
    push(queue, flow(SECONDLY.replace("allowConcurrent: true", "allowConcurrent: false")))
    scheduler = Scheduler(queue)
    scheduler.run_once(T0)
    (execution,) = scheduler.run_once(at(1.0))
    assert scheduler.run_once(at(2.0)) == []  # 10:00:02 skipped: the first is still queued
    with Store(queue.settings.db_path) as store:
        withdraw(store, execution.id, State.SUCCESS, "done")
    assert len(scheduler.run_once(at(3.0))) == 1


def test_disabled_changed_and_deleted_triggers(queue: ExecutionQueue) -> None:
    """A disabled trigger never runs; a changed one starts afresh; a deleted flow's is forgotten."""
    push(queue, flow(SECONDLY + "  disabled: true\n"))
    scheduler = Scheduler(queue)
    scheduler.run_once(T0)
    assert scheduler.run_once(at(3.0)) == []
    push(queue, flow(SECONDLY))  # enabled again at 3.0: what passed is not replayed
    assert scheduler.run_once(at(3.2)) == []
    assert len(scheduler.run_once(at(4.0))) == 1
    push(queue, flow(SECONDLY.replace('"* * * * * *"', '"*/5 * * * * *"')))
    assert scheduler.run_once(at(4.1)) == []  # changed: next tick is 10:00:05
    assert [e.trigger["variables"]["date"] for e in scheduler.run_once(at(5.0))] == [
        "2024-05-15T10:00:05Z"
    ]
    with Store(queue.settings.db_path) as store:
        delete_flow(store, "company.team", "tick")
    scheduler.run_once(at(6.0))
    with Store(queue.settings.db_path) as store:
        assert get_state(store, "company.team", "tick", "every_second") is None


# ----- backfills


DAILY = """\
- id: nightly
  type: io.kestra.plugin.core.trigger.Schedule
  cron: "0 0 * * *"
"""


def test_a_backfill_runs_its_ticks_oldest_first_as_the_flow_has_room(
    queue: ExecutionQueue,
) -> None:
    """One slot: one tick queued per free place, never the whole backfill at once; a paused
    backfill queues nothing; a deleted one leaves what it queued."""
    from executor.server.backfills import loads, new_backfill
    from executor.store.triggers import set_backfill

    push(queue, flow(DAILY))
    scheduler = Scheduler(queue)
    scheduler.run_once(T0)
    key = ("company.team", "tick", "nightly")
    with Store(queue.settings.db_path) as store:
        asked = {
            "start": "2024-01-01T00:00:00Z",
            "end": "2024-01-03T00:00:00Z",
            "inputs": {"day": "backfilled"},
            "labels": {"run": "bf"},
        }
        backfill = new_backfill(asked, Cron("0 0 * * *"), T0)
        assert backfill.total == 3
        set_backfill(store, key, backfill.dumps())
    first = scheduler.run_once(at(0.1))
    assert [e.trigger["variables"]["date"] for e in first] == ["2024-01-01T00:00:00Z"]  # type: ignore[index]
    assert first[0].labels == {"run": "bf", "system.backfill": "true"}
    assert first[0].inputs == {"day": "backfilled"}
    assert scheduler.run_once(at(0.2)) == []  # its one slot's place is taken (QUEUED)
    with Store(queue.settings.db_path) as store:
        withdraw(store, first[0].id, State.SUCCESS, "done")  # the place frees
        state = get_state(store, *key)
        assert state is not None
        paused = loads(state.backfill).model_copy(update={"paused": True})  # type: ignore[union-attr]
        set_backfill(store, key, paused.dumps())
    assert scheduler.run_once(at(0.3)) == []  # paused
    with Store(queue.settings.db_path) as store:
        set_backfill(store, key, paused.model_copy(update={"paused": False}).dumps())
    second = scheduler.run_once(at(0.4))
    assert [e.trigger["variables"]["date"] for e in second] == ["2024-01-02T00:00:00Z"]  # type: ignore[index]
    with Store(queue.settings.db_path) as store:
        state = get_state(store, *key)
        assert state is not None
        progress = loads(state.backfill)
        assert progress is not None and progress.submitted == 2 and not progress.finished


# ----- Flow triggers


DOWNSTREAM = """\
id: after
namespace: company.team
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.executionId }}"
triggers:
  - id: on_upstream
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: company.team
        flowId: before
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in: [SUCCESS]
"""


def test_an_end_noted_before_its_record_is_written_waits_for_the_record(
    queue: ExecutionQueue,
) -> None:
    """The end is noted as the run ends, while the recorder's thread may not have written the
    execution's last state yet: the pass that finds it still running leaves it for a later
    pass (it was marked looked at, and the downstream never ran, under load)."""
    from executor.host import Owner
    from executor.model import Execution, StateHistory
    from executor.store.flow_events import note_ended_now, pending
    from executor.store.records import execution_record

    push(queue, DOWNSTREAM, "after")
    upstream = Execution("company.team", "before")
    upstream.state = StateHistory(State.RUNNING, [(State.RUNNING, T0)])
    scheduler = Scheduler(queue, clock=lambda: at(1))
    with Store(queue.settings.db_path) as store:
        store.write([execution_record(upstream, Owner.current())])
        note_ended_now(store, upstream.id, at(1).isoformat())
    assert scheduler.run_once(at(1)) == []  # recorded as running still: not looked at yet
    with Store(queue.settings.db_path) as store:
        assert pending(store)
        upstream.state.to(State.SUCCESS)
        store.write([execution_record(upstream, Owner.current())])
    (started,) = scheduler.run_once(at(2))
    assert started.flow_id == "after"
    assert started.trigger is not None
    assert started.trigger["variables"]["executionId"] == upstream.id
    with Store(queue.settings.db_path) as store:
        assert pending(store) == []
