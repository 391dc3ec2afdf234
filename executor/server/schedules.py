"""The scheduler: a thread of the server that starts the stored flows' Schedule and Flow triggers.

Each pass (a few times a second) reads the stored flows and the trigger state
(``store/triggers.py``), brings the state in line with the flows (a new or changed trigger starts
from now, as Kestra does for a new trigger id; a deleted one is forgotten) and, for each
Schedule whose next tick has come, claims the tick in the database and then submits an
execution through the queue, like any other. Its ``trigger`` is Kestra's: ``{"id", "type",
"variables": {"date", "next", "previous"}}`` (ISO-8601 in the trigger's time zone), so
``{{ trigger.date }}`` renders.

What happens to ticks, exactly:
- While the server runs, every tick runs once, late if the machine was busy, unless it is later
  than ``lateMaximumDelay`` (then it is skipped), or ``allowConcurrent`` is false (Kestra's
  default) and the execution this trigger started last has not ended (then it is skipped too;
  of several ticks due in one pass, only the latest runs).
- Ticks that fell while the server was down are found on its first pass and follow
  ``recoverMissedSchedules``: ``ALL`` (Kestra's default) runs each of them, ``LAST`` the latest
  one, ``NONE`` none of them (at most ``MAX_RECOVERED``, the latest). Either way the next tick
  after the start runs as usual, and no tick ever runs twice: it is claimed before it is submitted.
- ``stopAfter``: once an execution this trigger started ends in one of the listed states, the
  trigger stops (``executor triggers ls`` says why) until the trigger is changed in the flow.

Each pass also moves running backfills on (``server/backfills.py``: the next ticks, as the
flow has room) and runs the Flow triggers (``server/flow_triggers.py``) on the executions that
ended since the last one. A trigger disabled through the API (``switched_off``) lets its ticks
pass without running them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from executor.errors import ExecutorError, FlowError
from executor.flow.cron import Cron
from executor.flow.flow_trigger import FlowTrigger
from executor.flow.loaded import LoadedFlow
from executor.flow.triggers import ScheduleTrigger, TriggerBase, WebhookTrigger
from executor.model import Execution, iso
from executor.server.backfills import BACKFILL_LABEL, Backfill, loads, next_tick
from executor.server.flow_triggers import FlowTriggers, Watching
from executor.server.queue import ExecutionQueue, Submission
from executor.server.trigger_values import (
    signature,
    text_values,
    trigger_inputs,
    trigger_object,
)
from executor.store.concurrency import active
from executor.store.db import Store
from executor.store.flows import StoredFlow, list_flows
from executor.store.records import parse_ts, ts
from executor.store.triggers import (
    TriggerState,
    claim_tick,
    delete_states,
    ended_in,
    list_states,
    save_state,
    set_backfill,
    set_last_execution,
    stop,
)

log = structlog.get_logger(__name__)

POLL_SECONDS = 0.25  # a pass this often: a cron with seconds starts within a quarter second
MAX_RECOVERED = 1000  # ticks missed while down that ``recoverMissedSchedules: ALL`` replays
DEFAULT_RECOVERY = "ALL"  # Kestra's default: every missed tick runs once, when back


@dataclass(frozen=True)
class TickPlan:
    """What to do with the ticks that have come: run some, then wait for ``next``."""

    run: list[datetime]
    last: datetime
    next: datetime


def plan_ticks(
    cron: Cron,
    next_due: datetime,
    now: datetime,
    *,
    catching_up: bool,
    recover: str = DEFAULT_RECOVERY,
    late_maximum: timedelta | None = None,
) -> TickPlan | None:
    """The ticks from ``next_due`` up to ``now`` and which of them run (see the module doc).

    Args:
        catching_up: the ticks fell while the server was down (its first pass).
        recover: ``recoverMissedSchedules`` (ALL, LAST, NONE), used when catching up.
        late_maximum: ``lateMaximumDelay``: a tick later than this is skipped.

    Returns:
        ``None`` when no tick has come yet.
    """
    if next_due > now:
        return None
    latest = cron.previous_before(now + timedelta(microseconds=1)) or next_due
    if catching_up:
        if recover == "ALL":
            run = _ticks_from(cron, next_due, latest)
        elif recover == "LAST":
            run = [latest]
        else:
            run = []
    else:
        run = _ticks_from(cron, next_due, latest)
    if late_maximum is not None:
        run = [tick for tick in run if now - tick <= late_maximum]
    return TickPlan(run=run, last=latest, next=cron.next_after(now))


def _ticks_from(cron: Cron, first: datetime, last: datetime) -> list[datetime]:
    """``first`` and every tick after it up to ``last``; the latest ``MAX_RECOVERED`` of them."""
    ticks = [first]
    for tick in cron.ticks_after(first):
        if tick > last:
            break
        ticks.append(tick)
        if len(ticks) > MAX_RECOVERED:
            del ticks[0]
    return ticks


def schedule_variables(cron: Cron, tick: datetime) -> dict[str, Any]:
    """Kestra's Schedule output: ``date``, ``next``, ``previous`` (ISO-8601, trigger's zone)."""
    previous = cron.previous_before(tick)
    return {
        "date": iso(tick),
        "next": iso(cron.next_after(tick)),
        "previous": iso(previous) if previous else None,
    }


def stop_if_ended(
    store: Store, state: TriggerState, trigger: TriggerBase | FlowTrigger
) -> TriggerState:
    """Apply ``stopAfter``: stop the trigger once one of its executions ended as listed."""
    if state.stopped or not trigger.stopAfter:
        return state
    found = ended_in(store, state, trigger.stopAfter)
    if found is None:
        return state
    execution_id, ended = found
    reason = f"stopAfter: execution {execution_id} ended {ended}"
    log.warning(
        "trigger stopped",
        namespace=state.namespace,
        flow_id=state.flow_id,
        trigger_id=state.trigger_id,
        reason=reason,
    )
    return stop(store, state, reason)


class Scheduler:
    """Starts the stored flows' Schedule triggers, backfills and Flow triggers while the
    server runs.

    Args:
        queue: where executions are submitted (and the settings, the database).
        clock: the current time (tests give their own).
        poll: seconds between passes.
    """

    def __init__(
        self,
        queue: ExecutionQueue,
        *,
        clock: Callable[[], datetime] | None = None,
        poll: float = POLL_SECONDS,
    ) -> None:
        self.queue = queue
        self.records = queue.stores.records
        self.clock = clock or (lambda: datetime.now(UTC))
        self.poll = poll
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loaded: dict[tuple[str, str, int], LoadedFlow | None] = {}
        self.flow_triggers = FlowTriggers(queue)

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        catching_up = True
        while not self._stopping.is_set():
            try:
                self.run_once(self.clock(), catching_up=catching_up)
                catching_up = False
            except ExecutorError as exc:  # the store is busy or gone: try again next pass
                log.error("scheduler pass failed", error=str(exc))
            except Exception:  # a bug must not stop the schedules for good
                log.exception("scheduler pass failed")
            self._stopping.wait(self.poll)

    # ----- one pass

    def run_once(self, now: datetime, *, catching_up: bool = False) -> list[Execution]:
        """Sync the trigger state with the flows and start the ticks that have come.

        Args:
            now: the current time.
            catching_up: the first pass after the server started (see the module doc).

        Returns:
            The executions submitted.
        """
        started: list[Execution] = []
        with self.records.connect() as store:
            states = {state.key: state for state in list_states(store)}
            seen: set[tuple[str, str, str]] = set()
            watching: list[Watching] = []
            for stored in list_flows(store):
                loaded = self._load(stored)
                if loaded is None:
                    continue
                for trigger in loaded.flow.triggers or ():
                    if not isinstance(trigger, ScheduleTrigger | WebhookTrigger | FlowTrigger):
                        continue
                    key = (stored.namespace, stored.id, trigger.id)
                    seen.add(key)
                    state = self._synced(store, states.get(key), loaded, trigger, now)
                    state = stop_if_ended(store, state, trigger)
                    if isinstance(trigger, ScheduleTrigger):
                        started += self._evaluate(store, state, trigger, now, catching_up)
                        started += self._backfill(store, state, trigger, loaded)
                    elif isinstance(trigger, FlowTrigger):
                        watching.append(Watching(loaded, trigger, state))
            delete_states(store, [key for key in states if key not in seen])
            started += self.flow_triggers.run_once(store, watching, now)
        return started

    def _load(self, stored: StoredFlow) -> LoadedFlow | None:
        key = (stored.namespace, stored.id, stored.revision)
        if key not in self._loaded:
            try:
                self._loaded[key] = self.queue.parser.load_stored(stored)
            except FlowError as exc:  # saved by an older executor, say: said once
                log.error("stored flow no longer loads", flow=f"{key}", error=str(exc))
                self._loaded[key] = None
        return self._loaded[key]

    def _synced(
        self,
        store: Store,
        state: TriggerState | None,
        loaded: LoadedFlow,
        trigger: ScheduleTrigger | WebhookTrigger | FlowTrigger,
        now: datetime,
    ) -> TriggerState:
        """The trigger's state, created or brought in line with the flow as it is now."""
        flow = loaded.flow
        disabled = trigger.disabled or flow.disabled
        sig = signature(trigger)
        schedule = trigger.schedule() if isinstance(trigger, ScheduleTrigger) else None
        first = ts(schedule.next_after(now)) if schedule else None
        if state is None or state.signature != sig:
            state = TriggerState(
                namespace=flow.namespace,
                flow_id=flow.id,
                trigger_id=trigger.id,
                type=trigger.type,
                cron=trigger.cron if isinstance(trigger, ScheduleTrigger) else None,
                signature=sig,
                last_date=None,
                next_date=first,
                last_execution_id=None,
                disabled=disabled,
                stopped=None,
                since=ts(now),
            )
            save_state(store, state)
        elif state.disabled != disabled:
            # enabled again: from now on, what passed meanwhile is not replayed
            state = replace(state, disabled=disabled, next_date=first or state.next_date)
            save_state(store, state)
        return state

    def _evaluate(
        self,
        store: Store,
        state: TriggerState,
        trigger: ScheduleTrigger,
        now: datetime,
        catching_up: bool,
    ) -> list[Execution]:
        if state.disabled or state.stopped or state.next_date is None:
            return []
        cron = trigger.schedule()
        plan = plan_ticks(
            cron,
            parse_ts(state.next_date),
            now,
            catching_up=catching_up,
            recover=trigger.recoverMissedSchedules or DEFAULT_RECOVERY,
            late_maximum=trigger.lateMaximumDelay,
        )
        if plan is None:
            return []
        claimed = claim_tick(store, state, ts(plan.last), ts(plan.next))
        if claimed is None or claimed.switched_off:  # off through the API: the tick passes
            return []
        if plan.run and not catching_up and self._busy(store, claimed, trigger):
            log.info(
                "tick skipped: the trigger's last execution has not ended (allowConcurrent)",
                flow=f"{state.namespace}.{state.flow_id}",
                trigger_id=state.trigger_id,
                tick=iso(plan.last),
            )
            return []
        run = plan.run if catching_up or trigger.allowConcurrent else plan.run[-1:]
        started = []
        for tick in run:
            execution = self._submit(claimed, trigger, cron, tick)
            if execution is not None:
                claimed = set_last_execution(store, claimed, execution.id)
                started.append(execution)
        return started

    def _backfill(
        self, store: Store, state: TriggerState, trigger: ScheduleTrigger, loaded: LoadedFlow
    ) -> list[Execution]:
        """Submit the backfill's next ticks, oldest first, while the flow has room (see
        ``server/backfills.py``)."""
        started: list[Execution] = []
        text = state.backfill
        concurrency = loaded.flow.concurrency
        room = concurrency.limit if concurrency is not None else max(1, self.queue.workers)
        while text is not None:
            backfill = loads(text)
            if backfill is None or backfill.paused or backfill.finished:
                break
            if active(store, state.namespace, state.flow_id) >= room:
                break
            assert backfill.currentDate is not None
            tick = backfill.currentDate
            moved = next_tick(backfill, trigger.schedule()).dumps()
            if not set_backfill(store, state.key, moved, expected=text):
                break  # paused, deleted or replaced meanwhile: the next pass sees it
            text = moved
            execution = self._submit(state, trigger, trigger.schedule(), tick, backfill_of=backfill)
            if execution is not None:
                started.append(execution)
        return started

    def _busy(self, store: Store, state: TriggerState, trigger: ScheduleTrigger) -> bool:
        if trigger.allowConcurrent or state.last_execution_id is None:
            return False
        try:
            return not store.execution_state(state.last_execution_id).terminal
        except ExecutorError:  # deleted meanwhile
            return False

    def _submit(
        self,
        state: TriggerState,
        trigger: ScheduleTrigger,
        cron: Cron,
        tick: datetime,
        backfill_of: Backfill | None = None,
    ) -> Execution | None:
        variables = schedule_variables(cron, tick)
        where = f"flow {state.namespace}.{state.flow_id} trigger '{trigger.id}'"
        labels = trigger.label_map()
        try:
            inputs = trigger_inputs(trigger, variables, where)
            if backfill_of is not None:  # Kestra's backfill: its inputs and labels, and a mark
                inputs.update(text_values(backfill_of.inputs))
                labels.update({**backfill_of.labels, BACKFILL_LABEL: "true"})
            execution = self.queue.submit(
                Submission(
                    namespace=state.namespace,
                    flow_id=state.flow_id,
                    inputs=inputs,
                    labels=labels,
                    trigger=trigger_object(trigger, variables),
                )
            )
        except ExecutorError as exc:
            log.error(
                "scheduled execution not started", where=where, tick=iso(tick), error=str(exc)
            )
            return None
        log.debug("scheduled execution", where=where, tick=iso(tick), execution_id=execution.id)
        return execution
