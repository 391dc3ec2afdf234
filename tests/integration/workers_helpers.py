"""Real parts for the worker tests: Redis, a second Docker engine in its own network namespace
(``scripts/second-engine.sh``), a server with ``--broker`` and ``executor worker`` processes.

Everything started here is stopped by its pid; the second engine is taken down whole.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.integration.server_helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "worker-test-token"
READY_SECONDS = 90


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


@dataclass
class Process:
    """A started process, with its log file; stopped by pid."""

    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(argv: list[str], log: Path, env: dict[str, str]) -> Process:
    out = log.open("ab")
    proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Process(proc, log)


def start_redis(tmp: Path, bind: list[str], port: int | None = None) -> tuple[Process, int]:
    """``redis-server`` on ``port`` (a free one by default); no persistence. Listening beyond
    loopback (the veth address) needs protected mode off, else host 2's clients get "DENIED"."""
    port = port or free_port()
    redis = shutil.which("redis-server")
    assert redis, "redis-server is missing: scripts/run-tests.sh installs it"
    argv = [redis, "--port", str(port), "--bind", *bind, "--save", "", "--appendonly", "no"]
    argv += ["--protected-mode", "no", "--dir", str(tmp)]
    process = start(argv, tmp / f"redis-{time.monotonic_ns()}.log", dict(os.environ))
    deadline = time.monotonic() + 30
    while "Ready to accept connections" not in process.output():
        assert process.proc.poll() is None, process.output()
        assert time.monotonic() < deadline, process.output()
        time.sleep(0.1)
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
    server: Process | None = None
    workers: dict[str, Process] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}
        )

    def start_server(self) -> None:
        env = {
            **os.environ,
            **self.env,
            **self.server_env,
            "EXECUTOR_HOME": str(self.tmp / "server"),
            "EXECUTOR_SERVER_TOKENS": TOKEN,
        }
        argv = [sys.executable, "-m", "executor", "server", "--host", self.address]
        argv += ["--port", str(self.port), "--broker", self.broker]
        self.server = start(argv, self.tmp / "server.log", env)
        deadline = time.monotonic() + READY_SECONDS
        while True:
            assert self.server.proc.poll() is None, self.server.output()
            try:
                if self.client().get("/api/v1/configs").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, self.server.output()
            time.sleep(0.2)

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
            "KESTRA_API_TOKEN": TOKEN,
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
        deadline = time.monotonic() + READY_SECONDS
        while name not in {w["name"] for w in self.worker_list() if w["alive"]}:
            assert process.proc.poll() is None, process.output()
            assert time.monotonic() < deadline, process.output()
            time.sleep(0.2)
        while "Ctrl-C stops it" not in process.output():  # consuming, not only heartbeating
            assert process.proc.poll() is None, process.output()
            assert time.monotonic() < deadline, process.output()
            time.sleep(0.2)
        return process

    def worker_list(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.client().get("/api/v1/worker/workers").json()
        return rows

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        if self.server is not None:
            self.server.stop(signal.SIGINT)


def resources_of(docker_host: str | None, execution_id: str) -> list[Any]:
    """What an engine still holds of one execution."""
    from executor.engine import labels
    from executor.engine.client import connect
    from executor.engine.docker_engine import DockerEngine

    engine = DockerEngine(connect(docker_host))
    return engine.list_resources({labels.EXECUTION: execution_id})


def logs_of(client: httpx.Client, execution_id: str) -> list[str]:
    return [line["message"] for line in client.get(f"/api/v1/logs/{execution_id}").json()]
