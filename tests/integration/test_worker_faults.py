"""Faults around the workers, with real parts: a real ``redis-server`` killed and started again
empty, a real server process killed and started again, real ``executor worker`` processes on
the real engine. (A worker killed mid-run: ``test_workers.py``.)"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from executor.model import State
from executor.store.db import Store
from tests.integration.helpers import until
from tests.integration.server_helpers import (
    Process,
    logs_of,
    push_flow,
    shell_flow,
    wait_log,
    wait_state,
)
from tests.integration.workers_helpers import Cluster, resources_of, start_redis

pytestmark = pytest.mark.integration

QUICK = shell_flow("quick", "faults.workers", "nap", ["sleep 2", "echo rested"])
COUNTING = shell_flow(
    "counting",
    "faults.workers",
    "count",
    ['for i in $(seq 1 15); do echo "line $i"; sleep 1; done'],
)


@dataclass
class Redis:
    """Redis on loopback, on one port; every process started on it (a test restarts it)."""

    tmp: Path
    port: int = 0
    processes: list[Process] = field(default_factory=list)

    def start(self) -> None:
        process, self.port = start_redis(self.tmp, ["127.0.0.1"], port=self.port or None)
        self.processes.append(process)

    def kill(self) -> None:
        self.processes[-1].stop(signal.SIGKILL)

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Redis]:
    server = Redis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        for process in server.processes:
            process.stop()


def attempts_in(log: list[str]) -> list[tuple[str, str]]:
    return re.findall(r"attempt (\d+) on worker (\S+) \(", "\n".join(log))


def test_queued_work_survives_a_redis_restarted_empty(tmp_path: Path, redis: Redis) -> None:
    cluster = Cluster(tmp_path, "127.0.0.1", redis.url(), env={"EXECUTOR_WORKER_LAPSE": "5"})
    ids: list[str] = []
    try:
        cluster.start_server()
        with cluster.client() as client:
            push_flow(client, QUICK)
            cluster.start_worker("w1")  # one slot: the others wait in Redis
            for _ in range(4):
                ids.append(client.post("/api/v1/executions/faults.workers/quick").json()["id"])
            wait_state(client, ids[0], {"RUNNING"}, 120)
            redis.kill()  # its messages are gone with it (no persistence)
            for _ in range(2):  # submitted while the broker is down: they wait in the database
                ids.append(client.post("/api/v1/executions/faults.workers/quick").json()["id"])
            redis.start()  # the same port, no data
            for execution_id in ids:
                done = wait_state(client, execution_id, {"SUCCESS", "FAILED", "KILLED"}, 300)
                log = logs_of(client, execution_id)
                assert done["state"]["current"] == "SUCCESS", log
                # exactly once: one attempt, one RUNNING, one "rested"
                assert attempts_in(log) == [("1", "w1")], log
                history = [h["state"] for h in done["state"]["histories"]]
                assert history.count("RUNNING") == 1, history
                assert log.count("rested") == 1, log
            assert "the broker restarted: unclaimed executions sent again" in (
                cluster.server.output() if cluster.server else ""
            )
    finally:
        cluster.stop()
    for execution_id in ids:
        assert resources_of(None, execution_id) == []


def test_a_worker_keeps_running_while_the_server_restarts_and_reports_everything(
    tmp_path: Path, redis: Redis
) -> None:
    lapse = 4
    cluster = Cluster(tmp_path, "127.0.0.1", redis.url(), env={"EXECUTOR_WORKER_LAPSE": str(lapse)})
    execution_id = ""
    try:
        cluster.start_server()
        with cluster.client() as client:
            push_flow(client, COUNTING)
            worker = cluster.start_worker("w1")
            execution_id = client.post("/api/v1/executions/faults.workers/counting").json()["id"]
            wait_log(client, execution_id, "line 2")
        assert cluster.server is not None
        cluster.server.stop(signal.SIGKILL)  # a crash, not a goodbye
        # away for longer than the lapse: the worker must not be judged lost for that
        time.sleep(lapse * 2)
        assert worker.proc.poll() is None, worker.output()
        cluster.start_server()
        with cluster.client() as client:
            done = wait_state(client, execution_id, {"SUCCESS", "FAILED", "KILLED"}, 180)
            log = logs_of(client, execution_id)
            assert done["state"]["current"] == "SUCCESS", log
            lines = [m for m in log if m.startswith("line ")]
            assert lines == [f"line {i}" for i in range(1, 16)], lines
            assert attempts_in(log) == [("1", "w1")], log
            assert not any("worker lost" in m for m in log), log

            # the worker heartbeats to the new server: alive, and idle once its next beat says so
            def idle() -> dict[str, Any] | None:
                row = cluster.worker_list()[0]
                return None if row["running"] else row

            row = until(idle, 60, lambda: f"the worker idle: {cluster.worker_list()}")
            assert row["alive"], row
    finally:
        cluster.stop()
    assert resources_of(None, execution_id) == []


def test_a_server_on_postgresql_takes_its_workers_records(
    tmp_path: Path, redis: Redis, postgres_url: str
) -> None:
    """Server with ``--broker`` and ``EXECUTOR_DATABASE_URL``: the worker (no database of its
    own) reports through the server, and every state and line lands in PostgreSQL, in order."""
    cluster = Cluster(
        tmp_path, "127.0.0.1", redis.url(), server_env={"EXECUTOR_DATABASE_URL": postgres_url}
    )
    execution_id = ""
    try:
        cluster.start_server()
        with cluster.client() as client:
            push_flow(client, COUNTING)
            cluster.start_worker("w1")
            execution_id = client.post("/api/v1/executions/faults.workers/counting").json()["id"]
            done = wait_state(client, execution_id, {"SUCCESS", "FAILED", "KILLED"}, 180)
            assert done["state"]["current"] == "SUCCESS", logs_of(client, execution_id)
    finally:
        cluster.stop()
    assert not (tmp_path / "server" / "executor.db").exists()
    with Store(postgres_url) as store:
        assert store.execution_state(execution_id) == State.SUCCESS
        lines = [s.line.message for s in store.logs(execution_id) if s.line.stream == "stdout"]
        assert lines == [f"line {i}" for i in range(1, 16)], lines
        runs = store.read(
            "SELECT worker, attempt FROM worker_runs WHERE execution_id = ?", (execution_id,)
        )
        assert [tuple(r) for r in runs] == [("w1", 1)]
    assert resources_of(None, execution_id) == []


NAP = shell_flow("nap", "faults.workers", "nap", ["echo started", "sleep 6", "echo woke"])


def test_a_worker_consumes_again_after_redis_restarted_while_its_run_ended(
    tmp_path: Path, redis: Redis
) -> None:
    """The run ends while Redis is down, so its message cannot be acknowledged ("Couldn't ack
    ... ConnectionError"); once Redis is back, the worker must take new work again."""
    cluster = Cluster(tmp_path, "127.0.0.1", redis.url(), env={"EXECUTOR_WORKER_LAPSE": "5"})
    ids: list[str] = []
    try:
        cluster.start_server()
        with cluster.client() as client:
            push_flow(client, NAP)
            push_flow(client, QUICK)
            worker = cluster.start_worker("w1")
            first = client.post("/api/v1/executions/faults.workers/nap").json()["id"]
            ids.append(first)
            wait_log(client, first, "started")
            redis.kill()
            done = wait_state(client, first, {"SUCCESS", "FAILED", "KILLED"}, 120)
            assert done["state"]["current"] == "SUCCESS", logs_of(client, first)
            # the worker tried to acknowledge the message while Redis was away, and again
            again = "the broker did not take an acknowledgement; trying again"
            until(lambda: again in worker.output(), 60, worker.output)
            redis.start()  # the same port, no data
            for _ in range(4):
                ids.append(client.post("/api/v1/executions/faults.workers/quick").json()["id"])
            for execution_id in ids[1:]:
                done = wait_state(client, execution_id, {"SUCCESS", "FAILED", "KILLED"}, 120)
                assert done["state"]["current"] == "SUCCESS", (
                    logs_of(client, execution_id),
                    worker.output()[-3000:],
                )
        assert "acknowledged once the broker answered" in worker.output()
    finally:
        cluster.stop()
    for execution_id in ids:
        assert resources_of(None, execution_id) == []
