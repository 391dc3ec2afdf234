"""Flow triggers: which ended executions start a flow, time windows, loops found."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from executor.errors import FlowError
from executor.flow.flow_match import Upstream, evaluate, find_cycle, fires_alone, window_of
from executor.flow.flow_trigger import FlowTrigger, TimeWindow
from executor.flow.loader import load_flow_text


def trigger(**given: object) -> FlowTrigger:
    return FlowTrigger.model_validate(
        {"id": "t", "type": "io.kestra.plugin.core.trigger.Flow", **given}
    )


def up(state: str = "SUCCESS", namespace: str = "company.team", flow: str = "a", **more: object):
    return Upstream("e1", namespace, flow, state, **more)  # type: ignore[arg-type]


def test_conditions_of_every_kind() -> None:
    status = trigger(
        conditions=[{"type": "io.kestra.plugin.core.condition.ExecutionStatus", "in": ["SUCCESS"]}]
    )
    assert evaluate(status, up(), "w") == set()
    assert evaluate(status, up("FAILED"), "w") is None
    not_in = trigger(
        conditions=[
            {
                "type": "io.kestra.plugin.core.condition.ExecutionStatusCondition",
                "notIn": ["FAILED"],
            }
        ]
    )
    assert evaluate(not_in, up("WARNING"), "w") == set()
    assert evaluate(not_in, up("FAILED"), "w") is None
    prefix = trigger(
        conditions=[
            {
                "type": "io.kestra.plugin.core.condition.ExecutionNamespace",
                "namespace": "company",
                "comparison": "PREFIX",
            }
        ]
    )
    assert evaluate(prefix, up(), "w") == set()
    assert evaluate(prefix, up(namespace="other.company"), "w") is None
    suffix = trigger(
        conditions=[
            {
                "type": "io.kestra.plugin.core.condition.ExecutionNamespace",
                "namespace": "team",
                "comparison": "SUFFIX",
            }
        ]
    )
    assert evaluate(suffix, up(), "w") == set()
    labels = trigger(
        conditions=[
            {"type": "io.kestra.plugin.core.condition.ExecutionLabels", "labels": {"env": "prod"}}
        ]
    )
    assert evaluate(labels, up(labels={"env": "prod", "x": "y"}), "w") == set()
    assert evaluate(labels, up(labels={"env": "dev"}), "w") is None
    outputs = trigger(
        conditions=[
            {
                "type": "io.kestra.plugin.core.condition.ExecutionOutputs",
                "expression": "{{ trigger.outputs.rows > 10 }}",
            }
        ]
    )
    assert evaluate(outputs, up(outputs={"rows": 11}), "w") == set()
    assert evaluate(outputs, up(outputs={"rows": 3}), "w") is None


def test_default_states_are_the_ends_and_paused() -> None:
    assert evaluate(trigger(), up("RUNNING"), "w") is None
    assert evaluate(trigger(), up("KILLED"), "w") == set()


def test_an_unknown_condition_is_refused_with_the_supported_ones() -> None:
    with pytest.raises(ValueError, match="DayWeek' is not supported on a Flow trigger"):
        trigger(conditions=[{"type": "io.kestra.plugin.core.condition.DayWeek"}])


def test_preconditions_flows_and_where() -> None:
    pre = trigger(
        preconditions={
            "flows": [{"namespace": "company.team", "flowId": "a", "states": ["SUCCESS"]}],
            "where": [
                {
                    "id": "w",
                    "operand": "OR",
                    "filters": [
                        {"field": "FLOW_ID", "type": "IN", "values": ["a", "b"]},
                        {"field": "STATE", "type": "EQUAL_TO", "value": "FAILED"},
                    ],
                }
            ],
        }
    )
    met = evaluate(pre, up(), "w")
    assert met == {"flow:0", "where:w"} and fires_alone(pre, met)
    met = evaluate(pre, up(flow="b"), "w")
    assert met == {"where:w"} and not fires_alone(pre, met)
    assert evaluate(pre, up(flow="c"), "w") == set()


def test_time_windows() -> None:
    now = datetime(2024, 5, 2, 15, 30, tzinfo=UTC)
    day = window_of(TimeWindow(), now)
    assert day == (datetime(2024, 5, 2, tzinfo=UTC), datetime(2024, 5, 3, tzinfo=UTC))
    sliding = window_of(TimeWindow(type="SLIDING_WINDOW", window=timedelta(hours=1)), now)
    assert sliding is not None and sliding[0] == now - timedelta(hours=1)
    deadline = TimeWindow.model_validate({"type": "DAILY_TIME_DEADLINE", "deadline": "09:00:00"})
    assert window_of(deadline, now) is None
    assert window_of(deadline, now.replace(hour=8)) is not None
    hours = TimeWindow(type="DURATION_WINDOW", window=timedelta(hours=6))
    assert window_of(hours, now) == (now.replace(hour=12, minute=0), now.replace(hour=18, minute=0))


FLOW = """\
id: {id}
namespace: loops
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: hi
triggers:
  - id: after
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: loops
        flowId: {after}
{more}"""


def flow(flow_id: str, after: str, more: str = ""):  # type: ignore[no-untyped-def]
    return load_flow_text(FLOW.format(id=flow_id, after=after, more=more), Path(f"{flow_id}.yaml"))


def test_a_loop_across_flows_is_found_and_a_condition_breaks_it() -> None:
    a, b, c = flow("a", "c"), flow("b", "a"), flow("c", "b")
    cycle = find_cycle([a.flow, b.flow, c.flow])
    assert cycle is not None and len(cycle) == 3
    only_failures = (
        "      - type: io.kestra.plugin.core.condition.ExecutionStatus\n        in: [FAILED]\n"
    )
    c = flow("c", "b", only_failures)
    assert find_cycle([a.flow, b.flow, c.flow]) is None


def test_validation_refuses_a_flow_that_triggers_itself() -> None:
    with pytest.raises(FlowError, match=r"a\.yaml:8:\d+: Flow triggers make a loop: loops\.a"):
        flow("a", "a")


def test_an_unsupported_condition_is_located_in_the_flow() -> None:
    more = "      - type: io.kestra.plugin.core.condition.DayWeek\n        dayOfWeek: MONDAY\n"
    with pytest.raises(
        FlowError,
        match=r"b\.yaml:14:\d+: .*'io\.kestra\.plugin\.core\.condition\.DayWeek' is not supported",
    ):
        flow("b", "a", more)
