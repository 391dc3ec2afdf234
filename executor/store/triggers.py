"""Trigger state of server mode: per flow and trigger, the last tick dealt with and the next.

The scheduler (``server/schedules.py``) keeps one row per Schedule, Webhook or Flow trigger of
the stored flows. A tick is claimed (``claim_tick``: the row moves from the tick before to this one,
compare-and-set) *before* its execution is submitted, so a tick never runs twice, even across a
crash or a restart; a crash between the claim and the submit loses that one tick instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from executor.store.db import Store
from executor.store.records import ts

_COLUMNS = (
    "namespace, flow_id, trigger_id, type, cron, signature, last_date, next_date,"
    " last_execution_id, disabled, stopped, since, backfill, switched_off"
)
_KEY = "namespace = ? AND flow_id = ? AND trigger_id = ?"


@dataclass(frozen=True)
class TriggerState:
    """One trigger's row.

    Attributes:
        cron: the cron expression as written (``None`` for a webhook).
        signature: what makes a schedule the same schedule (cron, seconds, zone); a change
            starts it afresh from now, as Kestra does for a new trigger id.
        last_date: the last tick dealt with (run or skipped), ISO-8601 UTC.
        next_date: the next tick due, ISO-8601 UTC.
        disabled: disabled in the flow (the trigger's or the flow's ``disabled``).
        stopped: why ``stopAfter`` stopped it (an execution ended in a listed state).
        since: when this state began; ``stopAfter`` looks at executions since then.
        backfill: a backfill running or paused (JSON, ``server/backfills.py``).
        switched_off: disabled through the API or the CLI, whatever the flow says.
    """

    namespace: str
    flow_id: str
    trigger_id: str
    type: str
    cron: str | None
    signature: str
    last_date: str | None
    next_date: str | None
    last_execution_id: str | None
    disabled: bool
    stopped: str | None
    since: str
    backfill: str | None = None
    switched_off: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.flow_id, self.trigger_id)


def _state(row: Sequence[object]) -> TriggerState:
    values = list(row)
    values[9] = bool(values[9])
    values[13] = bool(values[13])
    return TriggerState(*values)  # type: ignore[arg-type]


def list_states(store: Store) -> list[TriggerState]:
    """Every trigger's state, by namespace, flow and trigger id."""
    rows = store.read(f"SELECT {_COLUMNS} FROM triggers ORDER BY namespace, flow_id, trigger_id")
    return [_state(row) for row in rows]


def get_state(store: Store, namespace: str, flow_id: str, trigger_id: str) -> TriggerState | None:
    rows = store.read(
        f"SELECT {_COLUMNS} FROM triggers WHERE {_KEY}", (namespace, flow_id, trigger_id)
    )
    return _state(rows[0]) if rows else None


def save_state(store: Store, state: TriggerState) -> None:
    """Write a trigger's whole row (insert or replace)."""
    with store.transaction() as conn:
        conn.execute(
            f"INSERT INTO triggers ({_COLUMNS}) VALUES ({', '.join('?' * 14)})"
            " ON CONFLICT (namespace, flow_id, trigger_id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS.split(", ")[3:]),
            (
                state.namespace,
                state.flow_id,
                state.trigger_id,
                state.type,
                state.cron,
                state.signature,
                state.last_date,
                state.next_date,
                state.last_execution_id,
                int(state.disabled),
                state.stopped,
                state.since,
                state.backfill,
                int(state.switched_off),
            ),
        )


def delete_states(store: Store, keys: Sequence[tuple[str, str, str]]) -> None:
    """Forget triggers whose flow or trigger is gone."""
    if not keys:
        return
    with store.transaction() as conn:
        conn.executemany(f"DELETE FROM triggers WHERE {_KEY}", keys)


