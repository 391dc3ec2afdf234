"""Flow triggers in server mode: when an execution ends, start the flows that wait for it.

Where the server learns that an execution ended (a slot's run, a worker's records, a run
declared lost, an execution refused by its flow's concurrency), the end is noted in the store
(``store/flow_events.py``). Each pass of the scheduler thread takes the notes, oldest first, and
for every Flow trigger of every stored flow (enabled, not switched off) asks
``flow_match.evaluate``: a trigger whose ``states``, ``conditions`` and ``preconditions`` the
execution meets starts its flow through the queue, like any other execution, with Kestra's
``trigger`` variables (``trigger.executionId``, ``namespace``, ``flowId``, ``state``,
``outputs``...). Preconditions met by different executions are kept (``trigger_marks``) until all
of them are met in the trigger's time window. A fire is claimed before it is submitted: an end
never starts a flow twice, even across a restart; an end told twice is looked at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from executor.errors import ExecutorError, NotFoundError
from executor.flow.flow_match import Upstream, evaluate, fires_alone, window_of
from executor.flow.flow_trigger import FlowTrigger
from executor.flow.loaded import LoadedFlow
from executor.model import Execution
from executor.server.queue import ExecutionQueue, Submission
from executor.server.trigger_values import trigger_inputs, trigger_object
from executor.store.db import Store
from executor.store.flow_events import (
    Mark,
    claim_fire,
    clear_marks,
    done,
    fired_execution,
    forget_looked,
    mark,
    marks,
    pending,
)
from executor.store.records import parse_ts, ts
from executor.store.triggers import TriggerState, set_last_execution

log = structlog.get_logger(__name__)

# how long an end noted may wait for its execution's last state to be written (a recorder
# retries a store that is away for about this long)
RECORD_WAIT = timedelta(minutes=10)
KEEP_LOOKED = timedelta(days=1)  # ends looked at are remembered this long (told twice: once)


@dataclass(frozen=True)
class Watching:
    """One Flow trigger of a stored flow, and its state row."""

    loaded: LoadedFlow
    trigger: FlowTrigger
    state: TriggerState

    @property
    def key(self) -> tuple[str, str, str]:
        return self.state.key

    @property
    def where(self) -> str:
        return f"flow {self.key[0]}.{self.key[1]} trigger '{self.key[2]}'"

    @property
    def on(self) -> bool:
        state = self.state
        return not (state.disabled or state.switched_off or state.stopped)


class FlowTriggers:
    """Looks at the executions that ended and starts what waits for them (see the module).

    Args:
        queue: where executions are submitted.
    """

    def __init__(self, queue: ExecutionQueue) -> None:
        self.queue = queue
        self._forgotten: datetime | None = None

    def run_once(
        self, store: Store, watching: Sequence[Watching], now: datetime
    ) -> list[Execution]:
        """Look at every noted end; return the executions started."""
        started: list[Execution] = []
        if self._forgotten is None or now - self._forgotten > KEEP_LOOKED / 24:
            forget_looked(store, ts(now - KEEP_LOOKED))
            self._forgotten = now
        # the rest, if more than a batch ended since the last pass, the next pass takes
        for execution_id, noted in pending(store):
            found = self._ended(store, execution_id, watching, now, parse_ts(noted))
            if found is None:  # its end is not written yet: a later pass looks at it
                continue
            started += found
            done(store, execution_id)
        return started

    def _ended(
        self,
        store: Store,
        execution_id: str,
        watching: Sequence[Watching],
        now: datetime,
        noted: datetime,
    ) -> list[Execution] | None:
        """What the end of ``execution_id`` starts; ``None`` while the store still shows it
        running: the end is noted as the run ends, and the recorder's thread may write the
        last state a moment later (the conditions must see the state it ended in)."""
        active = [w for w in watching if w.on]
        if not active:
            return []
        try:
            execution = store.get_execution(execution_id).execution
        except NotFoundError:  # deleted meanwhile
            return []
        if not execution.state.current.terminal:
            if now - noted < RECORD_WAIT:
                return None
            log.warning(  # its last record was lost (a store that stayed away)
                "flow triggers gave up on an end never recorded", execution_id=execution_id
            )
            return []
        upstream = Upstream(
            execution_id=execution.id,
            namespace=execution.namespace,
            flow_id=execution.flow_id,
            state=execution.state.current.value,
            labels=dict(execution.labels),
            outputs=dict(execution.outputs),
            revision=execution.flow_revision,
        )
        started = []
        for one in active:
            if self._fires(store, one, upstream, now):
                submitted = self._submit(store, one, upstream)
                if submitted is not None:
                    started.append(submitted)
        return started

    def _fires(self, store: Store, one: Watching, upstream: Upstream, now: datetime) -> bool:
        try:
            met = evaluate(one.trigger, upstream, one.where)
        except ExecutorError as exc:  # an expression that does not render: said, not fired
            log.error("flow trigger not evaluated", where=one.where, error=str(exc))
            return False
        if met is None:
            return False
        if fires_alone(one.trigger, met):
            return True
        pre = one.trigger.preconditions
        if not met or pre is None:
            return False
        window = window_of(pre.timeWindow, now)
        if window is None:  # outside its daily window: what ends now does not count
            return False
        mark(store, one.key, [Mark(key, upstream.execution_id, ts(now)) for key in met])
        current = {m.condition for m in marks(store, one.key) if _within(m, window)}
        if not current >= set(pre.keys()):
            return False
        if pre.resetOnSuccess:
            clear_marks(store, one.key)
        return True

    def _submit(self, store: Store, one: Watching, upstream: Upstream) -> Execution | None:
        fired = ts(datetime.now(UTC))
        if not claim_fire(store, upstream.execution_id, one.key, fired):
            return None  # started already (a pass before a restart)
        variables = upstream.variables()
        try:
            execution = self.queue.submit(
                Submission(
                    namespace=one.key[0],
                    flow_id=one.key[1],
                    inputs=trigger_inputs(one.trigger, variables, one.where),
                    labels=one.trigger.label_map(),
                    trigger=trigger_object(one.trigger, variables),
                )
            )
        except ExecutorError as exc:
            log.error(
                "flow trigger did not start its flow",
                where=one.where,
                upstream=upstream.execution_id,
                error=str(exc),
            )
            return None
        fired_execution(store, upstream.execution_id, one.key, execution.id)
        set_last_execution(store, one.state, execution.id, fired)
        log.info(
            "flow trigger started its flow",
            where=one.where,
            upstream=upstream.execution_id,
            execution_id=execution.id,
        )
        return execution


def _within(found: Mark, window: tuple[datetime, datetime]) -> bool:
    return window[0] <= parse_ts(found.date) < window[1]
