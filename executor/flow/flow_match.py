"""Does an ended execution start a flow through its Flow trigger? And may flows start each other
forever?

``evaluate`` answers the first for one trigger and one upstream execution: ``None`` when the
trigger's ``states`` or one of its ``conditions`` says no, else the preconditions the execution
meets (all of them: the trigger fires now; some: the server keeps them until the others come in
the time window, :func:`window_of`). ``find_cycle`` answers the second over a set of flows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from executor.flow.flow_trigger import (
    Condition,
    ExecutionFlow,
    ExecutionLabels,
    ExecutionNamespace,
    ExecutionOutputs,
    ExecutionStatus,
    Expression,
    Filter,
    FlowTrigger,
    Preconditions,
    TimeWindow,
    UpstreamFlow,
    Where,
)
from executor.flow.model import Flow
from executor.flow.template import Renderer

DEFAULT_WINDOW = timedelta(days=1)  # Kestra's default time window


@dataclass(frozen=True)
class Upstream:
    """The execution that ended, as a Flow trigger sees it."""

    execution_id: str
    namespace: str
    flow_id: str
    state: str
    labels: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    revision: int | None = None

    def variables(self) -> dict[str, Any]:
        """``trigger`` in the downstream execution, as Kestra's Flow trigger output names it."""
        return {
            "executionId": self.execution_id,
            "namespace": self.namespace,
            "flowId": self.flow_id,
            "flowRevision": self.revision,
            "state": self.state,
            "outputs": self.outputs,
            "executionLabels": self.labels,
        }


class Unknown(Exception):
    """A condition that depends on what an execution produces: unknown before it runs."""


def evaluate(trigger: FlowTrigger, upstream: Upstream, where: str) -> set[str] | None:
    """The preconditions ``upstream`` meets, or ``None`` when the trigger ignores it.

    Raises:
        TemplateError: an expression of a condition or filter does not render.
    """
    if upstream.state not in trigger.watched_states():
        return None
    for condition in trigger.conditions or ():
        if not _condition(condition, upstream, where, static=False):
            return None
    if trigger.preconditions is None:
        return set()
    return _met(trigger.preconditions, upstream, where, static=False)


def fires_alone(trigger: FlowTrigger, met: set[str] | None) -> bool:
    """The trigger fires on this execution alone: it met every precondition (or there are
    none)."""
    if met is None:
        return False
    return trigger.preconditions is None or met >= set(trigger.preconditions.keys())


def _met(pre: Preconditions, upstream: Upstream, where: str, *, static: bool) -> set[str]:
    met = set()
    for number, flow in enumerate(pre.flows or ()):
        if _upstream_flow(flow, upstream):
            met.add(f"flow:{number}")
    for entry in pre.where or ():
        if _where(entry, upstream, where, static=static):
            met.add(f"where:{entry.id}")
    return met


def _condition(condition: Condition, upstream: Upstream, where: str, *, static: bool) -> bool:
    if isinstance(condition, ExecutionStatus):
        return (condition.in_ is None or upstream.state in condition.in_) and (
            upstream.state not in (condition.notIn or ())
        )
    if isinstance(condition, ExecutionFlow):
        return (condition.namespace, condition.flowId) == (upstream.namespace, upstream.flow_id)
    if isinstance(condition, ExecutionNamespace):
        comparison = condition.comparison or ("PREFIX" if condition.prefix else "EQUALS")
        if comparison == "PREFIX":
            return upstream.namespace.startswith(condition.namespace)
        if comparison == "SUFFIX":
            return upstream.namespace.endswith(condition.namespace)
        return upstream.namespace == condition.namespace
    if static:
        raise Unknown
    if isinstance(condition, ExecutionLabels):
        return _has_labels(upstream, condition.labels)
    if isinstance(condition, ExecutionOutputs):
        return _true(condition.expression, upstream, where)
    if isinstance(condition, Expression):
        return _true(condition.expression, upstream, where)
    raise AssertionError(f"unhandled condition {condition!r}")


