"""A server on PostgreSQL that goes away mid-run and comes back (a real ``pg_ctl stop``/``start``
of a PostgreSQL of the test's own): runs end in their real state with every record, kill works
on what the server runs (during the outage too), and a run whose records were given up is
ended by the live server, not left RUNNING."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from executor.server.queue import KILLED_REASON
from executor.server.recovery import LOST_RUNNER_REASON
from tests.integration.helpers import until
from tests.integration.server_helpers import LiveServer, logs_of, wait_state
from tests.postgres import OwnPostgres, fresh_database, own_postgres

pytestmark = pytest.mark.integration

ENDED = {"SUCCESS", "FAILED", "KILLED", "WARNING"}
OUTAGE_SECONDS = 5  # how long PostgreSQL stays down in the first test: past STEADY's pause

STEADY = """
id: steady
namespace: tests.outage
tasks:
  - id: before
    type: io.kestra.plugin.core.log.Log
    message: before the outage
  - id: hold
    type: io.kestra.plugin.core.flow.Pause
    pauseDuration: PT2S
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: after the pause
"""

LONG = """
id: long
namespace: tests.outage
tasks:
  - id: hold
    type: io.kestra.plugin.core.flow.Pause
    pauseDuration: PT300S
"""


@pytest.fixture(scope="module")
def postgres() -> Iterator[OwnPostgres]:
    with own_postgres() as server:
        yield server


@pytest.fixture
def database(postgres: OwnPostgres) -> Iterator[str]:
    with fresh_database(postgres.admin_url) as url:
        yield url


def _server(home: Path, database: str, **env: str) -> LiveServer:
    return LiveServer(home, workers=3, env={"EXECUTOR_DATABASE_URL": database, **env})


def _start(client: httpx.Client, flow_id: str) -> str:
    answer = client.post(f"/api/v1/executions/tests.outage/{flow_id}")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def _running(client: httpx.Client, execution_id: str, line: str) -> None:
    wait_state(client, execution_id, {"RUNNING"}, timeout=60)
    until(
        lambda: any(line in m for m in logs_of(client, execution_id)),
        60,
        lambda: f"{line!r} in the log of {execution_id}",
    )


def _states(execution: dict[str, Any]) -> dict[str, str]:
    return {r["taskId"]: r["state"]["current"] for r in execution["taskRunList"] or []}


def test_a_postgresql_outage_mid_run_loses_nothing(
    home: Path, postgres: OwnPostgres, database: str
) -> None:
    """PostgreSQL stops while executions run and starts again: the run that ended meanwhile
    shows SUCCESS with every task run and log line; one killed during the outage (202) ends
    KILLED; one killed after it (202) too. While it is down the API answers 503."""
    with (
        _server(home, database, EXECUTOR_STORE_RETRY_WAIT="0.5") as server,
        server.client() as client,
    ):
        for flow in (STEADY, LONG):
            server.push(flow)
        steady = _start(client, "steady")
        during, after = _start(client, "long"), _start(client, "long")
        _running(client, steady, "before the outage")
        wait_state(client, during, {"RUNNING"}, timeout=60)
        wait_state(client, after, {"RUNNING"}, timeout=60)

        postgres.halt()
        try:
            down = client.get(f"/api/v1/executions/{steady}")
            assert down.status_code == 503, down.text
            assert "cannot reach PostgreSQL" in down.json()["message"]
            killed = client.delete(f"/api/v1/executions/{during}/kill")
            assert killed.status_code == 202, killed.text
            time.sleep(OUTAGE_SECONDS)  # the outage itself: STEADY ends while it lasts
        finally:
            back = datetime.now(UTC)
            postgres.resume()

        done = wait_state(client, steady, ENDED, timeout=60)
        assert done["state"]["current"] == "SUCCESS", done
        assert datetime.fromisoformat(done["state"]["endDate"]) < back  # ended while away
        assert _states(done) == {"before": "SUCCESS", "hold": "SUCCESS", "after": "SUCCESS"}
        lines = logs_of(client, steady)
        for expected in ("before the outage", "after the pause", "execution ended SUCCESS"):
            assert any(expected in line for line in lines), lines
        assert wait_state(client, during, ENDED, timeout=60)["state"]["current"] == "KILLED"
        again = client.delete(f"/api/v1/executions/{after}/kill")
        assert again.status_code == 202, again.text
        ended = wait_state(client, after, ENDED, timeout=60)
        assert ended["state"]["current"] == "KILLED" and ended["reason"] == KILLED_REASON
    assert "the store is back" in server.output()


def test_runs_whose_records_were_given_up_are_ended_by_the_live_server(
    home: Path, postgres: OwnPostgres, database: str
) -> None:
    """An outage longer than the store patience: the runs' final records are given up and
    their runners end. Once PostgreSQL is back, kill answers 202 on such a run (it is this
    server's: no "run by another process"), and the live server ends the other one FAILED."""
    env = {
        "EXECUTOR_STORE_PATIENCE": "1",
        "EXECUTOR_STORE_RETRY_WAIT": "3",  # recovery waits twice as long, and a second, to judge
        "EXECUTOR_RECOVERY_INTERVAL": "1",
    }
    with _server(home, database, **env) as server, server.client() as client:
        server.push(STEADY)
        lost, killed = _start(client, "steady"), _start(client, "steady")
        _running(client, lost, "before the outage")
        _running(client, killed, "before the outage")

        postgres.halt()
        try:  # both end, and give their records up, while it lasts
            until(
                lambda: server.output().count("execution record incomplete") == 2,
                60,
                lambda: f"both runs to give their records up: {server.output()[-3000:]}",
            )
        finally:
            postgres.resume()

        answer = client.delete(f"/api/v1/executions/{killed}/kill")
        assert answer.status_code == 202, answer.text
        ended = wait_state(client, killed, ENDED, timeout=60)
        assert ended["state"]["current"] == "KILLED", ended
        recovered = wait_state(client, lost, ENDED, timeout=60)
        assert recovered["state"]["current"] == "FAILED", recovered
        assert recovered["reason"] == LOST_RUNNER_REASON
        assert not [s for s in _states(recovered).values() if s not in ENDED], recovered
        assert any(LOST_RUNNER_REASON in line for line in logs_of(client, lost))
