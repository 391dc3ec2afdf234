"""Health, readiness, metrics and JSON logs of real ``executor server`` processes.

Readiness goes DOWN when a PostgreSQL of the test's own is stopped under the server, and when
the server's engine is a socket that never answers (the shared engine is never disturbed). The
metrics are scraped before and after a real execution on the real engine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from executor.engine import labels
from tests.integration.helpers import our_resources, until
from tests.integration.server_helpers import LiveServer, free_port, shell_flow, start

pytestmark = pytest.mark.integration

TOKEN = "observe-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
POSTGRES = Path(__file__).resolve().parents[2] / "scripts" / "ensure-postgres.sh"
FLOW = shell_flow("metered", "company.observe", "greet", ["echo hello", "echo oops >&2"])
SHELL = "io.kestra.plugin.scripts.shell.Commands"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server that asks for a token, with its own slots on the real engine."""
    home = tmp_path_factory.mktemp("guarded") / "home"
    live = LiveServer(home, env={"EXECUTOR_SERVER_TOKENS": TOKEN}, headers=BEARER)
    with live:
        yield live


Samples = dict[tuple[str, frozenset[Any]], float]


def scrape(server: LiveServer, path: str = "/prometheus") -> Samples:
    """Every sample the server exposes, parsed by Prometheus's own parser."""
    answer = httpx.get(server.url + path, headers=BEARER, timeout=30)
    assert answer.status_code == 200, answer.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_move_when_an_execution_runs(guarded: LiveServer) -> None:
    """After one real execution: one start, one SUCCESS end, its task runs timed, its log lines
    counted; the queue is empty again and no slot is busy."""
    before = scrape(guarded)
    with guarded.client() as client:
        guarded.push(FLOW)
        done = client.post(
            "/api/v1/executions/company.observe/metered", params={"wait": "true"}
        ).json()
    assert done["state"]["current"] == "SUCCESS", done
    after = scrape(guarded, "/metrics")
    ids = {"namespace_id": "company.observe", "flow_id": "metered"}

    def moved(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert moved("kestra_executor_execution_started_count_total", **ids, state="RUNNING") == 1
    assert moved("kestra_executor_execution_end_count_total", **ids, state="SUCCESS") == 1
    assert moved("kestra_executor_execution_duration_seconds_count", **ids, state="SUCCESS") == 1
    task = {**ids, "state": "SUCCESS"}
    assert moved("kestra_executor_taskrun_ended_duration_seconds_count", **task, task_type=SHELL)
    assert moved("kestra_executor_taskrun_ended_duration_seconds_sum", **task, task_type=SHELL) > 0
    assert moved("executor_log_lines_total", level="INFO") >= 1  # "hello"
    assert moved("executor_log_lines_total", level="ERROR") >= 1  # "oops" on stderr
    assert sample(after, "executor_queue_depth") == 0
    assert sample(after, "kestra_worker_job_running", worker="server") == 0
    assert sample(after, "kestra_worker_job_thread", worker="server") == 2
    assert not our_resources(**{labels.EXECUTION: done["id"]})


def test_probes_are_open_and_metrics_and_details_need_the_token(guarded: LiveServer) -> None:
    """Without credentials: liveness, and readiness's status alone; metrics are refused.
    With the token: readiness names the store and the engine, both UP."""
    assert httpx.get(guarded.url + "/health/liveness").json() == {
        "name": "executor",
        "status": "UP",
    }
    assert httpx.get(guarded.url + "/metrics").status_code == 401
    assert httpx.get(guarded.url + "/prometheus").status_code == 401
    anonymous = httpx.get(guarded.url + "/health/readiness", timeout=30)
    assert (anonymous.status_code, anonymous.json()) == (200, {"name": "executor", "status": "UP"})
    shown = httpx.get(guarded.url + "/health/readiness", headers=BEARER, timeout=30).json()
    details = shown["details"]
    assert {name: c["status"] for name, c in details.items()} == {"store": "UP", "engine": "UP"}
    assert details["store"]["details"]["database"] == "sqlite"
    assert details["engine"]["details"]["version"]


@pytest.fixture
def own_postgres() -> Iterator[dict[str, str]]:
    """A PostgreSQL of this test alone (the suite's shared one is never stopped)."""
    out = subprocess.run(["bash", str(POSTGRES), "start"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    values = dict(line.split("=", 1) for line in out.stdout.split())
    try:
        yield values
    finally:
        subprocess.run(["bash", str(POSTGRES), "stop", values["EXECUTOR_TEST_PG_DIR"]], check=False)


def readiness(server: LiveServer) -> tuple[int, dict[str, Any]]:
    answer = httpx.get(server.url + "/health/readiness", timeout=30)
    return answer.status_code, answer.json()


def test_readiness_goes_down_when_postgresql_stops(
    home: Path, own_postgres: dict[str, str]
) -> None:
    """A server on PostgreSQL is ready; once its PostgreSQL stops it answers 503 with the store
    DOWN (the engine still UP), stays alive, and counts the store errors it meets."""
    env = {"EXECUTOR_DATABASE_URL": own_postgres["EXECUTOR_TEST_DATABASE_URL"]}
    with LiveServer(home, env=env) as server:
        code, body = readiness(server)
        assert code == 200 and body["details"]["store"]["details"]["database"] == "postgresql"
        password = env["EXECUTOR_DATABASE_URL"].split(":")[2].split("@")[0]
        assert password not in json.dumps(body)
        subprocess.run(["bash", str(POSTGRES), "stop", own_postgres["EXECUTOR_TEST_PG_DIR"]])

        def down() -> dict[str, Any] | None:
            code, body = readiness(server)
            return body if code == 503 else None

        body = until(down, 60, lambda: f"readiness 503: {readiness(server)}")
        assert body["status"] == "DOWN"
        assert body["details"]["store"]["status"] == "DOWN"
        assert "PostgreSQL" in body["details"]["store"]["details"]["error"]
        assert password not in json.dumps(body)
        assert body["details"]["engine"]["status"] == "UP"
        assert httpx.get(server.url + "/health").status_code == 200
        metrics = httpx.get(server.url + "/metrics", timeout=30).text
        errors = {
            s.labels["source"]: s.value
            for family in text_string_to_metric_families(metrics)
            for s in family.samples
            if s.name == "executor_store_errors_total"
        }
        assert errors.get("readiness", 0) >= 1, metrics


@pytest.fixture
def silent_engine(tmp_path: Path) -> Iterator[str]:
    """A unix socket that accepts connections and never answers: an engine hung, not gone."""
    path = tmp_path / "silent.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    try:
        yield f"unix://{path}"
    finally:
        listener.close()


def test_readiness_is_down_when_the_engine_does_not_answer_and_the_loop_keeps_serving(
    home: Path, silent_engine: str
) -> None:
    """With an engine that never answers, readiness waits only its timeout and says the engine
    is DOWN; meanwhile the server keeps answering liveness (the check is not on its loop)."""
    env = {"DOCKER_HOST": silent_engine, "EXECUTOR_READINESS_TIMEOUT": "8"}
    with LiveServer(home, env=env) as server:
        answers: list[tuple[int, dict[str, Any]]] = []
        pending = threading.Thread(target=lambda: answers.append(readiness(server)))
        pending.start()
        alive = httpx.get(server.url + "/health", timeout=5)
        assert alive.status_code == 200
        assert pending.is_alive(), "readiness answered before its 8 s engine check could"
        pending.join(60)
        ((code, body),) = answers
        assert code == 503 and body["details"]["engine"]["status"] == "DOWN"
        assert body["details"]["store"]["status"] == "UP"
        error = body["details"]["engine"]["details"]["error"]
        assert "no answer within 8 s" in error or silent_engine in error
        counted = 'executor_engine_errors_total{source="readiness"} '
        until(  # counted when the check's own call ends, whoever waited for it
            lambda: counted in httpx.get(server.url + "/metrics", timeout=30).text,
            60,
            "the engine error counted",
        )


def json_lines(text: str) -> list[dict[str, Any]]:
    """Each line parsed as JSON (a line that is not fails the test, showing it)."""
    parsed = []
    for line in text.splitlines():
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}\nin:\n{text}")
    return parsed


def test_server_and_worker_log_json_lines_only(home: Path) -> None:
    """With --log-format json, every line of the server (uvicorn's too) and of the worker
    (Celery's too, and its shutdown notice) is one JSON object."""
    token = "observe-worker-token"
    env = {"EXECUTOR_SERVER_WORKER_TOKENS": token}
    with LiveServer(home, args=["--log-format", "json"], env=env) as server:
        with socket.create_connection(("127.0.0.1", server.port)) as raw:
            raw.sendall(b"NOT HTTP\r\n\r\n")
            raw.recv(1024)
        until(lambda: "Invalid HTTP request" in server.output(), 30, server.output)
        dead_broker = f"redis://127.0.0.1:{free_port()}/0"
        argv = [sys.executable, "-m", "executor", "worker", "--log-format", "json"]
        argv += ["--broker", dead_broker, "--server", server.url]
        worker_env = {
            **os.environ,
            "EXECUTOR_HOME": str(home / "worker"),
            "EXECUTOR_WORKER_TOKEN": token,
        }
        worker = start(argv, home / "worker.log", worker_env)
        try:
            until(lambda: "Cannot connect" in worker.output(), 60, worker.output)
        finally:
            worker.stop()
    server_lines = json_lines(server.output())
    assert server_lines[0]["event"].startswith("executor server on http://127.0.0.1")
    assert any(x.get("logger") == "uvicorn.error" for x in server_lines)
    assert server_lines[-1]["event"] == "executor server stopped"
    worker_lines = json_lines(worker.output())
    assert worker_lines[0]["event"].startswith("executor worker ")
    assert any(str(x.get("logger", "")).startswith("celery") for x in worker_lines)
    assert any("shutdown" in x["event"] for x in worker_lines)
