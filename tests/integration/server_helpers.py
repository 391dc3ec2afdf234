"""A real ``executor server`` process on a free loopback port, and what tests do with it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.integration.helpers import until

BUSYBOX = "executor/busybox:latest"
READY_SECONDS = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    """A started process, with its log file; stopped by pid."""

    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send ``sig`` and wait for the process to end (killed after ``timeout``); its code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def start(argv: list[str], log: Path, env: dict[str, str]) -> Process:
    """``argv`` running with its output appended to ``log``."""
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Process(proc, log)


@dataclass
class LiveServer:
    """One ``executor server`` process; ``start()`` waits until it answers, ``stop()`` ends it.
    As a context manager: started on entry, stopped (Ctrl-C) on exit."""

    home: Path
    workers: int | None = 2  # None: the server's own default
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    auth: tuple[str, str] | None = None
    host: str = "127.0.0.1"
    args: list[str] = field(default_factory=list)  # more options (``--broker URL``)
    headers: dict[str, str] = field(default_factory=dict)  # a bearer token, for one
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        assert self.process is not None, "the server was never started"
        return self.process.proc

    def start(self) -> LiveServer:
        self.home.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "executor", "server", "--host", self.host]
        argv += ["--port", str(self.port), *self.args]
        if self.workers is not None:
            argv += ["--workers", str(self.workers)]
        env = {**os.environ, "EXECUTOR_HOME": str(self.home), **self.env}
        self.process = start(argv, self.home / f"server-{self.port}.log", env)
        until(self._answers, READY_SECONDS, lambda: f"the server to answer: {self.output()}")
        return self

    def _answers(self) -> bool:
        """Whether the server answers HTTP (with the credentials given, a 200); raises once the
        process has ended, so a server that cannot start fails at once."""
        code = self.proc.poll()
        assert code is None, f"server exited {code}: {self.output()}"
        try:
            answer = httpx.get(
                f"{self.url}/api/v1/configs", auth=self.auth, headers=self.headers, timeout=2
            )
        except httpx.TransportError:
            return False
        if self.auth or self.headers:
            assert answer.status_code == 200, answer.text
        return True

    def output(self) -> str:
        """Every server log of this home (a restarted server writes a new one)."""
        return "".join(p.read_text(errors="replace") for p in self.home.glob("server-*.log"))

    def stop(self, sig: int = signal.SIGINT, timeout: float = 120) -> int:
        """Send ``sig`` and wait for the process to end; its exit code."""
        assert self.process is not None, "the server was never started"
        return self.process.stop(sig, timeout)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, auth=self.auth, headers=self.headers)

    def push(self, text: str) -> dict[str, Any]:
        """``push_flow`` on a client of its own."""
        with self.client() as client:
            return push_flow(client, text)

    def execution(self, execution_id: str) -> dict[str, Any]:
        with self.client() as client:
            found: dict[str, Any] = client.get(f"/api/v1/executions/{execution_id}").json()
        return found

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def shell_flow(
    flow_id: str,
    namespace: str,
    task_id: str,
    commands: list[str],
    *,
    working_directory: bool = True,
) -> str:
    """A flow of one busybox shell task, in a WorkingDirectory ``wd`` unless told otherwise."""
    task = [
        f"- id: {task_id}",
        "  type: io.kestra.plugin.scripts.shell.Commands",
        f"  containerImage: {BUSYBOX}",
        "  commands:",
        *(f"    - {json.dumps(command)}" for command in commands),
    ]
    if working_directory:
        task = [
            "- id: wd",
            "  type: io.kestra.plugin.core.flow.WorkingDirectory",
            "  tasks:",
            *(f"    {line}" for line in task),
        ]
    head = [f"id: {flow_id}", f"namespace: {namespace}", "tasks:"]
    return "\n".join([*head, *(f"  {line}" for line in task)]) + "\n"


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
    last: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        nonlocal last
        last = client.get(f"/api/v1/executions/{execution_id}").json()
        return last if last["state"]["current"] in wanted else None

    return until(reached, timeout, lambda: f"{execution_id} in {wanted}: {last.get('state')}")


def logs_of(client: httpx.Client, execution_id: str) -> list[str]:
    return [line["message"] for line in client.get(f"/api/v1/logs/{execution_id}").json()]


def wait_log(client: httpx.Client, execution_id: str, text: str, timeout: float = 120) -> None:
    """Poll the execution's log until a line holds ``text``."""
    until(
        lambda: any(text in line for line in logs_of(client, execution_id)),
        timeout,
        lambda: f"{text!r} in the log of {execution_id}: {logs_of(client, execution_id)}",
    )


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