def _has_labels(upstream: Upstream, labels: dict[str, Any] | list[dict[str, Any]]) -> bool:
    wanted = (
        {str(k): str(v) for k, v in labels.items()}
        if isinstance(labels, dict)
        else {str(item.get("key")): str(item.get("value")) for item in labels}
    )
    return all(upstream.labels.get(k) == v for k, v in wanted.items())


def _upstream_flow(flow: UpstreamFlow, upstream: Upstream) -> bool:
    return (
        flow.namespace in (None, upstream.namespace)
        and flow.flowId in (None, upstream.flow_id)
        and (not flow.states or upstream.state in flow.states)
        and (not flow.labels or _has_labels(upstream, flow.labels))
    )


def _where(entry: Where, upstream: Upstream, where: str, *, static: bool) -> bool:
    results = (_filter(f, upstream, where, static=static) for f in entry.filters)
    return all(results) if entry.operand == "AND" else any(results)


def _filter(test: Filter, upstream: Upstream, where: str, *, static: bool) -> bool:
    if test.field == "EXPRESSION":
        if static:
            raise Unknown
        value: Any = Renderer().render(
            str(test.value), {"trigger": upstream.variables()}, where=where
        )
        if test.type in ("IS_TRUE", "IS_FALSE"):
            return _truthy(value) == (test.type == "IS_TRUE")
    else:
        value = {
            "FLOW_ID": upstream.flow_id,
            "NAMESPACE": upstream.namespace,
            "STATE": upstream.state,
        }[test.field]
    return _compare(test, value)


def _compare(test: Filter, value: Any) -> bool:
    given = "" if test.value is None else str(test.value)
    text = "" if value is None else str(value)
    kind = test.type
    if kind == "EQUAL_TO":
        return text == given
    if kind == "NOT_EQUAL_TO":
        return text != given
    if kind in ("IN", "NOT_IN"):
        listed = [str(v) for v in (test.values or ([test.value] if test.value is not None else []))]
        return (text in listed) == (kind == "IN")
    if kind == "IS_NULL":
        return value in (None, "")
    if kind == "IS_NOT_NULL":
        return value not in (None, "")
    if kind in ("IS_TRUE", "IS_FALSE"):
        return _truthy(text) == (kind == "IS_TRUE")
    if kind in ("STARTS_WITH", "PREFIX"):
        return text.startswith(given)
    if kind == "ENDS_WITH":
        return text.endswith(given)
    if kind == "CONTAINS":
        return given in text
    if kind == "REGEX":
        return re.fullmatch(given, text) is not None
    raise AssertionError(f"unhandled filter type {kind}")


def _truthy(text: str) -> bool:
    """Kestra's truth of a rendered expression: anything but empty, false, 0 or null."""
    return text.strip().lower() not in ("", "false", "0", "-0", "null", "0.0")


def _true(expression: str, upstream: Upstream, where: str) -> bool:
    context = {"trigger": upstream.variables(), "outputs": upstream.outputs}
    return _truthy(Renderer().render(expression, context, where=where))


# ----- the time window of preconditions


def window_of(window: TimeWindow, now: datetime) -> tuple[datetime, datetime] | None:
    """The window ``now`` falls in: preconditions met in it count (``None``: none open now).

    ``DURATION_WINDOW``: consecutive windows of ``window`` (a day) from midnight UTC, moved by
    ``windowAdvance``; ``SLIDING_WINDOW``: the ``window`` before now; ``DAILY_TIME_DEADLINE``:
    from midnight to ``deadline``; ``DAILY_TIME_WINDOW``: from ``startTime`` to ``endTime``.
    """
    now = now.astimezone(UTC)
    midnight = datetime.combine(now.date(), time(), tzinfo=UTC)
    length = window.window or DEFAULT_WINDOW
    if window.type == "SLIDING_WINDOW":
        return now - length, now + timedelta(microseconds=1)
    if window.type == "DAILY_TIME_DEADLINE":
        assert window.deadline is not None
        end = datetime.combine(now.date(), window.deadline.replace(tzinfo=None), tzinfo=UTC)
        return (midnight, end) if now < end else None
    if window.type == "DAILY_TIME_WINDOW":
        assert window.startTime is not None and window.endTime is not None
        start = datetime.combine(now.date(), window.startTime.replace(tzinfo=None), tzinfo=UTC)
        end = datetime.combine(now.date(), window.endTime.replace(tzinfo=None), tzinfo=UTC)
        return (start, end) if start <= now < end else None
    origin = midnight + (window.windowAdvance or timedelta())
    if origin > now:
        origin -= timedelta(days=1)
    count = (now - origin) // length
    start = origin + count * length
    return start, start + length


