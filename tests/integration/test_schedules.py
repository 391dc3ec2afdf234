"""Schedules, webhooks and flow concurrency against a real server process and the real engine.

Every wait is a bounded poll for a condition (an execution in a state, a tick recorded), never
a sleep of a guessed length.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.helpers import until
from tests.integration.server_helpers import BUSYBOX, LiveServer, push_flow, wait_state

pytestmark = pytest.mark.integration

TERMINAL = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED"}

TICKING = """
id: ticking
namespace: company.team
inputs:
  - id: day
    type: STRING
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "tick {{ trigger.date }} on {{ inputs.day }}"
triggers:
  - id: every_second
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * * *"
    withSeconds: true
    inputs:
      day: "{{ trigger.date | date('yyyy-MM-dd') }}"
"""

NAPPING = f"""
id: napping
namespace: company.team
concurrency:
  limit: 1
  behavior: BEHAVIOR
inputs:
  - id: nap
    type: STRING
    defaults: "0"
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: nap
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: {BUSYBOX}
        commands:
          - echo napping {{{{ inputs.nap }}}}
          - sleep {{{{ inputs.nap }}}}
"""

QUICK = """
id: quick
namespace: company.team
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: quick
"""

HOOKED = """
id: hooked
namespace: company.team
inputs:
  - id: who
    type: STRING
    defaults: nobody
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: >-
      hello {{ trigger.body.name }} from {{ trigger.headers['x-source'][0] }}
      ({{ inputs.who }})
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: k3y-s3cret
    inputs:
      who: "{{ trigger.parameters.who[0] }}"
