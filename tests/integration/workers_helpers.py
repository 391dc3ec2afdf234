"""Real parts for the worker tests: Redis, a second Docker engine in its own network namespace
(``scripts/second-engine.sh``), a server with ``--broker`` and ``executor worker`` processes.

Everything started here is stopped by its pid; the second engine is taken down whole.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.integration.helpers import until
from tests.integration.server_helpers import (
    READY_SECONDS,
    LiveServer,
    Process,
    free_port,
    start,
)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "worker-test-token"  # an API client's
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WORKER_TOKEN = "worker-test-worker-token"  # the workers' own credential
WORKER_AUTH = {"Authorization": f"Bearer {WORKER_TOKEN}"}


@dataclass
class SecondEngine:
    """Engine 2: its network namespace, socket, and the veth addresses of both sides."""

    name: str
    net: str

    @property
    def socket(self) -> str:
        return f"unix:///run/docker-{self.name}.sock"

    @property
    def host_address(self) -> str:
        """Host 1's side of the link (where Redis and the server listen for host 2)."""
        return f"{self.net}.1"

    def script(self, action: str) -> None:
        env = {**os.environ, "NAME": self.name, "NET": self.net}
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "second-engine.sh"), action], env=env, check=True
        )

    @classmethod
    def up(cls) -> SecondEngine:
        engine = cls(f"exw{os.getpid() % 100000}", f"10.251.{random.randrange(1, 250)}")
        try:
            engine.script("up")
        except BaseException:
            engine.script("down")
            raise
        return engine


def start_redis(tmp: Path, bind: list[str], port: int | None = None) -> tuple[Process, int]:
    """``redis-server`` on ``port`` (a free one by default); no persistence. Listening beyond
    loopback (the veth address) needs protected mode off, else host 2's clients get "DENIED"."""
    port = port or free_port()
    redis = shutil.which("redis-server")
    assert redis, "redis-server is missing: scripts/run-tests.sh installs it"
    argv = [redis, "--port", str(port), "--bind", *bind, "--save", "", "--appendonly", "no"]
    argv += ["--protected-mode", "no", "--dir", str(tmp)]
    process = start(argv, tmp / f"redis-{time.monotonic_ns()}.log", dict(os.environ))

    def ready() -> bool:
        assert process.proc.poll() is None, process.output()
        return "Ready to accept connections" in process.output()

    until(ready, 30, process.output)
    return process, port


@dataclass
class Cluster:
    """A server with ``--broker`` on ``address``, and its workers."""

    tmp: Path
    address: str
    broker: str
    env: dict[str, str] = field(default_factory=dict)
    server_env: dict[str, str] = field(default_factory=dict)  # the server's only, not the workers'
    port: int = field(default_factory=free_port)
    server: LiveServer | None = None
    workers: dict[str, Process] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, headers=AUTH)

    def start_server(self) -> LiveServer:
        """The server (again, after a stop: same home, same port)."""
        self.server = LiveServer(
            self.tmp / "server",
            workers=None,
            env={
                **self.env,
                **self.server_env,
                "EXECUTOR_SERVER_TOKENS": TOKEN,
                "EXECUTOR_SERVER_WORKER_TOKENS": WORKER_TOKEN,
            },
            port=self.port,
            host=self.address,
            args=["--broker", self.broker],
            headers=AUTH,
        ).start()
        return self.server

    def start_worker(
        self,
        name: str,
        *,
        netns: str | None = None,
        docker_host: str | None = None,
        slots: int = 1,
    ) -> Process:
        """``executor worker`` with its own home; in ``netns`` (host 2) when given."""
        env = {
            **os.environ,
            **self.env,
            "EXECUTOR_HOME": str(self.tmp / name),
            "EXECUTOR_WORKER_TOKEN": WORKER_TOKEN,
            "PYTHONPATH": str(ROOT),
        }
        env.pop("DOCKER_HOST", None)
        if docker_host:
            env["DOCKER_HOST"] = docker_host
        argv = [sys.executable, "-m", "executor", "worker", "--broker", self.broker]
        argv += ["--server", self.url, "--name", name, "--slots", str(slots), "--heartbeat", "1"]
        if netns:
            argv = ["nsenter", f"--net=/run/netns/{netns}", *argv]
        process = start(argv, self.tmp / f"{name}.log", env)
        self.workers[name] = process

        def consuming() -> bool:  # registered by its heartbeat, and taking work
            assert process.proc.poll() is None, process.output()
            alive = {w["name"] for w in self.worker_list() if w["alive"]}
            return name in alive and "Ctrl-C stops it" in process.output()

        until(consuming, READY_SECONDS, process.output)
        return process

    def worker_list(self) -> list[dict[str, Any]]:
        with self.client() as client:
            rows: list[dict[str, Any]] = client.get("/api/v1/worker/workers").json()
        return rows

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        if self.server is not None:
            self.server.stop()


def resources_of(docker_host: str | None, execution_id: str) -> list[Any]:
    """What an engine still holds of one execution."""
    from executor.engine import labels
    from executor.engine.docker.backend import DockerBackend
    from executor.engine.docker.client import connect

    engine = DockerBackend(connect(docker_host))
    return engine.list_resources({labels.EXECUTION: execution_id})
