"""Flow triggers and concurrency in the flow model: Kestra's properties accepted, typos located."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from executor.errors import FlowError
from executor.flow.flow_trigger import FlowTrigger
from executor.flow.loader import load_flow_text
from executor.flow.triggers import OtherTrigger, ScheduleTrigger, WebhookTrigger

HEAD = """\
id: f
namespace: company.team
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: hi
"""

EVERY_PROPERTY = (
    HEAD
    + """\
triggers:
  - id: nightly
    type: io.kestra.plugin.core.trigger.Schedule
    description: every night
    cron: "0 2 * * *"
    withSeconds: false
    timezone: Europe/Paris
    inputs: {day: "{{ trigger.date }}"}
    lateMaximumDelay: PT1H
    backfill: {start: "2024-01-01T00:00:00Z"}
    recoverMissedSchedules: LAST
    conditions:
      - type: io.kestra.plugin.core.condition.Weekend
    scheduleConditions: []
    disabled: false
    workerGroup: {key: gpu}
    logLevel: INFO
    minLogLevel: INFO
    labels: {team: data}
    stopAfter: [FAILED, KILLED]
    logToFile: false
    failOnTriggerError: false
    allowConcurrent: false
    when: "{{ true }}"
  - id: legacy
    type: io.kestra.core.models.triggers.types.Schedule
    cron: "@daily"
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: s3cret
    inputs: {a: b}
    wait: true
    returnOutputs: true
    responseContentType: application/json
    responseCode: 201
    labels: [{key: source, value: webhook}]
  - id: upstream
    type: io.kestra.plugin.core.trigger.Flow
    preconditions:
      id: up
      flows: [{namespace: company.team, flowId: a, states: [SUCCESS]}]
  - id: topic
    type: io.kestra.plugin.kafka.Trigger
    topic: events
concurrency:
  limit: 2
  behavior: FAIL
"""
)


def load(text: str) -> object:
    return load_flow_text(text, Path("flow.yaml"))


def test_every_kestra_trigger_property_is_accepted() -> None:
    """Schedule, legacy Schedule, Webhook, Flow and a plugin's trigger load with all they say."""
    flow = load_flow_text(EVERY_PROPERTY, Path("flow.yaml")).flow
    assert flow.triggers is not None
    nightly, legacy, hook, upstream, topic = flow.triggers
    assert isinstance(nightly, ScheduleTrigger) and isinstance(legacy, ScheduleTrigger)
    assert nightly.lateMaximumDelay == timedelta(hours=1)
    assert nightly.label_map() == {"team": "data"}
    assert isinstance(hook, WebhookTrigger) and hook.label_map() == {"source": "webhook"}
    assert isinstance(upstream, FlowTrigger) and isinstance(topic, OtherTrigger)
    assert upstream.preconditions is not None and upstream.preconditions.keys() == ["flow:0"]
    assert flow.concurrency is not None and flow.concurrency.behavior == "FAIL"


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        (
            "  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '@daily'\n"
            "    timezon: UTC\n",
            "flow.yaml:11:5: triggers[0].timezon (trigger 's'): unknown property 'timezon'",
        ),
        (
            "  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n"
            "    cron: '* * * * * *'\n",
            "triggers[0] (trigger 's'): invalid cron expression '* * * * * *': 5 fields expected",
        ),
        (
            "  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '@daily'\n"
            "    stopAfter: [FAIL]\n",
            "triggers[0].stopAfter[0] (trigger 's')",
        ),
        (
            "  - id: w\n    type: io.kestra.plugin.core.trigger.Webhook\n",
            "triggers[0].key (trigger 'w'): missing required property 'key'",
        ),
        (
            "  - id: s\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: a\n"
            "  - id: s\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: b\n",
            "trigger id 's' is used twice",
        ),
    ],
)
def test_bad_triggers_are_located(trigger: str, message: str) -> None:
    """A typo, a bad cron, an unknown state, a missing key or a duplicate id: located errors."""
    with pytest.raises(FlowError) as caught:
        load(HEAD + "triggers:\n" + trigger)
    assert message in str(caught.value)


def test_concurrency_behavior_is_checked() -> None:
    """concurrency.behavior is QUEUE, CANCEL or FAIL, and limit at least 1."""
    with pytest.raises(FlowError, match=r"concurrency\.behavior"):
        load(HEAD + "concurrency:\n  limit: 1\n  behavior: DROP\n")
    with pytest.raises(FlowError, match=r"concurrency\.limit"):
        load(HEAD + "concurrency:\n  limit: 0\n")