"""


def scheduled(client: httpx.Client, flow_id: str = "ticking") -> list[dict[str, Any]]:
    answer = client.get(
        "/api/v1/executions/search", params={"flowId": flow_id, "size": 1000}
    ).json()
    return list(answer["results"])


def ended(client: httpx.Client, flow_id: str = "ticking") -> list[dict[str, Any]]:
    return [e for e in scheduled(client, flow_id) if e["state"]["current"] in TERMINAL]


def test_a_schedule_every_second_runs_with_trigger_date_rendered(server: LiveServer) -> None:
    """Real ticks: executions appear by themselves, each with its trigger date in the log."""
    with server.client() as client:
        push_flow(client, TICKING)
        done = until(lambda: ended(client) if len(ended(client)) >= 2 else None, 120, "two ticks")
        for execution in done:
            assert execution["state"]["current"] == "SUCCESS"
            trigger = execution["trigger"]
            assert trigger["id"] == "every_second"
            assert trigger["type"] == "io.kestra.plugin.core.trigger.Schedule"
            date = trigger["variables"]["date"]
            assert date.endswith("Z") and len(date) == len("2024-01-01T00:00:00Z")
            assert execution["inputs"] == {"day": date[:10]}
            logs = client.get(f"/api/v1/logs/{execution['id']}").json()
            assert f"tick {date} on {date[:10]}" in [line["message"] for line in logs]
        dates = [e["trigger"]["variables"]["date"] for e in scheduled(client)]
        assert len(dates) == len(set(dates))
    listed = subprocess.run(
        [sys.executable, "-m", "executor", "triggers", "ls"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "company.team.ticking  every_second  Schedule  * * * * * *" in listed
    assert "enabled" in listed


def test_a_restart_runs_no_tick_twice_and_skips_the_missed_ones(home: Path) -> None:
    """Stop the server, let ticks pass, start it again: no date twice, none from the gap."""
    first = LiveServer(home, workers=2).start()
    with first.client() as client:
        push_flow(client, TICKING + "    recoverMissedSchedules: NONE\n")
        until(lambda: len(ended(client)) >= 2, 120, "ticks before the restart")
    assert first.stop() == 0
    stopped_at = time.time()
    until(lambda: time.time() > stopped_at + 3.5, 10, "ticks passing while down")
    restarted_at = time.time()
    with LiveServer(home, workers=2) as second, second.client() as client:
        before = {e["id"] for e in scheduled(client)}
        until(
            lambda: len([e for e in ended(client) if e["id"] not in before]) >= 2,
            120,
            "ticks after the restart",
        )
        executions = scheduled(client)
    dates = [e["trigger"]["variables"]["date"] for e in executions]
    assert len(dates) == len(set(dates)), "a tick ran twice"
    # ticks that surely fell while no server ran (the window holds at least one)
    gap = [d for d in dates if stopped_at + 1 < _epoch(d) < restarted_at - 1]
    assert gap == [], f"missed ticks were replayed: {gap}"
    assert any(_epoch(d) > restarted_at for d in dates)


def _epoch(iso_z: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso_z.replace("Z", "+00:00")).timestamp()


def _start_napping(client: httpx.Client, nap: str) -> dict[str, Any]:
    answer = client.post("/api/v1/executions/company.team/napping", files={"nap": (None, nap)})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_concurrency_queue_waits_for_the_running_one(server: LiveServer) -> None:
    """limit 1, QUEUE: the second stays QUEUED while the first runs, even with a slot free."""
    with server.client() as client:
        push_flow(client, NAPPING.replace("BEHAVIOR", "QUEUE"))
        push_flow(client, QUICK)
        first = _start_napping(client, "300")
        wait_state(client, first["id"], {"RUNNING"})
        second = _start_napping(client, "0")
        quick = client.post("/api/v1/executions/company.team/quick").json()
        wait_state(client, quick["id"], {"SUCCESS"})  # the other slot was free all along
        assert client.get(f"/api/v1/executions/{second['id']}").json()["state"]["current"] == (
            "QUEUED"
        )
        assert client.delete(f"/api/v1/executions/{first['id']}/kill").status_code == 202
        wait_state(client, first["id"], {"KILLED"})
        done = wait_state(client, second["id"], {"SUCCESS"})
        states = [h["state"] for h in done["state"]["histories"]]
        assert states[0] == "QUEUED" and "RUNNING" in states


@pytest.mark.parametrize(("behavior", "ended_as"), [("CANCEL", "CANCELLED"), ("FAIL", "FAILED")])
def test_concurrency_cancel_and_fail_end_the_extra_one_at_once(
    server: LiveServer, behavior: str, ended_as: str
) -> None:
    """limit 1, CANCEL or FAIL: the extra execution is answered already ended, never run."""
    with server.client() as client:
        push_flow(client, NAPPING.replace("BEHAVIOR", behavior))
        first = _start_napping(client, "300")
        wait_state(client, first["id"], {"RUNNING"})
        extra = _start_napping(client, "0")
        assert extra["state"]["current"] == ended_as
        assert extra["taskRunList"] is None
        assert "concurrency limit (1)" in extra["reason"]
        client.delete(f"/api/v1/executions/{first['id']}/kill")
        wait_state(client, first["id"], {"KILLED"})
        again = client.get(f"/api/v1/executions/{extra['id']}").json()
        assert again["state"]["current"] == ended_as


def test_webhook_starts_the_flow_with_body_headers_and_parameters(server: LiveServer) -> None:
    """Kestra's webhook URL (both prefixes, POST/GET/PUT) queues an execution; a wrong key 404s."""
    with server.client() as client:
        push_flow(client, HOOKED)
        answer = client.post(
            "/api/v1/main/executions/webhook/company.team/hooked/k3y-s3cret",
            params={"who": "ci"},
            json={"name": "Ada"},
            headers={"X-Source": "tests", "Authorization": "Bearer not-kept"},
        )
        assert answer.status_code == 200, answer.text
        execution = answer.json()
        assert execution["namespace"] == "company.team" and execution["flowId"] == "hooked"
        assert execution["url"].startswith("/ui/main/executions/company.team/hooked/")
        variables = execution["trigger"]["variables"]
        assert variables["body"] == {"name": "Ada"}
        assert "authorization" not in variables["headers"]
        done = wait_state(client, execution["id"], {"SUCCESS", "FAILED"})
        assert done["state"]["current"] == "SUCCESS", done
        assert done["inputs"] == {"who": "ci"}
        logs = client.get(f"/api/v1/logs/{execution['id']}").json()
        assert "hello Ada from tests (ci)" in [line["message"] for line in logs]
        for method in ("GET", "PUT"):
            other = client.request(
                method,
                "/api/v1/executions/webhook/company.team/hooked/k3y-s3cret",
                params={"who": method},
                headers={"X-Source": method},
            )
            assert other.status_code == 200, other.text
            assert other.json()["trigger"]["variables"]["body"] is None
        wrong = client.post("/api/v1/executions/webhook/company.team/hooked/wrong-key")
        assert wrong.status_code == 404
        assert "Webhook not found" in wrong.json()["message"]
        assert client.post("/api/v1/executions/webhook/company.team/nope/k3y").status_code == 404
