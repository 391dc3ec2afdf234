"""Kestra's trigger API over a real SQLite store and the real scheduler (one pass on demand):
search, disable by query, unlock, backfill pause/unpause/delete, and what each refuses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from executor.server.app import create_app
from executor.server.config import ServerConfig
from executor.server.schedules import Scheduler
from executor.settings import Settings
from executor.store.db import Store
from executor.store.flows import save_flow
from executor.store.triggers import get_state, set_last_execution

FLOW = """\
id: nightly
namespace: company.team
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.date }}"
triggers:
  - id: daily
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 0 * * *"
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: k3y
"""
KEY = {"namespace": "company.team", "flowId": "nightly", "triggerId": "daily"}
NOW = datetime(2024, 5, 15, 10, tzinfo=UTC)


@pytest.fixture
def client(home: Path) -> Iterator[TestClient]:
    # used without `with`: the lifespan (slots, scheduler) never starts; passes run by hand
    app = create_app(Settings.from_env({"EXECUTOR_HOME": str(home)}), ServerConfig())
    with Store(app.state.settings.db_path) as store:
        save_flow(store, "company.team", "nightly", FLOW)
    Scheduler(app.state.queue).run_once(NOW)
    yield TestClient(app, base_url="http://127.0.0.1")
    app.state.queue.parser.close()


def test_search_pages_and_filters(client: TestClient) -> None:
    page = client.get("/api/v1/triggers/search", params={"size": 1}).json()
    assert page["total"] == 2 and len(page["results"]) == 1
    row = page["results"][0]
    assert row["abstractTrigger"]["cron"] == "0 0 * * *"
    assert row["triggerContext"]["nextExecutionDate"] == "2024-05-16T00:00:00Z"
    hooks = client.get("/api/v1/main/triggers/search", params={"q": "hook"}).json()
    assert [r["triggerContext"]["triggerId"] for r in hooks["results"]] == ["hook"]
    assert client.get("/api/v1/triggers/search", params={"namespace": "other"}).json() == {
        "results": [],
        "total": 0,
    }
    assert client.get("/api/v1/triggers/company.team/nightly").json()["total"] == 2
    assert client.get("/api/v1/triggers/company.team/nope").status_code == 404


def test_disable_by_query_and_the_webhook_answers_404(client: TestClient) -> None:
    answer = client.post(
        "/api/v1/triggers/set-disabled/by-query",
        params={"disabled": "true", "namespace": "company"},
    )
    assert answer.json() == {"count": 2}
    rows = client.get("/api/v1/triggers/search").json()["results"]
    assert all(r["triggerContext"]["disabled"] for r in rows)
    hook = client.post("/api/v1/executions/webhook/company.team/nightly/k3y")
    assert hook.status_code == 404 and "disabled" in hook.json()["message"]
    back = client.post(
        "/api/v1/triggers/set-disabled/by-triggers", params={"disabled": "false"}, json=[KEY]
    )
    assert back.json() == {"count": 1}


def test_unlock_forgets_the_execution_waited_for(client: TestClient, home: Path) -> None:
    url = "/api/v1/triggers/company.team/nightly/daily/unlock"
    assert client.post(url).status_code == 409  # not locked
    with Store(home / "executor.db") as store:
        state = get_state(store, "company.team", "nightly", "daily")
        assert state is not None
        set_last_execution(store, state, "someexecution")
    answer = client.post(url)
    assert answer.status_code == 200 and answer.json()["triggerContext"]["executionId"] is None


def test_backfill_requests_are_checked_and_can_be_paused_and_deleted(client: TestClient) -> None:
    def put(backfill: object) -> object:
        return client.put("/api/v1/triggers", json={**KEY, "backfill": backfill})

    bad = put({"start": "2024-01-05T00:00:00Z", "end": "2024-01-01T00:00:00Z"})
    assert bad.status_code == 422 and "is before backfill.start" in bad.json()["message"]
    assert put({"start": "yesterday"}).status_code == 422
    assert put({"end": "2024-01-01T00:00:00Z"}).json()["message"].startswith("backfill.start")
    hook = client.put(
        "/api/v1/triggers", json={**KEY, "triggerId": "hook", "backfill": {"start": "2024-01-01"}}
    )
    assert "only a Schedule trigger" in hook.json()["message"]
    started = put({"start": "2024-01-01T00:00:00Z", "end": "2024-01-10T00:00:00Z"})
    assert started.status_code == 200
    backfill = started.json()["triggerContext"]["backfill"]
    assert backfill["total"] == 10 and backfill["currentDate"] == "2024-01-01T00:00:00Z"
    again = put({"start": "2024-01-01T00:00:00Z"})
    assert again.status_code == 409 and "already running" in again.json()["message"]
    paused = client.put("/api/v1/triggers/backfill/pause", json=KEY).json()
    assert paused["triggerContext"]["backfill"]["paused"] is True
    resumed = client.post("/api/v1/triggers/backfill/unpause", json=KEY).json()
    assert resumed["triggerContext"]["backfill"]["paused"] is False
    dropped = client.post("/api/v1/triggers/backfill/delete", json=KEY).json()
    assert dropped["triggerContext"]["backfill"] is None
    missing = client.post("/api/v1/triggers/backfill/pause", json=KEY)
    assert missing.status_code == 404 and "has no backfill" in missing.json()["message"]
    unknown = client.put("/api/v1/triggers", json={**KEY, "triggerId": "nope", "disabled": True})
    assert unknown.status_code == 404
    assert client.put("/api/v1/triggers", json={"namespace": "x"}).status_code == 422