def claim_tick(
    store: Store, state: TriggerState, last_date: str, next_date: str
) -> TriggerState | None:
    """Move the trigger from ``state.last_date`` to ``last_date`` (and ``next_date``).

    Returns:
        The new state, or ``None`` when another scheduler moved it first (the tick is theirs).
    """
    with store.transaction() as conn:
        moved = conn.execute(
            f"UPDATE triggers SET last_date = ?, next_date = ? WHERE {_KEY}"
            f" AND last_date {conn.is_null_safe_equal} ?",
            (last_date, next_date, *state.key, state.last_date),
        )
        if moved.rowcount != 1:
            return None
    return replace(state, last_date=last_date, next_date=next_date)


def set_last_execution(
    store: Store, state: TriggerState, execution_id: str, date: str | None = None
) -> TriggerState:
    """The execution the trigger started last (and, for a Flow trigger, when)."""
    with store.transaction() as conn:
        if date is None:
            conn.execute(
                f"UPDATE triggers SET last_execution_id = ? WHERE {_KEY}",
                (execution_id, *state.key),
            )
        else:
            conn.execute(
                f"UPDATE triggers SET last_execution_id = ?, last_date = ? WHERE {_KEY}",
                (execution_id, date, *state.key),
            )
    return replace(state, last_execution_id=execution_id, last_date=date or state.last_date)


def stop(store: Store, state: TriggerState, reason: str) -> TriggerState:
    """Stop a trigger for good (``stopAfter``); saving its flow again does not restart it."""
    with store.transaction() as conn:
        conn.execute(f"UPDATE triggers SET stopped = ? WHERE {_KEY}", (reason, *state.key))
    return replace(state, stopped=reason)


def ended_in(store: Store, state: TriggerState, states: Sequence[str]) -> tuple[str, str] | None:
    """An execution this trigger started since ``state.since`` that ended in one of ``states``.

    Returns:
        ``(execution id, state)`` of the first found, or ``None``.
    """
    if not states:
        return None
    marks = ", ".join("?" for _ in states)
    trigger_id = store.dialect.json_path("extra", "trigger", "id")
    rows = store.read(
        "SELECT id, state FROM executions WHERE start_date >= ? AND namespace = ?"
        f" AND flow_id = ? AND state IN ({marks})"
        f" AND {trigger_id} = ? ORDER BY start_date LIMIT 1",
        (state.since, state.namespace, state.flow_id, *states, state.trigger_id),
    )
    return (str(rows[0][0]), str(rows[0][1])) if rows else None


def now_ts() -> str:
    return ts(datetime.now(UTC))


def switch(store: Store, key: tuple[str, str, str], off: bool) -> bool:
    """Disable (``off``) or enable a trigger through the API; ``False``: no such trigger."""
    with store.transaction() as conn:
        moved = conn.execute(f"UPDATE triggers SET switched_off = ? WHERE {_KEY}", (int(off), *key))
        return bool(moved.rowcount == 1)


def unlock(store: Store, key: tuple[str, str, str]) -> bool:
    """Forget the execution a trigger waits for (``allowConcurrent: false``)."""
    with store.transaction() as conn:
        moved = conn.execute(f"UPDATE triggers SET last_execution_id = NULL WHERE {_KEY}", key)
        return bool(moved.rowcount == 1)


def set_backfill(
    store: Store,
    key: tuple[str, str, str],
    backfill: str | None,
    expected: str | bool | None = True,
) -> bool:
    """Set a trigger's backfill; with ``expected`` (not ``True``), only if it still is that
    (the scheduler moves a backfill on while the API may pause or delete it).

    Returns:
        Whether it was set.
    """
    with store.transaction() as conn:
        if expected is True:
            moved = conn.execute(f"UPDATE triggers SET backfill = ? WHERE {_KEY}", (backfill, *key))
        else:
            moved = conn.execute(
                f"UPDATE triggers SET backfill = ? WHERE {_KEY}"
                f" AND backfill {conn.is_null_safe_equal} ?",
                (backfill, *key, expected),
            )
        return bool(moved.rowcount == 1)
