"""The triggers as the API, the UI and the CLI show them: state, definition, why one is off.

Kestra's shape of one trigger is ``{"abstractTrigger": <the trigger as written>,
"triggerContext": {namespace, flowId, triggerId, date, nextExecutionDate, backfill, disabled,
executionId, stopAfter...}}``; :func:`kestra_json` makes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from executor.errors import FlowError
from executor.flow.loaded import LoadedFlow
from executor.model import iso
from executor.server.backfills import loads
from executor.store.db import Store
from executor.store.flows import StoredFlow, get_flow
from executor.store.records import parse_ts
from executor.store.triggers import TriggerState, list_states


@dataclass(frozen=True)
class TriggerRow:
    """One trigger: its state row and, when its flow loads, its definition."""

    state: TriggerState
    definition: dict[str, Any] | None
    flow_disabled: bool
    trigger_disabled: bool

    @property
    def kind(self) -> str:
        return self.state.type.rsplit(".", 1)[-1]

    @property
    def off(self) -> bool:
        return bool(self.why_off)

    @property
    def why_off(self) -> str | None:
        """Why the trigger starts nothing now (``None`` when it is on)."""
        if self.flow_disabled:
            return "the flow is disabled"
        if self.trigger_disabled:
            return "disabled in the flow (disabled: true)"
        if self.state.switched_off:
            return "disabled through the API or the CLI"
        if self.state.stopped:
            return self.state.stopped
        return None

    @property
    def when(self) -> str:
        """When it starts its flow, in a few words: the cron, or the flows it waits for."""
        state, definition = self.state, self.definition or {}
        if state.cron:
            return state.cron
        if self.kind == "Webhook":
            return "on a call of its URL"
        if self.kind != "Flow":
            return ""
        after = [
            f"{c.get('namespace')}.{c.get('flowId')}"
            for c in definition.get("conditions") or ()
            if str(c.get("type", "")).rsplit(".", 1)[-1].startswith("ExecutionFlow")
        ]
        pre = definition.get("preconditions") or {}
        for flow in pre.get("flows") or ():
            name = ".".join(p for p in (flow.get("namespace"), flow.get("flowId")) if p)
            states = flow.get("states")
            after.append(f"{name} {'/'.join(states)}" if states else name)
        if pre.get("where"):
            after.append("executions matching 'where'")
        return "after " + (" and ".join(after) if after else "any execution ends")

    @property
    def next_date(self) -> str | None:
        return None if self.off else _iso(self.state.next_date)

    @property
    def last_date(self) -> str | None:
        return _iso(self.state.last_date)

    def backfill(self) -> dict[str, Any] | None:
        found = loads(self.state.backfill)
        return found.to_json() if found else None


def _iso(stamp: str | None) -> str | None:
    return iso(parse_ts(stamp)) if stamp else None


def trigger_rows(
    store: Store,
    load: Callable[[StoredFlow], LoadedFlow],
    *,
    namespace: str | None = None,
    flow_id: str | None = None,
    q: str | None = None,
) -> list[TriggerRow]:
    """The triggers the scheduler keeps, by namespace, flow and id (filtered as asked).

    ``namespace`` matches the namespace and those below it; ``q`` any part of the flow or
    trigger id.
    """
    rows = []
    flows: dict[tuple[str, str], LoadedFlow | None] = {}
    for state in list_states(store):
        if namespace and not (
            state.namespace == namespace or state.namespace.startswith(namespace + ".")
        ):
            continue
        if flow_id and state.flow_id != flow_id:
            continue
        text = f"{state.namespace}.{state.flow_id} {state.trigger_id}".lower()
        if q and q.lower() not in text:
            continue
        key = (state.namespace, state.flow_id)
        if key not in flows:
            flows[key] = _loaded(store, load, *key)
        loaded = flows[key]
        definition, flow_disabled, trigger_disabled = None, state.disabled, False
        if loaded is not None:
            flow_disabled = loaded.flow.disabled
            for trigger in loaded.flow.triggers or ():
                if trigger.id == state.trigger_id:
                    definition = trigger.model_dump(mode="json", by_alias=True, exclude_unset=True)
                    trigger_disabled = trigger.disabled
        rows.append(TriggerRow(state, definition, flow_disabled, trigger_disabled))
    return rows


def _loaded(
    store: Store, load: Callable[[StoredFlow], LoadedFlow], namespace: str, flow_id: str
) -> LoadedFlow | None:
    stored = get_flow(store, namespace, flow_id)
    if stored is None:
        return None
    try:
        return load(stored)
    except FlowError:
        return None


def kestra_json(row: TriggerRow) -> dict[str, Any]:
    """One trigger in Kestra's shape (plus ``type``, ``why``: what our UI and CLI show)."""
    state = row.state
    return {
        "abstractTrigger": row.definition,
        "triggerContext": {
            "tenantId": "main",
            "namespace": state.namespace,
            "flowId": state.flow_id,
            "triggerId": state.trigger_id,
            "type": state.type,
            "cron": state.cron,
            "when": row.when,
            "date": row.last_date,
            "nextExecutionDate": row.next_date,
            "executionId": state.last_execution_id,
            "backfill": row.backfill(),
            "disabled": row.off,
            "stopped": state.stopped,
            "why": row.why_off,
        },
    }
