"""The executions search's time filters (startDate, endDate, timeRange) on both API prefixes,
and the Flows page's last executions, through the app on a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from executor.host import Owner
from executor.model import Execution, State, StateHistory
from executor.server import ui
from executor.server.app import create_app
from executor.server.config import ServerConfig
from executor.settings import Settings
from executor.store import search
from executor.store.db import Store
from executor.store.flows import save_flow
from executor.store.records import execution_record

NOW = datetime.now(UTC).replace(microsecond=0)
FLOW = """\
id: {flow_id}
namespace: company.team
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: hello
"""


def _add(store: Store, hours_ago: float, flow_id: str = "f", state: State = State.SUCCESS) -> str:
    start = NOW - timedelta(hours=hours_ago)
    history = [(State.CREATED, start), (state, start + timedelta(seconds=1))]
    execution = Execution("company.team", flow_id, state=StateHistory(state, history))
    store.write([execution_record(execution, Owner.current())])
    return execution.id


@pytest.fixture(scope="module")
def stored(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    home = tmp_path_factory.mktemp("home")
    settings = Settings.from_env({"EXECUTOR_HOME": str(home)})
    with Store(settings.db_path) as store:
        ids = {"3d": _add(store, 72), "5h": _add(store, 5), "30m": _add(store, 0.5)}
        for flow_id in ("f", "g"):
            save_flow(store, "company.team", flow_id, FLOW.format(flow_id=flow_id))
        ids["g"] = _add(store, 2, "g", State.FAILED)
    app = create_app(settings, ServerConfig(), extra_routers=[ui.router])
    yield TestClient(app, base_url="http://127.0.0.1"), ids
    app.state.queue.parser.close()  # the parse processes the Flows page started


def _found(client: TestClient, prefix: str, **params: str) -> list[str]:
    answer = client.get(f"{prefix}/executions/search", params={"flowId": "f", **params})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["total"] == len(body["results"])
    return [e["id"] for e in body["results"]]


@pytest.mark.parametrize("prefix", ["/api/v1", "/api/v1/main"])
def test_time_filters_bound_the_start(
    stored: tuple[TestClient, dict[str, str]], prefix: str
) -> None:
    client, ids = stored
    hours_ago = (NOW - timedelta(hours=6)).isoformat()
    an_hour_ago = (NOW - timedelta(hours=1)).isoformat()

    assert _found(client, prefix, timeRange="PT1H") == [ids["30m"]]
    assert _found(client, prefix, timeRange="P1D") == [ids["30m"], ids["5h"]]
    assert _found(client, prefix, startDate=hours_ago) == [ids["30m"], ids["5h"]]
    assert _found(client, prefix, endDate=an_hour_ago) == [ids["5h"], ids["3d"]]
    assert _found(client, prefix, startDate=hours_ago, endDate=an_hour_ago) == [ids["5h"]]
    naive = (NOW - timedelta(hours=1)).replace(tzinfo=None).isoformat()  # taken as UTC
    assert _found(client, prefix, startDate=naive) == [ids["30m"]]


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"timeRange": "PT1H", "startDate": "2026-01-01T00:00:00Z"}, "not both"),
        ({"startDate": "2026-02-01T00:00:00Z", "endDate": "2026-01-01T00:00:00Z"}, "before"),
        ({"timeRange": "an hour"}, "timeRange"),
        ({"startDate": "yesterday"}, "startDate"),
    ],
)
def test_bad_time_filters_are_a_422(
    stored: tuple[TestClient, dict[str, str]], params: dict[str, str], says: str
) -> None:
    client, _ = stored
    answer = client.get("/api/v1/executions/search", params=params)
    assert answer.status_code == 422 and says in answer.text, answer.text


def test_the_flows_page_shows_each_flows_last_execution(
    stored: tuple[TestClient, dict[str, str]],
) -> None:
    client, ids = stored
    page = client.get("/ui/flows").text
    assert f"/ui/executions/company.team/f/{ids['30m']}" in page
    assert f"/ui/executions/company.team/g/{ids['g']}" in page
    assert ids["5h"] not in page and ids["3d"] not in page


def test_a_capped_count_says_more_than(
    stored: tuple[TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the cap the API's total is one more than counted, and the page says "more than"."""
    monkeypatch.setattr(search, "COUNT_CAP", 1)
    monkeypatch.setattr(ui.routes, "PAGE_SIZE", 1)
    client, _ = stored

    body = client.get("/api/v1/executions/search", params={"size": 1}).json()
    assert len(body["results"]) == 1 and body["total"] == 3  # 1 + 1 counted, and more

    page = client.get("/ui/executions").text
    assert "more than 2 executions" in page
    assert client.get("/api/v1/executions/search", params={"size": 10}).json()["total"] == 4


def test_the_flows_page_parses_each_revision_once(
    stored: tuple[TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shown twice, the Flows page parses each stored revision once (in the parse processes)."""
    settings = stored[0].app.state.settings  # type: ignore[attr-defined]
    app = create_app(settings, ServerConfig(), extra_routers=[ui.router])
    parser = app.state.queue.parser
    parsed: list[tuple[str, str, int]] = []
    remember = parser._remember

    def counting(key: tuple[str, str, int, str], loaded: object, size: int) -> None:
        parsed.append(key[:3])
        remember(key, loaded, size)

    monkeypatch.setattr(parser, "_remember", counting)
    client = TestClient(app, base_url="http://127.0.0.1")
    try:
        for _ in range(2):
            page = client.get("/ui/flows")
            assert page.status_code == 200 and "(invalid)" not in page.text
    finally:
        parser.close()
    assert sorted(parsed) == [("company.team", "f", 1), ("company.team", "g", 1)]
