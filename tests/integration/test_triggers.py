"""Triggers against one real server process: Flow triggers (conditions, preconditions, loops
refused) and the trigger API (backfill, enable/disable).

Every wait is a bounded poll for a condition (an execution in a state), never a sleep. Flows log
only (no containers), so the module is about the server, not the engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.helpers import until
from tests.integration.server_helpers import LiveServer, logs_of, push_flow, wait_state
from tests.integration.workers_helpers import Cluster, start_redis

pytestmark = pytest.mark.integration

TERMINAL = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED"}

UPSTREAM = """
id: upstream
namespace: chain.team
inputs:
  - id: fail
    type: BOOLEAN
    defaults: false
tasks:
  - id: word
    type: io.kestra.plugin.core.debug.Return
    format: "ready-{{ execution.id }}"
  - id: maybe_fail
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{ inputs.fail }}"
outputs:
  - id: word
    type: STRING
    value: "{{ outputs.word.value }}"
"""

# runs when upstream succeeds (Kestra's older conditions), with upstream's outputs as its input
ON_SUCCESS = """
id: on_success
namespace: chain.team
inputs:
  - id: got
    type: STRING
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "after {{ trigger.executionId }} {{ trigger.namespace }}.{{ trigger.flowId }}
      {{ trigger.state }} got {{ inputs.got }}"
triggers:
  - id: after_upstream
    type: io.kestra.plugin.core.trigger.Flow
    inputs:
      got: "{{ trigger.outputs.word }}"
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: chain.team
        flowId: upstream
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in: [SUCCESS]
"""

# runs when upstream fails (Kestra's newer preconditions with a where filter)
ON_FAILURE = """
id: on_failure
namespace: chain.team
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "failed {{ trigger.executionId }}"
triggers:
  - id: after_failure
    type: io.kestra.plugin.core.trigger.Flow
    preconditions:
      id: failures
      flows:
        - namespace: chain.team
          flowId: upstream
          states: [FAILED]
      where:
        - id: in_chain
          filters:
            - field: NAMESPACE
              type: STARTS_WITH
              value: chain
"""

OTHER = """
id: other
namespace: chain.team
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: other
"""

# runs once both upstream and other succeeded within an hour
BOTH = """
id: both
namespace: chain.team
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "both, last {{ trigger.flowId }}"
triggers:
  - id: after_both
    type: io.kestra.plugin.core.trigger.Flow
    preconditions:
      id: both
      flows:
        - {namespace: chain.team, flowId: upstream, states: [SUCCESS]}
        - {namespace: chain.team, flowId: other, states: [SUCCESS]}
      timeWindow:
        type: SLIDING_WINDOW
        window: PT1H
"""


DAILY = """
id: daily
namespace: chain.team
inputs:
  - id: note
    type: STRING
    defaults: scheduled
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "day {{ trigger.date }} {{ inputs.note }}"
triggers:
  - id: nightly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 0 * * *"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home: Path = tmp_path_factory.mktemp("triggers")
    with LiveServer(home) as live:
        with live.client() as client:
            for flow in (UPSTREAM, ON_SUCCESS, ON_FAILURE, OTHER, BOTH, DAILY):
                push_flow(client, flow)
        yield live


def run(client: httpx.Client, flow_id: str, **inputs: str) -> dict[str, Any]:
    answer = client.post(
        f"/api/v1/executions/chain.team/{flow_id}", files={k: (None, v) for k, v in inputs.items()}
    )
    assert answer.status_code == 200, answer.text
    return wait_state(client, answer.json()["id"], TERMINAL)


def started_by(client: httpx.Client, flow_id: str, upstream_id: str) -> list[dict[str, Any]]:
    """Executions of ``flow_id`` that a Flow trigger started after ``upstream_id`` ended."""
    found = client.get(
        "/api/v1/executions/search", params={"namespace": "chain.team", "flowId": flow_id}
    ).json()["results"]
    return [
        e
        for e in found
        if ((e.get("trigger") or {}).get("variables") or {}).get("executionId") == upstream_id
    ]


