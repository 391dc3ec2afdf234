"""Liveness and readiness: Kestra's shape, open to probes, details only with credentials, checks
off the event loop and bounded. Real dependencies are checked in tests/integration/test_observe.py.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from executor.errors import EngineUnavailable, StoreError
from executor.server.app import create_app
from executor.server.config import ServerConfig
from executor.server.health import Readiness
from executor.services import local_services
from executor.settings import Settings

TOKEN = "t0ken"


def _client(home: Path, config: ServerConfig, readiness: Readiness | None = None) -> TestClient:
    # used without `with`: the lifespan (the queue and its slots) never starts
    app = create_app(Settings.from_env({"EXECUTOR_HOME": str(home)}), config)
    if readiness is not None:
        app.state.readiness = readiness
    return TestClient(app, base_url="http://127.0.0.1")


def _up() -> dict[str, Any]:
    return {"version": "1"}


def _down() -> dict[str, Any]:
    raise StoreError("cannot reach PostgreSQL at db:5432 (Connection refused)")


def test_liveness_answers_up_without_credentials(home: Path) -> None:
    """/health and /health/liveness are open even when the API needs a token."""
    client = _client(home, ServerConfig(tokens=frozenset({TOKEN})))
    for path in ("/health", "/health/liveness"):
        answer = client.get(path)
        assert answer.status_code == 200
        assert answer.json() == {"name": "executor", "status": "UP"}
    assert client.get("/api/v1/configs").status_code == 401


def test_readiness_is_down_with_the_failing_dependency_named(home: Path) -> None:
    """One dependency down makes readiness 503 DOWN, naming it and why; the others stay UP."""
    checks = Readiness({"store": _down, "engine": _up})
    answer = _client(home, ServerConfig(), checks).get("/health/readiness")
    assert answer.status_code == 503
    body = answer.json()
    assert body["name"] == "executor" and body["status"] == "DOWN"
    assert body["details"]["store"]["status"] == "DOWN"
    assert "Connection refused" in body["details"]["store"]["details"]["error"]
    assert body["details"]["engine"] == {"name": "engine", "status": "UP", "details": _up()}


def test_readiness_details_only_for_callers_with_credentials(home: Path) -> None:
    """With auth configured, an anonymous probe gets the status alone; a token gets details."""
    checks = Readiness({"store": _up, "engine": _up})
    client = _client(home, ServerConfig(tokens=frozenset({TOKEN})), checks)
    anonymous = client.get("/health/readiness")
    assert anonymous.status_code == 200 and anonymous.json() == {"name": "executor", "status": "UP"}
    shown = client.get("/health/readiness", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert set(shown["details"]) == {"store", "engine"}
    wrong = client.get("/health/readiness", headers={"Authorization": "Bearer nope"}).json()
    assert "details" not in wrong


def test_metrics_stay_behind_authentication(home: Path) -> None:
    """/metrics and /prometheus answer 401 without credentials, the metrics with them."""
    client = _client(home, ServerConfig(tokens=frozenset({TOKEN})))
    for path in ("/metrics", "/prometheus"):
        assert client.get(path).status_code == 401
        answer = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        assert 'executor_info{version="' in answer.text


def test_a_silent_check_is_down_after_its_timeout_and_never_runs_twice() -> None:
    """A check that hangs is DOWN ("no answer within"), the loop keeps serving meanwhile, and
    later probes wait for the same call instead of piling up threads."""
    release = threading.Event()
    calls: list[str] = []

    def hangs() -> dict[str, Any]:
        calls.append("engine")
        release.wait(30)
        raise EngineUnavailable("no Docker engine answers at unix:///x.sock (timed out)")

    checks = Readiness({"engine": hangs, "store": _up}, timeout=0.2)

    async def probe_twice() -> tuple[Any, Any, int]:
        ticks = 0

        async def ticker() -> None:  # runs only while the loop is free
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        beat = asyncio.create_task(ticker())
        first = await checks.report()
        checks._last = None  # past the reuse second: ask again
        second = await checks.report()
        beat.cancel()
        return first, second, ticks

    try:
        first, second, ticks = asyncio.run(probe_twice())
    finally:
        release.set()
    for report in (first, second):
        engine = {c.name: c for c in report.components}["engine"]
        assert report.status == "DOWN" and engine.status == "DOWN"
        assert engine.details["error"] == "no answer within 0.2 s"
    assert calls == ["engine"]  # the second probe waited for the first call
    assert ticks > 5, "the event loop was blocked while the check hung"


def test_a_check_that_breaks_answers_down_with_what_broke() -> None:
    """A bug in a check is reported DOWN with the exception, not a 500."""

    def broken() -> dict[str, Any]:
        raise KeyError("redis_version")

    report = asyncio.run(Readiness({"broker": broken}).report())
    (component,) = report.components
    assert component.status == "DOWN" and "KeyError" in component.details["error"]


@pytest.mark.parametrize("broker", [None, "redis://127.0.0.1:1/0"])
def test_the_server_checks_the_broker_or_else_the_engine(home: Path, broker: str | None) -> None:
    """With --broker the server needs Redis, not an engine; without, its slots need the engine."""
    settings = Settings.from_env({"EXECUTOR_HOME": str(home)})
    records = local_services(settings).records
    checks = Readiness.for_server(settings, records, ServerConfig(broker=broker))
    assert list(checks.checks) == (["store", "broker"] if broker else ["store", "engine"])


def test_the_check_timeout_comes_from_the_environment() -> None:
    """EXECUTOR_READINESS_TIMEOUT sets each check's limit; a bad value is one clear error."""
    from executor.errors import ServerConfigError
    from executor.server.config import check_seconds

    assert check_seconds({}) == 2.0
    assert check_seconds({"EXECUTOR_READINESS_TIMEOUT": "0.5"}) == 0.5
    for bad in ("soon", "0", "-1"):
        with pytest.raises(ServerConfigError, match="EXECUTOR_READINESS_TIMEOUT"):
            check_seconds({"EXECUTOR_READINESS_TIMEOUT": bad})
