"""A real ``executor server`` process on a free loopback port, and what tests do with it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BUSYBOX = "executor/busybox:latest"
READY_SECONDS = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """One server process; ``start()`` waits until it answers, ``stop()`` ends it."""

    home: Path
    workers: int = 2
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[str] | None = None
    auth: tuple[str, str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        log = (self.home / f"server-{self.port}.log").open("a")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "executor",
                "server",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            env={**os.environ, "EXECUTOR_HOME": str(self.home), **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: {self.output()}")
            try:
                httpx.get(f"{self.url}/api/v1/configs", auth=self.auth, timeout=2)
                return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError(f"server did not answer in {READY_SECONDS}s: {self.output()}")

    def output(self) -> str:
        return "".join(p.read_text() for p in self.home.glob("server-*.log"))

    def stop(self, sig: int = signal.SIGINT, timeout: float = 120) -> int:
        """Send ``sig`` and wait for the process to end; its exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, auth=self.auth)


def push_flow(client: httpx.Client, text: str) -> dict[str, Any]:
    """Create (or replace) a flow from YAML; its JSON."""
    body = textwrap.dedent(text)
    answer = client.post(
        "/api/v1/flows", content=body, headers={"Content-Type": "application/x-yaml"}
    )
    if answer.status_code == 422 and "already exists" in answer.text:
        import yaml

        data = yaml.safe_load(body)
        answer = client.put(
            f"/api/v1/flows/{data['namespace']}/{data['id']}",
            content=body,
            headers={"Content-Type": "application/x-yaml"},
        )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def wait_state(
    client: httpx.Client, execution_id: str, wanted: set[str], timeout: float = 120
) -> dict[str, Any]:
    """Poll the execution until its state is one of ``wanted``; its JSON."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = client.get(f"/api/v1/executions/{execution_id}").json()
        if last["state"]["current"] in wanted:
            return last
        time.sleep(0.2)
    raise AssertionError(f"execution {execution_id} never reached {wanted}: {last.get('state')}")


def sse_events(lines: list[str]) -> list[tuple[str | None, str]]:
    """``(id, data)`` of each server-sent event in raw stream lines (pings skipped)."""
    events: list[tuple[str | None, str]] = []
    ident: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                events.append((ident, "\n".join(data)))
            ident, data = None, []
        elif line.startswith("id:"):
            ident = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
    return events