def wait_started(client: httpx.Client, flow_id: str, upstream_id: str) -> dict[str, Any]:
    one = until(
        lambda: started_by(client, flow_id, upstream_id),
        60,
        lambda: f"{flow_id} started after {upstream_id}",
    )
    return wait_state(client, one[0]["id"], TERMINAL)


def test_a_flow_runs_when_its_upstream_succeeds_and_not_when_it_fails(server: LiveServer) -> None:
    with server.client() as client:
        ok = run(client, "upstream")
        assert ok["state"]["current"] == "SUCCESS"
        after = wait_started(client, "on_success", ok["id"])
        assert after["state"]["current"] == "SUCCESS", after
        assert after["trigger"]["type"] == "io.kestra.plugin.core.trigger.Flow"
        assert after["inputs"] == {"got": f"ready-{ok['id']}"}
        (line,) = [m for m in logs_of(client, after["id"]) if m.startswith("after")]
        assert line.split() == [
            "after",
            ok["id"],
            "chain.team.upstream",
            "SUCCESS",
            "got",
            f"ready-{ok['id']}",
        ]

        failed = run(client, "upstream", fail="true")
        assert failed["state"]["current"] == "FAILED"
        # on_failure runs for it: the end was looked at, by every trigger in the same pass
        alert = wait_started(client, "on_failure", failed["id"])
        assert alert["state"]["current"] == "SUCCESS"
        assert started_by(client, "on_success", failed["id"]) == []
        assert started_by(client, "on_failure", ok["id"]) == []


def test_preconditions_on_two_flows_wait_for_both(server: LiveServer) -> None:
    with server.client() as client:
        first = run(client, "upstream")
        wait_started(client, "on_success", first["id"])  # its end was looked at
        assert started_by(client, "both", first["id"]) == []
        second = run(client, "other")
        both = wait_started(client, "both", second["id"])
        assert both["state"]["current"] == "SUCCESS"
        assert "both, last other" in logs_of(client, both["id"])


LOOP_A = """
id: loop_a
namespace: loops
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: a
triggers:
  - id: after_b
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: loops
        flowId: loop_b
"""

LOOP_B = """
id: loop_b
namespace: loops
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: b
triggers:
  - id: after_a
    type: io.kestra.plugin.core.trigger.Flow
    preconditions:
      flows:
        - {namespace: loops, flowId: loop_a, states: [SUCCESS, WARNING]}
"""


def test_flows_that_would_trigger_each_other_forever_are_refused(server: LiveServer) -> None:
    with server.client() as client:
        push_flow(client, LOOP_A)
        answer = client.post(
            "/api/v1/flows", content=LOOP_B, headers={"Content-Type": "application/x-yaml"}
        )
        assert answer.status_code == 422, answer.text
        message = answer.json()["message"]
        assert "Flow triggers make a loop" in message
        assert "loops.loop_a" in message and "loops.loop_b" in message
        assert client.get("/api/v1/flows/loops/loop_b").status_code == 404
        # an ExecutionStatus that the other end never reaches on success breaks the loop
        broken = LOOP_B.replace("states: [SUCCESS, WARNING]", "states: [FAILED]")
        assert push_flow(client, broken)["id"] == "loop_b"


def test_an_upstream_run_by_a_worker_starts_its_downstream(tmp_path: Path) -> None:
    """The end comes in a worker's records: the server's Flow triggers see it all the same."""
    redis, port = start_redis(tmp_path, ["127.0.0.1"])
    cluster = Cluster(tmp_path, "127.0.0.1", f"redis://127.0.0.1:{port}/0")
    try:
        cluster.start_server()
        cluster.start_worker("w1")
        with cluster.client() as client:
            for flow in (UPSTREAM, ON_SUCCESS):
                push_flow(client, flow)
            ok = run(client, "upstream")
            assert ok["state"]["current"] == "SUCCESS"
            after = wait_started(client, "on_success", ok["id"])
            assert after["state"]["current"] == "SUCCESS", after
            assert after["inputs"] == {"got": f"ready-{ok['id']}"}
    finally:
        cluster.stop()
        redis.stop()