# ----- cycles


@dataclass(frozen=True)
class Edge:
    """``upstream`` ending starts ``downstream`` through its trigger ``trigger_id``."""

    upstream: tuple[str, str]
    downstream: tuple[str, str]
    trigger_id: str


def certain_edges(flows: Sequence[Flow]) -> list[Edge]:
    """The pairs of flows where the first's success starts the second whatever it produced.

    A trigger whose conditions look at labels, outputs or an expression, or that waits for
    several upstream executions, or that does not start on a success, may break a loop: it is
    not a certain edge.
    """
    edges = []
    for downstream in flows:
        if downstream.disabled:
            continue
        for trigger in downstream.triggers or ():
            if not isinstance(trigger, FlowTrigger) or trigger.disabled:
                continue
            for upstream in flows:
                if _certain(trigger, upstream):
                    edges.append(
                        Edge(
                            (upstream.namespace, upstream.id),
                            (downstream.namespace, downstream.id),
                            trigger.id,
                        )
                    )
    return edges


def _certain(trigger: FlowTrigger, flow: Flow) -> bool:
    upstream = Upstream("", flow.namespace, flow.id, "SUCCESS")
    if "SUCCESS" not in trigger.watched_states():
        return False
    try:
        for condition in trigger.conditions or ():
            if not _condition(condition, upstream, "", static=True):
                return False
        if trigger.preconditions is None:
            return True
        met = _met(trigger.preconditions, upstream, "", static=True)
    except Unknown:
        return False
    return met >= set(trigger.preconditions.keys())


def find_cycle(flows: Iterable[Flow]) -> list[Edge] | None:
    """A loop of certain edges (see :func:`certain_edges`), in order, or ``None``."""
    edges = certain_edges(list(flows))
    after: dict[tuple[str, str], list[Edge]] = {}
    for edge in edges:
        after.setdefault(edge.upstream, []).append(edge)
    done: set[tuple[str, str]] = set()
    path: list[Edge] = []
    on_path: set[tuple[str, str]] = set()

    def visit(node: tuple[str, str]) -> list[Edge] | None:
        on_path.add(node)
        for edge in after.get(node, ()):
            path.append(edge)
            if edge.downstream in on_path:
                start = next(i for i, e in enumerate(path) if e.upstream == edge.downstream)
                return path[start:]
            if edge.downstream not in done:
                found = visit(edge.downstream)
                if found is not None:
                    return found
            path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for node in list(after):
        if node not in done:
            found = visit(node)
            if found is not None:
                return found
    return None


def describe_cycle(cycle: Sequence[Edge]) -> str:
    """``a.x -> (trigger t) b.y -> ...``: the loop, for an error message."""
    parts = [f"{cycle[0].upstream[0]}.{cycle[0].upstream[1]}"]
    for edge in cycle:
        parts.append(f"(trigger '{edge.trigger_id}') {edge.downstream[0]}.{edge.downstream[1]}")
    return (
        "Flow triggers make a loop: "
        + " -> ".join(parts)
        + ": each run would start the next forever; add a condition that breaks it"
        " (ExecutionStatus on another state, ExecutionLabels, ExecutionOutputs)"
    )