def trigger_row(client: httpx.Client, flow_id: str, trigger_id: str) -> dict[str, Any]:
    """The trigger's row in Kestra's search (once the scheduler has seen its flow)."""

    def found() -> dict[str, Any] | None:
        page = client.get(
            "/api/v1/triggers/search", params={"namespace": "chain.team", "q": trigger_id}
        ).json()
        rows = [r for r in page["results"] if r["triggerContext"]["flowId"] == flow_id]
        return rows[0] if rows else None

    return until(found, 30, f"trigger {flow_id}.{trigger_id} in /api/v1/triggers/search")


def test_a_backfill_of_three_daily_ticks_runs_three_executions(server: LiveServer) -> None:
    with server.client() as client:
        row = trigger_row(client, "daily", "nightly")
        assert row["abstractTrigger"]["cron"] == "0 0 * * *"
        assert row["triggerContext"]["nextExecutionDate"] is not None
        answer = client.put(
            "/api/v1/triggers",
            json={
                "namespace": "chain.team",
                "flowId": "daily",
                "triggerId": "nightly",
                "backfill": {
                    "start": "2024-01-01T00:00:00Z",
                    "end": "2024-01-03T00:00:00Z",
                    "inputs": {"note": "backfilled"},
                    "labels": [{"key": "campaign", "value": "jan"}],
                },
            },
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["triggerContext"]["backfill"]["total"] == 3

        def three() -> list[dict[str, Any]] | None:
            found = client.get(
                "/api/v1/executions/search",
                params={"namespace": "chain.team", "flowId": "daily", "size": 50},
            ).json()["results"]
            done = [e for e in found if e["state"]["current"] in TERMINAL]
            return done if len(done) == 3 and len(found) == 3 else None

        runs = until(three, 90, "three backfilled executions of daily")
        by_queueing = sorted(runs, key=lambda e: e["state"]["histories"][0]["date"])
        assert [e["trigger"]["variables"]["date"] for e in by_queueing] == [
            "2024-01-01T00:00:00Z",
            "2024-01-02T00:00:00Z",
            "2024-01-03T00:00:00Z",
        ]  # one per tick, oldest first
        for run_ in runs:
            assert run_["state"]["current"] == "SUCCESS"
            labels = {label["key"]: label["value"] for label in run_["labels"]}
            assert labels == {"system.backfill": "true", "campaign": "jan"}
            assert run_["inputs"] == {"note": "backfilled"}
        progress = trigger_row(client, "daily", "nightly")["triggerContext"]["backfill"]
        assert progress["submitted"] == 3 and progress["finished"] is True
        # a backfill of a Flow trigger means nothing: refused, naming why
        refused = client.put(
            "/api/v1/triggers",
            json={
                "namespace": "chain.team",
                "flowId": "on_success",
                "triggerId": "after_upstream",
                "backfill": {"start": "2024-01-01T00:00:00Z"},
            },
        )
        assert refused.status_code == 422
        assert "only a Schedule trigger can be backfilled" in refused.json()["message"]


def test_a_trigger_disabled_through_the_api_starts_nothing(server: LiveServer) -> None:
    with server.client() as client:
        trigger_row(client, "on_success", "after_upstream")
        key = {"namespace": "chain.team", "flowId": "on_success", "triggerId": "after_upstream"}
        answer = client.put("/api/v1/triggers", json={**key, "disabled": True})
        assert answer.status_code == 200, answer.text
        context = answer.json()["triggerContext"]
        assert context["disabled"] is True
        assert context["why"] == "disabled through the API or the CLI"
        try:
            run(client, "other")
            ok = run(client, "upstream")
            wait_started(client, "both", ok["id"])  # its end was looked at
            assert started_by(client, "on_success", ok["id"]) == []
        finally:
            enabled = client.put("/api/v1/triggers", json={**key, "disabled": False})
            assert enabled.json()["triggerContext"]["disabled"] is False


def cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EXECUTOR_HOME": str(server.home)}
    return subprocess.run(
        [sys.executable, "-m", "executor", "triggers", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_cli_lists_disables_and_enables_triggers(server: LiveServer) -> None:
    with server.client() as client:
        trigger_row(client, "daily", "nightly")
    key = ["chain.team", "daily", "nightly"]
    off = cli(server, "disable", "--server", server.url, *key)
    assert off.returncode == 0, off.stderr
    listed = cli(server, "ls", "--namespace", "chain")  # the home's store
    assert listed.returncode == 0, listed.stderr
    (line,) = [row for row in listed.stdout.splitlines() if "nightly" in row]
    assert "Schedule" in line and "0 0 * * *" in line
    assert line.endswith("disabled (disabled through the API or the CLI)")
    on = cli(server, "enable", *key)
    assert on.returncode == 0, on.stderr
    remote = cli(server, "ls", "--server", server.url, "--json")
    (row,) = [r for r in json.loads(remote.stdout) if r["triggerContext"]["triggerId"] == "nightly"]
    assert row["triggerContext"]["disabled"] is False
    unknown = cli(server, "disable", "chain.team", "daily", "nope")
    assert unknown.returncode == 4  # NotFoundError, as for an unknown execution
    assert "no trigger 'nope' of flow chain.team.daily" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    nothing = cli(
        server,
        "backfill",
        "--server",
        server.url,
        "--pause",
        "chain.team",
        "on_success",
        "after_upstream",
    )
    assert nothing.returncode == 2 and "has no backfill" in nothing.stderr


UI_DAILY = DAILY.replace("id: daily", "id: ui_daily")


def test_the_triggers_page_disables_enables_and_backfills(server: LiveServer, browser: Any) -> None:
    from playwright.sync_api import expect

    from tests.integration.browser import watched_page

    with server.client() as client:
        push_flow(client, UI_DAILY)
        trigger_row(client, "ui_daily", "nightly")
    with watched_page(browser, viewport={"width": 1400, "height": 800}) as page:
        page.goto(f"{server.url}/ui/triggers")
        expect(page.locator("nav a.active")).to_have_text("Triggers")
        row = page.locator("tr.trigger[data-flow-id=ui_daily][data-trigger-id=nightly]")
        expect(row.locator(".status")).to_contain_text("ON")
        expect(row.locator(".next")).not_to_have_text("-")
        # a Flow trigger is listed too, with no backfill form
        flow_row = page.locator("tr.trigger[data-trigger-id=after_upstream]")
        expect(flow_row.locator("td").nth(2)).to_have_text("Flow")
        expect(flow_row.locator("form.backfill-form")).to_have_count(0)

        row.locator("button[data-action=disable]").click()
        expect(row.locator(".why")).to_have_text("disabled through the API or the CLI")
        expect(row.locator(".next")).to_have_text("-")
        row.locator("button[data-action=enable]").click()
        expect(row.locator(".status")).to_contain_text("ON")

        row.locator("input[name=start]").fill("2024-02-01T00:00:00Z")
        row.locator("input[name=end]").fill("2024-01-01T00:00:00Z")  # before the start
        row.locator("form.backfill-form button").click()
        expect(row.locator(".error-message")).to_contain_text("is before backfill.start")
        row.locator("input[name=end]").fill("2024-02-02T00:00:00Z")
        row.locator("form.backfill-form button").click()
        # the page refreshes itself until the two ticks are queued
        expect(row.locator(".progress")).to_have_attribute("data-submitted", "2")
        expect(row.locator(".progress")).to_contain_text("2/2")
        expect(row.locator(".progress")).to_contain_text("done")

        page.goto(f"{server.url}/ui/flows/chain.team/ui_daily")
        section = page.locator("#flow-triggers tr.trigger")
        expect(section).to_have_count(1)
        expect(section.locator(".progress")).to_contain_text("2/2")
    with server.client() as client:
        found = client.get(
            "/api/v1/executions/search", params={"namespace": "chain.team", "flowId": "ui_daily"}
        ).json()["results"]
        dates = sorted(e["trigger"]["variables"]["date"] for e in found)
        assert dates == ["2024-02-01T00:00:00Z", "2024-02-02T00:00:00Z"]
